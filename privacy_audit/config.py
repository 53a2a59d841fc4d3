"""One config file for a whole audit or experiment: a TOML file, or `[tool.privacy-audit]` in pyproject.toml.

CLI `--set key.path=value` overrides any setting (the value is read as JSON when it parses, else as text).
Relative data paths are taken from the config file's folder; `@demo` is the bundled SMS demo data.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.resources import files
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    BaseModel, ConfigDict, Field, JsonValue, PrivateAttr, SerializationInfo, ValidationError, field_serializer,
    model_validator,
)

from privacy_audit._io import read_toml
from privacy_audit.canaries import parse_space
from privacy_audit.canaries.canary import MAX_DRAW, check_template
from privacy_audit.canaries.planting import PlantOptions, Row, detect_format, read_table
from privacy_audit.canaries.presets import load_preset
from privacy_audit._registry import Configured
from privacy_audit.errors import InputError, first_problem
from privacy_audit.gate import Thresholds
from privacy_audit.models import LanguageModel, ModelSpec
from privacy_audit.pipelines import PrivacyClaim, configure, describe
from privacy_audit.pipelines.teaching import Cache, TeachOptions
from privacy_audit.scoring.options import ScoringOptions


Seed = Annotated[int, Field(ge=0, le=2**128)]


class _Section(BaseModel):
    """A config table: unknown keys are errors, values are taken strictly (`true` is not a count, "5" is not
    a number) and range-checked like the CLI flags, so a config is refused whole before any work."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CanaryConfig(_Section):
    preset: str | None = None
    template: str | None = None
    space: str | None = None
    count: Annotated[int, Field(ge=1, le=MAX_DRAW)] = 5
    references: Annotated[int, Field(ge=0, le=MAX_DRAW)] = 20
    repetitions: Annotated[int, Field(ge=1, le=10_000)] = 1
    seed: Seed = 0


class DataConfig(_Section):
    path: str = "@demo"
    field: str = "text"
    label_field: str | None = "label"
    format: Literal["jsonl", "csv", "text"] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None
    position: Literal["append", "prepend", "new", "random"] = "append"
    shards: Annotated[int, Field(ge=1)] | None = None
    fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    eval_path: str | None = None

    @model_validator(mode="after")
    def _fraction(self) -> DataConfig:
        if self.fraction is not None and self.shards is None:
            raise ValueError("fraction is the fraction of the teachers' shards each canary goes into; it needs shards")
        return self

    def plant_options(self, seed: int) -> PlantOptions:
        """How `run` and every Secret Sharer trial plant the canaries into these records (one place, so no setting of
        this table has an effect in one and not the other)."""
        return PlantOptions(field=self.field, label_field=self.label_field, position=self.position, seed=seed,
                            shards=self.shards, fraction=self.fraction)


class PipelineConfig(_Section):
    name: str = "raw"
    options: dict[str, JsonValue] = {}
    seed: Seed = 0
    # the privacy the teacher promises, as stated (a vendor's (epsilon, delta)); the gate checks the audit against it
    claim: PrivacyClaim | None = None
    _configured: Configured = PrivateAttr()

    @model_validator(mode="after")
    def _options(self) -> PipelineConfig:
        """The pipeline exists and its options fit its own schema, checked once, when the config is read."""
        self._configured = configure(self.name, self.options)
        return self

    def teach_options(self, seed: int | None = None, cache: Cache = "off") -> TeachOptions:
        """The configured pipeline with its seed (`seed`: a trial's own) and the teaching cache's use."""
        return TeachOptions(self._configured, seed=self.seed if seed is None else seed, cache=cache, claim=self.claim)


class ModelConfig(_Section):
    """A model: its spec and its backend's options (`[model.options]`; `chunk_tokens` may also sit in the table)."""

    spec: str = "embedded"
    options: dict[str, JsonValue] = {}
    chunk_tokens: int | None = None
    _model: ModelSpec = PrivateAttr()

    @model_validator(mode="after")
    def _backend(self) -> ModelConfig:
        """The spec names a backend that takes these options, checked once, when the config is read (the range of
        every option is the backend's own)."""
        chunk = {} if self.chunk_tokens is None else {"chunk_tokens": self.chunk_tokens}
        self._model = ModelSpec.parse(self.spec, {**self.options, **chunk})
        return self

    @property
    def model(self) -> ModelSpec:
        return self._model

    @field_serializer("options", when_used="json")
    def _public(self, options: dict[str, JsonValue], info: SerializationInfo) -> dict[str, JsonValue]:
        """Written as the backend records its options (a URL without its credentials), unless the dump is passed on
        to run the same config elsewhere (a Ray worker: `context={"whole": True}`)."""
        if info.context and info.context.get("whole"):
            return options
        public = self._model.options.options.model_dump(mode="json", exclude_unset=True)
        return {k: public.get(k, v) for k, v in options.items()}

    def load(self) -> LanguageModel:
        return self._model.load()

    def resolved(self, resolve: Callable[[str], str]) -> ModelConfig:
        """This model with the files its options name resolved (relative paths: from the config's folder)."""
        files = self._model.options.component.files
        named = set(files(self.options)) if files is not None else set()
        if not named:
            return self
        options = {k: resolve(v) if isinstance(v, str) and v in named else v for k, v in self.options.items()}
        return ModelConfig(spec=self.spec, options=options, chunk_tokens=self.chunk_tokens)

    def files(self) -> list[str]:
        """The files its options name (inputs no output may replace)."""
        files = self._model.options.component.files
        return files(self.options) if files is not None else []


class ScoringConfig(ScoringOptions):
    """The scoring options (defaults in `ScoringOptions`), and whether to add reconstruction likelihood."""

    membership: bool = True

    def options(self) -> ScoringOptions:
        return ScoringOptions(**self.model_dump(exclude={"membership"}))


class SecretSharerConfig(_Section):
    trials: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    candidates: Annotated[int, Field(ge=2, le=MAX_DRAW)] = 1000
    seed: Seed = 0
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None


class AuditConfig(_Section):
    out: str = "privacy-audit-run"
    canaries: CanaryConfig = CanaryConfig()
    data: DataConfig = DataConfig()
    pipeline: PipelineConfig = PipelineConfig()
    pipelines: Annotated[list[PipelineConfig], Field(min_length=1)] | None = None
    model: ModelConfig = ModelConfig()
    teacher: ModelConfig | None = None
    scorer: ModelConfig | None = None
    scoring: ScoringConfig = ScoringConfig()
    # the gate's rules: a [gate] table; none: the default chance rule, as `gate REPORT` runs it; `gate = false`: no gate
    gate: Thresholds | Literal[False] | None = None
    secret_sharer: SecretSharerConfig = SecretSharerConfig()
    base_dir: str = Field(".", exclude=True)  # set by the loader: where relative paths are read from
    source: str | None = Field(None, exclude=True)  # set by the loader: the config file

    @model_validator(mode="after")
    def _canaries(self) -> AuditConfig:
        """The canaries' template fits their space (both read, a preset file or word list included)."""
        template, space, derived = self.template_and_space()
        check_template(template, parse_space(space).slots, derived)
        return self

    @model_validator(mode="after")
    def _model_files(self) -> AuditConfig:
        """Files a model's options name (an n-gram scorer's background corpus) are read from the config's folder, as
        its data paths are."""
        for name in ("model", "teacher", "scorer"):
            section = getattr(self, name)
            if section is not None:
                setattr(self, name, section.resolved(self.resolve))
        return self

    @model_validator(mode="after")
    def _pipelines(self) -> AuditConfig:
        """`[[pipelines]]` (several, taught from the same planted records and scored by one loaded scorer) or
        `[pipeline]`, not both."""
        if self.pipelines is not None and "pipeline" in self.model_fields_set:
            raise ValueError("give [pipeline] or [[pipelines]], not both")
        return self

    def thresholds(self) -> Thresholds | None:
        """The gate a run applies: the config's `[gate]`, the default chance rule without one, none with
        `gate = false`."""
        return None if self.gate is False else self.gate or Thresholds()

    @property
    def teaching_pipelines(self) -> list[PipelineConfig]:
        """The pipelines a run teaches with: `[[pipelines]]`, else `[pipeline]`."""
        return self.pipelines or [self.pipeline]

    @property
    def teacher_model(self) -> ModelConfig:
        """The model that teaches: `[teacher]`, else `[model]`."""
        return self.teacher or self.model

    @property
    def scorer_model(self) -> ModelConfig:
        """The model that scores (exposure, utility, reconstruction): `[scorer]`, else `[model]`."""
        return self.scorer or self.model

    def load_models(self) -> tuple[LanguageModel, LanguageModel]:
        """(teacher, scorer), one instance when both are the same model."""
        scorer = self.scorer_model.load()
        same = self.teacher_model.model_dump() == self.scorer_model.model_dump()
        return (scorer if same else self.teacher_model.load()), scorer

    def resolve(self, path: str) -> str:
        """A data path as given in the config: `@demo`, absolute, or relative to the config's folder."""
        if path == "@demo":
            return str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl")
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def template_and_space(self) -> tuple[str, str, dict[str, tuple[str, ...]]]:
        """The canaries' template, space and derived fields: from the preset, or as given."""
        c = self.canaries
        if c.preset is not None:
            if c.template is not None or c.space is not None:
                raise InputError("config [canaries]: give preset, or template with space, not both")
            p = load_preset(c.preset)
            return p.template, p.space, p.derived
        if c.template is None or c.space is None:
            raise InputError("config [canaries] needs preset, or template and space")
        return c.template, c.space, {}

    def read_pool(self) -> list[Row]:
        """The private records: all of them, or a sample of `data.limit` (seeded by the first pipeline's seed)."""
        path = self.resolve(self.data.path)
        rows, _ = read_table(path, self.data.field, detect_format(path, self.data.format))
        if self.data.limit is not None:
            if not 1 <= self.data.limit <= len(rows):
                raise InputError(f"data.limit must be between 1 and the {len(rows)} records of {path}")
            rng = np.random.default_rng(self.teaching_pipelines[0].seed)
            rows = [rows[int(i)] for i in sorted(rng.choice(len(rows), self.data.limit, replace=False))]
        return rows

    def input_files(self) -> list[str]:
        """Every file the config names or makes the run read: inputs no output may replace."""
        c = self.canaries
        paths = [
            self.source, self.resolve(self.data.path),
            self.resolve(self.data.eval_path) if self.data.eval_path else None,
        ]
        if c.preset is not None and c.preset.endswith(".toml") and os.path.isfile(c.preset):
            paths.append(c.preset)
        template_space = (
            [c.space] if c.space is not None else [load_preset(c.preset).space] if c.preset is not None else []
        )
        paths += [f for spec in template_space for f in parse_space(spec).files]
        paths += [f for p in self.teaching_pipelines for f in describe(p.name).cache_files(p.options)]
        paths += [f for m in (self.model, self.teacher, self.scorer) if m is not None for f in m.files()]
        return [p for p in paths if p is not None]

    def digest(self, *sections: str) -> str:
        """A hash of the named sections (all when none): results made under another config never mix."""
        data = self.model_dump(mode="json", exclude={"base_dir", "out", "source"})
        if not data["model"][
            "options"
        ]:  # settings added later hash as before when unset, so earlier runs keep their folders
            del data["model"]["options"]
        if data["data"]["fraction"] is None:
            data["data"]["fraction"] = 1.0
        else:  # trials run before the fraction took effect in them (0.2.0) do not belong to a run that has one
            data["data"]["fraction_planted"] = True
        for name in ("teacher", "scorer", "pipelines"):
            if data[name] is None:
                del data[name]
        if sections:
            data = {k: data[k] for k in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def _set(data: dict[str, object], key: str, value: object) -> None:
    """data[a][b][c] = value for key "a.b.c", creating tables on the way."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        inner = node.setdefault(part, {})
        if not isinstance(inner, dict):
            raise InputError(f"--set {key}: {part} is not a table")
        node = inner
    node[parts[-1]] = value


def load_config(
    path: str | os.PathLike[str] | None = None, *, overrides: tuple[str, ...] = (),
    values: Mapping[str, object] | None = None,
) -> AuditConfig:
    """The config from `path` (TOML; a pyproject.toml is read at [tool.privacy-audit]), or ./pyproject.toml.

    `overrides` are KEY.PATH=VALUE strings (VALUE read as JSON when it parses, else text); `values` are
    typed values from CLI flags, set as they are (so `--out 2024` is the folder "2024", not a number).
    """
    p = Path(path) if path is not None else Path("pyproject.toml")
    if not p.exists():
        raise InputError(
            f"config {p} does not exist"
            + ("" if path else "; pass CONFIG.toml or add [tool.privacy-audit] to pyproject.toml")
        )
    data = read_toml(p, what="config")
    if p.name == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("privacy-audit") if isinstance(tool, dict) else None
        if not isinstance(data, dict):
            raise InputError(f"{p} has no [tool.privacy-audit] table")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r} is not KEY.PATH=VALUE")
        try:
            parsed: object = json.loads(value)
        except (json.JSONDecodeError, RecursionError, ValueError):
            parsed = value
        _set(data, key.strip(), parsed)
    for key, typed in (values or {}).items():
        if typed is not None:
            _set(data, key, typed)
    try:
        return AuditConfig.model_validate({**data, "base_dir": str(p.resolve().parent), "source": str(p)})
    except ValidationError as exc:
        raise InputError(f"config {p}: {first_problem(exc, AuditConfig)}") from None
