"""Scores of continuations in a compact form: per-token log-probabilities (flat, CSR), and the spread of the
next-token distributions they were drawn from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privacy_audit.errors import ModelError


@dataclass(frozen=True)
class ScoredContinuations:
    """Per-token log2-probabilities of n continuations, flat (CSR) so 10^6 candidates stay compact.

    Continuation i owns tokens `offsets[i]:offsets[i+1]`; `token_ends` is each token's end offset in
    characters within its continuation, so callers can score only the tokens that reach past a prefix.
    """

    logprobs: np.ndarray
    token_ends: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.logprobs):
            raise ModelError("backend returned inconsistent token offsets")
        if len(self.token_ends) != len(self.logprobs):
            raise ModelError("backend returned token ends and log-probs of different lengths")
        if not np.all(np.isfinite(self.logprobs)) or np.any(self.logprobs > 1e-6):
            raise ModelError("backend returned log-probabilities that are not finite and <= 0")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def subset(self, rows: Sequence[int]) -> ScoredContinuations:
        """The continuations `rows`, in that order."""
        return ScoredContinuations.concat(
            [
                ScoredContinuations(
                    self.logprobs[self.offsets[i] : self.offsets[i + 1]],
                    self.token_ends[self.offsets[i] : self.offsets[i + 1]],
                    np.array([0, self.offsets[i + 1] - self.offsets[i]], dtype=np.int64),
                )
                for i in rows
            ]
        )

    @staticmethod
    def concat(parts: Sequence[ScoredContinuations]) -> ScoredContinuations:
        """The continuations of several results, one after another."""
        sizes = np.concatenate([np.diff(p.offsets) for p in parts])
        return ScoredContinuations(
            np.concatenate([p.logprobs for p in parts]), np.concatenate([p.token_ends for p in parts]),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        )

    def token_logprobs(self, i: int) -> np.ndarray:
        """Log2-probabilities of continuation i's tokens."""
        return self.logprobs[self.offsets[i] : self.offsets[i + 1]]

    def _masked(self, from_char: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(from_char, dtype=np.int64)
        per_token = np.repeat(starts, np.diff(self.offsets)) if starts.ndim else starts
        keep = self.token_ends > per_token
        ids = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        sums = np.bincount(ids, weights=np.where(keep, self.logprobs, 0.0), minlength=len(self))
        counts = np.bincount(ids, weights=keep.astype(np.float64), minlength=len(self))
        return sums, counts

    def totals(self, from_char: int | np.ndarray = 0) -> np.ndarray:
        """Sum of log2-probs of the tokens that end after character `from_char` (bits, <= 0)."""
        sums, counts = self._masked(from_char)
        if np.any(counts == 0):
            raise ModelError("a continuation has no token after the template prefix; check the template")
        return sums

    def token_counts(self, from_char: int | np.ndarray = 0) -> np.ndarray:
        """Number of tokens per continuation that end after character `from_char` (those `totals` sums)."""
        return self._masked(from_char)[1].astype(np.int64)

    def means(self, from_char: int | np.ndarray = 0) -> np.ndarray:
        """Length-normalised log2-likelihood (mean over the same tokens as `totals`)."""
        sums, counts = self._masked(from_char)
        if np.any(counts == 0):
            raise ModelError("a continuation has no token after the template prefix; check the template")
        return sums / counts


@dataclass(frozen=True)
class TokenMoments:
    """Each continuation's own tokens (those ending after its start): log2 p of the token, and the mean and standard
    deviation of log2 p under the next-token distribution it was drawn from."""

    logprobs: list[np.ndarray]
    means: list[np.ndarray]
    sds: list[np.ndarray]
