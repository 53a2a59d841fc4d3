"""How many canaries an audit of a claimed epsilon needs: seeded runs of randomized response (the tight epsilon-DP
mechanism for one bit) at its true epsilon, each canary planted by a fair coin, audited by the randomized-inclusion
bound at 95% against a claim of 1. Rows: the true epsilon (1 = the claim kept; larger = a broken mechanism), columns:
the number of canaries; cells: how often the gate's max_epsilon rule fails, and the mean audited bound.

    python benchmarks/bench_claims.py [--runs 100]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    claim, sizes = 1.0, (64, 256, 1024)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; {args.runs} seeded "
          f"runs a cell; claim epsilon = {claim:g}\n")
    print("| true epsilon | " + " | ".join(f"{m} canaries" for m in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    rng = np.random.default_rng(0)
    for true in (1.0, 2.0, 4.0, 8.0):
        cells = []
        for m in sizes:
            bounds = []
            for _ in range(args.runs):
                planted = rng.random(m) < 0.5
                truthful = rng.random(m) < math.exp(true) / (1 + math.exp(true))
                scores = np.where(truthful, planted, ~planted).astype(np.float64)
                bounds.append(epsilon_randomized_inclusion(scores=scores, planted=planted).epsilon)
            b = np.array(bounds)
            cells.append(f"fails {np.mean(b > claim):.0%}, mean bound {b.mean():.2f}")
        print(f"| {true:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
