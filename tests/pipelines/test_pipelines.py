"""Pipelines as black boxes: command programs, the examples teachers, utility, caching, determinism."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit import MockModel
from tests.conftest import teach_file
from privacy_audit.cli import main
from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import Completion
from privacy_audit.pipelines import Record, RoundArtifact, TeacherArtifact, run_pipeline, student_accuracy

TEACHERS = Path(__file__).parent / "teachers"
PY = sys.executable


def records(sms_jsonl: Path) -> list[Record]:
    return [Record(**json.loads(line)) for line in sms_jsonl.read_text().splitlines()]


def test_command_reads_stdin_and_writes_the_prompt(sms_jsonl, tmp_path):
    out = teach_file("command", data=sms_jsonl, label_field="label", out=tmp_path / "p.txt",
                options={"argv": [PY, str(TEACHERS / "stdin_teacher.py")]})
    assert out.prompt.startswith("Classify each message as one of: ham, spam.")
    assert (tmp_path / "p.txt").read_text() == out.prompt


def test_command_with_input_placeholder(sms_jsonl, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "teach", "--pipeline", "command", "--data", str(sms_jsonl), "--command",
            f"{PY} {TEACHERS / 'file_teacher.py'} {{input}}", "--out", str(tmp_path / "p.txt"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.txt").read_text().strip() == "20 records, read from a file"


@pytest.mark.parametrize("mode, words", [("fail", "exit code 3: something broke"), ("silent", "no teaching prompt"),
                                         ("binary", "not UTF-8")])
def test_failing_commands_are_clear_errors(sms_jsonl, tmp_path, mode, words):
    result = CliRunner().invoke(main, ["teach", "--pipeline", "command", "--data", str(sms_jsonl), "--command",
                                       f"{PY} {TEACHERS / 'bad_teachers.py'} {mode}", "--out", str(tmp_path / "p.txt")])
    assert result.exit_code == 2 and words in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "p.txt").exists()


def test_hanging_command_is_killed_with_its_children(sms_jsonl, tmp_path):
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    with pytest.raises(PipelineError, match="timed out after 2 s"):
        run_pipeline(
            "command", records(sms_jsonl),
            options={"argv": [PY, str(TEACHERS / "bad_teachers.py"), "hang", str(pidfile)], "timeout": 2},
        )
    assert time.monotonic() - start < 30
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the teacher's child process survived the timeout")


def test_missing_program_is_an_input_error(sms_jsonl):
    with pytest.raises(InputError, match="not found"):
        run_pipeline("command", records(sms_jsonl), options={"argv": ["no-such-teacher-program"]})


def test_teaching_outputs_are_cached(sms_jsonl, tmp_path, monkeypatch):
    counter = tmp_path / "runs.txt"
    monkeypatch.setenv("TEACHER_RUNS", str(counter))
    argv = [PY, str(TEACHERS / "file_teacher.py"), "{input}"]
    messages: list[str] = []
    for _ in range(2):
        teach_file("command", data=sms_jsonl, out=tmp_path / "p.txt", options={"argv": argv}, say=messages.append)
    assert counter.read_text() == "1" and any("reused the cached" in m for m in messages)
    teach_file("command", data=sms_jsonl, out=tmp_path / "p.txt", options={"argv": argv}, use_cache=False)
    assert counter.read_text() == "2"
    teach_file("command", data=sms_jsonl, out=tmp_path / "p.txt", options={"argv": argv}, seed=1)
    assert counter.read_text() == "3"


@pytest.mark.parametrize("aggregator", ["random", "voting"])
def test_examples_pipeline_keeps_per_teacher_artifacts(sms_jsonl, tiny_model, aggregator):
    opts = {"teachers": 3, "n": 2, "n_gen": 2, "samples": 2, "keep": 1, "aggregator": aggregator, "held_out": 1,
            "max_new_tokens": 12, "labels": {"ham": "not spam"}}
    a = run_pipeline("examples", records(sms_jsonl), model=tiny_model, seed=4, options=opts)
    b = run_pipeline("examples", records(sms_jsonl), model=tiny_model, seed=4, options=opts)
    assert a.prompt == b.prompt and a.prompt
    gens = [x for x in a.artifacts if isinstance(x, TeacherArtifact)]
    rounds = [x for x in a.artifacts if isinstance(x, RoundArtifact)]
    assert {x.teacher for x in gens} == {0, 1, 2} and len(rounds) == 2
    assert all(x.private.startswith("Text: ") for x in gens)
    if aggregator == "voting":
        assert all(len(r.votes) == 3 for r in rounds)


class _TwoSamples(MockModel):
    """Each teacher's first sample copies its prompt's first example, its second is gibberish; `reported`
    says whether the backend reports the gibberish as the likelier one (as a log-probability) or says nothing."""

    def __init__(self, reported: bool) -> None:
        super().__init__()
        self.reported = reported

    def _generate(self, prompts, **kwargs):
        out = []
        for i, prompt in enumerate(prompts):
            copy, gibberish = prompt.split("\n\n")[0], "Text: qzxv jwkq\nClass: spam"
            text = copy if i % 2 == 0 else gibberish
            out.append(Completion(text, -1.0 if i % 2 else -500.0, 10) if self.reported else text)
        return out


@pytest.mark.parametrize("reported", [True, False])
def test_examples_teachers_keep_the_sample_they_found_likeliest(sms_jsonl, reported):
    """A teacher keeps the sample its backend reports likeliest per token; else it scores them after its prompt."""
    opts = {"teachers": 2, "n": 3, "n_gen": 2, "samples": 2, "keep": 1, "labels": {"ham": "not spam"}}
    out = run_pipeline("examples", records(sms_jsonl), model=_TwoSamples(reported), seed=1, options=opts)
    turns = [x for x in out.artifacts if isinstance(x, TeacherArtifact)]
    assert len(turns) == 6 and all(len(t.generated) == 2 for t in turns)
    assert all(t.kept == (t.generated[1] if reported else t.generated[0],) for t in turns)
    assert all(t.generated[0] == t.private.split("\n\n")[0] for t in turns)


def test_examples_pipeline_checks_its_options(sms_jsonl):
    with pytest.raises(InputError, match="aggregator"):
        run_pipeline("examples", records(sms_jsonl), model=MockModel(), options={"aggregator": "median"})
    with pytest.raises(InputError, match="shards"):
        run_pipeline("examples", records(sms_jsonl), model=MockModel(), options={"teachers": 50})
    with pytest.raises(InputError, match="no option"):
        run_pipeline("examples", records(sms_jsonl), model=MockModel(), options={"teacherz": 2})


def test_instructions_are_deterministic_for_a_seed(sms_jsonl, tiny_model):
    opts = {"temperature": 1.0, "max_new_tokens": 16}
    a = run_pipeline("instructions", records(sms_jsonl), model=tiny_model, seed=7, options=opts)
    b = run_pipeline("instructions", records(sms_jsonl), model=tiny_model, seed=7, options=opts)
    c = run_pipeline("instructions", records(sms_jsonl), model=tiny_model, seed=8, options=opts)
    assert a.prompt == b.prompt and a.used_records == b.used_records
    assert a.used_records != c.used_records or a.prompt != c.prompt


def test_utility_scores_labels_by_likelihood(sms_jsonl):
    recs = records(sms_jsonl)
    teaching = "Text: hello\nClass: not spam\n\n" * 30  # makes " not spam" far likelier after "Class:"
    u = student_accuracy(MockModel(order=6), teaching, recs, labels={"ham": "not spam"})
    assert u.labels == ("not spam", "spam") and u.examples == 20
    assert u.predicted_counts == {"not spam": 20, "spam": 0}
    assert u.accuracy == sum(r.label == "ham" for r in recs) / 20
    flipped = student_accuracy(
        MockModel(order=6), teaching.replace("not spam", "spam"), recs, labels={"ham": "not spam"}
    )
    assert flipped.predicted_counts == {"not spam": 0, "spam": 20}
    with pytest.raises(InputError, match="single label"):
        student_accuracy(MockModel(), "", [Record(text="a", label="x")])
    with pytest.raises(InputError, match="labelled"):
        student_accuracy(MockModel(), "", [Record(text="a")])


def test_eval_data_puts_utility_in_teaching_output_and_report(sms_jsonl, tmp_path):
    r = CliRunner().invoke(main, ["teach", "--pipeline", "raw", "--data", str(sms_jsonl), "--label-field", "label",
                                  "--eval-data", str(sms_jsonl), "--model", "mock", "--out", str(tmp_path / "p.txt")])
    assert r.exit_code == 0 and "student accuracy" in r.output, r.output
    CliRunner().invoke(main, ["canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--seed", "0",
                              "--references", "10", "--out", str(tmp_path / "s.json")])
    r = CliRunner().invoke(main, ["score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"),
                                  "--model", "mock", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r.json").read_text())["utility"]["examples"] == 20


def test_command_teacher_gets_whole_records_and_mapped_labels(tmp_path):
    """Every column reaches the program, labels as --label-map names them, and --eval-data scores those names."""
    from tests.conftest import write_jsonl

    rows = [{"text": f"message {i}", "label": "ham" if i % 2 else "spam", "sender": f"s{i}"} for i in range(8)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    script = tmp_path / "t.py"
    script.write_text(
        "import json, sys\nrows = [json.loads(l) for l in sys.stdin if l.strip()]\n"
        "print('\\n'.join(f\"Text: {r['text']} ({r['sender']})\\nClass: {r['label']}\" for r in rows))\n"
    )
    out = teach_file("command", data=data, label_field="label", out=tmp_path / "p.txt", model=MockModel(),
                     use_cache=False,
                options={"argv": [sys.executable, str(script)], "labels": {"ham": "not spam"}}, eval_data=data)
    assert "(s3)" in out.prompt and "Class: not spam" in out.prompt and "Class: ham" not in out.prompt
    assert set(out.utility.labels) == {"not spam", "spam"}
