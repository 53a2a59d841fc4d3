"""Best-first enumeration of a secret space, most likely secret first, without scoring all of it.

A partial secret's log-probability bounds every completion's from above (more tokens only lower
it), so popping prefixes in order of partial score yields whole secrets in order of probability.
This gives extraction (how many guesses until the secret), exact ranks of high-exposure canaries and,
from the open frontier, certified rank bounds for the rest (`bounds.certified_ranks`). It works for
fixed-length charset slots anywhere in the template (product spaces, text between and after them) and
walks one of two structures (a `Walk`): where the candidate tokenizes, after the context, as a fixed
sequence of steps, each a template token or one token per symbol of a secret character (checked by
`align`), that `Alignment`; under any other tokenizer, the `lattice.TokenLattice` of whole tokens.
Exact mode makes no such assumption.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.spaces import JOIN, ProductSpace
from privacy_audit.models.context import Context, Search
from privacy_audit.stats.bounds import TIE_TOLERANCE_BITS, dropped_bound
from privacy_audit.scoring.boundaries import Crossings, digit_rule
from privacy_audit.scoring.template import probe_secrets, read_template
from privacy_audit.scoring.walk import Children, Walk

# Open nodes kept at most (an unbuilt child costs about 13 to 21 bytes, a built one more); beyond, the least likely
# half is dropped into the bounds.
MAX_FRONTIER = 1_000_000
# A batch takes nodes within this many bits of the best open one: large batches where the model is unsure,
# one path at a time where it is sure (a copied secret), so the budget is not spent on unlikely nodes.
BATCH_GAP_BITS = 8.0


@dataclass(frozen=True)
class Alignment:
    """Canonical tokens after the cached context: those before the first step (the context's tail and the
    template prefix), then one step per token: a fixed token (text of the template) or a choice of one
    token per symbol of a secret position (`steps[j][a]` for symbol a of `alphabets[j]`), located by
    `positions[j]` = (slot, character) in the secret."""

    prefix: tuple[int, ...]
    steps: tuple[tuple[int, ...], ...]
    alphabets: tuple[str, ...]
    positions: tuple[tuple[int, int], ...]
    slot_lengths: tuple[int, ...]

    def root(self) -> tuple[int, ...]:
        return ()

    def key(self, node: tuple[int, ...]) -> int:
        return len(node)

    def next_tokens(self, key: int) -> Sequence[int]:
        return self.steps[key]

    def children(self, node: tuple[int, ...], row: np.ndarray) -> Children:
        size = self.size(node + (0,))
        return Children(np.asarray(row, dtype=np.float64), np.full(len(row), size), np.ones(len(row)),
                        np.ones(len(row), dtype=bool), lambda choice: [node + (choice,)])

    def path(self, node: Sequence[int]) -> list[int]:
        """Token ids after the context for a partial candidate: the prefix, then the token of each step taken."""
        return list(self.prefix) + [self.steps[j][c] for j, c in enumerate(node)]

    def complete(self, node: tuple[int, ...]) -> bool:
        return len(node) == len(self.steps)

    def secrets(self, node: Sequence[int]) -> list[str]:
        return [self.secret(node)]

    def secret(self, node: Sequence[int]) -> str:
        """The secret a complete node spells (slots joined as the space writes them)."""
        chars = [[""] * n for n in self.slot_lengths]
        for j, choice in enumerate(node):
            slot, at = self.positions[j]
            if slot >= 0:
                chars[slot][at] = self.alphabets[j][choice]
        return JOIN.join("".join(c) for c in chars)

    def size(self, node: Sequence[int]) -> float:
        """How many secrets complete a node."""
        out = 1.0
        for alphabet in self.alphabets[len(node) :]:
            out *= max(1, len(alphabet))
        return out

    def depth(self, node: Sequence[int]) -> float:
        """Secrets of one length are never prefixes of each other."""
        return 1.0

    def bound(self, node: tuple[int, ...], score: float) -> float:
        return score


@dataclass(frozen=True)
class SearchResult:
    """Secrets found in order of decreasing probability, with their log2-probs (bits), and the open
    frontier (each node's log-prob and how many secrets lie under it) where the search stopped."""

    secrets: tuple[str, ...]
    logprobs: tuple[float, ...]
    token_steps: int
    exhausted_budget: bool
    frontier_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frontier_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frontier_depths: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def rank_of(self, secret: str) -> int | None:
        """1-based position of `secret` in the enumeration, or None if not reached."""
        try:
            return self.secrets.index(secret) + 1
        except ValueError:
            return None


def _slots(canary_set: CanarySet) -> list[tuple[int, int, int, str]] | None:
    """Each variable character of the text after the prefix: (offset from the prefix's end, slot, char, alphabet);
    None unless every slot is a fixed-length charset that appears once and nothing is derived."""
    reader = read_template(canary_set)
    if isinstance(reader, str) or reader.nested:
        return None
    return [(offset, it.slot, it.at, it.alphabet) for offset, it in enumerate(reader.items) if it.slot >= 0]


def align(context: Context, canary_set: CanarySet, *, sample: int = 256, seed: int = 0) -> Alignment | None:
    """The token layout of the template after `context`, or None when some token of it spans two secret
    characters (or the space is not fixed-length charset slots, each used once, with nothing derived).

    Tokens are the canonical ones (the candidate tokenized with the context). Every symbol
    is placed at every position once to learn its token there, and the layout is then checked on every
    canary and `sample` random secrets: token boundaries and the template's tokens must not move. Where the
    context lists its vocabulary, no token of it may cross a boundary of the layout (`lattice.Crossings`), so a
    secret no probe held cannot be tokenized otherwise.
    """
    found = _slots(canary_set)
    if found is None:
        return None
    texts = [canary_set.fill(s) for s in probe_secrets(canary_set, sample=sample, seed=seed)]
    ids, ends = context.tokenize(texts)
    start = len(canary_set.prefix)
    where = {offset: (slot, at, alphabet) for offset, slot, at, alphabet in found}
    layout: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    steps: dict[int, dict[str, int]] = {}
    spots: dict[int, int | None] = {}
    first = -len(context.boundary.tail)
    for text, row, row_ends in zip(texts, ids, ends):
        k = bisect.bisect_right(row_ends, start)
        shape = (tuple(row[:k]), tuple(row_ends[k:]))
        if layout is None:
            layout = shape
        if shape != layout:
            return None
        for j, tok in enumerate(row[k:]):
            lo, hi = (row_ends[k + j - 1] if k + j else first) - start, row_ends[k + j] - start
            inside = [o for o in range(max(lo, 0), hi) if o in where]
            if len(inside) > 1:
                return None
            symbol = text[start + inside[0]] if inside else ""
            if steps.setdefault(j, {}).setdefault(symbol, tok) != tok or spots.setdefault(
                j, inside[0] if inside else None
            ) != (inside[0] if inside else None):
                return None
    if layout is None or _crossed(context, canary_set, [ends[0][len(layout[0]) - 1] if layout[0] else first,
                                                       *layout[1][:-1]]):
        return None
    return _layout(canary_set, layout[0], steps, spots, where)


def _crossed(context: Context, canary_set: CanarySet, cuts: Sequence[int]) -> bool:
    """Whether a token of the vocabulary can cross one of the layout's token boundaries (character offsets after the
    context's tail) for some secret the probes did not hold; unknown (False) where the context lists no vocabulary."""
    if not context.lists_vocabulary:
        return False
    tail = context.boundary.tail
    reader = read_template(canary_set, tail + canary_set.prefix)
    if isinstance(reader, str):
        return True
    crossings = Crossings(reader, context.vocabulary(), digit_rule(context, reader))
    return any(crossings.crossed(cut + len(tail)) for cut in cuts if cut + len(tail) > 0)


def _layout(
    canary_set: CanarySet, prefix: tuple[int, ...], steps: dict[int, dict[str, int]], spots: dict[int, int | None],
    where: dict[int, tuple[int, int, str]],
) -> Alignment | None:
    """The alignment from what `align` learnt: each step's token per symbol (all symbols, all distinct)."""
    step_tokens, alphabets, positions = [], [], []
    for j in range(len(spots)):
        spot = spots[j]
        if spot is not None:
            slot, at, alphabet = where[spot]
            table = steps[j]
            if set(table) != set(alphabet) or len(set(table.values())) != len(alphabet):
                return None
            step_tokens.append(tuple(table[ch] for ch in alphabet))
            alphabets.append(alphabet)
            positions.append((slot, at))
        else:
            step_tokens.append((steps[j][""],))
            alphabets.append("")
            positions.append((-1, -1))
    space = canary_set.secret_space
    parts = space.parts if isinstance(space, ProductSpace) else (("secret", space),)
    return Alignment(
        prefix=prefix, steps=tuple(step_tokens), alphabets=tuple(alphabets), positions=tuple(positions),
        slot_lengths=tuple(sub.length for _, sub in parts),  # type: ignore[attr-defined]
    )


class _Open:
    """The unbuilt children of one expanded node, most likely first (`order`), from `at` on: one heap entry for all."""

    __slots__ = ("score", "children", "order", "at")

    def __init__(self, score: float, children: Children) -> None:
        self.score, self.children, self.at = score, children, 0
        self.order = np.argsort(-children.steps, kind="stable").astype(np.int32)

    def next_score(self) -> float:
        return self.score + float(self.children.steps[self.order[self.at]])

    def __len__(self) -> int:
        return len(self.order) - self.at

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bounding log-prob, size and nesting depth of each unbuilt child."""
        rest, c = self.order[self.at :], self.children
        return (np.where(c.started[rest], self.score + c.steps[rest], np.inf), c.sizes[rest].astype(np.float64),
                c.depths[rest].astype(np.float64))


def _expand(search: Search, walk: Walk, pending: list[tuple[float, Any]], state: _State) -> None:
    """Score the next tokens of every pending node in one model call per group (nodes sharing their next tokens);
    each node's children go on the heap as one entry."""
    groups: dict[Hashable, list[tuple[float, Any]]] = {}
    for score, node in pending:
        groups.setdefault(walk.key(node), []).append((score, node))
    for key, group in groups.items():
        lp = search([walk.path(node) for _, node in group], list(walk.next_tokens(key)))
        for (score, node), row in zip(group, lp):
            children = walk.children(node, row)
            if len(children.steps):
                state.push_open(_Open(score, children))


def best_first(
    search: Search, walk: Walk, *, stop_below: float | None = None, max_results: int | None = None,
    max_token_steps: int = 100_000, batch: int = 256, bound_for: np.ndarray | None = None,
    max_frontier: int = MAX_FRONTIER, progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Enumerate secrets in decreasing log2-probability, keeping the frontier for certified bounds.

    Stops when the next secret would score below `stop_below` (minus a 1e-4-bit tie tolerance),
    after `max_results` secrets, or when `max_token_steps` model steps are spent (then
    `exhausted_budget` is True and the enumeration is a correct but incomplete prefix). The open
    frontier is capped at `max_frontier` open nodes (built or not): the least likely half is dropped when it grows past
    that, and their mass is added, for each log-prob of `bound_for`, to `dropped`.
    """
    if stop_below is None and max_results is None:
        raise ValueError("best_first needs stop_below or max_results")
    threshold = -np.inf if stop_below is None else stop_below - TIE_TOLERANCE_BITS
    state = _State(walk, np.zeros(0) if bound_for is None else np.asarray(bound_for, dtype=np.float64))
    while state.heap:
        pending, done = state.pop(batch, threshold, max_results)
        if done or not pending:
            return state.result(exhausted=False)
        left = max_token_steps - state.steps
        if len(pending) > left:  # spend what is left of the budget on the most likely, then stop
            for score, node in pending[left:]:
                state.push(score, node)
            pending = pending[:left]
            if not pending:
                return state.result(exhausted=True)
        state.steps += len(pending)
        _expand(search, walk, pending, state)
        if state.open > max_frontier:
            state.drop(max_frontier // 2)
        if progress is not None:
            progress(state.steps, max_token_steps)
    return state.result(exhausted=False)


class _State:
    """The search's heap of open nodes (built ones, and each expanded node's unbuilt children as one `_Open` entry),
    how many nodes are open in all, the secrets it completed, and the mass of nodes it dropped."""

    def __init__(self, walk: Walk, bound_for: np.ndarray) -> None:
        self.walk = walk
        self.heap: list[tuple[float, int, Any]] = [(-0.0, 0, walk.root())]
        self.open = 1
        self.counter = 0
        self.steps = 0
        self.secrets: list[str] = []
        self.logprobs: list[float] = []
        self.bound_for = bound_for
        self.dropped = np.zeros(len(bound_for))

    def push(self, score: float, node: Any) -> None:
        self.counter += 1
        self.open += 1
        heapq.heappush(self.heap, (-score, self.counter, node))

    def push_open(self, entry: _Open) -> None:
        self.counter += 1
        self.open += len(entry)
        heapq.heappush(self.heap, (-entry.next_score(), self.counter, entry))

    def _build(self, entry: _Open) -> None:
        """Build the most likely unbuilt child of `entry` (just popped) and put the rest back."""
        i, score = int(entry.order[entry.at]), entry.next_score()
        self.open -= len(entry)
        entry.at += 1
        if len(entry):
            self.push_open(entry)
        for child in entry.children.build(i):
            self.push(score, child)

    def pop(self, batch: int, threshold: float, max_results: int | None) -> tuple[list[tuple[float, Any]], bool]:
        """Up to `batch` open nodes to expand, completing whole secrets on the way (done at `max_results` found);
        a complete path that is not its secret's canonical tokens is passed over (that secret is scored by its own)."""
        pending: list[tuple[float, Any]] = []
        best = -self.heap[0][0] if self.heap else 0.0
        while self.heap and len(pending) < batch:
            neg, _, node = self.heap[0]
            if -neg < threshold or (pending and -neg < best - BATCH_GAP_BITS):
                break
            if isinstance(node, _Open):
                heapq.heappop(self.heap)
                self._build(node)
                continue
            if self.walk.complete(node):
                if pending:
                    break
                heapq.heappop(self.heap)
                self.open -= 1
                for secret in self.walk.secrets(node):
                    self.secrets.append(secret)
                    self.logprobs.append(-neg)
                if max_results is not None and len(self.secrets) >= max_results:
                    return pending, True
                continue
            heapq.heappop(self.heap)
            self.open -= 1
            pending.append((-neg, node))
        return pending, False

    def _bounds(self, entries: Sequence[tuple[float, int, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bounding log-prob, size and nesting depth of every open node of the entries (an `_Open` entry's unbuilt
        children each count)."""
        built = [e for e in entries if not isinstance(e[2], _Open)]
        parts = [(np.array([self.walk.bound(e[2], -e[0]) for e in built], dtype=np.float64),
                  np.array([self.walk.size(e[2]) for e in built], dtype=np.float64),
                  np.array([self.walk.depth(e[2]) for e in built], dtype=np.float64))]
        parts += [e[2].bounds() for e in entries if isinstance(e[2], _Open)]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]

    def drop(self, keep: int) -> None:
        """Keep the most likely heap entries holding up to `keep` open nodes; the rest's mass goes to `dropped` (the
        bounds stay valid)."""
        self.heap.sort()
        held = np.cumsum([len(e[2]) if isinstance(e[2], _Open) else 1 for e in self.heap])
        cut = max(1, int(np.searchsorted(held, keep, side="right")))
        gone, self.heap = self.heap[cut:], self.heap[:cut]
        self.open = int(held[cut - 1])
        heapq.heapify(self.heap)
        if len(self.bound_for):
            self.dropped += dropped_bound(self.bound_for, *self._bounds(gone))

    def result(self, *, exhausted: bool) -> SearchResult:
        frontier, sizes, depths = self._bounds(self.heap)
        return SearchResult(
            tuple(self.secrets), tuple(self.logprobs), self.steps, exhausted, frontier, sizes, self.dropped, depths
        )
