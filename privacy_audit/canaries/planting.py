"""Planting: insert canaries into copies of private records; the input file is never modified.

Formats: JSONL (choose the text field), CSV with a header (choose the column), plain text (one
record per line). Positions: append, prepend, a new record, or a random word boundary. With
`shards`, records are split at random among that many teachers (the split is written to the
`shard_field` column) and every canary goes into a chosen fraction of the teachers' shards.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, JsonValue

from privacy_audit._io import (
    all_or_nothing, atomic_write, dump_jsonl, guard_outputs, read_bytes, read_records, read_text, write_json,
)
from privacy_audit.canaries.canary import Canary, CanarySet
from privacy_audit.errors import InputError

Position = Literal["append", "prepend", "new", "random"]
POSITIONS: tuple[str, ...] = ("append", "prepend", "new", "random")
FORMATS: tuple[str, ...] = ("jsonl", "csv", "text")
# A record of a data file: JSON values by field (a CSV's are strings).
Row = dict[str, JsonValue]


class Insertion(BaseModel):
    """One copy of one canary: which output record (0-based) it went into, how, and for which teacher."""

    model_config = ConfigDict(frozen=True)

    canary_id: str
    record: int
    position: str
    shard: int | None = None


class Planting(BaseModel):
    """Which canary went where; enough to audit or undo the planting."""

    model_config = ConfigDict(frozen=True)

    format: Literal["privacy-audit/planting"] = "privacy-audit/planting"
    source: str
    source_sha256: str
    data_format: str = "jsonl"
    field: str
    seed: int
    records_in: int
    records_out: int
    insertions: tuple[Insertion, ...]
    shards: int | None = None
    fraction: float = 1.0
    template_already_in_data: int = 0


@dataclass(frozen=True)
class PlantOptions:
    """Where the canaries go in the private records (`position`, `repetitions` come from the canary set; `shards`
    teachers with a `fraction` of them each), the seed, and which fields the teaching pipeline reads."""

    field: str = "text"
    label_field: str | None = None
    position: Position = "append"
    seed: int = 0
    shards: int | None = None
    fraction: float | None = None
    shard_field: str = "teacher"


@dataclass(frozen=True)
class Planted:
    """Private records with the canaries planted in them: the rows, where each copy went, the canary set, and how
    they were planted (`options`, whose fields the teaching pipeline reads)."""

    canaries: CanarySet
    rows: tuple[Row, ...]
    insertions: tuple[Insertion, ...]
    options: PlantOptions


def plant(canaries: CanarySet, rows: Sequence[Mapping[str, JsonValue]], options: PlantOptions = PlantOptions()
          ) -> Planted:
    """Copies of `rows` with every planted canary inserted as `options` say (the rows themselves are not changed)."""
    out, insertions = plant_records(
        [dict(r) for r in rows], canaries, field=options.field, position=options.position, seed=options.seed,
        shards=options.shards, fraction=options.fraction, shard_field=options.shard_field,
    )
    return Planted(canaries, tuple(out), tuple(insertions), options)


def plant_records(
    records: Sequence[Mapping[str, JsonValue]], canary_set: CanarySet, *, field: str, position: Position = "append",
    seed: int = 0, shards: int | None = None, fraction: float | None = None, shard_field: str = "teacher",
) -> tuple[list[Row], list[Insertion]]:
    """Copies of `records` with each planted canary inserted `repetitions` times into distinct records
    (per chosen shard when `shards` is set: a `fraction` of the shards, default all). Pure: the inputs are
    not modified; records that already hold `shard_field` are refused rather than overwritten."""
    if position not in POSITIONS:
        raise InputError(f"unknown position {position!r}; choose one of {', '.join(POSITIONS)}")
    if fraction is not None and shards is None:
        raise InputError("--fraction is the fraction of the teachers' shards each canary goes into; it needs --shards")
    fraction = 1.0 if fraction is None else fraction
    if not 0 < fraction <= 1:
        raise InputError("--fraction must be in (0, 1]")
    rng = np.random.default_rng(seed)
    out = [dict(r) for r in records]
    if shards is not None:
        _assign_shards(out, shards, shard_field, rng)
    groups: list[tuple[int | None, list[int]]] = (
        [(None, list(range(len(out))))] if shards is None
        else [(s, [i for i, r in enumerate(out) if r[shard_field] == s]) for s in range(shards)]
    )
    plan: list[tuple[Canary, int | None, int]] = []  # (canary, shard, record index or -1 for a new record)
    for canary in canary_set.planted:
        chosen = (
            groups
            if shards is None
            else [groups[int(g)] for g in sorted(rng.choice(shards, math.ceil(fraction * shards), replace=False))]
        )
        for shard, members in chosen:
            if position == "new":
                plan += [(canary, shard, -1)] * canary.repetitions
                continue
            if canary.repetitions > len(members):
                where = "the data" if shard is None else f"teacher {shard}'s shard"
                raise InputError(
                    f"{canary.id} wants {canary.repetitions} repetitions but {where} has {len(members)} records; "
                    "use fewer repetitions or --position new"
                )
            plan += [
                (canary, shard, members[int(i)]) for i in rng.choice(len(members), canary.repetitions, replace=False)
            ]
    insertions: list[Insertion] = []
    for canary, shard, idx in plan:
        if idx >= 0:
            out[idx][field] = _insert(str(out[idx][field]), canary.text, position, rng)
            insertions.append(Insertion(canary_id=canary.id, record=idx, position=position, shard=shard))
    news = [(c, s) for c, s, i in plan if i < 0]
    if news:
        slots = sorted(rng.choice(len(out) + len(news), size=len(news), replace=False).tolist())
        order = rng.permutation(len(news))
        for slot, which in zip(slots, order):
            canary, shard = news[int(which)]
            out.insert(slot, {field: canary.text, **({shard_field: shard} if shard is not None else {})})
            insertions = [i.model_copy(update={"record": i.record + (i.record >= slot)}) for i in insertions]
            insertions.append(Insertion(canary_id=canary.id, record=slot, position="new", shard=shard))
    return out, sorted(insertions, key=lambda i: (i.record, i.canary_id))


def _assign_shards(records: list[Row], shards: int, shard_field: str, rng: np.random.Generator) -> None:
    """Split the records at random among `shards` teachers, written to `shard_field` (refused if a record has it)."""
    if not 1 <= shards <= len(records):
        raise InputError(f"--shards must be between 1 and the number of records ({len(records)})")
    taken = sum(shard_field in r for r in records)
    if taken:
        raise InputError(f"{taken} records already have a {shard_field!r} field, which --shards would overwrite; "
                         "choose another --shard-field or remove that field")
    for shard, members in enumerate(np.array_split(rng.permutation(len(records)), shards)):
        for i in members:
            records[int(i)][shard_field] = shard


def _insert(text: str, canary: str, position: str, rng: np.random.Generator) -> str:
    if position == "append":
        return f"{text} {canary}"
    if position == "prepend":
        return f"{canary} {text}"
    words = text.split(" ")
    at = int(rng.integers(len(words) + 1))
    return " ".join(words[:at] + [canary] + words[at:])


def detect_format(path: str | os.PathLike[str], fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".txt": "text"}.get(suffix, "jsonl")


def read_table(path: str | os.PathLike[str], field: str, fmt: str) -> tuple[list[Row], list[str] | None]:
    """Records of a data file (and the CSV header, to write the same columns back)."""
    if fmt == "jsonl":
        return read_records(path, field), None
    text = read_text(path, what="data file").removeprefix("\ufeff")
    if fmt == "text":  # one record a line; lines end at "\n" only, as they are written back
        rows = [{field: line} for line in text.split("\n") if line.strip()]
        if not rows:
            raise InputError(f"data file {path} holds no records")
        return rows, None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"data file {path} is empty") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not valid CSV ({exc})") from None
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(
            f"{path}: the header names column {repeated[0]!r} more than once; rename one (a record cannot hold both)"
        )
    if field not in header:
        raise InputError(f"{path}: no column {field!r} (columns: {', '.join(header)}); choose one with --field")
    rows = []
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path} line {reader.line_num}: {len(row)} fields where the header has {len(header)}; fix the "
                    "ragged row"
                )
            rows.append(dict(zip(header, row)))
    except csv.Error as exc:
        raise InputError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise InputError(f"data file {path} holds no records")
    return rows, header


def write_table(records: Sequence[Row], fmt: str, header: list[str] | None, field: str) -> str:
    if fmt == "jsonl":
        return dump_jsonl(records)
    if fmt == "text":
        return "".join(str(r[field]).replace("\n", " ") + "\n" for r in records)
    columns = list(header or []) + [k for k in records[0] if k not in (header or [])]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def plant_file(
    canary_set: CanarySet, *, data: str | os.PathLike[str], field: str, out: str | os.PathLike[str],
    position: Position = "append", seed: int = 0, data_format: str | None = None, shards: int | None = None,
    fraction: float | None = None, shard_field: str = "teacher",
) -> Planting:
    """Plant into a JSONL, CSV or text file; writes `out` and `out`.planting.json atomically, both mode 0600."""
    guard_outputs([data], [out, planting_path(out)])
    if shards is not None and shard_field == field:
        raise InputError(
            f"--shard-field {shard_field!r} is the text field itself; choose another column for the teacher"
        )
    fmt = detect_format(data, data_format)
    if fmt == "text" and any("\n" in c.text or "\r" in c.text for c in canary_set.planted):
        raise InputError(
            "a canary spans several lines, which a text file (one record a line) cannot hold; use JSONL or CSV"
        )
    if shards is not None and fmt == "text":
        raise InputError("--shards needs a JSONL or CSV file (the teacher of each record is written to a column)")
    records, header = read_table(data, field, fmt)
    planted, insertions = plant_records(
        records, canary_set, field=field, position=position, seed=seed, shards=shards, fraction=fraction,
        shard_field=shard_field,
    )
    marker = canary_set.prefix.strip()
    already = sum(marker in str(r[field]) for r in records) if marker else 0
    digest = hashlib.sha256(read_bytes(data, what="data file")).hexdigest()
    planting = Planting(
        source=str(data), source_sha256=digest, data_format=fmt, field=field, seed=seed, records_in=len(records),
        records_out=len(planted), insertions=tuple(insertions), shards=shards,
        fraction=1.0 if fraction is None else fraction, template_already_in_data=already,
    )
    with all_or_nothing():
        atomic_write(out, write_table(planted, fmt, header, field), private=True)
        write_json(planting_path(out), planting.model_dump(mode="json"), private=True)
    return planting


def planting_path(out: str | os.PathLike[str]) -> str:
    """Where the planting record of a planted file lives."""
    return f"{os.fspath(out)}.planting.json"
