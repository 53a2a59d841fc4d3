"""Canary presets as data: TOML files (the paper's patterns, PII-like formats) loadable by name or path."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from privacy_audit.errors import InputError


@dataclass(frozen=True)
class Preset:
    name: str
    template: str
    space: str
    description: str = ""
    source: str = ""
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _parse(name: str, text: str, origin: str) -> Preset:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"preset {origin} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"template", "space", "slots", "derived", "description", "source"})
    if unknown or "template" not in data or ("space" in data) == ("slots" in data):
        raise InputError(f"preset {origin} needs a template and either space or [slots] (unknown keys: {unknown or 'none'})")
    space = data["space"] if "space" in data else ";".join(f"{k}={v}" for k, v in data["slots"].items())
    derived = {k: tuple(v) for k, v in data.get("derived", {}).items()}
    return Preset(name, data["template"], space, data.get("description", ""), data.get("source", ""), derived)


def list_presets() -> list[Preset]:
    """The presets that ship with privacy-audit, by name."""
    folder = files("privacy_audit") / "presets"
    return sorted(
        (_parse(p.name.removesuffix(".toml"), p.read_text(encoding="utf-8"), p.name) for p in folder.iterdir() if p.name.endswith(".toml")),
        key=lambda p: p.name,
    )


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or any preset file by path."""
    path = Path(name)
    if name.endswith(".toml") and path.is_file():
        return _parse(path.stem, path.read_text(encoding="utf-8"), str(path))
    for preset in list_presets():
        if preset.name == name:
            return preset
    raise InputError(f"unknown preset {name!r}; known: {', '.join(p.name for p in list_presets())} (or a .toml path)")
