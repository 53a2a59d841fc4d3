"""Best-first enumeration of a secret space, most likely secret first, without scoring all of it.

A partial secret's log-probability bounds every completion's from above (more tokens only lower
it), so popping prefixes in order of partial score yields whole secrets in order of probability.
This gives extraction (how many guesses until the secret) and exact ranks of high-exposure canaries.
It needs the candidate to tokenize, after the context, as fixed tokens + one token per secret symbol +
fixed tokens (checked by `align`); otherwise use exact mode, which makes no such assumption.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.spaces import CharsetSpace
from privacy_audit.models.base import Context, Search

TIE_TOLERANCE_BITS = 1e-4


@dataclass(frozen=True)
class Alignment:
    """Canonical tokens after the cached context: those before the secret (the context's tail and the
    template prefix), one token per secret symbol at each position (`symbols[j][a]` for alphabet
    symbol a at position j), and those after the secret."""

    prefix: tuple[int, ...]
    symbols: tuple[tuple[int, ...], ...]
    suffix: tuple[int, ...]
    alphabet: str
    length: int


@dataclass(frozen=True)
class SearchResult:
    """Secrets found in order of decreasing probability, with their log2-probs (bits)."""

    secrets: tuple[str, ...]
    logprobs: tuple[float, ...]
    token_steps: int
    exhausted_budget: bool

    def rank_of(self, secret: str) -> int | None:
        """1-based position of `secret` in the enumeration, or None if not reached."""
        try:
            return self.secrets.index(secret) + 1
        except ValueError:
            return None


def align(context: Context, canary_set: CanarySet, *, sample: int = 256, seed: int = 0) -> Alignment | None:
    """The token layout of the template after `context`, or None when the secret does not tokenize
    one token per symbol in place (or the space is not fixed-length strings in one slot).

    Tokens are the canonical ones (the candidate read with the context, DESIGN.md §4). Every symbol
    is placed at every position once to learn its token there, and the layout is then checked on every
    canary and `sample` random secrets: a merge across the prefix/secret boundary or between symbols
    makes best-first search inapplicable (exact mode still works).
    """
    space = canary_set.secret_space
    if not isinstance(space, CharsetSpace) or canary_set.derived:
        return None
    base = canary_set.canaries[0].secret
    probes = [base[:j] + ch + base[j + 1 :] for j in range(space.length) for ch in space.alphabet]
    rng = np.random.default_rng(seed)
    checks = [c.secret for c in canary_set.canaries] + space.sample(min(sample, space.size), rng)
    secrets = probes + checks
    ids, ends = context.tokenize([canary_set.fill(s) for s in secrets])
    start, length = len(canary_set.prefix), space.length
    layout: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    table: list[dict[str, int]] = [{} for _ in range(length)]
    for secret, row, row_ends in zip(secrets, ids, ends):
        k = bisect.bisect_right(row_ends, start)
        if row_ends[k : k + length] != list(range(start + 1, start + length + 1)):
            return None
        outside = (tuple(row[:k]), tuple(row[k + length :]))
        if layout is None:
            layout = outside
        if outside != layout:
            return None
        for j, (ch, tok) in enumerate(zip(secret, row[k : k + length])):
            if table[j].setdefault(ch, tok) != tok:
                return None
    symbols = tuple(tuple(t[ch] for ch in space.alphabet) for t in table)
    if layout is None or any(len(set(s)) != len(s) for s in symbols):
        return None
    return Alignment(prefix=layout[0], symbols=symbols, suffix=layout[1], alphabet=space.alphabet, length=length)


def _expand(
    search: Search, alignment: Alignment, pending: list[tuple[float, tuple[int, ...]]],
    heap: list[tuple[float, int, tuple[int, ...]]], counter: int,
) -> int:
    """Score the next symbol (or suffix token) of every pending node in one model call per depth; push the children."""
    for depth in sorted({len(node) for _, node in pending}):
        group = [(score, node) for score, node in pending if len(node) == depth]
        paths = [_path(alignment, node) for _, node in group]
        if depth < alignment.length:
            lp = search(paths, alignment.symbols[depth])
            for (score, node), row in zip(group, lp):
                for sym in range(len(alignment.alphabet)):
                    counter += 1
                    heapq.heappush(heap, (-(score + row[sym]), counter, node + (sym,)))
        else:
            lp = search(paths, [alignment.suffix[depth - alignment.length]])
            for (score, node), row in zip(group, lp):
                counter += 1
                heapq.heappush(heap, (-(score + row[0]), counter, node + (-1,)))
    return counter


def best_first(
    search: Search,
    alignment: Alignment,
    *,
    stop_below: float | None = None,
    max_results: int | None = None,
    max_token_steps: int = 100_000,
    batch: int = 256,
) -> SearchResult:
    """Enumerate secrets in decreasing log2-probability.

    Stops when the next secret would score below `stop_below` (minus a 1e-4-bit tie tolerance),
    after `max_results` secrets, or when `max_token_steps` model steps are spent (then
    `exhausted_budget` is True and the enumeration is a correct but incomplete prefix).
    """
    if stop_below is None and max_results is None:
        raise ValueError("best_first needs stop_below or max_results")
    threshold = -np.inf if stop_below is None else stop_below - TIE_TOLERANCE_BITS
    full = alignment.length + len(alignment.suffix)
    counter = 0
    heap: list[tuple[float, int, tuple[int, ...]]] = [(-0.0, counter, ())]
    secrets: list[str] = []
    logprobs: list[float] = []
    steps = 0
    while heap:
        pending: list[tuple[float, tuple[int, ...]]] = []
        while heap and len(pending) < batch:
            neg, _, node = heap[0]
            if -neg < threshold:
                break
            if len(node) == full:
                if pending:
                    break
                heapq.heappop(heap)
                secrets.append("".join(alignment.alphabet[i] for i in node[: alignment.length]))
                logprobs.append(-neg)
                if max_results is not None and len(secrets) >= max_results:
                    return SearchResult(tuple(secrets), tuple(logprobs), steps, False)
                continue
            heapq.heappop(heap)
            pending.append((-neg, node))
        if not pending:
            break
        if steps + len(pending) > max_token_steps:
            return SearchResult(tuple(secrets), tuple(logprobs), steps, True)
        steps += len(pending)
        counter = _expand(search, alignment, pending, heap, counter)
    return SearchResult(tuple(secrets), tuple(logprobs), steps, False)


def _path(alignment: Alignment, node: Sequence[int]) -> list[int]:
    """Token ids after the context for a partial candidate (prefix, secret symbols so far, suffix so far)."""
    secret = [alignment.symbols[j][i] for j, i in enumerate(node[: alignment.length])]
    suffix = list(alignment.suffix[: max(0, len(node) - alignment.length)])
    return list(alignment.prefix) + secret + suffix
