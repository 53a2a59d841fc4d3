"""A mock backend that is a real model: a smoothed character n-gram fitted to the context.

It copies from its context the way an LLM's induction heads do, so a prompt that contains a
canary makes that canary likely: tests and `--model mock` exercise every stage without torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from privacy_audit._registry import register
from privacy_audit.errors import ModelError
from privacy_audit.models.base import LanguageModel, Prompt, ScoredContinuations, Scorer

VOCAB = 256


class MockModel(LanguageModel):
    """Character n-gram model (order `order`, add-`alpha` smoothing over 256 byte values).

    `outputs` are returned by `generate` in order (an error when they run out); without
    `outputs`, `generate` echoes the last message of each prompt. Every call is kept in `history`.
    """

    def __init__(self, *, order: int = 4, alpha: float = 0.05, outputs: Sequence[str] | None = None) -> None:
        if order < 1 or alpha <= 0:
            raise ModelError("mock model needs order >= 1 and alpha > 0")
        self.order = order
        self.alpha = alpha
        self.outputs = list(outputs) if outputs is not None else None
        self.history: list[tuple[str, object]] = []
        self.name = f"mock-ngram{order}"

    def info(self) -> dict[str, object]:
        return {**super().info(), "order": self.order, "alpha": self.alpha}

    def _open_context(self, context: str) -> Scorer:
        self.history.append(("open_context", context))
        history_counts: Counter[str] = Counter()
        context_counts: Counter[str] = Counter()
        for i, ch in enumerate(context):
            h = context[max(0, i - self.order + 1) : i]
            history_counts[h + ch] += 1
            context_counts[h] += 1

        def score(continuations: Sequence[str]) -> ScoredContinuations:
            lps: list[float] = []
            ends: list[int] = []
            offsets = [0]
            for cont in continuations:
                text = context + cont
                start = len(context)
                for j in range(start, len(text)):
                    h = text[max(0, j - self.order + 1) : j]
                    num = history_counts[h + text[j]] + self.alpha
                    den = context_counts[h] + self.alpha * VOCAB
                    lps.append(math.log2(num / den))
                    ends.append(j - start + 1)
                offsets.append(len(lps))
            return ScoredContinuations(np.array(lps), np.array(ends, dtype=np.int64), np.array(offsets, dtype=np.int64))

        return score

    def _generate(self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seed: int) -> list[str]:
        out = []
        for prompt in prompts:
            self.history.append(("generate", prompt))
            if self.outputs is not None:
                if not self.outputs:
                    raise ModelError("mock model has no outputs left")
                out.append(self.outputs.pop(0))
            else:
                text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
                out.append(text[: max_new_tokens * 4])
        return out


@register("backend", "mock")
def _mock_backend(**options: object) -> MockModel:
    """The mock n-gram model (no torch needed)."""
    return MockModel(**options)  # type: ignore[arg-type]
