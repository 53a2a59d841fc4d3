"""The LanguageModel seam, split by capability: a backend says what it can do (generate text, score a prompt's
continuations, give next-token log-probabilities of chosen tokens, decode greedily) and implements the hooks of
those; the public methods refuse what it cannot do with one line, and check what comes back, so a broken
backend fails loudly instead of producing wrong numbers. Commands degrade by capability (see `scoring`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from privacy_audit.errors import ModelError
from privacy_audit.models.context import Context, ContextBackend, ScoredContinuations

Capability = Literal["generate", "score", "next_token", "greedy"]
# What each capability is for, and what to do without it: the one line a refusal prints.
CAPABILITIES: dict[str, tuple[str, str]] = {
    "generate": ("generate text", "teach with another model"),
    "score": ("give log-probabilities of a prompt's continuations",
              "use it as a teacher and score with another model (score --model, or [scorer] in a config)"),
    "next_token": ("give next-token log-probabilities of chosen tokens (best-first search)",
                   "bounded intervals then come from the references"),
    "greedy": ("decode greedily after a prompt", "greedy extraction is then not run"),
}
ALL_CAPABILITIES: tuple[str, ...] = tuple(CAPABILITIES)

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


class LanguageModel:
    """A model behind one seam: `capabilities` says which of generate, score, next_token and greedy it has.

    `name` and `revision` identify it in reports; `info()` says what to record to reproduce a run;
    `exact_budget` is the most candidates exact scoring should send it (None: no limit), which `auto`
    mode respects. A backend implements the hooks of its capabilities: `_generate` (generate),
    `_open_context` and `tokenize` (score; the context's backend gives next_token and greedy).
    """

    name: str = "model"
    revision: str | None = None
    backend: str = "model"
    capabilities: frozenset[str] = frozenset(ALL_CAPABILITIES)
    exact_budget: int | None = None
    # Scores that may differ between two requests (a served model): the largest difference, in bits, a sample scored
    # twice may show before the report says they are unstable (None: computed here, deterministically).
    stability_tolerance: float | None = None
    # A model computing in a lower precision (bfloat16, float16) keeps a float32 copy: every scoring rescores a sample
    # with it, and a difference beyond `precision_tolerance` bits fails the gate.
    precision_reference: LanguageModel | None = None
    precision_tolerance: float | None = None

    def info(self) -> ModelInfo:
        """What a report records about this model."""
        return ModelInfo(backend=self.backend, name=self.name, revision=self.revision)

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        """A one-line ModelError when this model lacks `capability`, saying what to do instead."""
        if not self.can(capability):
            what, instead = CAPABILITIES[capability]
            raise ModelError(f"model {self.name} ({self.backend} backend) cannot {what}; {instead}")

    def open_context(self, context: str) -> Context:
        """Read `context` once; the returned `Context` scores batches of its continuations.

        The transformers backend runs the context through the model once here and reuses its
        KV cache for every batch, which is what makes exact exposure over a whole space cheap.
        Scores are those of the whole text context + continuation tokenized at once (see `Context`).
        """
        self.require("score")
        return Context(
            self._open_context(context), context, capabilities=self.capabilities, owner=f"{self.name} ({self.backend})"
        )

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

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each text (tokenized alone, no special tokens) and each token's end offset in characters."""
        self.require("score")
        raise ModelError(f"{self.backend} backend declares scoring but has no tokenizer")

    def _open_context(self, context: str) -> ContextBackend:
        """Backend hook of `score`: `context` read once, as a `ContextBackend`."""
        raise ModelError(f"{self.backend} backend declares scoring but cannot read a context")

    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int],
        stop: tuple[str, ...], batch_size: int | None,
    ) -> Sequence[str | Completion]:
        """Backend hook of `generate`: completions for `prompts` (texts, or `Completion`s with the sampled tokens'
        log2-probability), prompt i sampled with its own generator seeded by `seeds[i]` (a backend may
        stop early at a `stop` string)."""
        raise ModelError(f"{self.backend} backend declares generation but cannot generate")


def truncate_at(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
