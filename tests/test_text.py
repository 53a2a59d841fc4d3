"""Untrusted text made safe to show, p-values shown without ever printing a bare 0, and where caches live."""

from __future__ import annotations

import math

from privacy_audit._paths import cache_root
from privacy_audit._text import clean, format_p


def test_clean_removes_escapes_controls_and_bidi_overrides_and_keeps_lines():
    text = "ok\x1b[31mred\x1b[0m \x1b]0;title\x07tab\there\nnext\u202eevil\x00\x9b"
    assert clean(text) == "okred tab\there\nnextevil"


def test_p_values_print_from_their_log10_below_floats():
    assert format_p(0.0123) == "0.012" and format_p(None) == "n/a"
    assert format_p(0.0, -600.0) == "1e-600.0" and format_p(0.0, -math.inf) == "0 (log10 unknown)"
    assert format_p(1e-310, -310.0) == "1e-310.0"


def test_the_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVACY_AUDIT_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("PRIVACY_AUDIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "privacy-audit"
