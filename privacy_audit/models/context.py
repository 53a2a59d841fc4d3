"""A context the model has read once, and scoring its continuations: the backend hook that computes per-token
log-probabilities (`scored`), the capabilities a backend may add, and the check that every score is canonical."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from privacy_audit.errors import ModelError
from privacy_audit.models.scored import ScoredContinuations, TokenMoments


# search(paths, allowed) -> log2 p(allowed[j] | context + paths[i]) as an array [len(paths), len(allowed)]
Search = Callable[[Sequence[Sequence[int]], Sequence[int]], np.ndarray]
Tokens = tuple[list[list[int]], list[list[int]]]
T = TypeVar("T")

@dataclass(frozen=True)
class Joint:
    """The whole text (context + continuation tokenized at once, start tokens included) from token `skip` on, with
    ends relative to the continuation; its first `skip` tokens are the head's own, which no continuation moves, so a
    long context is not copied or compared whole for every candidate checked."""

    skip: int
    ids: list[int]
    ends: list[int]


# Candidates of each scored batch whose tokens are checked against the tokenization of the whole text (always on).
CHECKS_PER_BATCH = 8


def check_sample(items: Sequence[T]) -> list[T]:
    """The candidates of a batch whose tokens every scoring checks: CHECKS_PER_BATCH spread evenly over it."""
    step = max(1, len(items) // CHECKS_PER_BATCH)
    return list(items[::step][:CHECKS_PER_BATCH])


class ContextBackend(ABC):
    """What a backend gives for one context it has read: the tokens its cache holds (`head`) and scoring after them.

    Token lists are the tokens after `head`; their ends are character offsets relative to the start of
    the continuation, so tokens of the context's unstable tail (moved into every continuation) end at
    or before 0. What else it can do follows from the capability types it implements: `NextTokens`, `Greedy`,
    `Vocabulary`.
    """

    head: list[int]
    tail: str = ""  # the context's text after the head, tokenized with every continuation
    # the options under which a backend opens this context type, where it opens one of several (`models` lists it)
    only_when: ClassVar[str] = ""

    @abstractmethod
    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        """Tokens after the head for each continuation, by the backend's fast rule (checked by `Context`)."""

    @abstractmethod
    def joint(self, continuation: str) -> Joint:
        """The whole text (context + continuation) tokenized at once, start tokens included, with ends
        relative to the continuation: the reference the fast rule must reproduce."""

    @abstractmethod
    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        """Log2-probs of token lists that follow the head (the cached context)."""

    @abstractmethod
    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        """Log2-probs of `ids[start:]` by one plain pass over the whole token list (no cache)."""


class NextTokens(ABC):
    """Capability: next-token log-probabilities of chosen tokens after token paths (best-first search needs it)."""

    @abstractmethod
    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        """log2 p(allowed[j] | head + paths[i]) as an array [len(paths), len(allowed)]."""


class Distributions(ABC):
    """Capability: the spread of the whole next-token distribution after token paths (Min-K%++ reads it)."""

    @abstractmethod
    def moments(self, paths: Sequence[Sequence[int]]) -> np.ndarray:
        """[len(paths), 2]: the mean and the standard deviation of log2 p(z | head + path) over every token z of the
        model, each weighted by its probability p(z)."""


class Greedy(ABC):
    """Capability: greedy decoding after the context and a token path (greedy extraction needs it)."""

    @abstractmethod
    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        """The decoded new text after head + `path` (token ids)."""


class Vocabulary(ABC):
    """Capability: the model's token texts (best-first search over any tokenizer spells secrets with them), over
    which its next-token probabilities sum to at most 1 (the certified bounds rely on it)."""

    @abstractmethod
    def vocabulary(self) -> dict[int, str]:
        """Each ordinary token's text where it follows other text; tokens that are not whole characters left out."""

    def digit_groups(self) -> int | None:
        """K where the tokenizer's own rules cut every run of the digits 0-9 into groups of K from its left and no
        token holds a digit with another character (Llama 3 reads digits in threes), so a search skips the paths
        that cross a group; None where they do not say (the default)."""
        return None


@dataclass
class BoundaryCheck:
    """How the context was cut and what proved the cut right: see `CachedContext`."""

    head_tokens: int
    tail: str
    checked: int = 0
    mismatched: int = 0
    joint_scored: int = 0
    rule: str = (
        "cached context ends before its last word and trailing whitespace; that tail is tokenized with each candidate"
    )

    @property
    def tail_chars(self) -> int:
        return len(self.tail)

    @property
    def fallback(self) -> bool:
        """Whether a mismatch sent every candidate to the joint tokenization."""
        return self.mismatched > 0


class Context(ABC):
    """A context the model has read once; scores continuations as the model reads context + continuation, every
    score the canonical one (the whole text tokenized at once), checked on a sample of every batch.

    What it can do besides scoring follows from the types its provider implements (`NextTokens`, `Greedy`,
    `Vocabulary`); the methods here check what a provider returns, so a broken backend fails loudly.
    """

    def __init__(self, context: str, *, owner: str, boundary: BoundaryCheck) -> None:
        self.context = context
        self.owner = owner
        self.boundary = boundary

    @property
    @abstractmethod
    def provider(self) -> object:
        """What gives this context's capabilities beyond scoring (its backend)."""

    @abstractmethod
    def check(self, continuations: Sequence[str]) -> None:
        """Check the canonical tokens of these continuations (a sample of a batch, or what scoring asks about)."""

    @abstractmethod
    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        """Canonical tokens after the head for each continuation."""

    @abstractmethod
    def __call__(self, continuations: Sequence[str]) -> ScoredContinuations:
        """Per-token log2-probabilities of each continuation after the context."""

    def again(self, continuations: Sequence[str]) -> ScoredContinuations:
        """The same continuations scored anew (a backend that keeps what it was answered asks again): what the
        stability check compares with the first scores."""
        return self(continuations)

    @property
    def can_search(self) -> bool:
        return isinstance(self.provider, NextTokens)

    @property
    def can_decode(self) -> bool:
        return isinstance(self.provider, Greedy)

    @property
    def lists_vocabulary(self) -> bool:
        return isinstance(self.provider, Vocabulary)

    def tail_tokens(self) -> list[int]:
        """The tokens of the context's own text after its cached head: the path from which a search of what follows
        the text (`search`) starts."""
        return list(self.tokenize([""])[0][0])

    def search(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        """Next-token log2-probs after token paths that follow the head (as from `tokenize`)."""
        provider = self.provider
        if not isinstance(provider, NextTokens):
            raise ModelError(f"{self.owner} gives no next-token log-probabilities")
        out = np.asarray(provider.next_logprobs(paths, allowed), dtype=np.float64)
        if out.shape != (len(paths), len(allowed)):
            raise ModelError(f"backend returned shape {out.shape}, expected {(len(paths), len(allowed))}")
        if not np.all(np.isfinite(out)) or np.any(out > 1e-6):
            raise ModelError("backend returned log-probabilities that are not finite and <= 0")
        return out

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        """Greedy decoding after the head and a token path; the decoded new text."""
        provider = self.provider
        if not isinstance(provider, Greedy):
            raise ModelError(f"{self.owner} cannot decode greedily")
        return provider.greedy(list(path), max_new_tokens)

    def moments(self, continuations: Sequence[str], scored: ScoredContinuations | None = None) -> TokenMoments:
        """Each continuation's own tokens with the mean and spread of log2 p under their next-token distributions
        (`scored`: this context's scores of the same continuations, where they were asked for already)."""
        provider = self.provider
        if not isinstance(provider, Distributions):
            raise ModelError(f"{self.owner} gives no next-token distributions")
        continuations = self._nonempty(continuations)
        scored = self(continuations) if scored is None else scored
        ids, _ = self.tokenize(continuations)
        if [len(row) for row in ids] != np.diff(scored.offsets).tolist():
            raise ModelError("the scored tokens are not the context's tokens of the same continuations")
        paths = [row[:j] for row in ids for j in range(len(row))]
        out = np.asarray(provider.moments(paths), dtype=np.float64) if paths else np.empty((0, 2))
        if out.shape != (len(paths), 2):
            raise ModelError(f"backend returned moments of shape {out.shape}, expected {(len(paths), 2)}")
        if not np.all(np.isfinite(out)) or np.any(out[:, 0] > 1e-6) or np.any(out[:, 1] < 0):
            raise ModelError("backend returned a mean log-probability above 0 or a negative spread")
        logprobs, means, sds = [], [], []
        for i in range(len(continuations)):
            lo, hi = scored.offsets[i], scored.offsets[i + 1]
            own = scored.token_ends[lo:hi] > 0
            logprobs.append(scored.logprobs[lo:hi][own])
            means.append(out[lo:hi, 0][own])
            sds.append(out[lo:hi, 1][own])
        return TokenMoments(logprobs, means, sds)

    def vocabulary(self) -> dict[int, str]:
        """The model's token texts (see `Vocabulary`)."""
        provider = self.provider
        if not isinstance(provider, Vocabulary):
            raise ModelError(f"{self.owner} does not list its vocabulary")
        return provider.vocabulary()

    def digit_groups(self) -> int | None:
        """The digit groups of the tokenizer's rules (see `Vocabulary`), None where it lists no vocabulary."""
        provider = self.provider
        groups = provider.digit_groups() if isinstance(provider, Vocabulary) else None
        if groups is not None and (not isinstance(groups, int) or groups < 1):
            raise ModelError(f"backend returned digit groups {groups!r}, expected a positive int or None")
        return groups

    @staticmethod
    def _nonempty(continuations: Sequence[str]) -> list[str]:
        continuations = list(continuations)
        if not continuations:
            raise ModelError("nothing to score")
        if any(not c for c in continuations):
            raise ModelError("cannot score an empty continuation")
        return continuations


class CachedContext(Context):
    """A context a local backend has read once and cached up to a boundary the joint tokenization never moves; the
    rest (its unstable tail) is tokenized with each candidate. Every scoring checks that rule against the joint
    tokenization on a sample of each batch (and on whatever `check` is given); after one mismatch, every candidate
    is tokenized jointly, one by one (slower, right).
    """

    def __init__(self, backend: ContextBackend, context: str, *, owner: str = "the model") -> None:
        super().__init__(context, owner=owner, boundary=BoundaryCheck(head_tokens=len(backend.head), tail=backend.tail))
        self.backend = backend

    @property
    def provider(self) -> object:
        return self.backend

    @property
    def joint_mode(self) -> bool:
        return self.boundary.mismatched > 0

    def check(self, continuations: Sequence[str]) -> None:
        """Compare the fast rule with the joint tokenization of each continuation; on a mismatch, use joint mode."""
        continuations = list(continuations)
        if not continuations or self.joint_mode:
            return
        ids, _ = self.backend.tokenize(continuations)
        head = self.backend.head
        for cont, own in zip(continuations, ids):
            self.boundary.checked += 1
            joint = self.backend.joint(cont)
            if joint.ids != head[joint.skip :] + own:
                self.boundary.mismatched += 1

    def _after_head(self, joint: Joint) -> tuple[list[int], list[int]] | None:
        """The joint tokens after the head, or None when the continuation moves the head's tokens."""
        head = self.backend.head
        kept = len(head) - joint.skip
        if joint.ids[:kept] != head[joint.skip :]:
            return None
        return joint.ids[kept:], joint.ends[kept:]

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        """Canonical tokens after the head for each continuation (ModelError if the head itself moves)."""
        continuations = list(continuations)
        if not self.joint_mode:
            return self.backend.tokenize(continuations)
        ids, ends = [], []
        for cont in continuations:
            after = self._after_head(self.backend.joint(cont))
            if after is None:
                raise ModelError(
                    "the context's tokens change with the continuation; token paths after it are undefined"
                )
            ids.append(after[0])
            ends.append(after[1])
        return ids, ends

    def __call__(self, continuations: Sequence[str]) -> ScoredContinuations:
        continuations = self._nonempty(continuations)
        self.check(check_sample(continuations))
        result = (
            self._score_joint(continuations)
            if self.joint_mode
            else self.backend.score_tokens(*self.backend.tokenize(continuations))
        )
        if len(result) != len(continuations):
            raise ModelError(f"backend scored {len(result)} continuations, expected {len(continuations)}")
        return result

    def _score_joint(self, continuations: list[str]) -> ScoredContinuations:
        """Each continuation tokenized with the whole context; after the cached head where it is kept,
        else by a plain pass over the whole text."""
        head = self.backend.head
        parts: list[ScoredContinuations | None] = [None] * len(continuations)
        cached: list[int] = []
        cached_ids: list[list[int]] = []
        cached_ends: list[list[int]] = []
        for i, cont in enumerate(continuations):
            joint = self.backend.joint(cont)
            self.boundary.joint_scored += 1
            after = self._after_head(joint)
            if after is not None:
                cached.append(i)
                cached_ids.append(after[0])
                cached_ends.append(after[1])
            else:
                full = head[: joint.skip] + joint.ids
                start = next(j for j, (a, b) in enumerate(zip(full, head)) if a != b)
                parts[i] = self.backend.score_full(full, [0] * joint.skip + joint.ends, max(start, 1))
        if len(cached) == len(continuations):
            return self.backend.score_tokens(cached_ids, cached_ends)
        if cached:
            together = self.backend.score_tokens(cached_ids, cached_ends)
            for k, i in enumerate(cached):
                parts[i] = together.subset([k])
        return ScoredContinuations.concat([p for p in parts if p is not None])
