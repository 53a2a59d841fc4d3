"""File input and output shared by every stage: atomic writes, strict JSONL reading."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from privacy_audit.errors import InputError

PRIVATE_MODE = 0o600


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False) -> Path:
    """Write `data` to `path` via a temp file in the same folder and a rename.

    A reader sees the old file or the new one, never a torn one. `private` files (canary sets,
    planted data) get mode 0600; others get the usual mode under the umask.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {target}: folder {folder} does not exist")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror} (choose another output folder)") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if private:
            os.chmod(tmp, PRIVATE_MODE)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {exc.strerror} (choose another output folder)") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json(path: str | os.PathLike[str], obj: Any, *, private: bool = False) -> Path:
    """Atomically write `obj` as indented, key-sorted JSON (stable bytes for the same content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=True) + "\n"
    return atomic_write(path, text, private=private)


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """Read a UTF-8 text file with one-line errors for the usual problems."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist")
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder, not a file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{what} {p} is not UTF-8 (bad byte at line {line}); re-encode it as UTF-8") from None


def read_json(path: str | os.PathLike[str], *, what: str = "JSON file") -> Any:
    """Parse a JSON file; a truncated or non-JSON file is an InputError naming the line."""
    text = read_text(path, what=what)
    if not text.strip():
        raise InputError(f"{what} {path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each non-blank line; every record must be a JSON object."""
    text = read_text(path, what="data file")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {number}: invalid JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(record, dict):
            raise InputError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def read_records(path: str | os.PathLike[str], field: str) -> list[dict[str, Any]]:
    """All records of a JSONL file; each must have a string `field`; an empty file is an error."""
    records: list[dict[str, Any]] = []
    for number, record in iter_jsonl(path):
        if field not in record:
            known = ", ".join(sorted(record)) or "none"
            raise InputError(f"{path} line {number}: no field {field!r} (fields: {known}); choose one with --field")
        if not isinstance(record[field], str):
            raise InputError(f"{path} line {number}: field {field!r} is {type(record[field]).__name__}, not text")
        records.append(record)
    if not records:
        raise InputError(f"data file {path} holds no records")
    return records


def dump_jsonl(records: list[dict[str, Any]]) -> str:
    """JSONL text for records, one compact object per line."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
