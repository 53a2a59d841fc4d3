"""A served scorer and the teaching prompt it reads: every continuation scored by echo (`served.Served`), or, where
the server answers next-token requests (`served_walk`), along the tree of the continuations' tokens; trusted only
after the probe passes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from privacy_audit.errors import ModelError
from privacy_audit.models.base import Scorer
from privacy_audit.models.context import BoundaryCheck, Context, ScoredContinuations, Tokens, check_sample
from privacy_audit.models.served import START_TEXTS, Echo, Probe, Served


class Walker(Protocol):
    """What a served context walks with (`served_walk.ServedWalk`): the server's tokens of a text, and scores of
    token lists by next-token requests, trusted within `tolerance` bits of the echo's."""

    tokens: TokenReader
    tolerance: float

    def score(self, ids: list[list[int]], ends: list[list[int]], *, again: bool = False) -> ScoredContinuations: ...


class TokenReader(Protocol):
    def tokens(self, text: str) -> tuple[list[int], list[int]]: ...


class ServedContext(Context):
    """A teaching prompt scored over HTTP: every continuation sent with the whole prompt (echo), the server's tokens
    canonical by construction, their count checked against its tokenize endpoint on a sample of every batch; or,
    where the server answers next-token requests (`walk`), the tree of the continuations' tokens walked, checked
    against the echo on a sample."""

    def __init__(self, served: Served, context: str, *, owner: str, walk: Walker | None = None) -> None:
        boundary = BoundaryCheck(head_tokens=0, tail=context, rule="the server tokenizes prompt + candidate at once")
        super().__init__(context, owner=owner, boundary=boundary)
        self.served = served
        self.walk = walk
        self._unwalked(context)

    def _unwalked(self, *texts: str) -> None:
        """Score by echo after all where the server's tokens of these texts cannot be walked (a character split
        into byte pieces), before any score was given, so that every score of this context comes from one path."""
        if self.walk is None:
            return
        try:
            for text in texts:
                self.walk.tokens.tokens(text)
        except ModelError as exc:
            self.walk = None
            self.boundary.rule += f"; scored by echo, not next-token requests: {exc}"

    @property
    def provider(self) -> object:
        return self.walk if self.walk is not None else self.served

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        """The server's tokens of prompt + continuation (all after the empty head), ends relative to the
        continuation, where next-token requests are there to use them."""
        if self.walk is None:
            raise ModelError(f"{self.owner} gives no token paths after a prompt (it scores whole texts)")
        ids, ends = [], []
        for cont in continuations:
            row, row_ends = self.walk.tokens.tokens(self.context + cont)
            ids.append(row)
            ends.append([e - len(self.context) for e in row_ends])
        return ids, ends

    def check(self, continuations: Sequence[str]) -> None:
        """The server's echoed tokens against its tokenize endpoint, for a few of these continuations; where it is
        walked, its next-token log-probabilities against its echo's at the same tokens, for two of them."""
        sample = check_sample(list(continuations))
        self._unwalked(*(self.context + c for c in sample))
        if self.walk is None:
            self._check(sample, self.served.echo([self.context + c for c in sample]))
            return
        sample = sample[:: max(1, len(sample) - 1)][:2]
        echoed, walked = self._echoed(sample), self.walk.score(*self.tokenize(sample))
        self.boundary.checked += len(sample)
        same = len(echoed.logprobs) == len(walked.logprobs) and np.array_equal(echoed.token_ends, walked.token_ends)
        worst = float(np.max(np.abs(echoed.logprobs - walked.logprobs))) if same else math.inf
        if worst > self.walk.tolerance:
            self.boundary.mismatched += 1
            raise ModelError(f"{self.owner}'s next-token log-probabilities differ from its echo's at the same tokens "
                             f"by {worst:.3g} bits (tolerance {self.walk.tolerance:g}); its scores cannot be trusted "
                             "(-m next_tokens=off scores by echo alone)")

    def _check(self, continuations: Sequence[str], echoes: Sequence[Echo]) -> None:
        for cont, echo in zip(continuations, echoes):
            expected = self.served.count_tokens(self.served.start_text + self.context + cont)
            if expected is None:
                return
            self.boundary.checked += 1
            if expected - len(echo.tokens) not in (0, 1):  # 1: a start token the echo does not show
                self.boundary.mismatched += 1
                raise ModelError(f"{self.owner} echoed {len(echo.tokens)} tokens of a text its tokenize endpoint makes "
                                 f"{expected} of; its scores cannot be trusted")

    def __call__(self, continuations: Sequence[str]) -> ScoredContinuations:
        """Each continuation's tokens scored: by next-token requests along the tree of their tokens where the server
        answers them (a request per internal node), else by echoing every whole text."""
        continuations = self._nonempty(continuations)
        if self.walk is not None:
            return self.walk.score(*self.tokenize(continuations))
        return self._echoed(continuations)

    def again(self, continuations: Sequence[str]) -> ScoredContinuations:
        """Scored anew: a walked server is asked again rather than read from its kept answers."""
        if self.walk is None:
            return self(continuations)
        return self.walk.score(*self.tokenize(self._nonempty(continuations)), again=True)

    def _echoed(self, continuations: Sequence[str]) -> ScoredContinuations:
        echoes = self.served.echo([self.context + c for c in continuations])
        sample = check_sample(range(len(continuations)))
        self._check([continuations[i] for i in sample], [echoes[i] for i in sample])
        n = len(self.context)
        logprobs: list[float] = []
        ends: list[int] = []
        sizes = []
        for echo in echoes:
            own = [(v, end - n) for v, end in zip(echo.logprobs, echo.ends) if end > n]
            if any(v is None for v, _ in own):
                raise ModelError(
                    f"{self.owner} gives the first token of a text no log-probability; score after a prompt"
                )
            logprobs += [float(v) / math.log(2) for v, _ in own if v is not None]  # natural logs to bits
            ends += [e for _, e in own]
            sizes.append(len(own))
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return ScoredContinuations(np.array(logprobs, dtype=np.float64), np.array(ends, dtype=np.int64), offsets)


class ServedScorer(Scorer):
    """A scorer behind an HTTP endpoint (`served`), trusted only after the probe passes, run the first time it is
    asked; `start_texts` are the start-token texts the probe may try."""

    served: Served
    start_texts: tuple[str, ...] = START_TEXTS
    walk: Walker | None = None  # next-token requests, where the server answers them (`served_walk`)
    _probe: Probe | None = None
    _token_ids: dict[str, int]

    def probe(self) -> Probe:
        """The served scoring probe, run once: are prompt log-probabilities there and aligned?"""
        if self._probe is None:
            self._probe = self.served.probe(self.start_texts)
        return self._probe

    def refusal(self) -> str | None:
        probe = self.probe()
        return None if probe.ok else f"at {self.served.endpoint.public}: {probe.reason}"

    def _read(self, context: str, owner: str) -> Context:
        return ServedContext(self.served, context, owner=f"{owner} at {self.served.endpoint.public}", walk=self.walk)

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """The server's tokens of each text (as it echoes them; ids numbered by token text) and their ends."""
        if not hasattr(self, "_token_ids"):
            self._token_ids = {}
        echoes = self.served.echo(list(texts))
        return [([self._token_ids.setdefault(t, len(self._token_ids)) for t in e.tokens], list(e.ends))
                for e in echoes]
