"""The similarity test: a canary's closeness to the prompt (the fuzzy-leak distance), ranked among the references'.
It holds its level on prompts that never saw a canary and fails the default gate on edited echoes that a scorer
without any knowledge of the text (the mock) cannot see."""

from __future__ import annotations

import numpy as np

from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.chain import make_report
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import TeachingOutput
from privacy_audit.reports.validate import check_report

QUIET = ScoringOptions(mode="exact", extraction=False, extrapolation=False)


def test_edited_echoes_of_planted_canaries_fail_the_default_gate_with_a_blind_scorer():
    cs = generate_canary_set(template="Ask for agent {secret} today", space="digits:5", count=5, references=60, seed=3)
    # every planted canary echoed with one digit changed, as generated text paraphrasing its teacher's would
    echoes = [c.text[:-7] + ("0" if c.text[-7] != "0" else "1") + c.text[-6:] for c in cs.planted]
    prompt = "Text: hello\n" + "\n".join(f"Text: {e}" for e in echoes) + "\n"
    result = score_prompt(MockModel(), prompt, cs, QUIET)
    planted = [c for c in result.canaries if c.planted]
    refs = [c for c in result.canaries if not c.planted]
    assert all(c.similarity > max(r.similarity for r in refs) for c in planted)
    assert all(c.similarity_p_value == 1 / 61 for c in planted) and all(not c.in_prompt for c in planted)
    assert result.summary.p_values["similarity"].p < 1e-6
    report = make_report(TeachingOutput(prompt=prompt, pipeline="prompt-file", options={}, seed=0, model=None), cs,
                         result, model=MockModel().info())
    check_report(report)
    outcome = apply_gate(report, Thresholds())
    assert not outcome.passed and "(8 exact tests)" in outcome.rules[0].message  # 5 ranks, verbatim, 2 permutation


def test_the_similarity_p_values_hold_their_level_on_prompts_that_never_saw_a_canary():
    """Random digit-and-word prompts, a fresh canary set each time: P(p <= t) <= t for the per-canary p-value and
    the set's permutation test (ties count against the canaries, so both are conservative)."""
    rng = np.random.default_rng(5)
    reps, single, whole = 400, [], []
    for seed in range(reps):
        cs = generate_canary_set(template="code {secret}", space="digits:3", count=2, references=19, seed=seed)
        words = rng.choice(["code", "call", "now", "win", "1", "2", "3", "45", "678", "09"], size=40)
        result = score_prompt(MockModel(), " ".join(words) + "\n", cs, QUIET)
        single.append(next(c for c in result.canaries if c.planted).similarity_p_value)
        whole.append(result.summary.p_values["similarity"].p)
    for values in (np.array(single), np.array(whole)):
        for t in (0.05, 0.1, 0.25):
            assert np.mean(values <= t) <= t + 3 * np.sqrt(t * (1 - t) / reps)
