"""The DP teaching pipeline on the bundled SMS data with the embedded model, audited against its claim:

    python benchmarks/bench_dp_examples.py [--teachers 4] [--n 4] [--max-new-tokens 32]

For each claimed epsilon (1, 4, 8) and without noise: `teach --pipeline dp-examples` on 64 private messages with 16
canaries planted (each into one teacher's shard), the student's accuracy on 100 held-out messages (the embedded model
reading the synthetic examples), `score` over the whole digits:4 space, and the audited epsilon lower bound the
gate's `max_epsilon` reads at the claim's delta (delta 0 without a claim), with its verdict. Prints Markdown for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teachers", type=int, default=4)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from click.testing import CliRunner

    from privacy_audit import load_report
    from privacy_audit.cli import main as cli
    from privacy_audit.gate import apply_gate

    def run(*a: object) -> str:
        result = CliRunner().invoke(cli, [str(x) for x in a])
        if result.exit_code not in (0, 1):
            raise SystemExit(result.output)
        return result.output

    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "private.jsonl").write_text("\n".join(lines[:64]) + "\n")
    (tmp / "eval.jsonl").write_text("\n".join(lines[100:200]) + "\n")
    run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:4", "--count", "16",
        "--references", "200", "--seed", "7", "--out", tmp / "set.json")
    run("canaries", "plant", tmp / "set.json", "--data", tmp / "private.jsonl", "--shards", str(args.teachers),
        "--fraction", str(1 / args.teachers), "--seed", "7", "--out", tmp / "planted.jsonl")
    print("| claimed epsilon (delta) | noise multiplier | student accuracy | audited epsilon lower bound | gate "
          "(max_epsilon) | canaries | s |")
    print("|---|---|---|---|---|---|---|")
    for setting in (["-o", "epsilon=1"], ["-o", "epsilon=4"], ["-o", "epsilon=8"], ["-o", "noise=false"]):
        t0 = time.perf_counter()
        out = tmp / f"t{setting[1]}.txt"
        run("teach", "--pipeline", "dp-examples", "--data", tmp / "planted.jsonl", "--label-field", "label",
            "--model", "embedded", "-o", f"teachers={args.teachers}", "-o", f"n={args.n}", "-o",
            f"max_new_tokens={args.max_new_tokens}", *setting, "--eval-data", tmp / "eval.jsonl", "--out", out)
        sidecar = json.loads(Path(f"{out}.teaching.json").read_text())
        run("score", "--prompt", out, "--canaries", tmp / "set.json", "--model", "embedded", "--out",
            tmp / "r.json")
        report = load_report(tmp / "r.json")
        claim = report.run.claim
        rule = next((r for r in apply_gate(report).rules if r.rule == "max_epsilon"), None)
        audited = rule.value if rule is not None else report.statistics.epsilon.epsilon
        verdict = "n/a (no claim)" if rule is None else ("pass" if rule.passed else "FAIL")
        claimed = "none (no noise)" if claim is None else f"{claim.epsilon:.3g} ({claim.delta:g})"
        sigma = "0" if claim is None else f"{claim.noise_multiplier:.2f}"
        accuracy = sidecar["utility"]["accuracy"]
        print(f"| {claimed} | {sigma} | {accuracy:.2f} | {audited:.3f} | {verdict} | "
              f"{len(report.canaries) - 200} planted of {len(report.canaries)} | {time.perf_counter() - t0:.0f} |")
        print("   prompt:", sidecar["prompt"][:160].replace("\n", " / "), file=sys.stderr)


if __name__ == "__main__":
    main()
