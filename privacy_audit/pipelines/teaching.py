"""Teaching planted records: the records a pipeline reads from planted rows, a pipeline run through the teaching
cache, and `Teaching`, the stage object that carries the prompt with what it was taught from."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import JsonValue

from privacy_audit._io import make_folder, read_json, write_json
from privacy_audit._paths import cache_root
from privacy_audit._registry import Configured
from privacy_audit.canaries import CanarySet, Planted
from privacy_audit.errors import InputError
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.base import PrivacyClaim, Record, TeachingOutput, configure, run_pipeline

Say = Callable[[str], None]
Cache = Literal["use", "refresh", "off"]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class TeachOptions:
    """Which pipeline teaches (configured: its options checked once), with which seed, and how the teaching cache is
    used: "use" reuses an identical earlier run and stores new ones, "refresh" runs the pipeline again and stores
    it, "off" neither reads nor writes."""

    pipeline: Configured
    seed: int = 0
    cache: Cache = "off"
    claim: PrivacyClaim | None = None


@dataclass(frozen=True)
class Teaching:
    """A teaching output with what it was taught from: the planted records (and so the canary set) and the records
    the pipeline read, so the next stage needs nothing of the earlier ones again."""

    output: TeachingOutput
    planted: Planted
    records: tuple[Record, ...]

    @property
    def prompt(self) -> str:
        return self.output.prompt

    @property
    def canaries(self) -> CanarySet:
        return self.planted.canaries


def versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers in a report (and a teaching output)."""
    out = {"python": platform.python_version()}
    for dist in ("privacy-audit", "torch", "transformers", "numpy", "scipy", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def to_records(
    rows: Sequence[Mapping[str, JsonValue]], *, field: str, label_field: str | None, shard_field: str = "teacher"
) -> list[Record]:
    """Rows of a data file as pipeline input: text, label, the teacher planting assigned, and every column."""
    if label_field is not None:
        missing = [i for i, r in enumerate(rows, 1) if label_field not in r]
        if missing:
            raise InputError(f"record {missing[0]} has no label field {label_field!r}; choose one with --label-field")
    return [
        Record(
            text=str(r[field]), label=None if label_field is None else str(r[label_field]),
            teacher=shard if isinstance(shard := r.get(shard_field), int) and not isinstance(shard, bool) else None,
            fields=dict(r),
        )
        for r in rows
    ]


def teach(
    planted: Planted, pipeline: str | Configured = "raw", *, model: LanguageModel | None = None, seed: int = 0,
    cache: Cache = "off", say: Say = _quiet, claim: PrivacyClaim | None = None, **options: object,
) -> Teaching:
    """Teach with a pipeline (a name and its options, checked once, or one configured already) on the planted
    records, through the teaching cache as `cache` says; `claim` is the privacy the teacher promises (recorded)."""
    o = planted.options
    records = to_records(planted.rows, field=o.field, label_field=o.label_field, shard_field=o.shard_field)
    output = teach_records(configure(pipeline, options), records, model, seed=seed, cache=cache, say=say)
    return Teaching(with_claim(output, claim), planted, tuple(records))


def with_claim(output: TeachingOutput, claim: PrivacyClaim | None) -> TeachingOutput:
    """The teaching output with the privacy its teacher promises, as the user states it (None: as it is); a pipeline
    that accounts its own claim is not given a second one."""
    if claim is None:
        return output
    if output.claim is not None:
        raise InputError(f"pipeline {output.pipeline!r} accounts its own privacy claim (epsilon "
                         f"{output.claim.epsilon:.3g}); drop --claimed-epsilon (a stated claim is for black-box "
                         "teachers)")
    return output.model_copy(update={"claim": claim})


def teach_records(
    pipeline: Configured, records: Sequence[Record], model: LanguageModel | None, *, seed: int = 0,
    cache: Cache = "off", say: Say = _quiet,
) -> TeachingOutput:
    """Run a pipeline on records: "use" reuses an identical earlier run (keyed on pipeline, options, the files they
    name, model, records, seed and version) and stores new ones, "refresh" runs it again and stores it, "off" does
    neither. A cached entry that cannot be read is the tool's own file: it is replaced, never an error."""
    needs = pipeline.component.needs
    if "model" in needs and model is None:
        raise InputError(f"pipeline {pipeline.name!r} needs a model (--model)")
    if "model" in needs and model is not None:
        model.require("generate")
    if cache == "off":
        return run_pipeline(pipeline, records, model=model, seed=seed)
    cached = teaching_cache_path(teaching_cache_key(pipeline, records, seed=seed,
                                                    model=model if "model" in needs else None))
    if cache == "use" and cached.is_file():
        try:
            output = TeachingOutput.model_validate(read_json(cached, what="cached teaching output"))
            say(f"reused the cached teaching output {cached} (--no-cache to run the pipeline again)")
            return output
        except (InputError, ValueError):
            say(f"the cached teaching output {cached} could not be read; the pipeline runs again and replaces it")
    output = run_pipeline(pipeline, records, model=model, seed=seed)
    make_folder(cached.parent, what="cache folder")
    write_json(cached, output.model_dump(mode="json"), private=True, staged=False, replaces_input=True)
    return output


def teaching_cache_path(key: str) -> Path:
    """Where the teaching output of a cache key is kept."""
    return cache_root() / "teaching" / f"{key}.json"


def teaching_cache_key(
    pipeline: Configured, records: Sequence[Record], *, seed: int, model: LanguageModel | None
) -> str:
    """Hash of everything that determines a teaching output, including the content of files its options
    name (a command teacher's script, a prompt file), so editing them invalidates the cache."""
    blob = json.dumps(
        {"pipeline": pipeline.name, "options": pipeline.given, "seed": seed,
         "model": None if model is None else model.info().model_dump(exclude={"dtype", "device", "system_fingerprint"}),
         "files": pipeline.component.cache_files(pipeline.given), "records": [r.model_dump() for r in records],
         "privacy_audit": versions().get("privacy-audit")},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
