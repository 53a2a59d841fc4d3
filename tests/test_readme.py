"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_stage_objects_chain_without_repeating_an_argument(capsys):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    exposure, p, passed = capsys.readouterr().out.split()
    assert 6 < float(exposure) <= 9.97 and float(p) < 0.01  # the raw prompt copies the canaries
    assert passed == "False"  # and the default chance rule catches it


def test_run_chain_example_runs(capsys):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    exec(compile(code, "README.md", "exec"), {})
    insertions, best_rank, passed = capsys.readouterr().out.split()
    assert int(insertions) == 3 and int(best_rank) <= 3 and passed == "False"
