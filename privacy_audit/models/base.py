"""The LanguageModel seam: providers and one wrapper. A backend is a `LanguageModel` (identity, refusals, checks of
what comes back) that is a `Generator` (it implements `_generate`), a `Scorer` (it reads a context and scores its
continuations), or both; what it can do follows from those types, and what a read context can do besides scoring
from its own (`context.NextTokens`, `Greedy`, `Vocabulary`). How a scorer's numbers are used (its exact budget,
the tolerances of scores computed twice) is its `ScoringPolicy`. Commands degrade by capability (see `scoring`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from privacy_audit.errors import ModelError
from privacy_audit.models.context import CachedContext, Context, ContextBackend, ScoredContinuations

Capability = Literal["generate", "score"]
# What each capability is for, and what to do without it: the one line a refusal prints.
CAPABILITIES: dict[Capability, tuple[str, str]] = {
    "generate": ("generate text", "teach with another model"),
    "score": ("give log-probabilities of a prompt's continuations",
              "use it as a teacher and score with another model (score --model, or [scorer] in a config)"),
}

Message = dict[str, str]
Prompt = str | Sequence[Message]


class ModelInfo(BaseModel):
    """What a report records about a model: which backend computed the numbers, the model's name and revision
    (or an API's served model id and endpoint, never its credentials), and the settings that change them."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    backend: str
    name: str
    revision: str | None = None
    dtype: str | None = None
    device: str | None = None
    endpoint: str | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None
    weights_sha256: str | None = None
    seeding: str | None = None
    options: dict[str, str | int | float | bool | None] = {}

    @model_validator(mode="before")
    @classmethod
    def _untyped(cls, data: Any) -> Any:
        """Files written before model info was typed hold a flat dict: its other keys are the backend's options."""
        if not isinstance(data, dict) or "options" in data:
            return data
        known = set(cls.model_fields)
        flat = {k: v for k, v in data.items() if k in known and v is not None or k in ("backend", "name")}
        options = {k: v for k, v in data.items() if k not in known}
        return {
            **flat, "backend": str(data.get("backend") or "unknown"), "name": str(data.get("name") or "unknown"),
            "options": options,
        }


@dataclass(frozen=True)
class Completion:
    """A generated text and the model's own log2-probability of the tokens it sampled (temperature 1,
    the stop or EOS token included), as a teacher that keeps its most likely samples reads it;
    `logprob` is None when the backend does not report it."""

    text: str
    logprob: float | None = None
    tokens: int = 0

    @property
    def mean_logprob(self) -> float | None:
        """Log2-probability per generated token (None when unknown or nothing was generated)."""
        return self.logprob / self.tokens if self.logprob is not None and self.tokens else None


class Generator(ABC):
    """A provider that generates text: the hook of `LanguageModel.complete`."""

    @abstractmethod
    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int],
        stop: tuple[str, ...], batch_size: int | None,
    ) -> Sequence[str | Completion]:
        """Completions for `prompts` (texts, or `Completion`s with the sampled tokens' log2-probability), prompt i
        sampled with its own generator seeded by `seeds[i]` (a backend may stop early at a `stop` string)."""


class Scorer(ABC):
    """A provider that reads a context once and scores its continuations (the hook of `LanguageModel.open_context`)."""

    @abstractmethod
    def _read(self, context: str, owner: str) -> Context:
        """`context` read once, as a `Context` whose owner is named `owner` in its messages."""

    @abstractmethod
    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each text (tokenized alone, no special tokens) and each token's end offset in characters."""

    def refusal(self) -> str | None:
        """Why this scorer cannot score after all (a served one whose probe failed); None when it can."""
        return None


class CachingScorer(Scorer):
    """A scorer that reads a context into a cache of its own (`_open_context`) and scores after it."""

    @abstractmethod
    def _open_context(self, context: str) -> ContextBackend:
        """`context` read once (the transformers backend runs it through the model and keeps its KV cache)."""

    def _read(self, context: str, owner: str) -> Context:
        return CachedContext(self._open_context(context), context, owner=owner)


@dataclass(frozen=True)
class PrecisionCheck:
    """A model computing in a lower precision keeps a float32 copy (`reference`): every scoring rescores the canaries
    with it, and a difference beyond `tolerance` bits fails the gate."""

    reference: LanguageModel
    tolerance: float
    dtype: str


@dataclass(frozen=True)
class ScoringPolicy:
    """How a scorer's numbers are used: the most candidates exact scoring should send it (`auto` respects it; None:
    no limit), the largest difference (bits) a canary scored twice may show before the report calls its scores
    unstable (a served model; None: computed here, deterministically), the precision check of a lower precision, and
    how much more each token of a canary may add to that difference (a served model walked by next-token requests,
    whose numbers move with how the server batches a token)."""

    exact_budget: int | None = None
    stability_tolerance: float | None = None
    precision: PrecisionCheck | None = None
    stability_per_token: float | None = None


class LanguageModel:
    """The wrapper every backend is: `name` and `revision` identify it in reports, `info()` says what to record to
    reproduce a run, `policy` how its scores are used; it refuses what its provider types cannot do with one line
    and checks what they return. A backend subclasses it and `Generator`, `Scorer` (`CachingScorer`) or both."""

    name: str = "model"
    revision: str | None = None
    backend: str = "model"
    policy: ScoringPolicy = ScoringPolicy()

    def info(self) -> ModelInfo:
        """What a report records about this model."""
        return ModelInfo(backend=self.backend, name=self.name, revision=self.revision)

    def can(self, capability: Capability) -> bool:
        """Whether this model generates text (a `Generator`) or scores continuations (a `Scorer` that can)."""
        if capability == "generate":
            return isinstance(self, Generator)
        return isinstance(self, Scorer) and self.refusal() is None

    def require(self, capability: Capability) -> None:
        """A one-line ModelError when this model lacks `capability`, saying why and what to do instead."""
        if self.can(capability):
            return
        what, instead = CAPABILITIES[capability]
        why = self.refusal() if isinstance(self, Scorer) and capability == "score" else None
        raise ModelError(f"model {self.name} ({self.backend} backend) cannot {what}"
                         + (f": {why}" if why else "") + f"; {instead}")

    def open_context(self, context: str) -> Context:
        """Read `context` once; the returned `Context` scores batches of its continuations.

        The transformers backend runs the context through the model once here and reuses its
        KV cache for every batch, which is what makes exact exposure over a whole space cheap.
        Scores are those of the whole text context + continuation tokenized at once (see `Context`).
        """
        self.require("score")
        if not isinstance(self, Scorer):  # `require` refused it already; this narrows the type
            raise ModelError(f"{self.backend} backend cannot score")
        return self._read(context, f"{self.name} ({self.backend})")

    def logprobs(self, context: str, continuations: Sequence[str]) -> ScoredContinuations:
        """Per-token log2-probabilities of each continuation given `context` (one batch)."""
        return self.open_context(context)(continuations)

    def generate(
        self, prompts: Sequence[Prompt], *, max_new_tokens: int = 256, temperature: float = 0.0,
        seed: int | Sequence[int] = 0, stop: Sequence[str] = (), batch_size: int | None = None,
    ) -> list[str]:
        """One completion's text per prompt (see `complete`)."""
        done = self.complete(prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop,
                             batch_size=batch_size)
        return [c.text for c in done]

    def complete(
        self, prompts: Sequence[Prompt], *, max_new_tokens: int = 256, temperature: float = 0.0,
        seed: int | Sequence[int] = 0, stop: Sequence[str] = (), batch_size: int | None = None,
    ) -> list[Completion]:
        """One completion per prompt, with the model's log2-probability of what it sampled when the
        backend reports it. A prompt is plain text or chat messages (chat template applied).

        temperature 0 is greedy decoding; otherwise sampling, prompt i seeded by `seed + i` (or by
        `seed[i]` when a sequence is given) with a generator of its own, so a completion does not depend
        on the other prompts or on `batch_size` (how many prompts a backend generates at once; None:
        the backend's default). Generation ends at the first `stop` string (cut off).
        """
        self.require("generate")
        if not isinstance(self, Generator):  # `require` refused it already; this narrows the type
            raise ModelError(f"{self.backend} backend cannot generate")
        if temperature < 0:
            raise ModelError("temperature must be >= 0")
        if batch_size is not None and batch_size < 1:
            raise ModelError("batch_size must be at least 1")
        seeds = [seed + i for i in range(len(prompts))] if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != len(prompts):
            raise ModelError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        out = self._generate(list(prompts), max_new_tokens=max_new_tokens, temperature=temperature, seeds=seeds,
                             stop=tuple(stop), batch_size=batch_size)
        if len(out) != len(prompts) or not all(isinstance(t, (str, Completion)) for t in out):
            raise ModelError(f"backend returned {len(out)} completions for {len(prompts)} prompts")
        done = [c if isinstance(c, Completion) else Completion(c) for c in out]
        return [replace(c, text=truncate_at(c.text, stop)) for c in done]


def truncate_at(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
