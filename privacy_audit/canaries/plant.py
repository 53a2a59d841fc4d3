"""Planting: insert canaries into copies of private records; the input file is never modified."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from privacy_audit._io import atomic_write, dump_jsonl, read_records, write_json
from privacy_audit.canaries.canary import CanarySet
from privacy_audit.errors import InputError

Position = Literal["append", "prepend", "new"]
POSITIONS: tuple[str, ...] = ("append", "prepend", "new")


class Insertion(BaseModel):
    """One copy of one canary: which output record (0-based) it went into, and how."""

    model_config = ConfigDict(frozen=True)

    canary_id: str
    record: int
    position: str


class Planting(BaseModel):
    """Which canary went where; enough to audit or undo the planting."""

    model_config = ConfigDict(frozen=True)

    format: Literal["privacy-audit/planting"] = "privacy-audit/planting"
    source: str
    source_sha256: str
    field: str
    seed: int
    records_in: int
    records_out: int
    insertions: tuple[Insertion, ...]


def plant_records(
    records: list[dict[str, Any]],
    canary_set: CanarySet,
    *,
    field: str,
    position: Position = "append",
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[Insertion]]:
    """Copies of `records` with each planted canary inserted `repetitions` times into distinct records.

    `append`/`prepend` add the canary text to the field of randomly chosen records (a space between);
    `new` adds records of their own at random positions. Pure: the inputs are not modified.
    """
    if position not in POSITIONS:
        raise InputError(f"unknown position {position!r}; choose one of {', '.join(POSITIONS)}")
    rng = np.random.default_rng(seed)
    out = [dict(r) for r in records]
    copies = [c for c in canary_set.planted for _ in range(c.repetitions)]
    insertions: list[Insertion] = []
    if position == "new":
        template_record = {k: v for k, v in records[0].items() if k == field}
        slots = sorted(rng.choice(len(out) + len(copies), size=len(copies), replace=False).tolist())
        order = rng.permutation(len(copies))
        for slot, which in zip(slots, order):
            canary = copies[int(which)]
            out.insert(slot, {**template_record, field: canary.text})
            insertions.append(Insertion(canary_id=canary.id, record=slot, position="new"))
        return out, sorted(insertions, key=lambda i: i.record)
    for canary in canary_set.planted:
        if canary.repetitions > len(out):
            raise InputError(
                f"{canary.id} wants {canary.repetitions} repetitions but the data has {len(out)} records; "
                "use fewer repetitions or --position new"
            )
        for idx in rng.choice(len(out), size=canary.repetitions, replace=False).tolist():
            text = out[idx][field]
            out[idx][field] = f"{text} {canary.text}" if position == "append" else f"{canary.text} {text}"
            insertions.append(Insertion(canary_id=canary.id, record=int(idx), position=position))
    return out, insertions


def plant_file(
    canary_set: CanarySet,
    *,
    data: str | os.PathLike[str],
    field: str,
    out: str | os.PathLike[str],
    position: Position = "append",
    seed: int = 0,
) -> Planting:
    """Plant into a JSONL file; writes `out` and `out`.planting.json atomically, both mode 0600."""
    if os.path.abspath(out) == os.path.abspath(data):
        raise InputError("--out must differ from --data: privacy-audit never modifies its input")
    records = read_records(data, field)
    planted, insertions = plant_records(records, canary_set, field=field, position=position, seed=seed)
    with open(data, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    planting = Planting(
        source=str(data),
        source_sha256=digest,
        field=field,
        seed=seed,
        records_in=len(records),
        records_out=len(planted),
        insertions=tuple(insertions),
    )
    atomic_write(out, dump_jsonl(planted), private=True)
    write_json(planting_path(out), planting.model_dump(mode="json"), private=True)
    return planting


def planting_path(out: str | os.PathLike[str]) -> str:
    """Where the planting record of a planted file lives."""
    return f"{os.fspath(out)}.planting.json"
