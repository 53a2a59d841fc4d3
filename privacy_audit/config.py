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

from pydantic import BaseModel, ConfigDict, ValidationError

from privacy_audit._io import read_text
from privacy_audit.errors import InputError


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


class ScoringConfig(_Section):
    mode: Literal["exact", "sampled"] = "exact"
    max_exact: int = 1_000_000
    extraction: bool = True
    search_budget: int = 2_000
    include_secrets: bool = False
    membership: bool = True


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
    gate: dict[str, Any] = {}
    secret_sharer: SecretSharerConfig = SecretSharerConfig()
    base_dir: str = "."

    def resolve(self, path: str) -> str:
        """A data path as given in the config: `@demo`, absolute, or relative to the config's folder."""
        if path == "@demo":
            return str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl")
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

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
        raise InputError(f"config {p}: {where}: {first['msg']}") from None
