"""The top floor: one chain for run, demo and trials; typed options, components and files at every seam."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import privacy_audit.chain as chain
from privacy_audit import (
    MockModel, ScoringOptions, generate_canary_set, load_config, load_model, load_report, save_report,
)
from privacy_audit.chain import build_report
from privacy_audit.pipelines import configure
from privacy_audit.pipelines.teaching import teaching_cache_key
from privacy_audit.pipelines import run_pipeline
from privacy_audit.cli import main
from privacy_audit.config import ModelConfig
from privacy_audit.errors import InputError, ReportError
from privacy_audit.pipelines import Record, TeachingOutput, describe
from privacy_audit.reports.trials import load_trial

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"


@pytest.fixture
def chain_calls(monkeypatch):
    """Counts the chain's steps as `run_chain` takes them (teach, then score into a report), and a Secret Sharer
    trial's data-only report of the same prompt (patched where that module holds it, imported or not yet)."""
    import privacy_audit.secret_sharer as secret_sharer

    import privacy_audit.pipelines.teaching as teaching

    calls: list[str] = []
    teach, build = teaching.teach_records, chain.build_report
    monkeypatch.setattr(teaching, "teach_records", lambda *a, **k: calls.append("teach") or teach(*a, **k))
    monkeypatch.setattr(chain, "build_report", lambda *a, **k: calls.append("report") or build(*a, **k))
    monkeypatch.setattr(secret_sharer, "build_report", lambda *a, **k: calls.append("data-only") or build(*a, **k))
    return calls


def test_run_demo_and_every_trial_take_the_same_chain(chain_calls, tmp_path, tiny_model):
    from privacy_audit.audit_runs import run_audit
    from privacy_audit.demo import run_demo
    from privacy_audit.secret_sharer import run_secret_sharer

    run_audit(load_config(CONFIGS / "audit.toml", values={"out": str(tmp_path / "run"), "model.spec": "mock",
                                                          "pipeline.name": "raw", "pipeline.options": {}}))
    assert chain_calls == ["teach", "report"]
    run_demo(tmp_path / "demo", model=tiny_model, references=10, held_out_count=8, space="digits:2")
    assert chain_calls[2:] == ["teach", "report"] * 2
    cfg = load_config(
        CONFIGS / "sms-raw.toml",
        values={
            "out": str(tmp_path / "ss"), "model.spec": "mock", "secret_sharer.trials": 3,
            "secret_sharer.candidates": 20,
        },
    )
    run_secret_sharer(cfg)
    assert chain_calls[6:] == ["teach", "report", "data-only"] * 3


def test_run_out_takes_the_folder_name_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        main,
        [
            "run", str(CONFIGS / "audit.toml"), "--model", "mock", "--out", "2024", "-s", "pipeline.name=raw", "-s",
            "pipeline.options={}",
        ],
    )
    assert r.exit_code in (0, 1), r.output
    assert (tmp_path / "2024" / "report.json").is_file()


def test_config_gate_is_typed_and_range_checked(tmp_path):
    cfg = load_config(CONFIGS / "audit.toml", overrides=("gate.max_exposure_bits=6",))
    assert cfg.gate is not None and cfg.gate.max_exposure_bits == 6
    assert type(cfg).model_validate_json(cfg.model_dump_json()).gate == cfg.gate
    with pytest.raises(InputError, match="max_exposure_bits = -1 is out of range"):
        load_config(CONFIGS / "audit.toml", overrides=("gate.max_exposure_bits=-1",))
    with pytest.raises(InputError, match="unknown gate setting colour"):
        load_config(CONFIGS / "audit.toml", overrides=("gate.colour=1",))


def test_scoring_defaults_live_in_one_place():
    cfg = load_config(CONFIGS / "audit.toml", overrides=("scoring.mode=sampled",))
    assert cfg.scoring.options() == ScoringOptions(mode="sampled", **{k: v for k, v in dict(cfg.scoring).items()
                                                                       if k not in ("mode", "membership")})
    with pytest.raises(InputError, match="scoring.max_exact"):
        load_config(CONFIGS / "audit.toml", overrides=("scoring.max_exact=0",))
    with pytest.raises(ValueError):
        ScoringOptions(colour="red")


def test_components_describe_themselves():
    assert describe("raw").needs == {"data"} and describe("instructions").needs == {"model", "data"}
    assert describe("zero-shot").needs == frozenset() and "examples" in describe("raw").options()
    with pytest.raises(InputError, match=r"pipeline 'raw' has no option teachers; its options: examples, labels"):
        run_pipeline("raw", [Record(text="a")], options={"teachers": 2})
    with pytest.raises(InputError, match="pipeline 'examples' option teachers"):
        run_pipeline("examples", [Record(text="a")] * 4, model=MockModel(), options={"teachers": "many"})
    with pytest.raises(InputError, match="needs private data"):
        run_pipeline("raw", [])
    with pytest.raises(InputError, match="backend 'mock' has no option colour"):
        load_model("mock", colour=1)
    with pytest.raises(InputError, match="backend 'mock' has no option chunk_tokens"):
        load_model("mock", chunk_tokens=8)  # a knob the mock has no use for is refused, never silently dropped


def test_cache_key_follows_the_files_a_component_names(tmp_path):
    script = tmp_path / "teacher.py"
    script.write_text("print('a')\n")
    spec = configure("command", {"argv": [sys.executable, str(script)]})
    records = [Record(text="x")]
    before = teaching_cache_key(spec, records, seed=0, model=None)
    script.write_text("print('b')\n")
    assert teaching_cache_key(spec, records, seed=0, model=None) != before


def test_reading_and_gating_a_report_imports_no_model_stack(tmp_path):
    """A report is checked by the code that computed each figure (the epsilon bound and intervals use scipy), but
    reading it needs no model stack: no torch, no transformers, no scikit-learn, no matplotlib."""
    cs = generate_canary_set(template="code {secret}", space="digits:2", count=2, references=8, seed=1)
    save_report(
        build_report(TeachingOutput(prompt="hi", pipeline="raw", options={}, seed=0, model=None), cs, MockModel()),
        tmp_path / "r.json",
    )
    code = (
        "import sys\nfrom privacy_audit import Thresholds, apply_gate, load_report, render_markdown\n"
        f"r = load_report({str(tmp_path / 'r.json')!r})\napply_gate(r, "
        "Thresholds(max_exposure_bits=3))\nrender_markdown(r)\n"
        "print(','.join(m for m in ('sklearn', 'torch', 'transformers', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_trial_files_are_typed_and_versioned(tmp_path):
    old = {"trial": 0, "seed": 1, "rank": 3, "candidates": 20, "canary_secret": "12", "canary_score": -1.5,
           "comparison_scores": [-2.0] * 19, "prompt_sha256": "0" * 64, "prompt_chars": 5, "canary_in_prompt": False}
    (tmp_path / "v1.json").write_text(json.dumps(old))
    trial = load_trial(tmp_path / "v1.json")
    assert trial.rank == 3 and trial.schema_version == 2 and trial.format == "privacy-audit/secret-sharer-trial"
    (tmp_path / "v9.json").write_text(json.dumps({**old, "schema_version": 9}))
    with pytest.raises(ReportError, match="schema_version 9"):
        load_trial(tmp_path / "v9.json")
    (tmp_path / "bad.json").write_text(json.dumps({**old, "rank": "first"}))
    with pytest.raises(ReportError, match="rank"):
        load_trial(tmp_path / "bad.json")


SEVERAL = """
out = "runs"
[canaries]
template = "My code is {secret}."
space = "digits:3"
count = 2
references = 10
[data]
path = "@demo"
limit = 6
[[pipelines]]
name = "raw"
options = { examples = 6 }
[[pipelines]]
name = "zero-shot"
[[pipelines]]
name = "raw"
options = { examples = 2 }
[model]
spec = "mock"
[gate]
max_exposure_bits = 30
"""


def test_run_teaches_several_pipelines_with_one_scorer(tmp_path, monkeypatch):
    """[[pipelines]]: one folder per pipeline (a repeated name numbered), each report as a one-pipeline run writes it,
    a summary beside them, and exit 1 when any report fails the gate (raw copies the canaries; zero-shot shows none)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.toml").write_text(SEVERAL)
    loads = []
    real_load = ModelConfig.load
    monkeypatch.setattr(ModelConfig, "load", lambda self: loads.append(self.spec) or real_load(self))
    r = CliRunner().invoke(main, ["run", "audit.toml"])
    assert r.exit_code == 1, r.output
    assert loads == ["mock"]
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert folders == ["raw", "raw-2", "zero-shot"]
    reports = {f: load_report(tmp_path / "runs" / f / "report.json") for f in folders}
    assert [reports[f].run.pipeline for f in folders] == ["raw", "raw", "zero-shot"]
    assert reports["raw"].run.prompt_sha256 != reports["raw-2"].run.prompt_sha256
    assert [reports[f].gate.passed for f in folders] == [False, False, True]
    summary = (tmp_path / "runs" / "summary.md").read_text()
    assert all(f in summary for f in folders) and "wrote runs/summary.md" in r.output
    single = CliRunner().invoke(main, ["run", "audit.toml", "--out", "one", "-s", 'pipelines=[{"name": "raw", '
                                       '"options": {"examples": 6}}]'])
    assert single.exit_code == 1, single.output
    again = load_report(tmp_path / "one" / "raw" / "report.json")
    assert again.summary == reports["raw"].summary and again.run.prompt_sha256 == reports["raw"].run.prompt_sha256


def test_pipeline_and_pipelines_are_not_both_given(tmp_path):
    (tmp_path / "audit.toml").write_text(SEVERAL + '\n[pipeline]\nname = "raw"\n')
    r = CliRunner().invoke(main, ["run", str(tmp_path / "audit.toml")])
    assert r.exit_code == 2 and "give [pipeline] or [[pipelines]], not both" in r.output
    (tmp_path / "audit.toml").write_text(SEVERAL)
    r = CliRunner().invoke(main, ["secret-sharer", str(tmp_path / "audit.toml")])
    assert r.exit_code == 2 and "secret-sharer runs one pipeline" in r.output
