"""The DP teaching pipeline on the bundled SMS data with the embedded model, audited against its claim:

    python benchmarks/bench_dp_examples.py [--teachers 4] [--n 4] [--max-new-tokens 32] [--canaries 128]

For each claimed epsilon (1, 4, 8) and without noise: `teach --pipeline dp-examples` on 64 private messages with
`--canaries` canaries each planted by its own fair coin (into one teacher's shard), the student's accuracy on 100
held-out messages (the embedded model reading the synthetic examples), `score --sampled`, and both audited bounds
the gate reads: mu by the f-DP bound (`max_mu`, against the accounted mu) and epsilon by the randomized-inclusion
bound at the claim's delta (`max_epsilon`; delta 1e-5 without a claim), with the verdict; and how many canaries a
total leak would need before each bound could refute the claim. Prints Markdown for benchmarks/RESULTS.md.
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
    parser.add_argument("--canaries", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from click.testing import CliRunner

    from benchmarks.bench_dp_faults import needed, total_leaks
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
    half = args.canaries // 2
    run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:4", "--count", half,
        "--references", args.canaries - half, "--randomized-inclusion", "--seed", "7", "--out", tmp / "set.json")
    run("canaries", "plant", tmp / "set.json", "--data", tmp / "private.jsonl", "--shards", str(args.teachers),
        "--fraction", str(1 / args.teachers), "--seed", "7", "--out", tmp / "planted.jsonl")
    totals = total_leaks(1e-5, 16)

    print("| claimed epsilon (delta) | noise multiplier | student accuracy | audited mu (claimed) | audited epsilon | "
          "gate (max_mu, max_epsilon) | canaries planted of | a total leak needs (mu / epsilon) | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in (["-o", "epsilon=1"], ["-o", "epsilon=4"], ["-o", "epsilon=8"], ["-o", "noise=false"]):
        t0 = time.perf_counter()
        out = tmp / f"t{setting[1]}.txt"
        run("teach", "--pipeline", "dp-examples", "--data", tmp / "planted.jsonl", "--label-field", "label",
            "--model", "embedded", "-o", f"teachers={args.teachers}", "-o", f"n={args.n}", "-o",
            f"max_new_tokens={args.max_new_tokens}", *setting, "--eval-data", tmp / "eval.jsonl", "--out", out)
        sidecar = json.loads(Path(f"{out}.teaching.json").read_text())
        run("score", "--prompt", out, "--canaries", tmp / "set.json", "--model", "embedded", "--sampled",
            "--no-extraction", "--out", tmp / "r.json")
        report = load_report(tmp / "r.json")
        claim, gdp = report.run.claim, report.statistics.gdp
        rules = {r.rule: r for r in apply_gate(report).rules}
        eps = rules["max_epsilon"].value if "max_epsilon" in rules else report.statistics.epsilon.epsilon
        if claim is None:
            claimed, sigma, verdict, need, mu = "none (no noise)", "0", "n/a (no claim)", "n/a", f"{gdp.mu:.3f}"
        else:
            claimed, sigma = f"{claim.epsilon:.3g} ({claim.delta:g})", f"{claim.noise_multiplier:.2f}"
            verdict = ", ".join("pass" if rules[r].passed else "FAIL" for r in ("max_mu", "max_epsilon"))
            need = " / ".join(needed(totals, claim.mu, claim.epsilon))  # at the claim's delta, 1e-5
            mu = f"{gdp.mu:.3f} ({claim.mu:.3f})"
        planted = sum(c.planted for c in report.canaries)
        print(f"| {claimed} | {sigma} | {sidecar['utility']['accuracy']:.2f} | {mu} | {eps:.3f} | {verdict} | "
              f"{planted} of {len(report.canaries)} | {need} | {time.perf_counter() - t0:.0f} |")
        print("   prompt:", sidecar["prompt"][:160].replace("\n", " / "), file=sys.stderr)

if __name__ == "__main__":
    main()
