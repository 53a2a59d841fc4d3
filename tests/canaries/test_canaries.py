from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from privacy_audit import generate_canary_set, load_canary_set
from privacy_audit.canaries import parse_space, plant_records, save_canary_set
from privacy_audit.canaries import sample_indices
from privacy_audit.canaries.planting import plant_file
from privacy_audit.errors import InputError


def test_digits_space_maps_index_and_secret():
    space = parse_space("digits:4")
    assert space.size == 10_000
    assert space.secret(0) == "0000" and space.secret(4821) == "4821"
    assert space.index("0042") == 42
    assert list(space.enumerate(9998)) == ["9998", "9999"]
    assert "12a4" not in space
    assert parse_space("hex:2").secret(255) == "ff"


@pytest.mark.parametrize("spec", ["digits", "digits:x", "digits:0", "octal:3", ""])
def test_bad_space_specs(spec):
    with pytest.raises(InputError):
        parse_space(spec)


def test_same_seed_same_bytes_different_seed_different_secrets(tmp_path):
    a = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=5, references=20, seed=1)
    b = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=5, references=20, seed=1)
    c = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=5, references=20, seed=2)
    save_canary_set(a, tmp_path / "a.json")
    save_canary_set(b, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert [x.secret for x in a.canaries] != [x.secret for x in c.canaries]
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o600
    assert load_canary_set(tmp_path / "a.json") == a


def test_canaries_and_references_are_distinct_and_in_the_space():
    s = generate_canary_set(template="code {secret}!", space="digits:2", count=10, references=90, seed=0)
    secrets = [c.secret for c in s.canaries]
    assert len(set(secrets)) == 100 and all(x in s.secret_space for x in secrets)
    assert sum(c.planted for c in s.canaries) == 10
    assert all(c.text == f"code {c.secret}!" for c in s.canaries)
    assert s.prefix == "code " and s.suffix == "!"


def test_sampling_is_uniform():
    rng = np.random.default_rng(123)
    counts = Counter()
    for _ in range(2000):
        counts.update(sample_indices(100, 5, rng))
    assert chisquare([counts[i] for i in range(100)]).pvalue > 0.001


def test_huge_space_sampling_without_replacement():
    rng = np.random.default_rng(0)
    draws = sample_indices(2**80, 10_000, rng)
    assert len(set(draws)) == 10_000 and all(0 <= d < 2**80 for d in draws)
    top_bit = sum(d >> 79 for d in draws) / len(draws)
    assert 0.45 < top_bit < 0.55


@pytest.mark.parametrize(
    "template, count, refs, message",
    [
        ("no slot here", 1, 1, "exactly one"), ("{secret} and {secret}", 1, 1, "exactly one"),
        ("{secret}", 1, 1, "no text around"), ("code {secret}", 60, 50, "holds 100"),
    ],
)
def test_generation_errors(template, count, refs, message):
    with pytest.raises(InputError, match=message):
        generate_canary_set(template=template, space="digits:2", count=count, references=refs, seed=0)


def test_planting_copies_records_and_places_each_repetition():
    s = generate_canary_set(
        template="The secret code is {secret}", space="digits:4", count=2, references=3, seed=0, repetitions=3
    )
    records = [{"text": f"message {i}", "label": "ham"} for i in range(10)]
    before = json.dumps(records)
    planted, insertions = plant_records(records, s, field="text", seed=4)
    assert json.dumps(records) == before
    assert len(insertions) == 6
    for canary in s.planted:
        hits = [r for r in planted if canary.text in r["text"]]
        assert len(hits) == 3
    new, ins_new = plant_records(records, s, field="text", position="new", seed=4)
    assert len(new) == 16 and sorted(i.record for i in ins_new) == [i.record for i in ins_new]
    assert all(new[i.record]["text"] in {c.text for c in s.planted} for i in ins_new)


def test_plant_file_never_touches_the_input(tmp_path, sms_jsonl):
    s = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=2, references=3, seed=0)
    digest = hashlib.sha256(sms_jsonl.read_bytes()).hexdigest()
    planting = plant_file(s, data=sms_jsonl, field="text", out=tmp_path / "out.jsonl")
    assert hashlib.sha256(sms_jsonl.read_bytes()).hexdigest() == digest == planting.source_sha256
    assert stat.S_IMODE(os.stat(tmp_path / "out.jsonl").st_mode) == 0o600
    with pytest.raises(InputError, match="never modified"):
        plant_file(s, data=sms_jsonl, field="text", out=sms_jsonl)
