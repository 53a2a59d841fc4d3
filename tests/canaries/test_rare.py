"""The rare design: secrets of the whole-word tokens a model finds least likely after the template, recorded as such
end to end; refused with one line where the model lists no such words."""

from __future__ import annotations

import re

import numpy as np
from click.testing import CliRunner

from privacy_audit import MockModel, PlantOptions, ScoringOptions, load_canary_set, plant, render_markdown, teach
from privacy_audit.audit import make_canaries
from privacy_audit.canaries import brief
from privacy_audit.canaries.rare import RARE_POOL, RARE_WORDS, WORD, rare_design
from privacy_audit.chain import score
from privacy_audit.cli import main
from tests.scoring.test_real_tokenizers import copier

PREFIX = "Codes like onion garden pepper lantern. The secret code is"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_pool_is_the_least_likely_whole_words_by_a_plain_score():
    model = copier("gpt-2", alpha=1e-3)
    template, space = rare_design(PREFIX + " {secret}", model)
    assert template == PREFIX + " " + " ".join("{r%d}" % (k + 1) for k in range(RARE_WORDS))
    specs = [item.partition("=")[2] for item in space.split(";")]
    assert len(specs) == RARE_WORDS and len(set(specs)) == 1
    pool = set(specs[0].removeprefix("words:").split(","))
    assert len(pool) == RARE_POOL
    # every whole-word token, scored after the template's text by the context's plain scoring (not the search)
    context = model.open_context(PREFIX)
    words = sorted({t.strip() for t in context.vocabulary().values() if WORD.fullmatch(t)})
    scored = context([" " + w for w in words])
    totals = np.add.reduceat(scored.logprobs, scored.offsets[:-1])
    inside = np.array([w in pool for w in words])
    assert inside.sum() == RARE_POOL
    assert totals[inside].max() <= totals[~inside].min() + 1e-9  # nothing outside the pool is less likely
    assert not pool & {"onion", "garden", "pepper", "lantern"}  # the copier makes the prefix's words likely


def test_rare_canaries_through_the_chain_are_recorded_as_such(tmp_path):
    model = copier("gpt-2", alpha=1e-3)
    made = make_canaries(template="The secret code is {secret}", count=3, references=40, seed=5, design="rare",
                         check_model=model, out=tmp_path / "rare.json")
    again = load_canary_set(tmp_path / "rare.json")
    assert again == made and again.design == "rare" and again.secret_space.size == RARE_POOL**RARE_WORDS
    assert all(re.fullmatch(r"The secret code is [a-z]+ [a-z]+", c.text) for c in made.canaries)
    rows = [{"text": f"note {i}: lunch at noon"} for i in range(6)]
    planted = plant(made, rows, PlantOptions(seed=1))
    teaching = teach(planted, "raw", model=MockModel())
    report = score(teaching, model, ScoringOptions(mode="sampled", extraction=False), membership=False)
    assert report.run.canary_design == "rare"
    text = render_markdown(report)
    assert "rare (secrets of the words the model finds least likely" in text
    assert f"({RARE_POOL:,} words)" in text and max(map(len, text.splitlines())) < 600  # the pool not spelled out
    planted_ranks = [c.rank for c in report.canaries if c.planted]
    assert max(planted_ranks) == 1  # the raw prompt holds them: each is the likeliest against the references


def test_the_rare_design_is_refused_with_one_line_where_it_cannot_work(tmp_path):
    cases = [
        (["--check-model", "mock"], "whole-word tokens"),  # the mock's tokens are characters
        (["--space", "digits:4", "--check-model", "mock"], "not --space"),
        ([], "--check-model"),
    ]
    for extra, said in cases:
        r = run("canaries", "generate", "--design", "rare", "--template", "The code is {secret}", "--count", 2,
                "--seed", 1, "--out", tmp_path / "x.json", *extra)
        assert r.exit_code == 2 and said in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "x.json").exists()
    two = run("canaries", "generate", "--design", "rare", "--template", "{a} and {secret}", "--check-model", "mock",
              "--count", 2, "--seed", 1, "--out", tmp_path / "y.json")
    assert two.exit_code == 2 and "exactly that slot" in two.output


def test_a_long_inline_word_list_is_shown_briefly_and_other_specs_as_they_are():
    assert brief("a=words:x,y,z,w,v;b=digits:4") == "a=words:x,y,z,... (5 words);b=digits:4"
    for spec in ("digits:4", "words:a,b,c", "words:@list.txt", "names", "c1=digits:4;c2=hex:2"):
        assert brief(spec) == spec
