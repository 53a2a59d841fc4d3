"""The model seam by capability: a backend does what it can, and every command degrades by what it cannot."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.pipelines import TeachingOutput, run_pipeline
from privacy_audit.chain import make_report
from privacy_audit.cli import main
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models import LanguageModel
from privacy_audit.models.base import CachingScorer, Generator, ScoringPolicy
from privacy_audit.models.context import ContextBackend
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import Record
from privacy_audit.pipelines.examples import KEPT_FIRST


class ScoresOnly(ContextBackend):
    """A read context that scores continuations and is nothing more: no next-token log-probabilities, no greedy
    decoding, no vocabulary (as a served scorer without them)."""

    def __init__(self, inner):
        self.inner, self.head, self.tail = inner, inner.head, inner.tail

    def tokenize(self, continuations):
        return self.inner.tokenize(continuations)

    def joint(self, continuation):
        return self.inner.joint(continuation)

    def score_tokens(self, ids, ends):
        return self.inner.score_tokens(ids, ends)

    def score_full(self, ids, ends, start):
        return self.inner.score_full(ids, ends, start)


class ScoreOnly(LanguageModel, CachingScorer):
    """Scores a prompt's continuations, and nothing more: a scorer, not a generator, whose context is only that."""

    name, backend = "score-only", "test"

    def __init__(self):
        self.mock = MockModel()

    def tokenize(self, texts):
        return self.mock.tokenize(texts)

    def _open_context(self, context):
        return ScoresOnly(self.mock._open_context(context))


class GenerateOnly(LanguageModel, Generator):
    """Generates, and reports no log-probabilities of what it sampled (as an API without them); cannot score."""

    name, backend = "generate-only", "test"

    def __init__(self):
        self.mock = MockModel()

    def _generate(self, prompts, **kwargs):
        return [c.text for c in self.mock._generate(prompts, **kwargs)]


def copying_prompt(cs):
    return "".join(f"The code is {c.secret}.\n" for c in cs.planted)


def test_without_next_token_log_probabilities_bounded_mode_uses_the_references_and_says_so():
    cs = generate_canary_set(template="The code is {secret}", space="digits:4", count=2, references=30, seed=3)
    result = score_prompt(ScoreOnly(), copying_prompt(cs), cs, ScoringOptions(mode="bounded"))
    assert {c.exposure_method for c in result.canaries} == {"sampled"}
    assert "best-first search not run" in result.search and "greedy decoding not run" in result.search
    assert result.summary.greedy_extracted is None and all(c.greedy_extracted is None for c in result.canaries)
    teaching = TeachingOutput(prompt=copying_prompt(cs), pipeline="raw", options={}, seed=0, model=None)
    report = make_report(teaching, cs, result, model=ScoreOnly().info())
    outcome = apply_gate(report, Thresholds(max_greedy_extracted=0))
    assert [s.rule for s in outcome.skipped] == ["max_greedy_extracted"]


def test_auto_mode_respects_the_scorers_exact_budget():
    cs = generate_canary_set(template="The code is {secret}", space="digits:3", count=1, references=10, seed=3)

    class Budgeted(MockModel):
        policy = ScoringPolicy(exact_budget=100)

    assert score_prompt(Budgeted(), "x\n", cs, ScoringOptions(extraction=False)).mode == "bounded"
    assert score_prompt(MockModel(), "x\n", cs, ScoringOptions(extraction=False)).mode == "exact"


def test_a_teacher_without_log_probabilities_keeps_its_first_samples_and_cannot_vote(sms_jsonl):
    rows = [json.loads(line) for line in sms_jsonl.read_text().splitlines()]
    records = [Record(text=r["text"], label=r["label"]) for r in rows]
    options = {"teachers": 2, "n": 1, "n_gen": 2, "samples": 2, "keep": 1, "max_new_tokens": 8}
    out = run_pipeline("examples", records, model=GenerateOnly(), options=options)
    kept = {a.kept_by for a in out.artifacts if getattr(a, "kind", "") == "teacher" and a.generated}
    assert kept == {KEPT_FIRST}
    with pytest.raises(InputError, match="aggregator 'voting'"):
        run_pipeline("examples", records, model=GenerateOnly(), options={**options, "aggregator": "voting"})
    with pytest.raises(ModelError, match="cannot generate text; teach with another model"):
        run_pipeline("instructions", records, model=ScoreOnly())
    with pytest.raises(ModelError, match="cannot give log-probabilities of a prompt's continuations"):
        GenerateOnly().open_context("a prompt")


def test_a_config_pairs_a_teacher_with_another_scorer_and_the_report_names_both(tmp_path):
    (tmp_path / "c.toml").write_text(
        "[canaries]\ntemplate = 'The code is {secret}'\nspace = 'digits:3'\ncount = 2\nreferences = 10\n[data]\nlimit "
        "= 12\n"
        "[pipeline]\nname = 'instructions'\n[teacher]\nspec = 'mock'\n[teacher.options]\norder = 2\n"
        "[scorer]\nspec = 'mock'\n[scorer.options]\norder = 5\n"
    )
    result = CliRunner().invoke(main, ["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code in (0, 1), result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["teacher"]["options"]["order"] == 2 and report["run"]["model"]["options"]["order"] == 5
    (tmp_path / "bad.toml").write_text((tmp_path / "c.toml").read_text().replace("order = 5", "colour = 5"))
    bad = CliRunner().invoke(main, ["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "backend 'mock' has no option colour" in bad.output


def test_models_lists_every_backend_with_what_it_can_do_and_its_options():
    out = CliRunner().invoke(main, ["models"]).output
    assert (
        "openai: " in out
        and "  can: generate, score (where a probe shows" in out
        and "-m base_url: str | None = None" in out
    )
    assert "mock: " in out and "can: generate, score, next_token, greedy, vocabulary, distributions" in out
    assert "ngram: " in out and "can: score, next_token, greedy, vocabulary (tokens=characters)\n" in out


def test_a_local_model_enters_the_cache_key_by_its_weights(tiny_model_dir, tmp_path):
    import shutil

    from privacy_audit.models import load_model

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    before = load_model(str(folder)).info().weights_sha256
    weights = next(folder.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    after = load_model(str(folder)).info().weights_sha256
    assert before and after and before != after
