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


def test_reading_commands_load_no_model_stack(tmp_path):
    """gate, report --md, compare and canaries show run on the report or set alone: none of them imports torch,
    transformers, scikit-learn or matplotlib (their start-up is measured in benchmarks/RESULTS.md)."""
    from click.testing import CliRunner

    from privacy_audit.cli import main

    runner = CliRunner()
    runner.invoke(main, ["canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--count", "1",
                         "--references", "3", "--seed", "0", "--out", str(tmp_path / "s.json")])
    (tmp_path / "p.txt").write_text("a prompt\n")
    assert runner.invoke(main, ["score", "--model", "mock", "--prompt", str(tmp_path / "p.txt"), "--canaries",
                                str(tmp_path / "s.json"), "--out", str(tmp_path / "r.json")]).exit_code == 0
    commands = [["gate", "r.json"], ["report", "r.json", "--md", "r.md"], ["compare", "r.json", "r.json"],
                ["canaries", "show", "s.json"]]
    for args in commands:
        code = (
            "import sys\nfrom privacy_audit.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(heavy), file=sys.stderr)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert "HEAVY:\n" in out.stderr, (args, out.stderr[-300:])
