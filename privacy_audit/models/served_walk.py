"""Next-token log-probabilities from a served scorer (the walk): at a node of a search (prompt + separator + a
secret's first tokens), the log-probabilities of chosen next tokens, one request per node, nodes sent in token
order so that consecutive requests share the longest prefix and the server's prefix cache evaluates the new tokens
only. With it a served scorer gets exact scoring by walking the secrets' tree (a request per internal node, not per
candidate), certified intervals at any space size, best-first and greedy extraction.

Three answer shapes (read in each server's source; the README's server table says which were run for real):
- `vllm`: /v1/completions with the prompt as token ids, max_tokens 1, `logprob_token_ids` (at most 128 ids a
  request) and `return_tokens_as_token_ids`: top_logprobs[0] keyed "token_id:N".
- `sglang`: its native /generate with input_ids, return_logprob, token_ids_logprob and logprob_start_len -1 (the
  generated position only): meta_info.output_token_ids_logprobs[0], rows [logprob, id, text].
- `top-k` (llama-cpp-python, any server that returns top_logprobs by token text): the prompt as text and
  `logprobs: k`, k raised until every chosen token's text is among them; each node's text must tokenize to the
  node's tokens, which the server's tokenize endpoint checks on every node.
Token ids and texts come from the server's tokenize and detokenize endpoints; a text whose tokens do not spell it
(a character split into byte pieces) cannot be walked, and the walk says so.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import JsonValue

from privacy_audit.errors import ModelError
from privacy_audit.models.context import Greedy, NextTokens
from privacy_audit.models.scored import ScoredContinuations
from privacy_audit.models.served import PROBE_TEXT, Served

WalkKind = Literal["vllm", "sglang", "top-k"]
# vLLM refuses more chosen ids than this in one request (its protocol's cap).
MAX_CHOSEN_IDS = 128
# top-k: the first k asked, the factor it grows by while a chosen token is missing, and the most asked.
TOP_K_FIRST = 32
TOP_K_GROWTH = 8
TOP_K_MOST = 1 << 18
# Positions of the probe text whose next-token log-probabilities are compared with the echo's.
CHECKED_POSITIONS = 4


class ServedTokens:
    """The server's token ids of a text (its tokenize endpoint, after the probe's start text) and each token's text
    (its detokenize endpoint, asked once per id): the ids with their end offsets in the text."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.texts: dict[int, str] = {}
        self._start: list[int] | None = None

    def start_ids(self) -> list[int]:
        """The tokens of the probe's start text (a start token given as text), which every prompt begins with."""
        if self._start is None:
            self._start = self._ids(self.served.start_text) if self.served.start_text else []
        return self._start

    def _ids(self, text: str) -> list[int]:
        ids = self.served.token_ids(text)
        if ids is None:
            raise ModelError(f"{self.served.endpoint.public} has no tokenize endpoint (/tokenize or /extras/tokenize)")
        return ids

    def text_of(self, ids: Sequence[int]) -> str:
        """The text of token ids, each token's text read once from the detokenize endpoint."""
        for i in ids:
            if i not in self.texts:
                text = self.served.detokenize([int(i)])
                if text is None:
                    raise ModelError(f"{self.served.endpoint.public} has no detokenize endpoint")
                self.texts[int(i)] = text
        return "".join(self.texts[int(i)] for i in ids)

    def tokens(self, text: str) -> tuple[list[int], list[int]]:
        """The ids of `text` as the server reads it after the start text, and each token's end offset in `text`."""
        start = self.start_ids()
        ids = self._ids(self.served.start_text + text)
        if ids[: len(start)] != start:
            raise ModelError(f"{self.served.endpoint.public} tokenizes its start text differently before other text")
        ids = ids[len(start) :]
        if self.text_of(ids) != text:
            raise ModelError(f"{self.served.endpoint.public}'s tokens of a text do not spell it (a character split "
                             "into byte pieces); next-token requests cannot be placed in it")
        ends = np.cumsum([len(self.texts[i]) for i in ids]).tolist() if ids else []
        return ids, [int(e) for e in ends]


class ServedWalk(NextTokens, Greedy):
    """Next-token log-probabilities and greedy decoding over HTTP, in one of the `WalkKind` answer shapes; counts its
    requests, the prompt tokens it sent and those past the previous request's common prefix (what a one-slot prefix
    cache such as llama-cpp-python's evaluates)."""

    def __init__(self, served: Served, kind: WalkKind, tokens: ServedTokens | None = None, *,
                 tolerance: float = math.inf) -> None:
        self.served = served
        self.kind = kind
        self.tolerance = tolerance
        self.tokens = tokens or ServedTokens(served)
        self.requests = 0
        self.sent = 0
        self.evaluated = 0
        self._last: list[int] = []
        self.known: dict[tuple[bytes, int], float] = {}  # (node, token) -> log2-prob, as first answered
        self._lock = threading.Lock()
        self._ask: Callable[[list[int], list[int]], list[float]] = {
            "vllm": self._vllm, "sglang": self._sglang, "top-k": self._top_k}[kind]

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        """log2 p(allowed[j] | start + paths[i]): one request per path (more where a server caps the ids)."""
        chosen = [int(a) for a in allowed]
        return np.array(self._many([list(p) for p in paths], [chosen] * len(paths)), dtype=np.float64).reshape(
            len(paths), len(chosen))

    def score(self, ids: list[list[int]], ends: list[list[int]], *, again: bool = False) -> ScoredContinuations:
        """Log2-probs of each token list's own tokens (those ending after the context, end > 0), by one request per
        internal node of the tree the lists make (a prefix shared by many lists is asked once); `again`: asked anew,
        not read from what was answered before."""
        owns = [[j for j, end in enumerate(row_ends) if end > 0] for row_ends in ends]
        if any(own and own[0] == 0 for own in owns) and not self.tokens.start_ids():
            raise ModelError(f"{self.served.endpoint.public} gives the first token of a text no log-probability; "
                             "score after a prompt")
        places = [[(tuple(row[:j]), row[j]) for j in own] for row, own in zip(ids, owns)]  # (node, token) a token
        wanted: dict[tuple[int, ...], set[int]] = {}
        for node, token in (place for row in places for place in row):
            wanted.setdefault(node, set()).add(token)
        nodes = list(wanted)
        chosen = [sorted(wanted[n]) for n in nodes]
        rows = self._many([list(n) for n in nodes], chosen, again=again)
        value = {(n, a): v for n, c, r in zip(nodes, chosen, rows) for a, v in zip(c, r)}
        logprobs = [value[place] for row in places for place in row]
        token_ends = [row_ends[j] for row_ends, own in zip(ends, owns) for j in own]
        offsets = np.concatenate([[0], np.cumsum([len(own) for own in owns])]).astype(np.int64)
        return ScoredContinuations(np.array(logprobs, dtype=np.float64), np.array(token_ends, dtype=np.int64), offsets)

    def _many(self, paths: list[list[int]], chosen: list[list[int]], *, again: bool = False) -> list[list[float]]:
        """Log2-probs of chosen[i] after paths[i]. What the server answered is kept and read again, so that a node's
        numbers are the same wherever they are used (a llama.cpp server's differ by a few tenths of a bit with the
        batch a token is evaluated in), unless asked `again`. The rest is asked a request per path, in token order so
        that consecutive requests share their longest prefix (the server's cache evaluates the new tokens only)."""
        keys = [_key(p) for p in paths]
        missing = [[a for a in c if again or (k, a) not in self.known] for k, c in zip(keys, chosen)]
        todo = sorted((i for i, m in enumerate(missing) if m), key=lambda i: paths[i])
        rows = self.served.endpoint.map(lambda i: self.ask(paths[i], missing[i]), todo, "next tokens")
        fresh = {(keys[i], a): v / math.log(2) for i, row in zip(todo, rows) for a, v in zip(missing[i], row)}
        if not again:
            self.known |= fresh
        return [[fresh[(k, a)] if again else self.known[(k, a)] for a in c] for k, c in zip(keys, chosen)]

    def ask(self, path: list[int], allowed: list[int]) -> list[float]:
        """The natural log-probability of each allowed token after the start tokens and `path`."""
        ids = self.tokens.start_ids() + path
        with self._lock:
            common = next((k for k, (a, b) in enumerate(zip(ids, self._last)) if a != b),
                          min(len(ids), len(self._last)))
            self._last = ids
            self.sent += len(ids)
            self.evaluated += len(ids) - common
        values = self._ask(ids, allowed)
        if len(values) != len(allowed) or not all(math.isfinite(v) and v <= 1e-6 for v in values):
            raise ModelError(f"{self.served.endpoint.public} answered next-token log-probabilities that are not "
                             "finite and <= 0, or not one per chosen token")
        return values

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        data = self._post("/completions", {"model": self.served.model, "prompt": self._text(list(path)),
                                           "max_tokens": max_new_tokens, "temperature": 0})
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        text = first.get("text") if isinstance(first, dict) else None
        if not isinstance(text, str):
            raise ModelError(f"{self.served.endpoint.public} answered a completion without text")
        return text

    def _post(self, path: str, body: dict[str, JsonValue]) -> dict[str, JsonValue]:
        with self._lock:
            self.requests += 1
        data = self.served.endpoint.post(path, body)
        self.served.answered(data)
        return data

    def _text(self, path: list[int]) -> str:
        """The prompt text of a node (start text and the tokens' texts)."""
        return self.served.start_text + self.tokens.text_of(path)

    def _vllm(self, ids: list[int], allowed: list[int]) -> list[float]:
        found: dict[int, float] = {}
        for at in range(0, len(allowed), MAX_CHOSEN_IDS):
            chosen = allowed[at : at + MAX_CHOSEN_IDS]
            data = self._post("/completions", {
                "model": self.served.model, "prompt": ids, "max_tokens": 1, "temperature": 0, "logprobs": 1,
                "logprob_token_ids": chosen, "return_tokens_as_token_ids": True})
            for key, value in _top_logprobs(data).items():
                if key.startswith("token_id:") and key[9:].lstrip("-").isdigit() and isinstance(value, (int, float)):
                    found[int(key[9:])] = float(value)
        return _chosen(found, allowed, self.served)

    def _sglang(self, ids: list[int], allowed: list[int]) -> list[float]:
        root = self.served.endpoint.url.removesuffix("/v1")
        data = self._post(f"{root}/generate", {
            "input_ids": ids, "sampling_params": {"max_new_tokens": 1, "temperature": 0}, "return_logprob": True,
            "logprob_start_len": -1, "token_ids_logprob": allowed})
        meta = data.get("meta_info")
        rows = meta.get("output_token_ids_logprobs") if isinstance(meta, dict) else None
        first = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], list) else []
        found = {int(r[1]): float(r[0]) for r in first if isinstance(r, list) and len(r) >= 2
                 and isinstance(r[0], (int, float)) and isinstance(r[1], int)}
        return _chosen(found, allowed, self.served)

    def _canonical(self, path: list[int]) -> str | None:
        """The text of token ids after the start text where the server tokenizes it back to them, else None."""
        text = self.tokens.text_of(path)
        return text if self.tokens.tokens(text)[0] == path else None

    def _top_k(self, ids: list[int], allowed: list[int]) -> list[float]:
        path = ids[len(self.tokens.start_ids()) :]
        body = self._canonical(path)
        if body is None:
            return self._echoed(path, allowed)
        text = self.served.start_text + body
        wanted = {a: self.tokens.text_of([a]) for a in allowed}
        if len(set(wanted.values())) < len(wanted) or "" in wanted.values():
            raise ModelError("two chosen tokens have the same text (or none): a server that answers by token text "
                             "cannot tell them apart")
        k = max(TOP_K_FIRST, 2 * len(allowed))
        while True:
            data = self._post("/completions", {"model": self.served.model, "prompt": text, "max_tokens": 1,
                                               "temperature": 0, "logprobs": k})
            top = _top_logprobs(data)
            if all(t in top for t in wanted.values()):
                return [float(top[wanted[a]]) for a in allowed]  # type: ignore[arg-type]
            if len(top) < k // 2 or k >= TOP_K_MOST:
                raise ModelError(f"{self.served.endpoint.public} returned {len(top)} of the {k} most likely next "
                                 "tokens without every chosen one (a server that caps logprobs)")
            k *= TOP_K_GROWTH

    def uncapped(self, text: str) -> None:
        """Raise unless the server returns as many top tokens as asked (TOP_K_FIRST x TOP_K_GROWTH, half of them at
        least where tokens share a text): one that caps them (vLLM: 20 by default) cannot answer a chosen token
        outside its top few."""
        asked = TOP_K_FIRST * TOP_K_GROWTH
        got = len(_top_logprobs(self._post("/completions", {"model": self.served.model, "prompt": text,
                                                             "max_tokens": 1, "temperature": 0, "logprobs": asked})))
        if got < asked // 2:
            raise ModelError(f"asked for the {asked} most likely next tokens, it returned {got} (it caps logprobs)")

    def _echoed(self, path: list[int], allowed: list[int]) -> list[float]:
        """Where a node's text alone tokenizes otherwise (it ends inside a run of whitespace the next token splits),
        each child's text is echoed and its last token read, where that text tokenizes to the child's tokens."""
        values = []
        for a in allowed:
            text = self._canonical(path + [a])
            if text is None:
                raise ModelError(f"{self.served.endpoint.public} tokenizes a node's text into other tokens than the "
                                 "node's; its next tokens cannot be asked by text")
            with self._lock:
                self.requests += 1
            (echo,) = self.served.echo([text])
            last = echo.logprobs[-1] if echo.logprobs else None
            if last is None:
                raise ModelError(f"{self.served.endpoint.public} echoed no log-probability for a node's next token")
            values.append(float(last))
        return values


def _key(path: Sequence[int]) -> bytes:
    """A node's key: a digest of its token ids (a path holds the whole prompt: hundreds of ids)."""
    return hashlib.blake2b(np.asarray(path, dtype=np.int64).tobytes(), digest_size=16).digest()


def _top_logprobs(data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The first generated position's top_logprobs of a completions answer."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    top = lp.get("top_logprobs") if isinstance(lp, dict) else None
    first = top[0] if isinstance(top, list) and top else None
    if not isinstance(first, dict):
        raise ModelError("the answer has no top_logprobs for the generated token")
    return first


def _chosen(found: dict[int, float], allowed: list[int], served: Served) -> list[float]:
    missing = [a for a in allowed if a not in found]
    if missing:
        raise ModelError(f"{served.endpoint.public} answered without the log-probability of {len(missing)} chosen "
                         "token ids (a server that ignores them)")
    return [found[a] for a in allowed]


def _candidates(served: Served) -> tuple[WalkKind, ...]:
    """The answer shapes worth trying, from what the server has shown: llama-cpp-python's tokenize endpoint
    (/extras/tokenize) answers by token text only; SGLang lists itself at /get_model_info; else vLLM, then top-k."""
    if served.tokenize_path == "/extras/tokenize":
        return ("top-k",)
    try:
        served.endpoint.get(f"{served.endpoint.url.removesuffix('/v1')}/get_model_info")
    except ModelError:
        return ("vllm", "top-k")
    return ("sglang",)


def open_walk(served: Served, kind: WalkKind | Literal["auto"], tolerance_bits: float) -> ServedWalk | str:
    """The walk of the first answer shape that works (`auto`: those `_candidates` names), checked against the echo:
    at CHECKED_POSITIONS tokens of the probe text its next-token log-probabilities must equal the echo's within
    `tolerance_bits`. Else why none works (a str); a kind named explicitly that fails raises instead."""
    tokens = ServedTokens(served)
    try:
        ids, _ = tokens.tokens(PROBE_TEXT)
        (echo,) = served.echo([PROBE_TEXT])
    except ModelError as exc:
        if kind != "auto":
            raise
        return f"next-token requests not used: {exc}"
    if len(echo.tokens) != len(ids):
        return (f"next-token requests not used: the server's tokenize endpoint makes {len(ids)} tokens of a text it "
                f"echoes as {len(echo.tokens)}")
    step = max(1, len(ids) // (CHECKED_POSITIONS + 1))
    positions = [p for p in range(step, len(ids), step)][:CHECKED_POSITIONS]
    reasons = []
    for name in _candidates(served) if kind == "auto" else (kind,):
        walk = ServedWalk(served, name, tokens, tolerance=tolerance_bits)
        try:
            if name == "top-k":
                walk.uncapped(PROBE_TEXT)
            got = [walk.ask(ids[:p], [ids[p]])[0] for p in positions]
        except ModelError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        worst = max(abs(g - float(echo.logprobs[p] or 0.0)) for g, p in zip(got, positions)) / math.log(2)
        if worst <= tolerance_bits:
            return walk
        reasons.append(f"{name}: next-token log-probabilities differ from the echo's by {worst:.3g} bits (tolerance "
                       f"{tolerance_bits:g})")
    if kind != "auto":
        raise ModelError(f"{served.endpoint.public} cannot be walked: {'; '.join(reasons)}")
    return "next-token requests not used: " + "; ".join(reasons)
