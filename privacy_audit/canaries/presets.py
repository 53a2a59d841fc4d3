"""Canary presets as data: TOML files (the paper's patterns, PII-like formats) loadable by name or path."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from privacy_audit._io import parse_toml, read_text
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
    data = parse_toml(text, what=f"preset {origin}")
    unknown = sorted(set(data) - {"template", "space", "slots", "derived", "description", "source"})
    if unknown or "template" not in data or ("space" in data) == ("slots" in data):
        raise InputError(
            f"preset {origin} needs a template and either space or [slots] (unknown keys: {unknown or 'none'})"
        )
    texts = {k: data[k] for k in ("template", "space", "description", "source") if k in data}
    slots, derived = data.get("slots", {}), data.get("derived", {})
    if (
        not all(isinstance(v, str) for v in texts.values())
        or not isinstance(slots, dict) or not all(isinstance(v, str) for v in slots.values())
        or not isinstance(derived, dict)
        or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in derived.values())
    ):
        raise InputError(
            f"preset {origin}: template, space, description and source must be text, [slots] a table of space specs, "
            "[derived] a table of [op, slot, ...] lists"
        )
    space = texts["space"] if "space" in texts else ";".join(f"{k}={v}" for k, v in slots.items())
    return Preset(
        name, texts["template"], space, texts.get("description", ""), texts.get("source", ""),
        {k: tuple(v) for k, v in derived.items()},
    )


def list_presets() -> list[Preset]:
    """The presets that ship with privacy-audit, by name."""
    folder = files("privacy_audit") / "presets"
    return sorted(
        (
            _parse(p.name.removesuffix(".toml"), p.read_text(encoding="utf-8"), p.name)
            for p in folder.iterdir()
            if p.name.endswith(".toml")
        ),
        key=lambda p: p.name,
    )


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or any preset file by path."""
    path = Path(name)
    if name.endswith(".toml") and path.exists():
        return _parse(path.stem, read_text(path, what="preset"), str(path))
    for preset in list_presets():
        if preset.name == name:
            return preset
    raise InputError(f"unknown preset {name!r}; known: {', '.join(p.name for p in list_presets())} (or a .toml path)")
