"""Untrusted text (teaching prompts, teachers' messages, generated examples) made safe to show."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")
# C0 and C1 controls but newline and tab, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Remove terminal escape sequences (CSI, OSC and the rest) and control characters (keeping newlines and tabs)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def format_p(p: float | None, log10_p: float | None = None) -> str:
    """A p-value for display; below 1e-300 (where floats lose it) from its log10, never a bare 0."""
    if p is None:
        return "n/a"
    if log10_p is not None and (p == 0 or log10_p < -300):
        return "0 (log10 unknown)" if log10_p == float("-inf") else f"1e{log10_p:.1f}"
    return f"{p:.2g}"
