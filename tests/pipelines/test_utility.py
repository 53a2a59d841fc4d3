"""The student's accuracy: each label scored by likelihood after the prompt, never parsed from generated text."""

from __future__ import annotations

import pytest

from privacy_audit import MockModel
from privacy_audit.errors import InputError
from privacy_audit.pipelines import Record
from privacy_audit.pipelines.utility import student_accuracy


def test_a_prompt_that_shows_the_answers_is_followed_and_the_counts_add_up():
    evals = [Record(text="win cash", label="spam"), Record(text="see you", label="ham")] * 3
    prompt = "Text: win cash\nClass: spam\n\nText: see you\nClass: okay"  # labels of one length: neither shorter
    u = student_accuracy(MockModel(order=16), prompt, evals, labels={"ham": "okay"})
    assert u.labels == ("okay", "spam") and u.examples == 6
    assert u.correct == 6 and u.accuracy == 1.0 and sum(u.predicted_counts.values()) == 6


def test_unlabelled_or_single_label_evaluation_data_is_refused():
    with pytest.raises(InputError, match="needs labelled records"):
        student_accuracy(MockModel(), "p", [Record(text="x")])
    with pytest.raises(InputError, match="single label"):
        student_accuracy(MockModel(), "p", [Record(text="x", label="a")] * 2)
