"""`ngram`: a data-only scorer for audits without any model's log-probabilities (a closed teacher, a closed student).

An interpolated Kneser-Ney language model is fitted on the teaching text it reads (optionally mixed with a
background corpus the user names), over characters or words, and gives the log-probability of each candidate
after the text: generated text that echoes a canary makes that canary likely, as The Canary's Echo (Meeus et
al., 2025) measures with its n-gram attack. The smoothing is nltk's `KneserNeyInterpolated` recursion (absolute
discounting, continuation counts for lower orders), whose unigram level is interpolated with the uniform
distribution so that tokens the text never shows keep a probability. Every measurement, p-value and gate rule
applies to it unchanged. No torch.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from privacy_audit._io import read_text
from privacy_audit._registry import register
from privacy_audit.errors import InputError
from privacy_audit.models.base import CachingScorer, LanguageModel, ModelInfo
from privacy_audit.models.context import (
    ContextBackend, Greedy, Joint, NextTokens, ScoredContinuations, Tokens, Vocabulary,
)

# Words, runs of whitespace, and single other characters: a text's tokens spell it exactly, and a secret is the
# same token wherever it stands (a copy in the teaching text followed by a newline, a candidate ending the text).
WORD = re.compile(r"\w+|\s+|[^\w\s]")
# Word tokens are numbered from here (characters are their code points).
WORD_IDS = 1 << 21
# Characters beyond the 256 byte values count in the vocabulary only when a text holds them.
BASE_VOCAB = 256


class KneserNey:
    """Interpolated Kneser-Ney over a token sequence: P(w | h) = max(c(h w) - d, 0) / c(h) + d N1+(h .) / c(h)
    P(w | h[1:]), with continuation counts in place of counts below the top order (nltk's recursion), and at the
    bottom the continuation unigram interpolated with the uniform distribution over the vocabulary. Below the top
    order N1+(h .) counts the words with a continuation count, so every distribution sums to 1 (nltk counts the
    words seen after h, which include those seen only at the text's start, and can sum to more)."""

    def __init__(self, tokens: Sequence[str], order: int, discount: float, vocab_size: int) -> None:
        self.order, self.discount, self.vocab_size = order, discount, vocab_size
        self.follow: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                self.follow[tuple(tokens[i : i + n - 1])][tokens[i + n - 1]] += 1
        # continuation counts: for a context h of fewer than order - 1 tokens, how many distinct x precede (h, w)
        self.cont: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        self.cont_total: Counter[tuple[str, ...]] = Counter()
        for history, nexts in self.follow.items():
            if history:
                for word in nexts:
                    self.cont[history[1:]][word] += 1
                self.cont_total[history[1:]] += len(nexts)
        self._memo: dict[tuple[tuple[str, ...], str], float] = {}

    def prob(self, history: tuple[str, ...], word: str) -> float:
        history = history[-(self.order - 1) :] if self.order > 1 else ()
        key = (history, word)
        if key not in self._memo:
            self._memo[key] = self._prob(history, word)
        return self._memo[key]

    def _prob(self, history: tuple[str, ...], word: str) -> float:
        if not history:
            return self._unigram(word)
        nexts = self.follow.get(history)
        if not nexts:
            return self.prob(history[1:], word)
        if len(history) + 1 == self.order:
            count, total, kinds = nexts[word], sum(nexts.values()), len(nexts)
        else:
            count, total, kinds = self.cont[history][word], self.cont_total[history], len(self.cont[history])
            if not total:  # a context seen only at the text's start has no continuation counts (nltk divides by 0)
                return self.prob(history[1:], word)
        alpha = max(count - self.discount, 0.0) / total
        gamma = self.discount * kinds / total
        return alpha + gamma * self.prob(history[1:], word)

    def _unigram(self, word: str) -> float:
        """The continuation unigram (raw counts for order 1), interpolated with the uniform distribution by its
        discounted mass, so an unseen token keeps a probability (Chen and Goodman 1998)."""
        counts = self.cont[()] if self.order > 1 else self.follow[()]
        total = self.cont_total[()] if self.order > 1 else sum(counts.values())
        if not total:
            return 1.0 / self.vocab_size
        return max(counts[word] - self.discount, 0.0) / total + self.discount * len(counts) / total / self.vocab_size


class NgramModel(LanguageModel, CachingScorer):
    """Kneser-Ney fitted on each context it reads; scores continuations, next tokens, and decodes greedily."""

    backend = "ngram"

    def __init__(self, *, order: int = 5, tokens: Literal["characters", "words"] = "characters", discount: float = 0.75,
                 background: str | None = None, background_weight: float = 0.5) -> None:
        self.order, self.tokens, self.discount = order, tokens, discount
        self.background_path, self.background_weight = background, background_weight
        self.background_text = read_text(background, what="background corpus") if background else None
        if self.background_text is not None and not self.background_text.strip():
            raise InputError(f"background corpus {background} is empty; give text of the domain, or no background")
        self.name = f"ngram-{tokens}-{order}"
        self.words: list[str] = []
        self.word_ids: dict[str, int] = {}

    def id_of(self, token: str) -> int:
        """A token's id: its code point for a character, else its number among the words seen."""
        if self.tokens == "characters":
            return ord(token)
        if token not in self.word_ids:
            self.word_ids[token] = WORD_IDS + len(self.words)
            self.words.append(token)
        return self.word_ids[token]

    def token_of(self, token_id: int) -> str:
        return chr(token_id) if token_id < WORD_IDS else self.words[token_id - WORD_IDS]

    def split(self, text: str) -> list[str]:
        """The text's tokens: characters, or words, whitespace runs and other characters (they spell the text)."""
        return list(text) if self.tokens == "characters" else [m.group(0) for m in WORD.finditer(text) if m.group(0)]

    def info(self) -> ModelInfo:
        options: dict[str, str | int | float | bool | None] = {
            "order": self.order, "tokens": self.tokens, "discount": self.discount}
        if self.background_path is not None:
            options |= {"background": self.background_path, "background_weight": self.background_weight}
        return ModelInfo(backend=self.backend, name=self.name, options=options)

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        out = []
        for text in texts:
            toks = self.split(text)
            out.append(([self.id_of(t) for t in toks], np.cumsum([len(t) for t in toks], dtype=np.int64).tolist()))
        return out

    def _open_context(self, context: str) -> NgramContext | CharacterContext:
        return CharacterContext(self, context) if self.tokens == "characters" else NgramContext(self, context)


class NgramContext(ContextBackend, NextTokens, Greedy):
    """The fitted model of one context; a candidate's tokens are read after the context's last tokens."""

    def __init__(self, model: NgramModel, context: str) -> None:
        self.model = model
        self.context = context
        toks = model.split(context)
        self.head = [model.id_of(t) for t in toks]
        self.last = toks[-1] if toks else ""
        self.history = tuple(toks[-(model.order - 1) :]) if model.order > 1 else ()
        texts = [context] + ([model.background_text] if model.background_text else [])
        self.seen = {t for text in texts for t in model.split(text)}
        vocab = self.vocab_size = max(BASE_VOCAB, len(self.seen) + 1)
        self.fitted = KneserNey(toks, model.order, model.discount, vocab)
        self.background = (KneserNey(model.split(model.background_text), model.order, model.discount, vocab)
                           if model.background_text else None)

    def logprob(self, history: tuple[str, ...], token: str) -> float:
        """log2 P(token | history), the background mixed in where there is one."""
        p = self.fitted.prob(history, token)
        if self.background is not None:
            w = self.model.background_weight
            p = (1 - w) * p + w * self.background.prob(history, token)
        return math.log2(p)

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        pairs = self.model.tokenize(continuations)
        return [ids for ids, _ in pairs], [ends for _, ends in pairs]

    def joint(self, continuation: str) -> Joint:
        """The context's last token read again with the continuation: a regex scan from a token's start finds the
        same tokens as from the text's, and the ones before it end inside the context."""
        (ids, ends), = self.model.tokenize([self.last + continuation])
        return Joint(len(self.head) - (1 if self.last else 0), ids, [e - len(self.last) for e in ends])

    def _text(self, ids: Sequence[int]) -> list[str]:
        return [self.model.token_of(i) for i in ids]

    def _after(self, history: tuple[str, ...], token: str) -> tuple[str, ...]:
        return (history + (token,))[-(self.model.order - 1) :] if self.model.order > 1 else ()

    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        values: list[float] = []
        for row in ids:
            history = self.history
            for token in self._text(row):
                values.append(self.logprob(history, token))
                history = self._after(history, token)
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in ids])]).astype(np.int64)
        flat_ends = np.array([e for row in ends for e in row], dtype=np.int64)
        return ScoredContinuations(np.array(values, dtype=np.float64), flat_ends, offsets)

    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        """Tokens `ids[start:]` of a whole text, each after the ones before it (where a text moves the context's)."""
        tokens = self._text(ids)
        history: tuple[str, ...] = ()
        values = []
        for j, token in enumerate(tokens):
            if j >= start:
                values.append(self.logprob(history, token))
            history = self._after(history, token)
        return ScoredContinuations(np.array(values), np.asarray(ends[start:], dtype=np.int64),
                                   np.array([0, len(values)], dtype=np.int64))

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        out = np.empty((len(paths), len(allowed)))
        choices = self._text(allowed)
        for i, path in enumerate(paths):
            history = self.history
            for token in self._text(path):
                history = self._after(history, token)
            out[i] = [self.logprob(history, token) for token in choices]
        return out

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        """Characters (or seen words) decoded greedily after the context and `path`."""
        history = list(self.history) + self._text(path)
        seen = sorted({t for nexts in self.fitted.follow.values() for t in nexts})
        text = ""
        for _ in range(max_new_tokens):
            if not seen:
                break
            h = tuple(history[-(self.model.order - 1) :]) if self.model.order > 1 else ()
            best = max(seen, key=lambda t: self.logprob(h, t))
            text += best
            history.append(best)
        return text


class CharacterContext(NgramContext, Vocabulary):
    """Over characters the model is a distribution over a vocabulary it can list: the characters of the texts it
    read, then the first code points, `vocab_size` in all (the uniform level's size), so the certified search can
    walk it. Over words it is not (every unseen word shares the uniform level), and a word list is sampled."""

    only_when: ClassVar[str] = "tokens=characters"

    def vocabulary(self) -> dict[int, str]:
        listed = {ord(c): c for c in self.seen}
        point = 0
        while len(listed) < self.vocab_size:
            listed.setdefault(point, chr(point))
            point += 1
        return listed


@register("backend", "ngram", files=lambda o: [str(o["background"])] if o.get("background") else [])
def _ngram_backend(
    *,
    order: Annotated[int, Field(ge=1, le=16)] = 5,
    tokens: Literal["characters", "words"] = "characters",
    discount: Annotated[float, Field(gt=0, lt=1)] = 0.75,
    background: str | None = None,
    background_weight: Annotated[float, Field(ge=0, le=1)] = 0.5,
) -> NgramModel:
    """A data-only scorer: interpolated Kneser-Ney fitted on the teaching text (no torch, no model).

    order, characters or words, the discount, and a background corpus file mixed in with background_weight
    (what ordinary text of the domain looks like, so that only what the teaching text adds stands out).
    """
    return NgramModel(order=order, tokens=tokens, discount=discount, background=background,
                      background_weight=background_weight)
