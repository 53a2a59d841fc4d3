"""Broken DP teaching pipelines that keep their claim: with what power does the audit catch them?

    python benchmarks/bench_dp_faults.py [--runs 100] [--pipeline] [--canaries 64] [--n 8]

`dp-examples` accounts mu = sqrt(k) / s for k Gaussian releases at noise multiplier s, per record of one shard. Its
three ways to break that while still claiming it (`pipelines.dp_examples.Faults`), as what they do to one record's
privacy: noise too small by a factor c (every record: c mu); teacher 0 not clipped to its share, weight w (the records
of its shard: w mu; the others keep mu); teacher 0 reading every shard (the other shards' records reach two teachers:
up to 2 mu). Part 1, the ceiling: the strongest canary a mechanism at that privacy allows (each canary's score the
optimal test statistic of its own mu'-Gaussian release, z mu' + N(0, 1)), coin-planted into a random one of 4 shards,
audited as the gate does (max_mu against the claimed mu, max_epsilon against (epsilon, delta) by Steinke et al.),
seeded runs a cell; and how many canaries an audit needs before even a total leak could refute the claim. Part 2
(`--pipeline`): each fault at its extreme through the real pipeline on SMS with the embedded model as teachers and
scorer, coin-planted template canaries at the start of their records (where a teacher that copies an example begins),
one seeded run each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLAIMS = (1.0, 4.0, 8.0)
DELTA, STEPS, TEACHERS = 1e-5, 128, 4  # the SMS benchmark's: 4 examples of up to 32 tokens, 4 teachers
FAULTS = (("kept (no fault)", "noise", 1.0), ("noise / 2", "noise", 2.0), ("noise / 4", "noise", 4.0),
          ("noise / 16", "noise", 16.0), ("teacher 0 weight 4", "weight", 4.0),
          ("teacher 0 weight 16", "weight", 16.0), ("teacher 0 sees every shard", "sees_all", 2.0))


def record_mu(kind: str, factor: float, mu: float, shard: np.ndarray) -> np.ndarray:
    """Each canary's mu under the fault, from the shard it was planted in."""
    if kind == "noise":
        return np.full(shard.size, factor * mu)
    if kind == "weight":
        return np.where(shard == 0, factor * mu, mu)
    return np.where(shard == 0, mu, factor * mu)  # sees_all: another shard's record reaches teacher 0 too


def ceiling(runs: int) -> None:
    from privacy_audit.pipelines.accounting import calibrate_gaussian
    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion
    from privacy_audit.stats.fdp import gdp_randomized_inclusion

    sizes = (64, 256, 1024)
    rng = np.random.default_rng(0)
    for claim in CLAIMS:
        ledger = calibrate_gaussian(claim, DELTA, STEPS)
        mu = ledger.mu
        print(f"\nclaim epsilon {claim:g} at delta {DELTA:g} (noise multiplier {ledger.noise_multiplier:.2f} over "
              f"{STEPS} releases, mu {mu:.3f}); cells: how often max_mu / max_epsilon fail, mean mu bound\n")
        print("| fault | " + " | ".join(f"{m} canaries" for m in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for name, kind, factor in FAULTS:
            cells = []
            for m in sizes:
                mu_fail = eps_fail = 0
                bounds = []
                for _ in range(runs):
                    planted = rng.random(m) < 0.5
                    scores = planted * record_mu(kind, factor, mu, rng.integers(TEACHERS, size=m)) + rng.normal(size=m)
                    gdp = gdp_randomized_inclusion(scores=scores, planted=planted, delta=DELTA)
                    eps = epsilon_randomized_inclusion(scores=scores, planted=planted, delta=DELTA)
                    mu_fail += gdp.mu > mu
                    eps_fail += eps.epsilon > ledger.epsilon
                    bounds.append(gdp.mu)
                cells.append(f"{mu_fail / runs:.0%} / {eps_fail / runs:.0%}, {np.mean(bounds):.2f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nCanaries needed before a total leak (every planted canary scored above every other) can refute the claim "
          "(up to 2^18):")
    print("\n| claimed epsilon | mu | by max_mu | by max_epsilon |\n|---|---|---|---|")
    totals = total_leaks(DELTA, 18)
    for claim in CLAIMS:
        ledger = calibrate_gaussian(claim, DELTA, STEPS)
        mu = ledger.mu
        by_mu, by_eps = needed(totals, mu, ledger.epsilon)
        print(f"| {claim:g} | {mu:.3f} | {by_mu} | {by_eps} |")


def total_leaks(delta: float, largest: int) -> list[tuple[int, float, float]]:
    """(m, mu bound, epsilon bound) when every one of m coin-planted canaries (half planted) that was planted is
    scored above every other, for m = 2^4 ... 2^largest: the most m canaries can certify."""
    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion
    from privacy_audit.stats.fdp import gdp_randomized_inclusion

    out = []
    for m in (2**i for i in range(4, largest + 1)):
        planted = np.arange(m) % 2 == 0
        scores = planted.astype(np.float64)
        out.append((m, gdp_randomized_inclusion(scores=scores, planted=planted, delta=delta).mu,
                    epsilon_randomized_inclusion(scores=scores, planted=planted, delta=delta).epsilon))
    return out


def needed(totals: list[tuple[int, float, float]], mu: float, epsilon: float) -> tuple[str, str]:
    """The fewest canaries whose total leak exceeds the claimed mu, and epsilon (or why none does)."""
    by_mu = next((f"{m:,}" for m, b, _ in totals if b > mu), f"more than {totals[-1][0]:,}")
    peak = max(totals, key=lambda t: t[2])
    by_eps = next((f"{m:,}" for m, _, e in totals if e > epsilon),
                  f"never (the bound peaks at {peak[2]:.2f} with {peak[0]:,}, then falls as 2 m delta grows)"
                  if peak[0] < totals[-1][0] else f"more than {totals[-1][0]:,}")
    return by_mu, by_eps


def through_pipeline(canaries: int, n: int) -> None:
    """Each fault at its extreme through dp-examples with the embedded model (claim epsilon 1), one run each."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import PlantOptions, ScoringOptions, generate_canary_set, load_model, plant, score
    from privacy_audit.gate import apply_gate
    from privacy_audit.pipelines import Teaching
    from privacy_audit.pipelines.dp_examples import Faults, dp_teach
    from privacy_audit.pipelines.teaching import to_records

    rows = [json.loads(line) for line in
            (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:64]]
    model = load_model("embedded")
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=canaries // 2,
                             references=canaries - canaries // 2, seed=7, randomized=True)
    planted = plant(cs, rows, PlantOptions(label_field="label", shards=TEACHERS, fraction=1 / TEACHERS, seed=7,
                                                  position="prepend"))
    records = to_records(planted.rows, field="text", label_field="label", shard_field="teacher")
    print(f"\nThrough the pipeline: 64 SMS records, {canaries} template canaries (digits:4) by coins, {TEACHERS} "
          f"teachers, {n} examples of up to 32 tokens, claim epsilon 1, canaries at the start of records; the "
          "embedded model teaches and scores\n")
    print("| fault | audited mu (claimed) | audited epsilon (claimed) | gate | canaries in the examples | s |")
    print("|---|---|---|---|---|---|")
    for name, faults in (("kept (no fault)", Faults()), ("noise / 1000", Faults(noise_factor=1000.0)),
                         ("teacher 0 weight 1000", Faults(weight=1000.0)),
                         ("teacher 0 sees every shard", Faults(sees_all=True))):
        t0 = time.perf_counter()
        out = dp_teach(records, model=model, seed=7, teachers=TEACHERS, n=n, n_gen=4, epsilon=1.0, delta=DELTA,
                       noise=True, vocab=50, max_new_tokens=32, labels=None, faults=faults)
        report = score(Teaching(out, planted, tuple(records)), model, ScoringOptions(mode="sampled", extraction=False),
                       membership=False)
        gate = {r.rule: r for r in apply_gate(report).rules}
        shown = sum(c.secret in out.prompt for c in cs.canaries if c.planted)
        claim = report.run.claim
        assert claim is not None and claim.mu is not None
        verdict = "pass" if gate["max_mu"].passed and gate["max_epsilon"].passed else "FAIL"
        print(f"| {name} | {gate['max_mu'].value:.3f} ({claim.mu:.3f}) | {gate['max_epsilon'].value:.3f} "
              f"({claim.epsilon:.3g}) | {verdict} | {shown} | {time.perf_counter() - t0:.0f} |")
        print("   prompt:", out.prompt[:200].replace("\n", " / "), file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--pipeline", action="store_true", help="also run each fault through the real pipeline")
    ap.add_argument("--canaries", type=int, default=64)
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; {args.runs} seeded runs a cell")
    ceiling(args.runs)
    if args.pipeline:
        through_pipeline(args.canaries, args.n)


if __name__ == "__main__":
    main()
