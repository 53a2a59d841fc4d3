"""Utility of a teaching prompt: the student's accuracy on held-out labelled examples.

The student sees `teaching prompt + "\\n\\n" + "Text: <message>\\nClass:"` and its answer is the label
whose tokens are most likely as the continuation (total log-probability, as lm-eval-harness's
"acc"), never parsed from free text. The prompt's KV cache is shared by every question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from privacy_audit.errors import InputError
from privacy_audit.models.base import LanguageModel


class Utility(BaseModel):
    """Accuracy of the student with this teaching prompt, and the counts behind it."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    accuracy: Annotated[float, Field(ge=0.0, le=1.0)]
    correct: Annotated[int, Field(ge=0)]
    examples: Annotated[int, Field(ge=1)]
    labels: tuple[str, ...]
    predicted_counts: dict[str, Annotated[int, Field(ge=0)]]
    accuracy_per_token: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    # the model that played the student (its name and backend); None in files written before it was recorded
    student: str | None = None
    method: str = (
        "label with the highest total log-probability after 'Class:' (accuracy_per_token: highest mean per token)"
    )


class LabelledText(Protocol):
    text: str
    label: str | None


def student_accuracy(
    model: LanguageModel, prompt: str, eval_records: Sequence[LabelledText], *, labels: Mapping[str, str] | None = None
) -> Utility:
    """Accuracy over `eval_records` (each needs a label); label names are mapped through `labels`."""
    if not eval_records or any(r.label is None for r in eval_records):
        raise InputError("--eval-data needs labelled records (choose the label with --label-field)")
    names = dict(labels or {})
    answers = sorted({names.get(r.label, r.label) for r in eval_records if r.label is not None})
    if len(answers) < 2:
        raise InputError(f"--eval-data holds a single label ({answers[0]!r}); accuracy needs at least two")
    questions = [f"Text: {r.text}\nClass:" for r in eval_records]
    continuations = [f"{q} {a}" for q in questions for a in answers]
    starts = np.array([len(q) for q in questions for _ in answers])
    context = prompt + "\n\n" if prompt else ""
    scored = model.open_context(context)(continuations)
    totals = scored.totals(starts).reshape(len(questions), len(answers))
    means = scored.means(starts).reshape(len(questions), len(answers))
    predicted = [answers[i] for i in np.argmax(totals, axis=1)]
    per_token = [answers[i] for i in np.argmax(means, axis=1)]
    truth = [names.get(r.label, r.label) for r in eval_records]
    correct = sum(p == t for p, t in zip(predicted, truth))
    return Utility(
        accuracy=correct / len(truth), correct=correct, examples=len(truth), labels=tuple(answers),
        predicted_counts={a: predicted.count(a) for a in answers},
        accuracy_per_token=sum(p == t for p, t in zip(per_token, truth)) / len(truth),
        student=f"{model.name} ({model.backend})",
    )
