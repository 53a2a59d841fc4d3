"""Untrusted text (teaching prompts, generated examples) made safe for terminals, Markdown and XML."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeping newlines and tabs)."""
    return _CONTROL.sub("", _ANSI.sub("", text))
