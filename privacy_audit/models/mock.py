"""A mock backend that is a real model: a smoothed character n-gram fitted to the context.

It copies from its context the way an LLM's induction heads do, so a prompt that contains a
canary makes that canary likely: tests and `--model mock` exercise every stage without torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated

import numpy as np
from pydantic import Field

from privacy_audit._registry import register
from privacy_audit.errors import ModelError
from privacy_audit.models.base import ALL_CAPABILITIES, Completion, LanguageModel, ModelInfo, Prompt
from privacy_audit.models.context import ContextBackend, Joint, ScoredContinuations, Tokens

VOCAB = 256


class MockModel(LanguageModel):
    """Character n-gram model (order `order`, add-`alpha` smoothing over 256 byte values).

    `outputs` are returned by `generate` in order (an error when they run out); without
    `outputs`, `generate` decodes from the n-gram fitted to the prompt (greedy at temperature 0).
    Every call is kept in `history`.
    """

    def __init__(self, *, order: int = 4, alpha: float = 0.05, outputs: Sequence[str] | None = None) -> None:
        if order < 1 or alpha <= 0:
            raise ModelError("mock model needs order >= 1 and alpha > 0")
        self.order = order
        self.alpha = alpha
        self.outputs = list(outputs) if outputs is not None else None
        self.history: list[tuple[str, object]] = []
        self.name = f"mock-ngram{order}"

    backend = "mock"

    def info(self) -> ModelInfo:
        return super().info().model_copy(update={"options": {"order": self.order, "alpha": self.alpha}})

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """One token per character; the token id is the code point."""
        return [([ord(c) for c in t], list(range(1, len(t) + 1))) for t in texts]

    def _fit(self, context: str) -> Callable[[str, str], float]:
        """log2 p(char | text so far) of the n-gram fitted to `context` (only the text's tail matters)."""
        history_counts: Counter[str] = Counter()
        context_counts: Counter[str] = Counter()
        for i, ch in enumerate(context):
            h = context[max(0, i - self.order + 1) : i]
            history_counts[h + ch] += 1
            context_counts[h] += 1
        keep = self.order - 1

        def logp(text: str, ch: str) -> float:
            h = text[len(text) - keep :] if keep else ""
            return math.log2((history_counts[h + ch] + self.alpha) / (context_counts[h] + self.alpha * VOCAB))

        return logp

    def _open_context(self, context: str) -> ContextBackend:
        self.history.append(("open_context", context))
        return _MockContext(self, context)

    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int],
        stop: tuple[str, ...], batch_size: int | None,
    ) -> list[str | Completion]:
        out: list[str | Completion] = []
        for prompt, seed in zip(prompts, seeds):
            rng = np.random.default_rng(seed)
            self.history.append(("generate", prompt))
            if self.outputs is not None:
                if not self.outputs:
                    raise ModelError("mock model has no outputs left")
                out.append(self.outputs.pop(0))
                continue
            text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
            out.append(self._decode(text, max_new_tokens=max_new_tokens, temperature=temperature, rng=rng, stop=stop))
        return out

    def _decode(
        self, text: str, *, max_new_tokens: int, temperature: float, rng: np.random.Generator, stop: tuple[str, ...]
    ) -> Completion:
        """Characters decoded from the n-gram fitted to `text` (greedy at temperature 0), and their log2-probability."""
        logp = self._fit(text)
        generated, total = "", 0.0
        for _ in range(max_new_tokens):
            lp = np.array([logp(text[-self.order :] + generated, chr(b)) for b in range(1, VOCAB)])
            if temperature > 0:
                p = np.exp2((lp - lp.max()) / temperature)
                choice = int(rng.choice(len(p), p=p / p.sum()))
            else:
                choice = int(np.argmax(lp))
            generated += chr(choice + 1)
            total += float(lp[choice])
            if stop and any(generated.endswith(s) for s in stop if s):
                break
        return Completion(generated, total, len(generated))


class _MockContext(ContextBackend):
    """One token per character: the context is the head, and every boundary is stable."""

    def __init__(self, model: MockModel, context: str) -> None:
        self.model = model
        self.context = context
        self.head = [ord(c) for c in context]
        self.logp = model._fit(context)

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        return [[ord(c) for c in t] for t in continuations], [list(range(1, len(t) + 1)) for t in continuations]

    def joint(self, continuation: str) -> Joint:
        """One token per character: the context's own tokens, then the continuation's."""
        return Joint(len(self.head), [ord(c) for c in continuation], list(range(1, len(continuation) + 1)))

    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        tail = self.context[-self.model.order :]
        lps = [self.logp(tail + "".join(map(chr, row[:j])), chr(t)) for row in ids for j, t in enumerate(row)]
        offsets = np.concatenate([[0], np.cumsum([len(row) for row in ids])]).astype(np.int64)
        return ScoredContinuations(
            np.array(lps, dtype=np.float64), np.array([e for row in ends for e in row], dtype=np.int64), offsets
        )

    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        text = "".join(map(chr, ids))
        lps = [self.logp(text[:j], text[j]) for j in range(start, len(text))]
        return ScoredContinuations(
            np.array(lps), np.array(ends[start:], dtype=np.int64), np.array([0, len(lps)], dtype=np.int64)
        )

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        tail = self.context[-self.model.order :]
        rows = [[self.logp(tail + "".join(map(chr, p)), chr(t)) for t in allowed] for p in paths]
        return np.array(rows, dtype=np.float64).reshape(len(paths), len(allowed))

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        prompt = self.context + "".join(map(chr, path))
        return self.model._decode(
            prompt, max_new_tokens=max_new_tokens, temperature=0.0, rng=np.random.default_rng(0), stop=()
        ).text


@register("backend", "mock", ignores=("chunk_tokens", "device"), provides=ALL_CAPABILITIES)
def _mock_backend(
    *, order: Annotated[int, Field(ge=1, le=64)] = 4, alpha: Annotated[float, Field(gt=0)] = 0.05,
    outputs: Sequence[str] | None = None,
) -> MockModel:
    """The mock n-gram model (no torch needed); the transformers backends' speed knobs change none of its numbers."""
    return MockModel(order=order, alpha=alpha, outputs=outputs)
