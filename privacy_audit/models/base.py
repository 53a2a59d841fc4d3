"""The LanguageModel seam: batched log-probabilities of continuations, and generation.

Backends implement `_open_context` (and optionally `_generate`); the public methods here check
what comes back, so a broken backend fails loudly instead of producing wrong numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from privacy_audit.errors import ModelError

Message = dict[str, str]
Prompt = str | Sequence[Message]


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


Scorer = Callable[[Sequence[str]], ScoredContinuations]
# search(paths, allowed) -> log2 p(allowed[j] | context + paths[i]) as an array [len(paths), len(allowed)]
Search = Callable[[Sequence[Sequence[int]], Sequence[int]], np.ndarray]


class LanguageModel(ABC):
    """A model that scores continuations of a context and generates text.

    `name` and `revision` identify it in reports; `info()` says what to record to reproduce a run.
    """

    name: str = "model"
    revision: str | None = None

    def info(self) -> dict[str, Any]:
        """What a report records about this model."""
        return {"name": self.name, "revision": self.revision, "backend": type(self).__name__}

    def open_context(self, context: str) -> Scorer:
        """Condition on `context` once; the returned scorer scores batches of continuations of it.

        The transformers backend runs the context through the model once here and reuses its
        KV cache for every batch, which is what makes exact exposure over a whole space cheap.
        """
        inner = self._open_context(context)

        def scorer(continuations: Sequence[str]) -> ScoredContinuations:
            continuations = list(continuations)
            if any(not c for c in continuations):
                raise ModelError("cannot score an empty continuation")
            result = inner(continuations)
            if len(result) != len(continuations):
                raise ModelError(f"backend scored {len(result)} continuations, expected {len(continuations)}")
            return result

        return scorer

    def open_search(self, context: str) -> Search:
        """Condition on `context`; the returned function gives next-token log2-probs after token paths.

        Paths are token ids following the context (as from `tokenize`); this drives best-first
        enumeration of a secret space without scoring all of it.
        """
        inner = self._open_search(context)

        def search(paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
            out = np.asarray(inner(paths, allowed), dtype=np.float64)
            if out.shape != (len(paths), len(allowed)):
                raise ModelError(f"backend returned shape {out.shape}, expected {(len(paths), len(allowed))}")
            if not np.all(np.isfinite(out)) or np.any(out > 1e-6):
                raise ModelError("backend returned log-probabilities that are not finite and <= 0")
            return out

        return search

    def logprobs(self, context: str, continuations: Sequence[str]) -> ScoredContinuations:
        """Per-token log2-probabilities of each continuation given `context` (one batch)."""
        return self.open_context(context)(continuations)

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """One completion per prompt. A prompt is plain text or chat messages (chat template applied).

        temperature 0 is greedy decoding; otherwise sampling, prompt i seeded by `seed + i` (reproducible,
        and repeated prompts give different samples). Generation ends at the first `stop` string (cut off).
        """
        if temperature < 0:
            raise ModelError("temperature must be >= 0")
        out = self._generate(list(prompts), max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=tuple(stop))
        if len(out) != len(prompts) or not all(isinstance(t, str) for t in out):
            raise ModelError(f"backend returned {len(out)} completions for {len(prompts)} prompts")
        return [truncate_at(t, stop) for t in out]

    @abstractmethod
    def _open_context(self, context: str) -> Scorer:
        """Backend hook: a function scoring continuations of `context`."""

    @abstractmethod
    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each text (tokenized on its own, no special tokens) and each token's end offset in characters."""

    def _open_search(self, context: str) -> Search:
        """Backend hook for `open_search`; backends without it cannot run best-first search."""
        raise ModelError(f"{self.name} does not support best-first search")

    @abstractmethod
    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seed: int, stop: tuple[str, ...]
    ) -> list[str]:
        """Backend hook: completions for `prompts` (a backend may stop early at a `stop` string)."""


def truncate_at(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
