"""One OpenAI-compatible endpoint over HTTP (httpx): where requests go and with which key, how many are in flight,
and which failures are retried (429, 5xx, timeouts, dropped connections; with backoff, jitter and the server's
retry-after) and which end the command (any other 4xx, with the server's message). A key never leaves the
request: it is not in a report, a cache, an error or a log line.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import JsonValue

from privacy_audit._progress import tracker
from privacy_audit._text import clean
from privacy_audit.errors import InputError, ModelError

OPENAI_API = "https://api.openai.com/v1"
# Retried: too many requests, and server errors that may pass; never 501 (not implemented) or 505 (wrong version),
# which say the same thing every time.
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600)) - {501, 505}
T = TypeVar("T")
R = TypeVar("R")


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def resolve(base_url: str | None, api_key_env: str | None) -> tuple[str, str | None]:
    """The endpoint (the `base_url` option, else $OPENAI_BASE_URL, else the OpenAI API) and its key: the variable
    `api_key_env` names, else $OPENAI_API_KEY but only for the OpenAI API or the URL in $OPENAI_BASE_URL (a key
    meant for one provider is never sent to another endpoint), else none."""
    env_url = os.environ.get("OPENAI_BASE_URL")
    url = (base_url or env_url or OPENAI_API).rstrip("/")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InputError("base_url holds a control character or whitespace; give a plain URL such as "
                         "http://127.0.0.1:8000/v1")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here, not mid-run)
    except ValueError:
        raise InputError(f"base_url {clean(public_url(url))!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"base_url {public_url(url)!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise InputError(f"the environment variable {api_key_env} (named by api_key_env) is not set")
        return url, key
    if _same_url(url, OPENAI_API) or (env_url and _same_url(url, env_url)):
        return url, os.environ.get("OPENAI_API_KEY") or None
    return url, None


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: what a report, a cache key or a message may show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "(an invalid URL)"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def retry_delay(attempt: int, headers: Any, *, cap: float, rng: random.Random) -> float:
    """Seconds before retry `attempt` (0-based): the server's retry-after-ms or retry-after (seconds or an HTTP
    date) when it gives one, else exponential backoff from 0.5 s with full jitter; never more than `cap`."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value) if scale == 1.0 else None
            except (TypeError, ValueError, IndexError):  # neither seconds nor a date: back off as without it
                when = None
            seconds = when.timestamp() - time.time() if when is not None else math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, cap)
    return min(cap, rng.uniform(0, 0.5 * 2**attempt))


class Unreachable(ModelError):
    """The server did not answer usefully after every retry (down, overloaded, or the connection keeps dropping)."""


@dataclass
class Endpoint:
    """An OpenAI-compatible server: its URL, key and limits, and one connection pool for the requests in flight."""

    url: str
    key: str | None
    key_from: str | None = None  # the environment variable the key came from (for messages; never the key)
    timeout: float = 120.0
    max_connections: int = 4
    max_retries: int = 5
    max_retry_wait: float = 60.0
    requests: int = 0

    def __post_init__(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        try:
            self._client = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, limits=limits)
        except ImportError as exc:  # a proxy in the environment (socks5://) whose optional package is missing
            raise InputError(f"cannot open {self.public}: {' '.join(str(exc).split())}") from None
        self._lock = threading.Lock()
        self._rng = random.Random(0)

    @property
    def public(self) -> str:
        return public_url(self.url)

    def post(self, path: str, payload: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        """POST a JSON body and return the JSON answer, retrying what may succeed on a retry (see the module)."""
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.requests += 1
            try:
                status, headers, body = self._send(path, payload)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last, headers = f"{type(exc).__name__}", None
            else:
                if 200 <= status < 300:
                    return self._json(body, path)
                if 300 <= status < 400:
                    where = public_url(str(headers.get("location", ""))) if headers.get("location") else "elsewhere"
                    raise ModelError(f"{self.public}{path} answered {status}, a redirect to {where}; give the final "
                                     "URL as base_url (a redirect's body is not an answer)")
                if status not in RETRY_STATUSES:
                    raise ModelError(f"{self.public}{path} answered {status}: {self._message(body)}"
                                     f"{self.hint(status)}")
                last = f"status {status}: {self._message(body)}"
            if attempt < self.max_retries:
                time.sleep(retry_delay(attempt, headers, cap=self.max_retry_wait, rng=self._rng))
        raise Unreachable(
            f"{self.public}{path} failed {self.max_retries + 1} times ({last}); the server may be overloaded or down"
        )

    def _send(self, path: str, payload: Mapping[str, JsonValue]) -> tuple[int, Any, bytes]:
        """One request, its whole answer read within `timeout` seconds from the start (an endless or dripping body
        is a timeout, as a hang is): status, headers, body."""
        import httpx

        deadline = time.monotonic() + self.timeout
        with self._client.stream("POST", path, json=payload) as response:
            body = bytearray()
            for chunk in response.iter_bytes():  # what arrives, as it arrives (not buffered to a size)
                body += chunk
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the answer took more than {self.timeout:g} s")
            return response.status_code, response.headers, bytes(body)

    def get(self, path: str) -> dict[str, JsonValue]:
        """GET a JSON answer (no retries: used to check that a server is there)."""
        import httpx

        try:
            response = self._client.get(path)
        except httpx.HTTPError as exc:
            raise ModelError(f"cannot reach {self.public}{path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ModelError(f"{self.public}{path} answered {response.status_code}: {self._message(response.content)}"
                             f"{self.hint(response.status_code)}")
        return self._json(response.content, path)

    def hint(self, status: int) -> str:
        """What a refusal most likely means here and what to do (appended to the server's own message)."""
        if status in (401, 403):
            if self.key is None:
                return ("; no key was sent: $OPENAI_API_KEY goes only to the OpenAI API or to $OPENAI_BASE_URL's URL "
                        "(a key meant for one provider is never sent to another), so name this endpoint's key "
                        "variable with -m api_key_env=NAME")
            return f"; the key from ${self.key_from} was refused" if self.key_from else "; the key was refused"
        if status == 404 and not urlsplit(self.url).path.rstrip("/").endswith("/v1"):
            return f"; OpenAI-compatible servers answer under /v1: try base_url {self.public.rstrip('/')}/v1"
        return ""

    def map(self, fn: Callable[[T], R], items: Sequence[T], what: str) -> list[R]:
        """fn over items with up to `max_connections` in flight, in order, with a progress bar over them."""
        tick = tracker(what, "req")
        out: list[R] = []
        with ThreadPoolExecutor(max_workers=self.max_connections) as pool:
            try:
                for i, result in enumerate(pool.map(fn, items), 1):
                    out.append(result)
                    if tick is not None:
                        tick(i, len(items))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return out

    def _json(self, body: bytes, path: str) -> dict[str, JsonValue]:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, ValueError, RecursionError):
            raise ModelError(f"{self.public}{path} answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise ModelError(f"{self.public}{path} answered with JSON that is not an object")
        return data

    def _message(self, body: bytes) -> str:
        """The server's error message, one line, without the key or control sequences."""
        try:
            data = json.loads(body)
            error = (data.get("error") or data.get("detail") or data) if isinstance(data, dict) else data
            text = str(error.get("message") or error) if isinstance(error, dict) else str(error)
        except (json.JSONDecodeError, ValueError, RecursionError):
            text = body.decode("utf-8", errors="replace")
        return redact(" ".join(clean(text).split())[:300], [self.key])


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (an API key) replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[key]")
    return text
