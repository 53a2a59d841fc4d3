"""Membership attacks beside a blind control: each attack's definition, the distributions Min-K%++ reads checked against
a plain forward pass, what a report says of attacks a scorer cannot make, and the AUC intervals' level when members and
non-members are exchangeable."""

from __future__ import annotations

import json
import math
from importlib.resources import files

import numpy as np
import pytest

from privacy_audit import MockModel, generate_canary_set, load_report, render_markdown, save_report
from privacy_audit.chain import build_report
from privacy_audit.errors import ReportError
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.models import load_model
from privacy_audit.pipelines import TeachingOutput
from privacy_audit.scoring.membership import (
    MEMBERSHIP_ATTACKS, blind_scores, blind_verdict, min_k_plus_plus, reconstruction, roc_of, strongest,
    zlib_bytes,
)
from tests.conftest import at_level

TEXTS = [json.loads(line)["text"] for line in
         (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()]


def test_min_k_plus_plus_averages_the_lowest_standardised_tokens():
    lp = np.array([-1.0, -4.0, -2.0, -8.0, -3.0])
    mu = np.array([-2.0, -2.0, -2.0, -2.0, -3.0])
    sd = np.array([1.0, 2.0, 1.0, 3.0, 0.0])  # a certain distribution's token counts 0
    z = [1.0, -1.0, 0.0, -2.0, 0.0]
    assert min_k_plus_plus(lp, mu, sd, k=0.2) == pytest.approx(-2.0)  # ceil(0.2 * 5) = 1 token
    assert min_k_plus_plus(lp, mu, sd, k=0.5) == pytest.approx(np.mean(sorted(z)[:3]))
    assert min_k_plus_plus(lp, mu, sd, k=1.0) == pytest.approx(np.mean(z))


def test_the_mock_moments_are_those_of_its_whole_next_token_distribution():
    ctx = load_model("mock").open_context("ab ab ab abc 12 12")
    backend = ctx.provider
    for path in ([], [3], [5, 7, 9]):
        row = backend.next_logprobs([path], list(range(backend.model.pieces.size)))[0]
        p = np.exp2(row)
        assert p.sum() == pytest.approx(1.0)
        mean = float(np.sum(p * row))
        want = (mean, math.sqrt(float(np.sum(p * (row - mean) ** 2))))
        assert backend.moments([path])[0] == pytest.approx(want)


def test_the_moments_of_a_transformers_scorer_are_a_plain_forward_pass(tiny_model):
    torch = pytest.importorskip("torch")
    context, texts = "Examples: call 555 now.\n", ["call 555 now", "free entry!"]
    got = tiny_model.open_context(context).moments(texts)
    tok = tiny_model.tokenizer
    for i, text in enumerate(texts):
        head = tok(context, add_special_tokens=True)["input_ids"]
        ids = tok(context + text, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            logits = tiny_model.model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits, -1) / math.log(2)
        rows = lp[len(head) - 1 : len(ids) - 1]  # the distributions each of the text's tokens was drawn from
        p = torch.exp2(rows)
        mean = (p * rows).sum(-1)
        sd = (p * (rows - mean[:, None]) ** 2).sum(-1).sqrt()
        own = lp[torch.arange(len(head) - 1, len(ids) - 1), torch.tensor(ids[len(head):])]
        np.testing.assert_allclose(got.means[i], mean.numpy(), atol=1e-4)
        np.testing.assert_allclose(got.sds[i], sd.numpy(), atol=1e-4)
        np.testing.assert_allclose(got.logprobs[i], own.numpy(), atol=1e-4)


def test_every_attack_separates_the_examples_a_prompt_copies_and_the_blind_control_reads_the_split():
    members, non_members = TEXTS[:8], TEXTS[8:72]
    rc = reconstruction(load_model("mock"), "\n".join(members) + "\n", members=members, non_members=non_members)
    assert [a.name for a in rc.attacks] == list(MEMBERSHIP_ATTACKS) and rc.not_run == ()
    assert {a.name for a in rc.attacks if a.auc == 1.0} >= {"loss", "calibrated", "min_k_plus_plus"}
    assert strongest(rc).auc == 1.0 and rc.blind is not None and rc.blind.auc < 0.9
    assert blind_verdict(rc) == "beaten"  # the attacks beat a classifier that reads only the texts
    # a split the texts alone give away (every member says WINNER): the blind control does as well as any attack
    marked = [t + " WINNER" for t in members]
    rc = reconstruction(load_model("mock"), "\n".join(members) + "\n", members=marked, non_members=non_members)
    assert rc.blind is not None and rc.blind.auc > 0.9 and blind_verdict(rc) in ("as well", "within")


def test_zlib_divides_the_loss_by_the_compressed_length():
    members, non_members = TEXTS[:4], TEXTS[4:12]
    rc = reconstruction(load_model("mock"), "x\n", members=members, non_members=non_members)
    loss, z = (next(a for a in rc.attacks if a.name == n) for n in ("loss", "zlib"))
    sizes = np.array([zlib_bytes(t) for t in members + non_members])
    np.testing.assert_allclose(np.array(z.member_scores + z.non_member_scores),
                               np.array(loss.member_scores + loss.non_member_scores) / sizes)


def test_an_attack_the_scorer_cannot_make_is_listed_with_its_reason():
    rc = reconstruction(load_model("ngram"), "free entry\n", members=TEXTS[:5], non_members=TEXTS[5:20])
    assert [n.name for n in rc.not_run] == ["min_k_plus_plus"]
    assert "gives no next-token distributions" in rc.not_run[0].reason
    assert blind_scores(TEXTS[:1] + TEXTS[1:9], 1, seed=0) is None  # one member: no fold could hold it and others


def test_the_attacks_auc_intervals_hold_their_level_when_members_are_exchangeable():
    """A zero-shot prompt never saw any example, so which 8 of 72 are 'private' is a coin: each attack's 95% interval
    must miss 0.5 at most 5% of the time (seeded label permutations of the same scores)."""
    texts = TEXTS[:72]
    rc = reconstruction(load_model("mock", order=3), "Classify each SMS as spam or not spam.\n",
                        members=texts[:8], non_members=texts[8:])
    rng = np.random.default_rng(7)
    trials = 600
    for attack in rc.attacks:
        scores = np.array(attack.member_scores + attack.non_member_scores)
        misses = 0
        for _ in range(trials):
            roc = roc_of(attack.name, rng.permutation(scores), 8)
            assert roc.auc_ci is not None
            misses += not roc.auc_ci[0] <= 0.5 <= roc.auc_ci[1]
        assert at_level(misses, trials, 0.05), (attack.name, misses)


@pytest.mark.slow
def test_the_blind_controls_interval_holds_its_level_on_random_splits():
    """The blind control refits on every split: on random splits of the same texts its 95% interval misses 0.5 at
    most 5% of the time."""
    texts = np.array(TEXTS[:72], dtype=object)
    rng = np.random.default_rng(11)
    trials, misses = 500, 0
    for t in range(trials):
        shuffled = list(rng.permutation(texts))
        scores = blind_scores(shuffled, 8, seed=t)
        assert scores is not None
        ci = roc_of("blind", scores, 8).auc_ci
        assert ci is not None
        misses += not ci[0] <= 0.5 <= ci[1]
    assert at_level(misses, trials, 0.05), misses


def test_a_report_whose_membership_figures_were_edited_is_refused(tmp_path):
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    members, non_members = TEXTS[:6], TEXTS[6:30]
    teaching = TeachingOutput(prompt="\n".join(members), pipeline="raw", options={}, seed=0, model=None)
    report = build_report(teaching, cs, MockModel(), members=members, non_members=non_members)
    save_report(report, tmp_path / "r.json")
    assert load_report(tmp_path / "r.json") == report
    data = json.loads((tmp_path / "r.json").read_text())
    for edit in (
        lambda d: d["attacks"][1].update(auc=0.1),
        lambda d: d["blind"].update(tpr_at_1pct_fpr=0.0 if d["blind"]["tpr_at_1pct_fpr"] else 1.0),
        lambda d: d["attacks"].pop(2),
        lambda d: d["attacks"][0].update(name="zlib"),
        lambda d: d["blind"]["member_scores"].pop(),
        lambda d: d["attacks"][3].update(auc_ci=[0.0, 1.0]),
    ):
        bad = json.loads(json.dumps(data))
        edit(bad["reconstruction"])
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ReportError):
            load_report(tmp_path / "bad.json")


def test_the_gate_reads_the_strongest_attack_and_the_report_says_which_figures_are_sound(tmp_path):
    members, non_members = TEXTS[:8], TEXTS[8:40]
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    teaching = TeachingOutput(prompt="\n".join(members), pipeline="raw", options={}, seed=0, model=None)
    report = build_report(teaching, cs, MockModel(), members=members, non_members=non_members)
    rc = report.reconstruction
    assert rc is not None
    rule = next(r for r in apply_gate(report, Thresholds(max_auc=0.9)).rules if r.rule == "max_auc")
    assert rule.value == strongest(rc).auc and not rule.passed and "the largest of 4" in rule.message
    table = render_markdown(report)
    assert "| membership AUC, loss: bits per token given the prompt" in table
    assert "| membership AUC, blind control: bag of words" in table
    assert "Evidence: sound evidence of leakage: the canaries' exposure and ranks" in table
    assert "heuristic: membership attacks" in table


def test_a_registered_attack_is_made_rendered_and_checked_like_the_built_ins(tmp_path):
    """A new attack is one decorated function: the report holds its ROC, the table its row, and a report read back
    is checked by the same code."""
    from privacy_audit.scoring.membership import membership_attack

    membership_attack("length", "length: characters in the example")(lambda r: np.array([len(t) for t in r.texts]))
    try:
        members, non_members = TEXTS[:6], TEXTS[6:30]
        cs = generate_canary_set(template="code {secret}", space="digits:3", count=1, references=5, seed=1)
        teaching = TeachingOutput(prompt="\n".join(members), pipeline="raw", options={}, seed=0, model=None)
        report = build_report(teaching, cs, MockModel(), members=members, non_members=non_members)
        rc = report.reconstruction
        assert rc is not None and rc.attacks[-1].name == "length"
        lengths = [float(len(t)) for t in members]
        assert rc.attacks[-1].member_scores == tuple(lengths)
        assert "| membership AUC, length: characters in the example |" in render_markdown(report)
        save_report(report, tmp_path / "r.json")
        assert load_report(tmp_path / "r.json") == report
    finally:
        MEMBERSHIP_ATTACKS.pop("length")


def test_the_blind_verdict_reads_the_strongest_attacks_interval():
    from privacy_audit.scoring.types import Reconstruction

    def rc(attack: list[float], blind: list[float]) -> Reconstruction:
        return Reconstruction(attacks=(roc_of("loss", np.array(attack), 4),),
                              blind=roc_of("blind", np.array(blind), 4))

    clear = [5.0, 6.0, 7.0, 8.0] + [float(i) / 10 for i in range(40)]  # members above every non-member: AUC 1
    assert blind_verdict(rc(clear, clear)) == "as well"
    half = [0.5, 1.5, 2.5, 3.5] + [float(i) / 10 for i in range(40)]
    assert strongest(rc(clear, half)).auc == 1.0 and blind_verdict(rc(clear, half)) == "within"  # 4 members: wide
    many = np.r_[np.arange(40) + 100.0, np.arange(40)]
    mixed = np.r_[np.arange(40), np.arange(40)]
    wide = Reconstruction(attacks=(roc_of("loss", many, 40),), blind=roc_of("blind", mixed, 40))
    assert blind_verdict(wide) == "beaten"
