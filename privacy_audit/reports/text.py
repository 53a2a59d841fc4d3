"""Untrusted text (teaching prompts, generated examples) made safe for terminals, Markdown and XML."""

from __future__ import annotations

from privacy_audit._text import clean, format_p

__all__ = ["clean", "format_p"]
