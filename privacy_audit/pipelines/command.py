"""The `command` pipeline: any program is the teacher. It gets the planted data as JSONL on stdin (or
as a file path where `{input}` appears in its arguments) and writes the teaching prompt on stdout."""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from pydantic import Field

from privacy_audit.errors import InputError, PipelineError, Terminated
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.base import Record, TeachingOutput, pipeline
from privacy_audit._text import clean

DEFAULT_TIMEOUT = 600.0
# Of a teacher's stderr only the end is kept (its last line is shown when it fails); its stdout is the prompt.
STDERR_TAIL = 64 * 1024
MAX_PROMPT_BYTES = 1 << 30
# After the teacher exits, this long for its pipes to end before its process group is gone.
GRACE = 1.0


def parse_command(command: str | Sequence[str]) -> list[str]:
    """The argument list (a string is split like a shell would, but no shell ever runs it)."""
    try:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    except ValueError as exc:
        raise InputError(f"--command cannot be split into arguments ({exc}); check its quotes") from None
    if not argv:
        raise InputError("pipeline 'command' needs a program: --command 'python teacher.py {input}'")
    found = shutil.which(argv[0])
    if found is None:
        if not Path(argv[0]).is_file():
            raise InputError(f"program {argv[0]!r} of --command was not found")
        raise InputError(
            f"program {argv[0]!r} of --command is not executable (chmod +x it, or run it with an interpreter)"
        )
    return argv


def program_files(argv: str | Sequence[str]) -> list[str]:
    """Every argument that names an existing file, alone or as `--option=FILE` (the program, the script an
    interpreter runs, a file it reads): their content is hashed into the teaching cache key, and no
    output may replace one of them."""
    found: list[str] = []
    for arg in parse_command(argv):
        for candidate in (arg, arg.partition("=")[2]):
            if candidate and "{input}" not in candidate and os.path.isfile(candidate) and candidate not in found:
                found.append(candidate)
    return found


def redact(line: str, records: Sequence[Record]) -> str:
    """A teacher's message made safe to show: control sequences removed, and every word that occurs in the
    private records (where the planted secrets are) replaced, so no private text reaches the terminal."""
    private = {w for r in records for w in re.findall(r"\w+", r.text)}
    words = re.sub(
        r"\w+", lambda m: "[redacted]" if m.group(0) in private and len(m.group(0)) > 1 else m.group(0), clean(line)
    )
    return re.sub(r"(\[redacted\]\W{0,3})+\[redacted\]", "[redacted]", words)


def _end_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def _group_ends_on_signals(pid: int) -> Iterator[None]:
    """While the teacher runs, SIGTERM and SIGHUP end its process group before they end this process
    (the CLI maps `Terminated` to its exit code)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        _end_group(pid)
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """Write the records to the teacher's stdin (in a thread, so a teacher that does not read cannot block us)."""
    if proc.stdin is None:
        return
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _collect(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes]:
    """The teacher's whole stdout and the last STDERR_TAIL bytes of its stderr, read until both end, or until
    GRACE seconds after the teacher exits (its process group is ended then, so a background child that holds
    a pipe open cannot keep us waiting), or until `deadline`, whichever comes first."""
    out, err = bytearray(), bytearray()
    streams = {proc.stdout: out, proc.stderr: err}
    stop = deadline
    with selectors.DefaultSelector() as sel:
        for stream in streams:
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < stop:
            for key, _ in sel.select(timeout=min(0.2, max(0.0, stop - time.monotonic()))):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffer = streams[key.fileobj]  # type: ignore[index]
                buffer += chunk
                if buffer is err and len(err) > STDERR_TAIL:
                    del err[: len(err) - STDERR_TAIL]
                if len(out) > MAX_PROMPT_BYTES:
                    program = proc.args[0]  # type: ignore[index]
                    raise PipelineError(f"teacher command {program!r} wrote more than {MAX_PROMPT_BYTES:,} bytes")
            if proc.poll() is not None and stop == deadline:
                _end_group(proc.pid)
                stop = min(deadline, time.monotonic() + GRACE)
    return bytes(out), bytes(err)


def _run(args: list[str], payload: bytes | None, timeout: float, seed: int) -> tuple[int, bytes, bytes]:
    """Run the teacher without a shell in its own process group, which ends when it finishes, fails, times
    out, or this process is told to end; the whole run is bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL if payload is None else subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, env={**os.environ, "PRIVACY_AUDIT_SEED": str(seed)},
    )
    try:
        with _group_ends_on_signals(proc.pid):
            if payload is not None:
                threading.Thread(target=_feed, args=(proc, payload), daemon=True).start()
            out, err = _collect(proc, deadline)
            if proc.poll() is None and time.monotonic() >= deadline:
                raise PipelineError(
                    f"teacher command {args[0]!r} timed out after {timeout:g} s and was killed; raise --timeout"
                )
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"teacher command {args[0]!r} timed out after {timeout:g} s and was killed; raise --timeout"
        ) from None
    finally:
        _end_group(proc.pid)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return code, out, err


@pipeline("command", needs=("data",), files=lambda options: program_files(options.get("argv", ())))
def command(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, argv: str | Sequence[str] = (),
    timeout: Annotated[float, Field(gt=0, le=10**7)] = DEFAULT_TIMEOUT, labels: Mapping[str, str] | None = None,
) -> TeachingOutput:
    """Run `argv` without a shell, bounded by `timeout` (its whole process group is killed); its stdout is the prompt.

    The program gets every record whole (every column of the planted data), with its label mapped
    through `labels` (--label-map) as the other pipelines show it.
    """
    args = parse_command(argv)
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    names = dict(labels or {})
    payload = "".join(
        json.dumps(
            {**r.fields, "text": r.text, **({"label": names.get(r.label, r.label)} if r.label is not None else {})},
            ensure_ascii=False,
        )
        + "\n"
        for r in records
    ).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="privacy-audit-") as tmp:
        uses_file = any("{input}" in a for a in args)
        if uses_file:
            path = Path(tmp) / "planted.jsonl"
            path.write_bytes(payload)
            os.chmod(path, 0o600)
            args = [a.replace("{input}", str(path)) for a in args]
        code, out, err = _run(args, None if uses_file else payload, timeout, seed)
    if code != 0:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"teacher command {args[0]!r} failed with exit code {code}: {redact(last, records)[:300]}")
    try:
        prompt = out.decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"teacher command {args[0]!r} wrote output that is not UTF-8") from None
    if not prompt.strip():
        raise PipelineError(f"teacher command {args[0]!r} wrote no teaching prompt on stdout")
    return TeachingOutput(
        prompt=prompt, pipeline="command",
        options={"argv": list(parse_command(argv)), "timeout": timeout, **({"labels": names} if names else {})},
        seed=seed, model=None, labels=names, used_records=tuple(range(len(records))),
    )
