"""Several prompts in one `score` call against one call per prompt, and the start-up of the reading commands against
a process that imports the scoring stack, in one run.

    python benchmarks/bench_prompts.py [--prompts 10] [--space digits:4] [--repeats 3]

1. N teaching prompts (slices of the shipped SMS sample, one canary planted in each), a 10^4 canary set: one
   `privacy-audit score --prompt ... --prompt ...` (the model loaded once) against N `privacy-audit score` processes,
   each through the CLI as CI runs it; the reports' ranks compared.
2. `gate`, `report`, `compare` and `canaries show` on those reports (best of --repeats), against
   `python -c "import torch, transformers, scipy"`: what each would cost if it imported the scoring stack.
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
from importlib.resources import files
from pathlib import Path

CLI = [sys.executable, "-m", "privacy_audit"]


def timed(command: list[str], repeats: int = 1) -> float:
    """Best wall time of `repeats` runs of a command that must succeed (the gate may exit 1: a verdict)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return best


def ranks(report: Path) -> list[int]:
    return [c["rank"] for c in json.loads(report.read_text())["canaries"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--space", default="digits:4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(row)["text"] for row in rows]
    work = Path(tempfile.mkdtemp(prefix="bench-prompts-"))
    canaries = work / "canaries.json"
    subprocess.run([*CLI, "canaries", "generate", "--template", "The secret code is {secret}", "--space",
                    args.space, "--count", str(args.prompts), "--references", "50", "--seed", "7",
                    "--out", str(canaries)], check=True, capture_output=True)
    secrets = [c["text"] for c in json.loads(canaries.read_text())["canaries"]]
    prompts = []
    per = max(1, len(texts) // args.prompts)
    for i in range(args.prompts):
        body = "\n".join(f"Text: {t}" for t in texts[i * per:(i + 1) * per][:12])
        path = work / f"prompt-{i:02d}.txt"
        path.write_text(f"Classify each message as spam or ham.\n{body}\nText: {secrets[i]}\n", encoding="utf-8")
        prompts.append(path)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.prompts} prompts of "
          f"{sum(p.stat().st_size for p in prompts) // len(prompts):,} bytes, {args.space}, embedded scorer\n")
    one_out = work / "one"
    one = timed([*CLI, "score", *[a for p in prompts for a in ("--prompt", str(p))], "--canaries", str(canaries),
                 "--out", str(one_out)])
    separate = 0.0
    for i, path in enumerate(prompts):
        separate += timed([*CLI, "score", "--prompt", str(path), "--canaries", str(canaries),
                           "--out", str(work / f"separate-{i:02d}.json")])
    same = all(ranks(one_out / f"{p.stem}.json") == ranks(work / f"separate-{i:02d}.json")
               for i, p in enumerate(prompts))
    print("| scoring | wall time | per prompt | ratio |")
    print("|---|---|---|---|")
    print(f"| {args.prompts} `score` processes | {separate:.1f} s | {separate / args.prompts:.1f} s | 1.0x |")
    print(f"| one `score` with {args.prompts} `--prompt` | {one:.1f} s | {one / args.prompts:.1f} s "
          f"| {separate / one:.1f}x |")
    print(f"\nthe same ranks in every report: {'yes' if same else 'NO'}\n")

    first, second = one_out / f"{prompts[0].stem}.json", one_out / f"{prompts[1].stem}.json"
    commands = {
        "`gate`": [*CLI, "gate", str(first)],
        "`report`": [*CLI, "report", str(first), "--md", str(work / "r.md")],
        "`compare`": [*CLI, "compare", str(first), str(second)],
        "`canaries show`": [*CLI, "canaries", "show", str(canaries)],
        "baseline: `python -c 'import torch, transformers, scipy'`": [sys.executable, "-c",
                                                                       "import torch, transformers, scipy"],
        "`python -c pass`": [sys.executable, "-c", "pass"],
    }
    print(f"| command | start-up and work (best of {args.repeats}) |")
    print("|---|---|")
    for name, command in commands.items():
        print(f"| {name} | {timed(command, args.repeats):.2f} s |")


if __name__ == "__main__":
    main()
