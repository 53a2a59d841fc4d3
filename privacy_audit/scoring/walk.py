"""What best-first search walks (`search.best_first`): a tree of token paths whose leaves spell secrets.

Two walks implement it: `search.Alignment` (one token per secret character) and `lattice.TokenLattice` (whole tokens
under any tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Children:
    """A node's children, one per next token, before any is built: the log-prob each adds to the score (`steps`),
    how many secrets lie under each (`sizes`), how long a chain of secrets nested in each other (one text a prefix of
    the next) lies under each (`depths`, 1 where none is), whether each has started its score (`started`; one that
    has not is bounded by its size alone), and `build(i)`, the node(s) of token i. The search builds a child only
    when it is the most likely open one, so a wide fan-out (thousands of digit-group tokens) costs a sort, not a
    node each."""

    steps: np.ndarray
    sizes: np.ndarray
    depths: np.ndarray
    started: np.ndarray
    build: Callable[[int], list[Any]]


class Walk(Protocol):
    """What best-first search walks: nodes from `root()`, expanded by scoring `next_tokens(key(node))` after
    `path(node)` into `children(node, row)`; a complete node spells `secrets` (those whose canonical tokens are its
    path: usually one), a node's completions spell at most `size(node)` secrets, in chains of nested secrets at most
    `depth(node)` long, whose scores are bounded by `bound(node, score)`: secrets none of which is a prefix of another
    are disjoint events, so each of at most `depth` such sets sums to at most that bound."""

    def root(self) -> Any: ...

    def key(self, node: Any) -> Hashable: ...

    def next_tokens(self, key: Any) -> Sequence[int]: ...

    def children(self, node: Any, row: np.ndarray) -> Children: ...

    def path(self, node: Any) -> list[int]: ...

    def complete(self, node: Any) -> bool: ...

    def secrets(self, node: Any) -> list[str]: ...

    def size(self, node: Any) -> float: ...

    def depth(self, node: Any) -> float: ...

    def bound(self, node: Any, score: float) -> float: ...
