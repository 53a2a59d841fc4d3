"""Doubles of vLLM's and SGLang's answer shapes for next-token requests (their documented fields, read in their
source), over one character-level copying model, so the walk's numbers can be checked against the echo's exactly.
The real server of the end-to-end tests is llama-cpp-python's (tests/test_served_slow.py)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.models.fault_server import threaded

VOCAB = [chr(c) for c in range(32, 127)] + ["\n"]


def logprob(prefix: str, char: str) -> float:
    """A proper next-character distribution (nats) that copies: after a context of 3 or more characters seen before,
    the character that followed it then gets 0.9, the others share the rest; else all are equally likely."""
    for size in range(min(8, len(prefix) - 1), 2, -1):
        at = prefix.rfind(prefix[-size:], 0, len(prefix) - 1)
        if at >= 0:
            nxt = prefix[at + size]
            return math.log(0.9) if char == nxt else math.log(0.1 / (len(VOCAB) - 1))
    return -math.log(len(VOCAB))


@dataclass
class Seen:
    """What the double was asked: each request's path and body, in order."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.requests if p == path]


def answer(kind: str, path: str, body: dict[str, Any], shift: float) -> tuple[int, dict[str, Any]]:
    """The double's answer to one POST (`kind`: vllm, sglang, or vllm-old, which rejects logprob_token_ids); `shift`
    nats are added to every next-token answer (a server whose two paths disagree)."""
    if path == "/tokenize":
        return 200, {"tokens": [ord(c) for c in body["prompt"]], "count": len(body["prompt"])}
    if path == "/detokenize":
        return 200, {("text" if kind == "sglang" else "prompt"): "".join(chr(i) for i in body["tokens"])}
    if path == "/generate" and kind == "sglang":
        text = "".join(chr(i) for i in body["input_ids"])
        rows = [[logprob(text, chr(i)) + shift, i, chr(i)] for i in body["token_ids_logprob"]]
        return 200, {"text": "", "meta_info": {"output_token_ids_logprobs": [rows], "cached_tokens": 0}}
    if path != "/v1/completions":
        return 404, {"error": {"message": "not found"}}
    prompt = body["prompt"]
    if body.get("echo"):
        values = [None] + [logprob(prompt[:i], prompt[i]) for i in range(1, len(prompt))]
        lp = {"tokens": list(prompt), "token_logprobs": values, "text_offset": list(range(len(prompt))),
              "top_logprobs": [None] * len(prompt)}
        return 200, {"model": "double", "choices": [{"index": 0, "text": prompt, "logprobs": lp}]}
    if "logprob_token_ids" in body:
        if kind == "vllm-old":
            return 400, {"error": {"message": "extra_forbidden: logprob_token_ids"}}
        if len(body["logprob_token_ids"]) > 128:
            return 400, {"error": {"message": "at most 128 logprob_token_ids"}}
        text = "".join(chr(i) for i in prompt)
        top = {f"token_id:{i}": logprob(text, chr(i)) + shift for i in body["logprob_token_ids"]}
        return 200, {"choices": [{"index": 0, "text": "x", "logprobs": {"top_logprobs": [top]}}]}
    text = prompt if isinstance(prompt, str) else "".join(chr(i) for i in prompt)
    if body.get("logprobs"):
        ranked = sorted(VOCAB, key=lambda c: -logprob(text, c))[: min(int(body["logprobs"]), 20)]
        return 200, {"choices": [{"index": 0, "text": ranked[0],
                                  "logprobs": {"top_logprobs": [{c: logprob(text, c) + shift for c in ranked}]}}]}
    out = ""
    for _ in range(int(body.get("max_tokens", 16))):
        out += max(VOCAB, key=lambda c: logprob(text + out, c))
    return 200, {"choices": [{"index": 0, "text": out}]}


@contextmanager
def walk_server(kind: str, *, shift: float = 0.0) -> Iterator[tuple[str, Seen]]:
    """The double on 127.0.0.1 (a free port) in a thread: its base URL (…/v1) and what it was asked."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "double", "object": "model"}]})
            elif self.path == "/get_model_info" and kind == "sglang":
                self._send(200, {"model_path": "double", "is_generation": True})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with seen.lock:
                seen.requests.append((self.path, body))
            self._send(*answer(kind, self.path, body, shift))

        def log_message(self, *_args: Any) -> None:
            return None

    with threaded(Handler) as url:
        yield url, seen
