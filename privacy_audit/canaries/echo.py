"""Canaries designed for data-only audits (The Canary's Echo, Meeus et al. 2025): an in-distribution prefix drawn
from the user's own data, then a high-perplexity random secret. Generated text that goes on from a familiar
prefix is what echoes the secret after it; a canary that looks unlike the data is not echoed."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from privacy_audit.canaries.canary import PLACEHOLDER
from privacy_audit.errors import InputError

# The echo design's secret space unless one is given: 10 random letters and digits (36^10, about 3.7e15 secrets),
# scored by sampling; short enough for a teacher to copy, too random for any prefix to predict.
ECHO_SPACE = "alnum:10"
# What the prefix's words are cut from: runs of non-whitespace, re-joined with single spaces.
WORDS = re.compile(r"\S+")


def echo_template(texts: Sequence[str], *, prefix_words: int, rng: np.random.Generator) -> str:
    """`<the first prefix_words words of a record drawn uniformly> {secret}`. Candidates are the records with at
    least that many words whose prefix holds no `{name}` text: templates have no escape for braces, so such a
    prefix would be read as a slot."""
    if prefix_words < 1:
        raise InputError("the echo design needs a prefix of at least 1 word")
    prefixes = [
        prefix for prefix, words in ((" ".join(w[:prefix_words]), w) for w in map(WORDS.findall, texts))
        if len(words) >= prefix_words and PLACEHOLDER.search(prefix) is None
    ]
    if not prefixes:
        raise InputError(
            f"no record of the data has {prefix_words} words to draw an echo prefix from; lower --prefix-words"
        )
    return f"{prefixes[int(rng.integers(len(prefixes)))]} {{secret}}"
