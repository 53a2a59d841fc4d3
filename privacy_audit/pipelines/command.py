"""The `command` pipeline: any program is the teacher. It gets the planted data as JSONL on stdin (or
as a file path where `{input}` appears in its arguments) and writes the teaching prompt on stdout."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.base import Record, TeachingOutput, pipeline

DEFAULT_TIMEOUT = 600.0


def parse_command(command: str | Sequence[str]) -> list[str]:
    """The argument list (a string is split like a shell would, but no shell ever runs it)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise InputError("pipeline 'command' needs a program: --command 'python teacher.py {input}'")
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise InputError(f"program {argv[0]!r} of --command was not found")
    return argv


@pipeline("command", needs_model=False)
def command(
    records: Sequence[Record],
    *,
    model: LanguageModel | None = None,
    seed: int = 0,
    argv: str | Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> TeachingOutput:
    """Run `argv` without a shell, with a timeout (the whole process group is killed); its stdout is the prompt."""
    args = parse_command(argv)
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    payload = "".join(json.dumps({"text": r.text, **({"label": r.label} if r.label is not None else {})}, ensure_ascii=False) + "\n"
                      for r in records)
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
        raise PipelineError(f"teacher command {args[0]!r} failed with exit code {proc.returncode}: {last}")
    try:
        prompt = out.decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"teacher command {args[0]!r} wrote output that is not UTF-8") from None
    if not prompt.strip():
        raise PipelineError(f"teacher command {args[0]!r} wrote no teaching prompt on stdout")
    return TeachingOutput(
        prompt=prompt, pipeline="command", options={"argv": list(parse_command(argv)), "timeout": timeout}, seed=seed,
        model=None, used_records=tuple(range(len(records))),
    )
