"""Several pipelines in one `run` (`[[pipelines]]`, the scorer loaded once) against one `run` per pipeline, in one run.

    python benchmarks/bench_pipelines.py [--space digits:4]

Three pipelines (raw with 8 examples, raw with 4, zero-shot) on the bundled SMS data with the embedded model, a
canary set of 3 planted and 20 references: one `privacy-audit run` of a config listing all three against three
`privacy-audit run` processes of one pipeline each, through the CLI as CI runs it; the reports' ranks compared.
Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "privacy_audit"]
PIPELINES = [("raw", "{ examples = 8 }"), ("raw", "{ examples = 4 }"), ("zero-shot", "{}")]


def config(space: str, pipelines: list[tuple[str, str]], several: bool) -> str:
    head = (f'[canaries]\ntemplate = "The secret code is {{secret}}"\nspace = "{space}"\ncount = 3\nreferences = 20\n'
            '[data]\npath = "@demo"\nlimit = 8\n[model]\nspec = "embedded"\n')
    table = "[[pipelines]]" if several else "[pipeline]"
    return head + "".join(f"{table}\nname = \"{n}\"\noptions = {o}\n" for n, o in pipelines)


def timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - t0


def ranks(report: Path) -> list[int]:
    return [c["rank"] for c in json.loads(report.read_text())["canaries"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", default="digits:4")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    (work / "all.toml").write_text(config(args.space, PIPELINES, True))
    one = timed([*CLI, "run", str(work / "all.toml"), "--out", str(work / "one")])
    separate, same = 0.0, True
    folders = ["raw", "raw-2", "zero-shot"]
    for i, pipeline in enumerate(PIPELINES):
        (work / f"p{i}.toml").write_text(config(args.space, [pipeline], False))
        separate += timed([*CLI, "run", str(work / f"p{i}.toml"), "--out", str(work / f"separate-{i}")])
        same &= ranks(work / "one" / folders[i] / "report.json") == ranks(work / f"separate-{i}" / "report.json")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(PIPELINES)} pipelines, {args.space}, "
          "embedded scorer\n")
    print("| run | wall time | per pipeline | ratio |")
    print("|---|---|---|---|")
    print(f"| {len(PIPELINES)} `run` processes | {separate:.1f} s | {separate / len(PIPELINES):.1f} s | 1.0x |")
    print(f"| one `run` with `[[pipelines]]` | {one:.1f} s | {one / len(PIPELINES):.1f} s | {separate / one:.2f}x |")
    print(f"\nthe same ranks in every report: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
