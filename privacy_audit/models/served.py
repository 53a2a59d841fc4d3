"""One served model's endpoint as a scorer: prompt log-probabilities over HTTP (`/v1/completions` with `echo` and
`logprobs`), trusted only after a probe shows they are there and aligned with the prompt's tokens, and the server's
own tokenize and detokenize endpoints. The scorer and the prompt it reads are `served_context`.

The server tokenizes each whole text (teaching prompt + separator + candidate) itself, so its tokens are the
canonical ones; on a sample of every batch their count is checked against the server's own tokenize endpoint.
The probe scores a known text: one log-probability per prompt token, the first empty, the rest finite and <= 0,
the tokens spelling the text, and aligned: in the third copy of a repeated random text an aligned scorer gives
every token a high probability (it copies), while one shifted by a token does not. llama-cpp-python's server
is shifted for a model whose GGUF adds no start token; prefixing the text with the start token's text aligns it
(and conditions on it), which the probe tries and the report records. Servers that give log-probabilities of
generated tokens only (llama.cpp's llama-server, Ollama) or refuse `echo` (the OpenAI API) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from privacy_audit.errors import ModelError
from privacy_audit.models.http import Endpoint, Unreachable

PROBE_TEXT = " ".join(["violet 3971 quarry mellow 5824 tundra ribbon 0617 cobalt"] * 3) + "."
# An aligned scorer copies the third copy: its mean log-probability per token is far above this (SmolLM2-135M:
# about -0.3 nats); a scorer shifted by one token gives about -5.
ALIGNED_NATS = -1.5
# Start-token texts the probe tries, in order, when the plain text is not aligned.
START_TEXTS = ("<|im_start|>", "<|begin_of_text|>", "<s>", "<|endoftext|>", "<bos>")


@dataclass(frozen=True)
class Echo:
    """A prompt's tokens as the server read it: their text, log-probability in nats (None where it gives none)
    and each token's end offset in characters within the prompt; `first_empty`: the server gave the very first
    token it read (the start token where it showed one) no log-probability, as an aligned echo does."""

    tokens: tuple[str, ...]
    logprobs: tuple[float | None, ...]
    ends: tuple[int, ...]
    first_empty: bool


@dataclass(frozen=True)
class Probe:
    """What the probe found: whether scores can be trusted, why not, and the start text that aligned them."""

    ok: bool
    reason: str
    start_text: str = ""
    aligned_nats: float | None = None


def parse_echo(choice: Any, text: str, start_text: str) -> Echo:
    """The prompt tokens of one echoed choice (tokens generated after them dropped), checked against `text`.

    Where the answer gives each token's character offset (`text_offset`, as OpenAI's completions format, vLLM and
    llama-cpp-python do), tokens are placed by it: a character split across tokens (an emoji, most non-Latin
    scripts) comes back as byte pieces whose text is empty or partial, and each piece must lie within its own
    span of the prompt, the spans running from its start to its end. Without offsets, the tokens must spell it."""
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    if (
        not isinstance(lp, dict)
        or not isinstance(lp.get("tokens"), list)
        or not isinstance(lp.get("token_logprobs"), list)
    ):
        raise ModelError("the answer has no log-probabilities (choices[i].logprobs.tokens and token_logprobs)")
    tokens, values = [str(t) for t in lp["tokens"]], list(lp["token_logprobs"])
    if len(values) != len(tokens):
        raise ModelError(f"the answer has {len(tokens)} tokens but {len(values)} log-probabilities")
    offsets = lp.get("text_offset")
    placed = isinstance(offsets, list) and len(offsets) == len(tokens) and all(
        isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    first_empty = bool(values) and values[0] is None
    if start_text and tokens and tokens[0] == start_text:  # the start token shown as text (vLLM): not part of `text`
        tokens, values = tokens[1:], values[1:]
        offsets = offsets[1:] if placed else offsets
    spans = _placed(tokens, offsets, text, start_text) if placed else _spelt(tokens, text)
    values = [None if v is None else float(v) for v in values[: len(spans)]]
    return Echo(tuple(tokens[: len(spans)]), tuple(values), tuple(end for _, end in spans), first_empty)


def _placed(tokens: list[str], offsets: list[int], text: str, start_text: str) -> list[tuple[int, int]]:
    """Each prompt token's (start, end) in `text` by the server's offsets (relative to `text`, or to the start text
    and `text`), checked: they rise from 0 to the text's end, and each token's text lies within its span."""
    shift = offsets[0] if offsets and start_text and offsets[0] == len(start_text) else 0
    starts = [o - shift for o in offsets]
    prompt = [s for s in starts if s < len(text)]
    spans = [(s, starts[i + 1] if i + 1 < len(starts) else len(text)) for i, s in enumerate(prompt)]
    if spans:
        spans[-1] = (spans[-1][0], len(text))
    ok = bool(spans) and spans[0][0] == 0 and all(a <= b for a, b in spans) and all(
        b1 == a2 for (_, b1), (a2, _) in zip(spans, spans[1:])) and all(
        tok in text[a:b] for tok, (a, b) in zip(tokens, spans))
    if not ok:
        raise ModelError("the tokens and offsets the server reports do not place the prompt it was sent "
                         "(log-probabilities of generated tokens only, or the prompt was changed)")
    return spans


def _spelt(tokens: list[str], text: str) -> list[tuple[int, int]]:
    """Each prompt token's (start, end) in `text` where the answer gives no offsets: the tokens must spell it."""
    spans: list[tuple[int, int]] = []
    at = 0
    for token in tokens:
        if at >= len(text):
            break  # a generated token
        spans.append((at, at + len(token)))
        at += len(token)
    if "".join(tokens[: len(spans)]) != text:
        raise ModelError("the tokens the server reports do not spell the prompt it was sent (log-probabilities of "
                         "generated tokens only, or the prompt was changed)")
    return spans


class Served:
    """Prompt log-probabilities from one endpoint: one echo request per text, or `per_request` texts in one."""

    def __init__(self, endpoint: Endpoint, model: str, *, per_request: int = 1, echo_max_tokens: int = 1,
                 check_model: bool = True) -> None:
        self.endpoint = endpoint
        self.model = model
        self.per_request = per_request
        self.echo_max_tokens = echo_max_tokens
        self.start_text = ""
        self.tokens_sent = 0
        self.served_as: set[str] = set()  # the model names the server said it answered with
        self._tokenize: str | None = None
        self._model_checked = not check_model

    def check_model(self) -> None:
        """Once: where the server lists its models (GET /models), the model asked for must be one of them (a server
        that ignores the name would answer with another model, recorded under the wrong name)."""
        if self._model_checked:
            return
        self._model_checked = True
        try:
            listed = self.endpoint.get("/models").get("data")
        except ModelError:
            return  # no list to check against: the answers' own model names are recorded
        ids = [m.get("id") for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
        ids = [i for i in ids if isinstance(i, str)]
        if ids and self.model not in ids:
            shown = ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            raise ModelError(f"{self.endpoint.public} serves {shown}, not {self.model!r}; name one of them "
                             "(openai:<model>), or -m check_model=false where the server routes any name")

    def answered(self, data: Mapping[str, object]) -> None:
        """Record the model name an answer says it came from."""
        if isinstance(data.get("model"), str) and data["model"]:
            self.served_as.add(str(data["model"]))

    def echo(self, texts: Sequence[str]) -> list[Echo]:
        batches = [list(texts[i : i + self.per_request]) for i in range(0, len(texts), self.per_request)]
        return [e for batch in self.endpoint.map(self._batch, batches, "scoring") for e in batch]

    def _batch(self, texts: list[str]) -> list[Echo]:
        prompts = [self.start_text + t for t in texts]
        payload = {
            "model": self.model, "prompt": prompts[0] if len(prompts) == 1 else prompts, "echo": True, "logprobs": 1,
            "max_tokens": self.echo_max_tokens, "temperature": 0,
        }
        data = self.endpoint.post("/completions", payload)
        self.answered(data)
        choices = data.get("choices") if isinstance(data.get("choices"), list) else []
        if len(choices) != len(texts) or not all(isinstance(c, dict) for c in choices):
            raise ModelError(f"{self.endpoint.public} answered {len(choices)} choices for {len(texts)} prompts")
        ordered = sorted(choices, key=lambda c: c.get("index", 0))
        out = [parse_echo(c, t, self.start_text) for c, t in zip(ordered, texts)]
        self.tokens_sent += sum(len(e.tokens) for e in out)
        return out

    def count_tokens(self, text: str) -> int | None:
        """How many tokens the server's own tokenize endpoint makes of `text`; None where it has none."""
        ids = self.token_ids(text)
        return None if ids is None else len(ids)

    def token_ids(self, text: str) -> list[int] | None:
        """The token ids the server's own tokenize endpoint makes of `text` (vLLM and SGLang `/tokenize`,
        llama-cpp-python `/extras/tokenize`); None where it has neither."""
        root = self.endpoint.url.removesuffix("/v1")
        bodies = {
            "/tokenize": {"model": self.model, "prompt": text, "add_special_tokens": False},
            "/extras/tokenize": {"input": text},
        }
        if self._tokenize == "":
            return None  # asked before: the server has neither endpoint
        for path in [self._tokenize] if self._tokenize else list(bodies):
            try:
                data = self.endpoint.post(f"{root}{path}", bodies[path])
            except Unreachable:
                raise
            except ModelError:
                continue
            tokens = data.get("tokens")
            if isinstance(tokens, list):
                self._tokenize = path
                if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
                    raise ModelError(f"{self.endpoint.public}{path} answered tokens that are not ids")
                return [int(t) for t in tokens]
        self._tokenize = ""
        return None

    @property
    def tokenize_path(self) -> str | None:
        """The tokenize endpoint found (None: not asked yet; "": the server has none)."""
        return self._tokenize

    def detokenize(self, ids: list[int]) -> str | None:
        """The text of token ids by the server's detokenize endpoint (at the tokenize endpoint's place: vLLM's answers
        `prompt`, SGLang's and llama-cpp-python's `text`); None where it has none."""
        if self._tokenize is None:
            self.token_ids("a")
        if not self._tokenize:
            return None
        path = {"/tokenize": "/detokenize", "/extras/tokenize": "/extras/detokenize"}[self._tokenize]
        root = self.endpoint.url.removesuffix("/v1")
        data = self.endpoint.post(f"{root}{path}", {"model": self.model, "tokens": ids})
        text = data.get("text", data.get("prompt"))
        if not isinstance(text, str):
            raise ModelError(f"{self.endpoint.public}{path} answered without the text")
        return text

    def probe(self, start_texts: Sequence[str]) -> Probe:
        """Score PROBE_TEXT plainly, then after each start text, until its log-probabilities are there and aligned."""
        self.check_model()
        reasons = []
        for start in ("", *start_texts):
            self.start_text = start
            try:
                (echo,) = self._batch([PROBE_TEXT])
            except Unreachable:
                self.start_text = ""
                raise  # a server that does not answer says nothing about what it can do
            except ModelError as exc:
                self.start_text = ""
                return Probe(False, f"its answer to an echo request with logprobs is unusable: {exc}")
            rest = echo.logprobs if not echo.logprobs or echo.logprobs[0] is not None else echo.logprobs[1:]
            if not echo.first_empty or any(v is None or not math.isfinite(v) or v > 1e-4 for v in rest):
                reasons.append(
                    f"{'after ' + repr(start) + ', ' if start else ''}the first token has a log-probability or a later "
                    "one has none"
                )
                continue
            third = [v for v, end in zip(echo.logprobs, echo.ends) if end > 2 * len(PROBE_TEXT) // 3 and v is not None]
            aligned = float(np.mean(third))
            if aligned > ALIGNED_NATS:
                return Probe(True, "aligned" + (f" after the start text {start!r}" if start else ""), start, aligned)
            reasons.append(f"not aligned{' after ' + repr(start) if start else ''} (a repeated text's third copy gets "
                           f"{aligned:.2f} nats a token)")
        self.start_text = ""
        return Probe(
            False, "its prompt log-probabilities are not aligned with the prompt's tokens: " + "; ".join(reasons)
        )
