"""File input and output shared by every stage: atomic, all-or-nothing writes, strict JSONL reading, and
the guards that keep a command from reading a special file or writing over anything it read."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from privacy_audit.errors import InputError

PRIVATE_MODE = 0o600
# Inputs larger than this are refused before they are read (a text file, a JSONL data set, a report).
MAX_INPUT_BYTES = 2 * 1024**3


# Files read while `tracking_reads` is on (one CLI command), by device and inode: no output may replace one.
_READS: ContextVar[set[tuple[int, int]] | None] = ContextVar("privacy_audit_reads", default=None)
# Outputs staged inside `all_or_nothing`, as (temp file, target, may replace an input).
_STAGED: ContextVar[list[tuple[Path, Path, bool]] | None] = ContextVar("privacy_audit_staged", default=None)


@contextmanager
def tracking_reads() -> Iterator[None]:
    """Within the block, every file read through this module is one of the inputs no output may replace,
    whether or not the command line named it (a word list, a preset, a config's data, a teacher's script)."""
    token = _READS.set(set())
    try:
        yield
    finally:
        _READS.reset(token)


def _remember(info: os.stat_result) -> None:
    seen = _READS.get()
    if seen is not None:
        seen.add((info.st_dev, info.st_ino))


def _was_read(path: Path) -> bool:
    seen = _READS.get()
    if not seen:
        return False
    try:
        info = path.stat()
    except OSError:
        return False
    return (info.st_dev, info.st_ino) in seen


def read_bytes(path: str | os.PathLike[str], *, what: str = "file") -> bytes:
    """A regular file's bytes (remembered as an input, see `tracking_reads`)."""
    p = regular_input(path, what=what)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror}") from None


def regular_input(path: str | os.PathLike[str], *, what: str = "file") -> Path:
    """`path` as an existing regular file (a FIFO, a device or a folder is refused before it is opened),
    remembered as an input of the command (`tracking_reads`)."""
    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {p} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {p} is not a regular file (a pipe, device or socket cannot be read as input)")
    if info.st_size > MAX_INPUT_BYTES:
        raise InputError(f"{what} {p} is {info.st_size:,} bytes, more than the {MAX_INPUT_BYTES:,} privacy-audit reads")
    _remember(info)
    return p


def make_folder(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """`path` as a folder, created with its parents if missing; a file (or anything else) there is an InputError."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{what} {p} is a file (or something under it is); choose a folder") from None
    except OSError as exc:
        raise InputError(f"cannot create {what} {p}: {exc.strerror}") from None
    if not p.is_dir():
        raise InputError(f"{what} {p} is not a folder")
    return p


def guard_outputs(
    inputs: Iterable[str | os.PathLike[str] | None], outputs: Iterable[str | os.PathLike[str] | None], *,
    creates: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Before any work: refuse a command whose output would replace one of its inputs (the same file by any
    path or link), lies in a folder that does not exist (unless it is one of the folders the command `creates`
    when it writes, whose nearest existing ancestor must be a folder), or is an existing special file (a device,
    a pipe) or folder."""
    ins = [Path(p) for p in inputs if p is not None]
    made = {Path(f) for f in creates}
    for out in (Path(o) for o in outputs if o is not None):
        folder = out.parent if str(out.parent) else Path(".")
        if folder in made and not folder.exists():
            _can_make(folder)
            continue
        if not folder.is_dir():
            raise InputError(
                f"cannot write {out}: {folder} {'is not a folder' if folder.exists() else 'does not exist'}"
            )
        try:
            info = out.stat()
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            raise InputError(f"cannot write {out}: {out.parent} is not a folder") from None
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"output {out} is a directory; give a file name")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"output {out} exists and is not a regular file; refusing to replace it")
        for src in ins:
            try:
                same = src.exists() and os.path.samefile(src, out)
            except OSError:
                same = False
            if same:
                raise InputError(
                    f"output {out} is the input {src}; write the output somewhere else (inputs are never modified)"
                )


def _can_make(folder: Path) -> None:
    """A folder can be made here: its nearest existing ancestor is a folder."""
    for above in folder.parents:
        if above.exists():
            if not above.is_dir():
                raise InputError(f"cannot make the folder {folder}: {above} is not a folder")
            return


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """Every output written in the block is staged as a temp file beside its target and all are put in place
    together when the block ends; on any error (a full disk, a bad value, Ctrl-C) the staged files are
    removed, so the block writes everything or nothing and replaces no file. Nested blocks join the outer one."""
    if _STAGED.get() is not None:
        yield
        return
    staged: list[tuple[Path, Path, bool]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        _discard(staged)
        raise
    finally:
        _STAGED.reset(token)
    _commit(staged)


def _discard(staged: list[tuple[Path, Path, bool]]) -> None:
    for tmp, _, _ in staged:
        tmp.unlink(missing_ok=True)


def _commit(staged: list[tuple[Path, Path, bool]]) -> None:
    """Check every target once more (none was read by this command, none is a folder or special file), then rename."""
    try:
        for _, target, replaces_input in staged:
            _check_target(target, replaces_input=replaces_input)
    except InputError:
        _discard(staged)
        raise
    for i, (tmp, target, _) in enumerate(staged):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            _discard(staged[i:])
            raise InputError(f"cannot write {target}: {exc.strerror} (choose another output folder)") from None


def _check_target(target: Path, *, replaces_input: bool = False) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"cannot write {target}: {folder} {what}")
    if not target.is_symlink() and target.exists() and not target.is_file():
        raise InputError(f"cannot write {target}: it exists and is not a regular file; refusing to replace it")
    if not replaces_input and _was_read(target):
        raise InputError(
            f"output {target} is a file this command read; write the output somewhere else (inputs are never modified)"
        )


def atomic_write(
    path: str | os.PathLike[str], data: str | bytes, *, private: bool = False, replaces_input: bool = False,
    staged: bool = True,
) -> Path:
    """Write `data` to `path` via a temp file in the same folder and a rename.

    A reader sees the old file or the new one, never a torn one. A symbolic link at `path` is replaced
    by the file (never followed); an existing device or folder there is refused, and so is a file this
    command read, unless `replaces_input` says the command updates it on purpose. `private` files
    (canary sets, planted data, anything holding secrets) get mode 0600; others the usual mode. Inside
    `all_or_nothing` the rename waits for the block's end (`staged=False`: now, as for a cache).
    """
    target = Path(path)
    _check_target(target, replaces_input=replaces_input)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, name = tempfile.mkstemp(
            dir=target.parent if str(target.parent) else Path("."), prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror} (choose another output folder)") from None
    tmp = Path(name)
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
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {exc.strerror} (choose another output folder)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    batch = _STAGED.get()
    if staged and batch is not None:
        batch.append((tmp, target, replaces_input))
    else:
        _commit([(tmp, target, replaces_input)])
    return target


def write_json(
    path: str | os.PathLike[str], obj: Any, *, private: bool = False, replaces_input: bool = False, staged: bool = True
) -> Path:
    """Atomically write `obj` as indented, key-sorted JSON (stable bytes for the same content; see `atomic_write`)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=True) + "\n"
    return atomic_write(path, text, private=private, replaces_input=replaces_input, staged=staged)


def parse_toml(text: str, *, what: str) -> dict[str, object]:
    """TOML text as a table; an InputError naming `what` when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} is not valid TOML ({exc})") from None


def read_toml(path: str | os.PathLike[str], *, what: str) -> dict[str, object]:
    """A UTF-8 TOML file as a table, with one-line errors (`read_text`, `parse_toml`)."""
    return parse_toml(read_text(path, what=what), what=f"{what} {path}")


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """Read a UTF-8 text file with one-line errors for the usual problems."""
    p = Path(path)
    raw = read_bytes(p, what=what)
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
    return parse_json(text, where=f"{what} {path}")


def parse_json(text: str, *, where: str) -> Any:
    """json.loads with one-line errors, including input nested too deeply and numbers too long to read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"{where} cannot be read: {str(exc).splitlines()[0]}") from None


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, JsonValue]]]:
    """Yield (line number, record) for each non-blank line; every record must be a JSON object."""
    text = read_text(path, what="data file")
    # JSON Lines ends lines at "\n" only: U+2028 and other Unicode line breaks are valid inside a record.
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {number}: invalid JSON ({exc.msg}); fix or remove that line") from None
        except RecursionError:
            raise InputError(f"{path} line {number}: nested too deeply to read") from None
        except ValueError as exc:
            raise InputError(f"{path} line {number}: {str(exc).splitlines()[0]}") from None
        if not isinstance(record, dict):
            raise InputError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def read_records(path: str | os.PathLike[str], field: str) -> list[dict[str, JsonValue]]:
    """All records of a JSONL file; each must have a string `field`; an empty file is an error."""
    records: list[dict[str, JsonValue]] = []
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


def dump_jsonl(records: Sequence[Mapping[str, JsonValue]]) -> str:
    """JSONL text for records, one compact object per line."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
