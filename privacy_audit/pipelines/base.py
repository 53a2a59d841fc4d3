"""Teaching pipelines: planted private records in, a teaching prompt (the student's prompt) out.

A pipeline is a registered function `(records, *, model, seed, **options) -> TeachingOutput`; the
scorer treats it as a black box and only reads `TeachingOutput.prompt`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from privacy_audit._registry import lookup, names, register
from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.utility import Utility


class Record(BaseModel):
    """One private example: its text and, for labelled tasks, its label; `fields` holds the whole record
    as read (every column), for teachers that use more than text and label."""

    model_config = ConfigDict(frozen=True)

    text: str
    label: str | None = None
    teacher: int | None = None
    fields: dict[str, Any] = {}


class TeachingOutput(BaseModel):
    """The teaching prompt plus what is needed to reproduce it and attribute leaks to teachers."""

    model_config = ConfigDict(frozen=True)

    format: str = "privacy-audit/teaching-output"
    prompt: str
    pipeline: str
    options: dict[str, Any]
    seed: int
    model: dict[str, Any] | None
    used_records: tuple[int, ...] = ()
    artifacts: tuple[dict[str, Any], ...] = ()
    utility: Utility | None = None


Pipeline = Callable[..., TeachingOutput]


def pipeline(name: str, *, needs_model: bool) -> Callable[[Pipeline], Pipeline]:
    """Register a pipeline under `name`; `needs_model` says whether it calls a language model."""

    def decorator(fn: Pipeline) -> Pipeline:
        fn.needs_model = needs_model  # type: ignore[attr-defined]
        return register("pipeline", name)(fn)

    return decorator


def pipeline_names() -> list[str]:
    return names("pipeline")


def needs_model(name: str) -> bool:
    return bool(getattr(lookup("pipeline", name), "needs_model", False))


def run_pipeline(
    name: str,
    records: Sequence[Record],
    *,
    model: LanguageModel | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> TeachingOutput:
    """Build and run a registered pipeline; options are checked against its signature first."""
    fn = lookup("pipeline", name)
    options = dict(options or {})
    params = inspect.signature(fn).parameters
    unknown = sorted(set(options) - set(params) - {"records", "model", "seed"})
    if unknown:
        allowed = sorted(set(params) - {"records", "model", "seed"})
        raise InputError(f"pipeline {name!r} has no option {', '.join(unknown)}; its options: {', '.join(allowed) or 'none'}")
    if getattr(fn, "needs_model", False) and model is None:
        raise InputError(f"pipeline {name!r} needs a model (--model)")
    out = fn(list(records), model=model, seed=seed, **options)
    if not isinstance(out, TeachingOutput):
        raise PipelineError(f"pipeline {name!r} returned {type(out).__name__}, not a TeachingOutput")
    return out


def select_examples(records: Sequence[Record], n: int, seed: int) -> list[int]:
    """Indices of `n` records drawn uniformly without replacement (all of them if there are fewer), in data order."""
    if n < 1:
        raise InputError("the number of examples must be at least 1")
    if len(records) <= n:
        return list(range(len(records)))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(len(records), size=n, replace=False))


def format_example(record: Record, labels: Mapping[str, str] | None = None) -> str:
    """The paper's example format (Table 5): "Text: <message>" and "Class: <label>" when labelled."""
    if record.label is None:
        return record.text
    label = (labels or {}).get(record.label, record.label)
    return f"Text: {record.text}\nClass: {label}"
