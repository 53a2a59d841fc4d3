"""A real OpenAI-compatible server for the tests: llama-cpp-python's, serving the embedded model's own GGUF on
127.0.0.1, started with a bounded wait and killed by its PID when the tests that use it end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_server(*, startup_seconds: float = 120.0) -> Iterator[str]:
    """The server's base URL (…/v1) while it runs; skips where llama-cpp-python is not installed."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (make test installs it)")
    from privacy_audit.models.embedded import gguf_path

    port = free_port()
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1", "--port",
        str(port), "--n_ctx", "2048", "--n_threads", "2", "--model_alias", ALIAS,
    ]
    log = tempfile.TemporaryFile()  # not a pipe: a server that logs every request must never block on a full one
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"llama-cpp-python's server exited with {proc.returncode}: {log.read().decode()[-500:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"llama-cpp-python's server did not answer within {startup_seconds:g} s"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
