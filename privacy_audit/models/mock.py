"""A mock backend that is a real model: a smoothed token n-gram fitted to the context.

It copies from its context the way an LLM's induction heads do, so a prompt that contains a
canary makes that canary likely: tests and `--model mock` exercise every stage without torch.
Its tokens are characters, and with `digits` > 1 runs of digits read in groups of up to that many,
left to right (Llama 3 reads them in threes), so a secret's digits are not one token each.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from privacy_audit._registry import register
from privacy_audit.errors import ModelError
from privacy_audit.models.base import CachingScorer, Completion, Generator, LanguageModel, ModelInfo, Prompt
from privacy_audit.models.pretokens import digit_groups, token_texts
from privacy_audit.models.context import (
    ContextBackend, Distributions, Greedy, Joint, NextTokens, ScoredContinuations, Tokens, Vocabulary,
)

BYTES = 256


class Pieces:
    """The mock's tokenizer: one token per character (its code point), and runs of digits in groups of up to `digits`
    (ids from 256 on, by length then value), so the vocabulary has 256 + 10^2 + ... + 10^digits tokens."""

    def __init__(self, digits: int) -> None:
        self.digits = digits
        self.rule = re.compile(r"\d{1,%d}|." % digits, re.DOTALL)
        self.starts = {n: BYTES + sum(10**m for m in range(2, n)) for n in range(2, digits + 1)}
        self.size = BYTES + sum(10**m for m in range(2, digits + 1))

    def id(self, piece: str) -> int:
        return ord(piece) if len(piece) == 1 else self.starts[len(piece)] + int(piece)

    def text(self, token: int) -> str:
        if token < BYTES:
            return chr(token)
        n = max(k for k, v in self.starts.items() if v <= token)
        return str(token - self.starts[n]).zfill(n)

    def split(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids of `text` and each token's end offset."""
        found = list(self.rule.finditer(text))
        return [self.id(m.group(0)) for m in found], [m.end() for m in found]

    def stable(self, text: str) -> int:
        """Where the tokens of `text` stop being moved by what follows it: before its trailing run of digits."""
        return len(text.rstrip("0123456789")) if self.digits > 1 else len(text)


class TokenizerPieces:
    """The mock's tokens as a real tokenizer's (a `tokenizer.json`: Llama 3's, GPT-2's), so searches are tested on
    real vocabularies with a model that copies, without a model of that size. The context's head ends before its
    last word, as the transformers backend cuts it (pre-tokenizers split at whitespace); scoring checks the rule."""

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - tokenizers comes with the package's dependencies
            raise ModelError(f"the mock's tokenizer option needs the tokenizers package: {e}") from None
        try:
            self.backend = Tokenizer.from_file(path)
        except Exception as e:  # the Rust reader's errors: a missing file, a file that is not a tokenizer
            raise ModelError(f"mock tokenizer {path}: cannot be read as a tokenizer.json ({str(e)[:200]})") from None
        special = {i for i, t in self.backend.get_added_tokens_decoder().items() if t.special}
        self.texts = token_texts(self.backend, special)
        self.size = self.backend.get_vocab_size(with_added_tokens=True)
        self.digits = digit_groups(self.backend)

    def text(self, token: int) -> str:
        return self.texts.get(token, "")

    def split(self, text: str) -> tuple[list[int], list[int]]:
        encoding = self.backend.encode(text, add_special_tokens=False)
        return list(encoding.ids), [end for _, end in encoding.offsets]

    def stable(self, text: str) -> int:
        """Where the tokens of `text` stop being moved by what follows it: before its last word and the whitespace
        before it."""
        body = text.rstrip()
        i = len(body)
        while i > 0 and not body[i - 1].isspace():
            i -= 1
        return max(i - 1, 0)


class NGram:
    """log2 p(token | tokens so far) of an n-gram fitted to `tokens` (only the last order - 1 matter), add-alpha
    smoothed over a vocabulary of `size`; `row` gives many next tokens at once (unseen ones share one value)."""

    def __init__(self, tokens: Sequence[int], *, order: int, alpha: float, size: int) -> None:
        self.keep, self.alpha, self.size = order - 1, alpha, size
        self.follow: dict[tuple[int, ...], Counter[int]] = {}
        for i, tok in enumerate(tokens):
            self.follow.setdefault(tuple(tokens[max(0, i - self.keep) : i]), Counter())[tok] += 1
        self.totals = {h: sum(c.values()) for h, c in self.follow.items()}

    def _history(self, history: Sequence[int]) -> tuple[int, ...]:
        return tuple(history[len(history) - self.keep :]) if self.keep else ()

    def logp(self, history: Sequence[int], tok: int) -> float:
        h = self._history(history)
        seen = self.follow.get(h, {}).get(tok, 0)
        return math.log2((seen + self.alpha) / (self.totals.get(h, 0) + self.alpha * self.size))

    def row(self, history: Sequence[int], tokens: np.ndarray) -> np.ndarray:
        """`logp(history, t)` for each t of `tokens`, the same numbers."""
        h = self._history(history)
        den = self.totals.get(h, 0) + self.alpha * self.size
        out = np.full(len(tokens), math.log2(self.alpha / den))
        follow = self.follow.get(h)
        if follow:
            for at in np.flatnonzero(np.isin(tokens, np.fromiter(follow, dtype=np.int64))):
                out[at] = math.log2((follow[int(tokens[at])] + self.alpha) / den)
        return out

    def moments(self, history: Sequence[int]) -> tuple[float, float]:
        """The mean and standard deviation of log2 p over the whole vocabulary after `history` (p-weighted)."""
        h = self._history(history)
        den = self.totals.get(h, 0) + self.alpha * self.size
        seen = np.fromiter(self.follow.get(h, {}).values(), dtype=np.float64)
        p = np.append((seen + self.alpha) / den, self.alpha / den)
        weight = np.append(np.ones(len(seen)), self.size - len(seen))  # the unseen tokens share one value
        lp = np.log2(p)
        mean = float(np.sum(weight * p * lp))
        return mean, math.sqrt(max(float(np.sum(weight * p * (lp - mean) ** 2)), 0.0))


class MockModel(LanguageModel, Generator, CachingScorer):
    """Token n-gram model (order `order`, add-`alpha` smoothing over its vocabulary: 256 byte values, and digit groups
    of up to `digits` when that is above 1).

    `outputs` are returned by `generate` in order (an error when they run out); without
    `outputs`, `generate` decodes from the n-gram fitted to the prompt (greedy at temperature 0).
    Every call is kept in `history`.
    """

    def __init__(
        self, *, order: int = 4, alpha: float = 0.05, outputs: Sequence[str] | None = None, digits: int = 1,
        tokenizer: str | None = None,
    ) -> None:
        if order < 1 or alpha <= 0 or not 1 <= digits <= 4:
            raise ModelError("mock model needs order >= 1, alpha > 0 and digits from 1 to 4")
        if tokenizer is not None and digits != 1:
            raise ModelError("mock model: give digits or tokenizer, not both (a tokenizer reads digits its own way)")
        self.order = order
        self.alpha = alpha
        self.outputs = list(outputs) if outputs is not None else None
        self.history: list[tuple[str, object]] = []
        self.tokenizer = tokenizer
        self.pieces: Pieces | TokenizerPieces = TokenizerPieces(tokenizer) if tokenizer else Pieces(digits)
        self.name = f"mock-ngram{order}" + (f"-digits{digits}" if digits > 1 else "") + (
            f"-{Path(tokenizer).parent.name or Path(tokenizer).stem}" if tokenizer else "")

    backend = "mock"

    def info(self) -> ModelInfo:
        options: dict[str, str | int | float | bool | None] = {"order": self.order, "alpha": self.alpha}
        if self.tokenizer is not None:
            options["tokenizer"] = self.tokenizer
        elif self.pieces.digits and self.pieces.digits > 1:
            options["digits"] = self.pieces.digits
        return ModelInfo(backend=self.backend, name=self.name, revision=self.revision, options=options)

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """One token per character (the code point), digit runs in groups of up to `digits`."""
        return [self.pieces.split(t) for t in texts]

    def _fit(self, context: str) -> NGram:
        """The n-gram fitted to `context`'s tokens."""
        return NGram(self.pieces.split(context)[0], order=self.order, alpha=self.alpha, size=self.pieces.size)

    def _open_context(self, context: str) -> _MockContext:
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
        """Tokens decoded from the n-gram fitted to `text` (greedy at temperature 0), and their log2-probability."""
        ngram = self._fit(text)
        history = self.pieces.split(text)[0][-self.order :]
        vocabulary = np.arange(1, self.pieces.size)
        generated, total, count = "", 0.0, 0
        while count < max_new_tokens:
            count += 1
            lp = ngram.row(history, vocabulary)
            if temperature > 0:
                p = np.exp2((lp - lp.max()) / temperature)
                choice = int(rng.choice(len(p), p=p / p.sum()))
            else:
                choice = int(np.argmax(lp))
            history.append(choice + 1)
            generated += self.pieces.text(choice + 1)
            total += float(lp[choice])
            if stop and any(generated.endswith(s) for s in stop if s):
                break
        return Completion(generated, total, count)


class _MockContext(ContextBackend, NextTokens, Greedy, Vocabulary, Distributions):
    """The context's tokens up to its trailing digits are the head (no continuation moves them); those digits are
    the tail, tokenized with every continuation."""

    def __init__(self, model: MockModel, context: str) -> None:
        self.model = model
        self.context = context
        cut = model.pieces.stable(context)
        self.head = model.pieces.split(context[:cut])[0]
        self.tail = context[cut:]
        self.ngram = model._fit(context)

    def vocabulary(self) -> dict[int, str]:
        return {t: text for t in range(self.model.pieces.size) if (text := self.model.pieces.text(t))}

    def digit_groups(self) -> int | None:
        return self.model.pieces.digits

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        ids, ends = [], []
        for c in continuations:
            row, row_ends = self.model.pieces.split(self.tail + c)
            ids.append(row)
            ends.append([e - len(self.tail) for e in row_ends])
        return ids, ends

    def joint(self, continuation: str) -> Joint:
        """The context and the continuation tokenized at once, from the head's last token on: that token is a single
        character that is not a digit (or the context's start), where the rule's scan starts a token whatever came
        before, so the scan from there is the whole text's (a long prompt is not split again per candidate). Under a
        real tokenizer, the whole text."""
        if isinstance(self.model.pieces, TokenizerPieces):
            row, row_ends = self.model.pieces.split(self.context + continuation)
            return Joint(0, row, [e - len(self.context) for e in row_ends])
        cut = len(self.context) - len(self.tail)
        start = max(cut - 1, 0)
        window = self.context[start:] + continuation
        row, row_ends = self.model.pieces.split(window)
        return Joint(len(self.head) - (cut - start), row, [e - (len(self.context) - start) for e in row_ends])

    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        last = self.head[-self.model.order :]
        lps = [self.ngram.logp(last + row[:j], t) for row in ids for j, t in enumerate(row)]
        offsets = np.concatenate([[0], np.cumsum([len(row) for row in ids])]).astype(np.int64)
        return ScoredContinuations(
            np.array(lps, dtype=np.float64), np.array([e for row in ends for e in row], dtype=np.int64), offsets
        )

    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        lps = [self.ngram.logp(ids[:j], ids[j]) for j in range(start, len(ids))]
        return ScoredContinuations(
            np.array(lps), np.array(ends[start:], dtype=np.int64), np.array([0, len(lps)], dtype=np.int64)
        )

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        last = self.head[-self.model.order :]
        tokens = np.asarray(allowed, dtype=np.int64)
        rows = [self.ngram.row(last + list(p), tokens) for p in paths]
        return np.array(rows, dtype=np.float64).reshape(len(paths), len(allowed))

    def moments(self, paths: Sequence[Sequence[int]]) -> np.ndarray:
        last = self.head[-self.model.order :]
        return np.array([self.ngram.moments(last + list(p)) for p in paths], dtype=np.float64).reshape(len(paths), 2)

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        prompt = self.context[: len(self.context) - len(self.tail)] + "".join(map(self.model.pieces.text, path))
        return self.model._decode(
            prompt, max_new_tokens=max_new_tokens, temperature=0.0, rng=np.random.default_rng(0), stop=()
        ).text


@register("backend", "mock", files=lambda o: [str(o["tokenizer"])] if o.get("tokenizer") else [])
def _mock_backend(
    *, order: Annotated[int, Field(ge=1, le=64)] = 4, alpha: Annotated[float, Field(gt=0)] = 0.05,
    outputs: Sequence[str] | None = None, digits: Annotated[int, Field(ge=1, le=4)] = 1, tokenizer: str | None = None,
) -> MockModel:
    """The mock n-gram model, no torch needed (digits > 1: digit runs in groups, 3 as Llama 3 reads them; tokenizer:
    a tokenizer.json whose tokens it reads)."""
    return MockModel(order=order, alpha=alpha, outputs=outputs, digits=digits, tokenizer=tokenizer)
