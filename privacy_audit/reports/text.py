"""Text for reports: untrusted text (teaching prompts, generated examples) made safe for terminals, Markdown and
XML, and counts said as sentences say them."""

from __future__ import annotations

from privacy_audit._text import clean, format_p

__all__ = ["checks", "clean", "format_p"]


def checks(n: int) -> str:
    """A count of gate checks as a sentence says it: "1 check", "4 checks"."""
    return f"{n} check{'' if n == 1 else 's'}"
