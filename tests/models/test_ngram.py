"""The data-only n-gram scorer: nltk's Kneser-Ney recursion exactly, a distribution over the vocabulary, canaries the
text echoes ranked first, certified bounded intervals, and a whole audit on a machine without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.models import load_model
from privacy_audit.models.ngram import KneserNey, NgramModel

TEXT = "the cat sat on the mat. the cat ate the rat. a cat and a rat sat on a mat."


@pytest.mark.parametrize("order", [2, 3, 4, 5])  # order 1 is the bottom alone (its test is below)
@pytest.mark.parametrize("tokens", ["characters", "words"])
def test_the_recursion_is_nltks_kneser_ney(order, tokens, monkeypatch):
    """Above the unigram level, our recursion against nltk's KneserNeyInterpolated, both on nltk's own bottom (its
    continuation unigram, which gives an unseen token 0: ours is made to read nltk's, never nltk's made to read
    ours); our own bottom is checked apart, below."""
    nltk_lm = pytest.importorskip("nltk.lm")
    from nltk.util import everygrams

    toks = NgramModel(tokens=tokens).split(TEXT)
    vocab = sorted(set(toks))
    reference = nltk_lm.KneserNeyInterpolated(order, discount=0.75)
    reference.fit([list(everygrams(toks, max_len=order))], vocabulary_text=vocab)
    ours = KneserNey(toks, order, 0.75, 300)
    monkeypatch.setattr(ours, "_unigram", reference.estimator.unigram_score)
    histories = [(), tuple(toks[:1]), tuple(toks[3:5]), tuple(toks[7:10]), tuple(toks[11:15]), ("unseen", "history")]
    for history in histories:
        for word in vocab:
            assert ours.prob(history, word) == pytest.approx(reference.score(word, list(history)), abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_the_unigram_level_is_the_continuation_unigram_mixed_with_the_uniform(order):
    """Our bottom (Chen and Goodman 1998: continuation counts, absolutely discounted, the discounted mass spread
    uniformly over the vocabulary), counted here from the text's n-grams by a formula written apart."""
    toks = list(TEXT)
    vocab_size, d = 300, 0.75
    ours = KneserNey(toks, order, d, vocab_size)
    if order == 1:
        counts = {w: toks.count(w) for w in set(toks)}
    else:  # N1+(. w): the distinct words before w, over every position of the text
        counts = {w: len({toks[i - 1] for i in range(1, len(toks)) if toks[i] == w}) for w in set(toks)}
    total = sum(counts.values())
    seen = sum(1 for c in counts.values() if c > 0)
    for word in [*sorted(set(toks)), "z", "\u00e9"]:
        want = max(counts.get(word, 0) - d, 0) / total + d * seen / total / vocab_size
        assert ours._unigram(word) == pytest.approx(want, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abc .", min_size=0, max_size=40), st.integers(1, 5), st.text(alphabet="abcz .", max_size=6))
def test_every_history_gets_a_distribution_over_the_vocabulary(text, order, history):
    model = KneserNey(list(text), order, 0.75, 256)
    total = sum(model.prob(tuple(history), chr(c)) for c in range(256))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_a_canary_the_text_echoes_ranks_first_and_bounded_intervals_are_certified():
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=20, seed=1)
    prompt = f"Text: see you soon\nClass: ham\nThe secret code is {cs.planted[0].secret}.\nText: WIN now\n"
    model = load_model("ngram")
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact"))
    assert exact.canaries[0].rank == 1 and exact.canaries[1].rank > 1
    bounded = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=2000))
    for e, b in zip(exact.canaries, bounded.canaries):
        assert b.rank_lower <= e.rank <= b.rank_upper
    assert bounded.canaries[0].exposure_method == "certified" and bounded.canaries[0].rank_upper == 1


def test_a_whole_audit_without_torch(tmp_path):
    """`score --model ngram` and `gate` with torch and transformers made unimportable."""
    cli = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers'):\n"
        "            raise ImportError(name + ' is not installed here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from privacy_audit._entry import main; sys.argv = ['privacy-audit', *sys.argv[1:]]; main()\n"
    )

    def run(*args):
        return subprocess.run([sys.executable, "-c", cli, *map(str, args)], capture_output=True, text=True, timeout=300)

    assert run("canaries", "generate", "--template", "The code is {secret}", "--space", "digits:3", "--count", "2",
               "--references", "10", "--seed", "3", "--out", tmp_path / "s.json").returncode == 0
    secrets = [c["secret"] for c in json.loads((tmp_path / "s.json").read_text())["canaries"] if c["planted"]]
    (tmp_path / "p.txt").write_text("".join(f"Example: the code is fine. The code is {s}.\n" for s in secrets))
    scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "ngram",
                 "-m", "order=4", "--out", tmp_path / "r.json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["run"]["model"]["backend"] == "ngram" and report["summary"]["min_rank_planted"] <= 2
    gated = run("gate", tmp_path / "r.json")
    assert gated.returncode == 1 and "[chance] report: Bonferroni-adjusted" in gated.stdout


def test_a_background_corpus_is_mixed_in(tmp_path):
    (tmp_path / "bg.txt").write_text("ordinary text of the domain, the code is here\n" * 20)
    plain, mixed = load_model("ngram"), load_model("ngram", background=str(tmp_path / "bg.txt"), background_weight=0.5)
    a = plain.open_context("hello world\n")(["the code is here"]).totals()
    b = mixed.open_context("hello world\n")(["the code is here"]).totals()
    assert b[0] > a[0] and np.isfinite(b).all()
    assert mixed.info().options["background_weight"] == 0.5


@pytest.mark.parametrize("background", [False, True])
def test_over_characters_the_listed_vocabulary_holds_the_whole_distribution(background, tmp_path):
    """The certified search relies on next-token probabilities summing to at most 1 over the tokens a context lists:
    over characters they sum to exactly 1 (the text's characters, non-Latin ones included, then the first code
    points); a word model lists none."""
    options = {}
    if background:
        (tmp_path / "bg.txt").write_text("Ünïcode text, 名前 and more\n" * 3)
        options = {"background": str(tmp_path / "bg.txt")}
    ctx = NgramModel(order=3, **options).open_context("Hi Ann, Anna and Зоя. Ann")
    vocab = ctx.vocabulary()
    assert {"З", "A", "n", "\x00"} <= set(vocab.values()) and all(ord(t) == i for i, t in vocab.items())
    ids = sorted(vocab)
    for path in ([], [ord("a")], [ord(c) for c in "nna"], [ord("名")]):
        assert float(np.exp2(ctx.search([path], ids)[0]).sum()) == pytest.approx(1.0, abs=1e-9)
    assert not NgramModel(tokens="words").open_context("Hi Ann").lists_vocabulary


def test_a_word_list_is_searched_and_certified_over_characters():
    cs = generate_canary_set(template="My name is {secret}", space="names", count=3, references=0, seed=2)
    prompt = f"Text: Hi! {cs.planted[0].text}.\nClass: not spam\n"
    result = score_prompt(load_model("ngram"), prompt, cs, ScoringOptions(mode="bounded", extraction=False))
    assert "over whole tokens" in result.search
    assert (result.canaries[0].rank_lower, result.canaries[0].rank_upper) == (1, 1)
    assert {c.exposure_method for c in result.canaries} == {"certified"}
    words = score_prompt(load_model("ngram", tokens="words"), prompt, cs,
                         ScoringOptions(mode="bounded", extraction=False))
    assert "does not list its vocabulary" in words.search
    assert words.canaries[0].rank_upper == cs.secret_space.size  # no references here: nothing narrows it
