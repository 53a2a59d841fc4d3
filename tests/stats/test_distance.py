"""The paper's distance against a brute-force definition."""

from __future__ import annotations

from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy_audit.scoring.leaks import leak_rows
from privacy_audit.stats.distance import normalised_distance, substring_indel_distance, substring_indel_distances


def indel(a: str, b: str) -> int:
    """Insert/delete distance = |a| + |b| - 2 LCS(a, b)."""

    @lru_cache(maxsize=None)
    def lcs(i: int, j: int) -> int:
        if i == len(a) or j == len(b):
            return 0
        if a[i] == b[j]:
            return 1 + lcs(i + 1, j + 1)
        return max(lcs(i + 1, j), lcs(i, j + 1))

    return len(a) + len(b) - 2 * lcs(0, 0)


def brute(example: str, text: str) -> int:
    subs = {text[i:j] for i in range(len(text) + 1) for j in range(i, len(text) + 1)}
    return min(indel(example, t) for t in subs)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abc", max_size=7), st.text(alphabet="abcd", max_size=9))
def test_matches_brute_force(example, text):
    assert substring_indel_distance(example, text) == brute(example, text)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab", max_size=3), st.lists(st.text(alphabet="abc", max_size=4), min_size=1, max_size=4),
       st.text(alphabet="abcd", max_size=9))
def test_examples_sharing_a_prefix_are_each_measured_exactly(prefix, tails, text):
    """The common prefix's rows are computed once; every example's distance is still its own brute-force one."""
    examples = [prefix + t for t in tails]
    assert substring_indel_distances(examples, text) == [brute(e, text) for e in examples]


def test_paper_cases():
    private = "Text: Free entry in 2 a wkly comp to win FA Cup final tkts\nClass: spam"
    assert normalised_distance("Free entry in 2 a wkly comp", private) == 0.0
    assert normalised_distance("zzzz", private) == 1.0
    assert normalised_distance("Free entry in two weekly comps", private) == pytest.approx(
        substring_indel_distance("Free entry in two weekly comps", private) / 30
    )
    rows = leak_rows(["Free entry in 2 a wkly comp", "", "something else"], private)
    assert [r.unit for r in rows] == [0, 2] and rows[0].verbatim and not rows[1].verbatim


def test_fast_enough_for_long_prompts():
    text = "the quick brown fox jumps over the lazy dog. " * 230  # about 10 kB
    assert substring_indel_distance("quick brown fox jumps over the lazy cat", text) == 3
