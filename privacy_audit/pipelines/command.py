"""The `command` pipeline: any program is the teacher. It gets the planted data as JSONL on stdin (or
as a file path where `{input}` appears in its arguments) and writes the teaching prompt on stdout."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.base import Record, TeachingOutput, pipeline
from privacy_audit._text import clean

DEFAULT_TIMEOUT = 600.0


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
        raise InputError(f"program {argv[0]!r} of --command is not executable (chmod +x it, or run it with an interpreter)")
    return argv


def program_files(argv: str | Sequence[str]) -> list[str]:
    """The teacher's program files: argv[0] and the script an interpreter runs (argv[1]), those that are files."""
    return [a for a in parse_command(argv)[:2] if os.path.isfile(a)]


def redact(line: str, records: Sequence[Record]) -> str:
    """A teacher's message made safe to show: control sequences removed, and every word that occurs in the
    private records (where the planted secrets are) replaced, so no private text reaches the terminal."""
    private = {w for r in records for w in re.findall(r"\w+", r.text)}
    words = re.sub(r"\w+", lambda m: "[redacted]" if m.group(0) in private and len(m.group(0)) > 1 else m.group(0), clean(line))
    return re.sub(r"(\[redacted\]\W{0,3})+\[redacted\]", "[redacted]", words)


def _end_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pipeline("command", needs=("data",), files=lambda options: program_files(options.get("argv", ())))
def command(
    records: Sequence[Record],
    *,
    model: LanguageModel | None = None,
    seed: int = 0,
    argv: str | Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    labels: Mapping[str, str] | None = None,
) -> TeachingOutput:
    """Run `argv` without a shell, with a timeout (the whole process group is killed); its stdout is the prompt.

    The program gets every record whole (every column of the planted data), with its label mapped
    through `labels` (--label-map) as the other pipelines show it.
    """
    args = parse_command(argv)
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    names = dict(labels or {})
    payload = "".join(
        json.dumps({**r.fields, "text": r.text, **({"label": names.get(r.label, r.label)} if r.label is not None else {})},
                   ensure_ascii=False) + "\n"
        for r in records
    )
    with tempfile.TemporaryDirectory(prefix="privacy-audit-") as tmp:
        uses_file = any("{input}" in a for a in args)
        if uses_file:
            path = Path(tmp) / "planted.jsonl"
            path.write_text(payload, encoding="utf-8")
            os.chmod(path, 0o600)
            args = [a.replace("{input}", str(path)) for a in args]
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL if uses_file else subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, env={**os.environ, "PRIVACY_AUDIT_SEED": str(seed)},
        )
        try:
            out, err = proc.communicate(None if uses_file else payload.encode("utf-8"), timeout=timeout)
            _end_group(proc.pid)  # children the teacher left running in the background end with it
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise PipelineError(f"teacher command {args[0]!r} timed out after {timeout:g} s and was killed; raise --timeout") from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    if proc.returncode != 0:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"teacher command {args[0]!r} failed with exit code {proc.returncode}: {redact(last, records)[:300]}")
    try:
        prompt = out.decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"teacher command {args[0]!r} wrote output that is not UTF-8") from None
    if not prompt.strip():
        raise PipelineError(f"teacher command {args[0]!r} wrote no teaching prompt on stdout")
    return TeachingOutput(
        prompt=prompt, pipeline="command", options={"argv": list(parse_command(argv)), "timeout": timeout, **({"labels": names} if names else {})},
        seed=seed,
        model=None, used_records=tuple(range(len(records))),
    )
