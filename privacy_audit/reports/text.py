"""Untrusted text (teaching prompts, generated examples) made safe for terminals, Markdown and XML."""

from __future__ import annotations

from privacy_audit._text import clean

__all__ = ["clean", "format_p"]


def format_p(p: float | None, log10_p: float | None = None) -> str:
    """A p-value for display; below 1e-300 (where floats lose it) from its log10, never a bare 0."""
    if p is None:
        return "n/a"
    if log10_p is not None and (p == 0 or log10_p < -300):
        return "0 (log10 unknown)" if log10_p == float("-inf") else f"1e{log10_p:.1f}"
    return f"{p:.2g}"
