"""Where privacy-audit keeps its caches (the converted model, cached teaching outputs)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$PRIVACY_AUDIT_CACHE, else $XDG_CACHE_HOME/privacy-audit, else ~/.cache/privacy-audit."""
    if os.environ.get("PRIVACY_AUDIT_CACHE"):
        return Path(os.environ["PRIVACY_AUDIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "privacy-audit"
