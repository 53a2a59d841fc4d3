"""Teaching pipelines: planted private records in, a teaching prompt (the student's prompt) out.

A pipeline is a registered function `(records, *, model, seed, **options) -> TeachingOutput`; the
scorer treats it as a black box and only reads `TeachingOutput.prompt`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, model_validator

from privacy_audit._registry import Component, Configured, component, names, register
from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import LanguageModel, ModelInfo
from privacy_audit.pipelines.utility import Utility


class Record(BaseModel):
    """One private example: its text and, for labelled tasks, its label; `fields` holds the whole record
    as read (every column), for teachers that use more than text and label."""

    model_config = ConfigDict(frozen=True)

    text: str
    label: str | None = None
    teacher: int | None = None
    fields: dict[str, JsonValue] = {}


class TeacherArtifact(BaseModel):
    """What one teacher saw (`private`, the text its generations are measured against) and wrote (`generated`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["teacher"] = "teacher"
    teacher: int = 0
    round: int | None = None
    records: tuple[int, ...] = ()
    private: str
    generated: tuple[str, ...]
    kept: tuple[str, ...] = ()
    kept_by: str = ""


class RoundArtifact(BaseModel):
    """How an aggregator picked a round's example: which teacher's candidate won, and the votes when it voted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["round"] = "round"
    round: int
    aggregator: str
    chosen_teacher: int
    votes: tuple[int, ...] = ()


def _artifact_kind(value: Any) -> str:
    """An artifact's kind; files written before artifacts were typed name none: a round is one with a chosen teacher."""
    if isinstance(value, BaseModel):
        return str(value.kind)
    return str(value.get("kind") or ("round" if "chosen_teacher" in value else "teacher"))


Artifact = Annotated[
    Annotated[TeacherArtifact, Tag("teacher")] | Annotated[RoundArtifact, Tag("round")], Discriminator(_artifact_kind)
]


class PrivacyClaim(BaseModel):
    """A differential-privacy promise for the teaching step, per private record: (epsilon, delta) as the user states
    it for a black-box teacher (a vendor's promise; `source` "stated"), or as a private pipeline accounts it
    (`source` "accounted": its mechanism, noise multiplier, accountant and the ledger of composed events, and its mu
    where the mechanism is Gaussian), which the gate checks against the lower bounds the canaries certify: epsilon
    against epsilon, mu against mu."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    epsilon: Annotated[float, Field(gt=0, le=100)]
    delta: Annotated[float, Field(ge=0, lt=1)] = 0.0
    source: Literal["stated", "accounted"] = "stated"
    mechanism: str | None = None
    noise_multiplier: Annotated[float, Field(gt=0)] | None = None
    accountant: str | None = None
    ledger: str | None = None
    mu: Annotated[float, Field(gt=0)] | None = None  # the claim in Gaussian DP (mu-GDP), for a Gaussian mechanism

    @model_validator(mode="after")
    def _accounted_says_how(self) -> PrivacyClaim:
        if self.source == "accounted" and not (self.mechanism and self.noise_multiplier and self.accountant
                                               and self.ledger):
            raise ValueError("an accounted claim names its mechanism, noise multiplier, accountant and ledger")
        return self


class TeachingOutput(BaseModel):
    """The teaching prompt plus what is needed to reproduce it and attribute leaks to teachers.

    `labels` maps the data's label names to the ones the prompt shows (the student answers with those);
    `used_records` are the records the teacher saw: () for none (zero-shot), None where the pipeline cannot
    say (a prompt written elsewhere), when every record given with it counts as seen.
    """

    model_config = ConfigDict(frozen=True)

    format: str = "privacy-audit/teaching-output"
    prompt: str
    pipeline: str
    options: dict[str, JsonValue]
    seed: int
    model: ModelInfo | None
    labels: dict[str, str] = {}
    used_records: tuple[int, ...] | None = None
    artifacts: tuple[Artifact, ...] = ()
    utility: Utility | None = None
    claim: PrivacyClaim | None = None

    @model_validator(mode="before")
    @classmethod
    def _untyped(cls, data: Any) -> Any:
        """Files written before labels were typed kept them among the options, and named no used record as []."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        options = out.get("options")
        if "labels" not in out and isinstance(options, dict) and isinstance(options.get("labels"), dict):
            out["labels"] = options["labels"]
        if out.get("used_records") == [] and out.get("pipeline") != "zero-shot":
            out["used_records"] = None
        return out


def teaching_path(prompt_path: str | os.PathLike[str]) -> Path:
    """Where the full teaching output (spec, artifacts) of a prompt file is kept: beside it."""
    return Path(f"{os.fspath(prompt_path)}.teaching.json")


# Option types with their ranges: a pipeline's options schema (from its signature) refuses values outside them.
Positive = Annotated[int, Field(ge=1, le=1_000_000)]
NonNegative = Annotated[int, Field(ge=0, le=1_000_000)]
Temperature = Annotated[float, Field(ge=0.0, le=100.0)]

Pipeline = Callable[..., TeachingOutput]
FIXED = ("records", "model", "seed")


def pipeline(
    name: str, *, needs: Collection[str] = ("data",), files: Callable[[Mapping[str, object]], list[str]] | None = None
) -> Callable[[Pipeline], Pipeline]:
    """Register a pipeline under `name`: what it needs ("model", "data") and which files of its options
    determine its output (hashed into the teaching cache key)."""
    return register("pipeline", name, needs=needs, fixed=FIXED, files=files)


def pipeline_names() -> list[str]:
    return names("pipeline")


def describe(name: str) -> Component:
    """The registered pipeline: needs, options schema, cache files."""
    return component("pipeline", name)


def configure(pipeline: str | Configured, options: Mapping[str, object] | None = None) -> Configured:
    """A pipeline with its options checked once against its schema (a configured one is returned as it is)."""
    if isinstance(pipeline, Configured):
        if options:
            raise InputError(f"pipeline {pipeline.name!r} is configured already; give its options when configuring it")
        return pipeline
    return describe(pipeline).configure(options or {})


def run_pipeline(
    pipeline: str | Configured, records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0,
    options: Mapping[str, object] | None = None,
) -> TeachingOutput:
    """Run a registered pipeline (a name and its options, or one configured already); its needs are checked before
    it runs."""
    configured = configure(pipeline, options)
    name, needs = configured.name, configured.component.needs
    if "model" in needs and model is None:
        raise InputError(f"pipeline {name!r} needs a model (--model)")
    if "model" in needs and model is not None:
        model.require("generate")
    if "data" in needs and not records:
        raise InputError(f"pipeline {name!r} needs private data (--data)")
    out = configured.build(records=list(records), model=model if "model" in needs else None, seed=seed)
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
