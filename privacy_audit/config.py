"""One config file for a whole audit or experiment: a TOML file, or `[tool.privacy-audit]` in pyproject.toml.

CLI `--set key.path=value` overrides any setting (the value is read as JSON when it parses, else as text).
Relative data paths are taken from the config file's folder; `@demo` is the bundled SMS demo data.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from privacy_audit._io import read_text
from privacy_audit.canaries.plant import detect_format, read_table
from privacy_audit.canaries.presets import load_preset
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, thresholds_from_mapping
from privacy_audit.scoring.options import ScoringOptions


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CanaryConfig(_Section):
    preset: str | None = None
    template: str | None = None
    space: str | None = None
    count: int = 5
    references: int = 20
    repetitions: int = 1
    seed: int = 0


class DataConfig(_Section):
    path: str = "@demo"
    field: str = "text"
    label_field: str | None = "label"
    format: str | None = None
    limit: int | None = None
    position: Literal["append", "prepend", "new", "random"] = "append"
    shards: int | None = None
    fraction: float = 1.0
    eval_path: str | None = None


class PipelineConfig(_Section):
    name: str = "raw"
    options: dict[str, Any] = {}
    seed: int = 0


class ModelConfig(_Section):
    spec: str = "embedded"
    chunk_tokens: int | None = None

    def options(self) -> dict[str, Any]:
        """Backend options set in the config (the backend's own defaults for the rest)."""
        return {} if self.chunk_tokens is None else {"chunk_tokens": self.chunk_tokens}


class ScoringConfig(ScoringOptions):
    """The scoring options (defaults in `ScoringOptions`), and whether to add reconstruction likelihood."""

    membership: bool = True

    def options(self) -> ScoringOptions:
        return ScoringOptions(**self.model_dump(exclude={"membership"}))


class SecretSharerConfig(_Section):
    trials: int = 100
    candidates: int = 1000
    seed: int = 0
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None


class AuditConfig(_Section):
    out: str = "privacy-audit-run"
    canaries: CanaryConfig = CanaryConfig()
    data: DataConfig = DataConfig()
    pipeline: PipelineConfig = PipelineConfig()
    model: ModelConfig = ModelConfig()
    scoring: ScoringConfig = ScoringConfig()
    gate: Thresholds | None = None
    secret_sharer: SecretSharerConfig = SecretSharerConfig()
    base_dir: str = "."

    @field_validator("gate", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        """A `[gate]` table becomes typed thresholds (range-checked); unset keys of a dump are dropped."""
        if value is None or isinstance(value, Thresholds):
            return value
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        return thresholds_from_mapping(value, source="config [gate]")

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

    def read_pool(self) -> list[dict[str, Any]]:
        """The private records: all of them, or a seeded sample of `data.limit`."""
        path = self.resolve(self.data.path)
        rows, _ = read_table(path, self.data.field, detect_format(path, self.data.format))
        if self.data.limit is not None:
            if not 1 <= self.data.limit <= len(rows):
                raise InputError(f"data.limit must be between 1 and the {len(rows)} records of {path}")
            rng = np.random.default_rng(self.pipeline.seed)
            rows = [rows[int(i)] for i in sorted(rng.choice(len(rows), self.data.limit, replace=False))]
        return rows

    def digest(self, *sections: str) -> str:
        """A hash of the named sections (all when none): results made under another config never mix."""
        data = self.model_dump(mode="json", exclude={"base_dir", "out"})
        if sections:
            data = {k: data[k] for k in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """data[a][b][c] = value for key "a.b.c", creating tables on the way."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"--set {key}: {part} is not a table")
    node[parts[-1]] = value


def load_config(
    path: str | os.PathLike[str] | None = None, *, overrides: tuple[str, ...] = (), values: dict[str, Any] | None = None
) -> AuditConfig:
    """The config from `path` (TOML; a pyproject.toml is read at [tool.privacy-audit]), or ./pyproject.toml.

    `overrides` are KEY.PATH=VALUE strings (VALUE read as JSON when it parses, else text); `values` are
    typed values from CLI flags, set as they are (so `--out 2024` is the folder "2024", not a number).
    """
    p = Path(path) if path is not None else Path("pyproject.toml")
    if not p.exists():
        raise InputError(f"config {p} does not exist" + ("" if path else "; pass CONFIG.toml or add [tool.privacy-audit] to pyproject.toml"))
    try:
        data = tomllib.loads(read_text(p, what="config"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config {p} is not valid TOML ({exc})") from None
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
            parsed: Any = json.loads(value)
        except (json.JSONDecodeError, RecursionError, ValueError):
            parsed = value
        _set(data, key.strip(), parsed)
    for key, typed in (values or {}).items():
        if typed is not None:
            _set(data, key, typed)
    try:
        return AuditConfig.model_validate({**data, "base_dir": str(p.resolve().parent)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(f"config {p}: {where}: {message}") from None
