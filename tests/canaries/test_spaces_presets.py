"""Every space type is uniform and exact; presets generate and plant into real SMS data; design checks."""

from __future__ import annotations

import csv
import json
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import chisquare

from privacy_audit import MockModel, generate_canary_set
from privacy_audit.canaries import parse_space
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries.presets import list_presets, load_preset
from privacy_audit.cli import main
from privacy_audit.errors import InputError



@pytest.mark.parametrize("spec", ["digits:2", "hex:2", "alnum:1", "names", "words:a,b,c,d,e", "x=digits:1;y=hex:1"])
def test_every_space_samples_uniformly(spec):
    space = parse_space(spec)
    rng = np.random.default_rng(7)
    counts = Counter()
    draws = 40 * space.size
    for _ in range(draws // 3):
        counts.update(space.index(s) for s in space.sample(3, rng))
    observed = [counts[i] for i in range(space.size)]
    assert chisquare(observed).pvalue > 0.001


@pytest.mark.parametrize("spec", ["digits:3", "names", "words:x,y,z", "a=digits:2;b=names", "hex:20"])
def test_index_and_secret_are_inverse(spec):
    space = parse_space(spec)
    rng = np.random.default_rng(0)
    for i in [0, space.size - 1, *[int(x) for x in rng.integers(0, min(space.size, 2**62), 20)]]:
        assert space.index(space.secret(i)) == i
    assert list(space.enumerate(0, 3)) == [space.secret(i) for i in range(3)]
    assert parse_space(space.spec).size == space.size


def test_names_space_is_the_bundled_thousand():
    names = parse_space("names")
    assert names.size == 1000 and names.secret(0) == "James" and "Mary" in names and "mary" not in names


def test_product_space_values_and_size():
    space = parse_space("code1=digits:4;code2=digits:4")
    assert space.size == 10**8 and space.slots == ("code1", "code2")
    assert space.secret(1) == "0000|0001" and space.values("0042|1234") == {"code1": "0042", "code2": "1234"}


def test_sampling_a_million_from_2_to_the_64_without_duplicates():
    secrets = parse_space("hex:16").sample(10**6, np.random.default_rng(0))
    assert len(secrets) == len(set(secrets)) == 10**6 and all(len(s) == 16 for s in secrets[:1000])
    first = Counter(s[0] for s in secrets)
    assert chisquare([first[c] for c in "0123456789abcdef"]).pvalue > 0.001


def test_beyond_2_to_the_64():
    space = parse_space("alnum:20")  # 36^20 > 2^103
    secrets = space.sample(1000, np.random.default_rng(1))
    assert len(set(secrets)) == 1000 and all(s in space for s in secrets)


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_each_preset_generates(preset):
    p = load_preset(preset)
    cs = generate_canary_set(
        template=p.template, space=p.space, count=3, references=5, seed=1, derived=p.derived, preset=preset
    )
    for c in cs.canaries:
        assert "{" not in c.text and all(part in c.text for part in cs.parts(c.secret))
    if preset == "gsm8k-codes":
        v = cs.secret_space.values(cs.canaries[0].secret)
        assert c.text and cs.canaries[0].text.endswith(f"#### {int(v['code1']) * int(v['code2'])}")
    if preset == "lambada-name":
        assert cs.canaries[0].text.count(cs.canaries[0].secret) == 2


def sms_rows(n: int = 60) -> list[dict[str, str]]:
    """The first n messages of the bundled SMS demo data (in the package, so no clone lacks them)."""
    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [{"label": r["label"], "text": r["text"]} for r in map(json.loads, lines)]


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_each_preset_plants_into_sms_data_and_changes_only_the_planted_records(preset, fmt, tmp_path):
    rows = sms_rows()
    data = tmp_path / f"sms.{fmt}"
    if fmt == "jsonl":
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        with data.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["label", "text"])
            writer.writeheader()
            writer.writerows(rows)
    before = data.read_bytes()
    run = CliRunner().invoke
    assert (
        run(
            main,
            [
                "canaries", "generate", "--preset", preset, "--count", "2", "--references", "5", "--repetitions", "2",
                "--seed", "3", "--out", str(tmp_path / "set.json"),
            ],
        ).exit_code
        == 0
    )
    r = run(
        main,
        ["canaries", "plant", str(tmp_path / "set.json"), "--data", str(data), "--out", str(tmp_path / f"out.{fmt}")],
    )
    assert r.exit_code == 0, r.output
    assert data.read_bytes() == before
    if fmt == "jsonl":
        out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    else:
        out = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8", newline="")))
    cs = json.loads((tmp_path / "set.json").read_text())
    texts = {c["text"] for c in cs["canaries"] if c["planted"]}
    planting = json.loads((tmp_path / f"out.{fmt}.planting.json").read_text())
    touched = {i["record"] for i in planting["insertions"]}
    assert len(planting["insertions"]) == 4 and len(out) == len(rows)
    for i, (old, new) in enumerate(zip(rows, out)):
        if i in touched:
            added = new["text"][len(old["text"]) + 1 :]
            assert new["text"].startswith(old["text"] + " ") and added in texts
        else:
            assert new == old


def test_random_position_new_records_and_shards(tmp_path):
    cs = generate_canary_set(template="code {secret}", space="digits:4", count=2, references=2, seed=0)
    from privacy_audit.canaries import plant_records

    records = [{"text": f"word{i} and more words here"} for i in range(40)]
    out, ins = plant_records(records, cs, field="text", position="random", seed=2)
    for i in ins:
        assert cs.planted[0].text in out[i.record]["text"] or cs.planted[1].text in out[i.record]["text"]
    out, ins = plant_records(records, cs, field="text", shards=4, fraction=0.5, seed=2)
    assert {r["teacher"] for r in out} == {0, 1, 2, 3} and all("teacher" not in r for r in records)
    per_canary = Counter(i.canary_id for i in ins)
    assert set(per_canary.values()) == {2}  # half of 4 shards, one copy each
    assert all(out[i.record]["teacher"] == i.shard for i in ins)
    out, ins = plant_records(records, cs, field="text", shards=4, position="new", seed=2)
    assert len(out) == 48 and all(out[i.record]["text"] in {c.text for c in cs.planted} for i in ins)


def test_shards_flow_into_the_examples_pipeline(tmp_path, sms_jsonl):
    run = CliRunner().invoke
    run(
        main,
        [
            "canaries", "generate", "--template", "code {secret}", "--space", "digits:4", "--count", "1", "--seed", "0",
            "--out", str(tmp_path / "s.json"),
        ],
    )
    r = run(main, ["canaries", "plant", str(tmp_path / "s.json"), "--data", str(sms_jsonl), "--shards", "2",
                   "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 0, r.output
    from privacy_audit.audit_runs import load_training_records
    from privacy_audit.pipelines import TeacherArtifact, run_pipeline

    recs = load_training_records(tmp_path / "p.jsonl", field="text", label_field="label")
    assert {r.teacher for r in recs} == {0, 1}
    out = run_pipeline(
        "examples", recs, model=MockModel(), options={"teachers": 2, "n": 1, "samples": 1, "max_new_tokens": 5}
    )
    used = [a for a in out.artifacts if isinstance(a, TeacherArtifact)]
    assert used and all(recs[i].teacher == a.teacher for a in used for i in a.records)
    with pytest.raises(InputError, match="not 0..2"):
        run_pipeline("examples", recs, model=MockModel(), options={"teachers": 3, "n": 1, "samples": 1})


class SpaceMergingMock(MockModel):
    """Tokenizes a space followed by a capital letter as one token (like " Alice" in BPE)."""

    def tokenize(self, texts):
        out = []
        for t in texts:
            ids, ends, i = [], [], 0
            while i < len(t):
                step = 2 if t[i] == " " and i + 1 < len(t) and t[i + 1].isupper() else 1
                ids.append(hash(t[i : i + step]) % 10**6)
                ends.append(i + step)
                i += step
            out.append((ids, ends))
        return out


def test_design_checks_find_boundary_merges(tiny_model):
    digits = generate_canary_set(
        template="The secret code is {secret}", space="digits:4", count=3, references=5, seed=0
    )
    ok = design_checks(digits, tiny_model)
    assert ok.boundary_merges == 0 and ok.scored_tokens_min == ok.scored_tokens_max == 4
    names = generate_canary_set(template="My name is {secret}", space="names", count=3, references=5, seed=0)
    merged = design_checks(names, SpaceMergingMock())
    assert merged.boundary_merges == 8 and "scores stay exact" in merged.boundary_note
    assert design_checks(digits).tokenizer.startswith("not checked")


def test_cli_presets_and_show(tmp_path):
    run = CliRunner().invoke
    listing = run(main, ["canaries", "list-presets"])
    assert listing.exit_code == 0 and "lambada-code" in listing.output and "gsm8k-codes" in listing.output
    r = run(
        main,
        [
            "canaries", "generate", "--preset", "lambada-code", "--count", "2", "--seed", "4", "--out",
            str(tmp_path / "s.json"), "--check-model", "mock",
        ],
    )
    assert r.exit_code == 0 and "scored tokens per canary" in r.output, r.output
    secrets = [c["secret"] for c in json.loads((tmp_path / "s.json").read_text())["canaries"]]
    shown = run(main, ["canaries", "show", str(tmp_path / "s.json")])
    assert shown.exit_code == 0 and "lambada-code" in shown.output and not any(s in shown.output for s in secrets)
    revealed = run(main, ["canaries", "show", str(tmp_path / "s.json"), "--show-secrets"])
    assert all(s in revealed.output for s in secrets)
