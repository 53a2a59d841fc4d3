"""Importing the package and asking for --help must not load torch, transformers or matplotlib."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_heavy_packages():
    code = (
        "import sys, privacy_audit, privacy_audit.cli\n"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_is_declared():
    import privacy_audit

    assert all(hasattr(privacy_audit, name) for name in privacy_audit.__all__)


def test_help_runs_as_a_console_command():
    out = subprocess.run([sys.executable, "-m", "privacy_audit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout and "gate" in out.stdout
