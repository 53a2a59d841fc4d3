"""The shipped CI examples stay valid: the gate snippet loads, and the workflow only uses real commands."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from privacy_audit.cli import main
from privacy_audit.gate import load_thresholds

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"


def test_gate_snippet_loads():
    t = load_thresholds(EXAMPLES / "pyproject-gate.toml")
    assert t.alpha == 0.01 and t.max_exposure_bits == 8.0 and t.overrides["canary-00"]["max_exposure_bits"] == 6.0


def test_workflow_uses_existing_commands_and_options():
    text = (EXAMPLES / "privacy-audit.yml").read_text()
    assert "pip install privacy-audit\n" not in text  # not on a package index: the workflow installs from git
    for line in re.findall(r"privacy-audit ([a-z]+(?: [a-z]+)?)", text):
        words = line.split()
        result = CliRunner().invoke(main, [*words, "--help"])
        assert result.exit_code == 0, line
