"""A small OpenAI-compatible server for fault tests only (429 with retry-after, 500, a hang, a 400), recording
what it was sent. The real server of the end-to-end tests is llama-cpp-python's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A reply: (status, headers, body as a JSON object), None to hang until the client gives up, or a function that
# writes the raw answer itself (a body that drips, never ends, or is not JSON).
Reply = tuple[int, dict[str, str], dict[str, Any]] | Callable[[BaseHTTPRequestHandler], None] | None


@dataclass
class Recorder:
    """What the server saw: request bodies and headers in order, and the most requests it held at once."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def chat_reply(text: str, logprobs: list[float] | None = None, fingerprint: str | None = "fp-1") -> Reply:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": v} for v in logprobs]}
    return 200, {}, {"choices": [choice], **({"system_fingerprint": fingerprint} if fingerprint else {})}


@contextmanager
def serve(
    respond: Callable[[int, dict[str, Any]], Reply], delay: float = 0.0, models: list[str] | None = None,
) -> Iterator[tuple[str, Recorder]]:
    """Run the server on 127.0.0.1 (a free port) in a thread; `respond(n, body)` answers request n; GET /v1/models
    lists `models` (404 without them)."""
    seen = Recorder()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            found = models is not None and self.path == "/v1/models"
            payload = json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in models or []]}
                                 if found else {"error": {"message": "not found"}}).encode()
            self.send_response(200 if found else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with seen.lock:
                n = count[0]
                count[0] += 1
                seen.bodies.append(body)
                seen.headers.append({k.lower(): v for k, v in self.headers.items()})
                seen.in_flight += 1
                seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
            try:
                time.sleep(delay)
                reply = respond(n, body)
                if reply is None:
                    time.sleep(30)
                    return
                if callable(reply):
                    reply(self)
                    return
                status, headers, data = reply
                payload = json.dumps(data).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            finally:
                with seen.lock:
                    seen.in_flight -= 1

        def log_message(self, *_args: Any) -> None:
            return None

    with threaded(Handler) as url:
        yield url, seen


@contextmanager
def threaded(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` serving on 127.0.0.1 (a free port) in a thread: its base URL (.../v1) until the block ends."""

    class Server(ThreadingHTTPServer):
        block_on_close = False  # a handler still dripping to a client that gave up does not hold the test

        def handle_error(self, request: Any, client_address: Any) -> None:
            return None  # a client that gives up on a dripping answer is what the faults are for

    server = Server(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
