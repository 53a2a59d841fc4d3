"""Membership attacks beside the blind control on the bundled SMS data with the embedded model (SmolLM2-135M-Instruct).

    python benchmarks/bench_membership.py [--held-out 256] [--permutations 2000]

The demo's set-up (8 private examples with 3 planted canaries, the embedded model as teacher and scorer) for the `raw`,
`instructions` and `examples` pipelines and the `zero-shot` control (a prompt that never saw an example): each attack's
AUC with its 95% interval and TPR at 1% / 0.1% FPR, and the blind control's, private examples against `--held-out`
held-out messages. Then the exchangeability check on the real model: under the zero-shot prompt the split is a coin,
so label permutations of the same scores give each attack's interval's miss rate at 0.5 (at most 5% at 95%).
Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cell(r) -> str:
    """AUC (interval), TPR at 1% / 0.1% FPR."""
    if r is None:
        return "not run"
    ci = "" if r.auc_ci is None else f" ({r.auc_ci[0]:.2f}-{r.auc_ci[1]:.2f})"
    return f"{r.auc:.2f}{ci}, {r.tpr_at_1pct_fpr:.2f} / {r.tpr_at_0_1pct_fpr:.2f}"


def cells(rc) -> list[str]:
    """The attacks', the blind control's and the verdict's cells of one reconstruction."""
    from privacy_audit.scoring.membership import blind_verdict

    by = {a.name: a for a in rc.attacks}
    beat = {"as well": "no", "within": "not told apart", "beaten": "yes", None: "n/a"}[blind_verdict(rc)]
    return [cell(by.get(n)) for n in ("loss", "calibrated", "zlib", "min_k_plus_plus")] + [cell(rc.blind), beat]


def zero_shot_split(held_out: int) -> tuple[list[str], list[str], str]:
    """The demo's 8 private examples and held-out messages, formatted as the pipelines show them, and the zero-shot
    prompt (which reads none of them)."""
    from importlib.resources import files

    from privacy_audit._io import read_records
    from privacy_audit.demo import DEMO_DATA, SMS_LABELS
    from privacy_audit.pipelines import format_example, run_pipeline, to_records

    rows = read_records(str(files("privacy_audit") / "data" / DEMO_DATA), "text")
    order = np.random.default_rng(0).permutation(len(rows))
    records = to_records([rows[int(i)] for i in order], field="text", label_field="label")
    members = [format_example(r, SMS_LABELS) for r in records[:8]]
    non_members = [format_example(r, SMS_LABELS) for r in records[8 : 8 + held_out]]
    return members, non_members, run_pipeline("zero-shot", records[:8]).prompt


def configure_known(name: str, options: dict) -> object:
    """The demo's pipeline options, less those a pipeline does not take (`examples` has its own count; zero-shot
    takes none)."""
    from privacy_audit._registry import component
    from privacy_audit.pipelines import configure

    known = component("pipeline", name).schema.model_fields
    return configure(name, {k: v for k, v in options.items() if k in known})


def main() -> None:
    import privacy_audit.demo
    from privacy_audit.demo import run_demo
    from privacy_audit.models import load_model
    from privacy_audit.scoring.membership import reconstruction, roc_of

    ap = argparse.ArgumentParser()
    ap.add_argument("--held-out", type=int, default=256)
    ap.add_argument("--permutations", type=int, default=2000)
    ap.add_argument("--pipelines", nargs="*", default=["raw", "instructions", "examples"])
    args = ap.parse_args()
    privacy_audit.demo.configure = configure_known  # type: ignore[attr-defined]
    lm = load_model("embedded")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"8 private examples (3 canaries planted) against {args.held_out} held-out messages; AUC (95% CI), "
          "TPR at 1% FPR / at 0.1% FPR\n")
    print("| pipeline | loss | calibrated | zlib | Min-K%++ | blind control | attacks beat the blind control | s |")
    print("|---|---|---|---|---|---|---|---|")
    for pipeline in args.pipelines:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = run_demo(Path(out) / "demo", model=lm, pipelines=(pipeline,), held_out_count=args.held_out)
        seconds = time.perf_counter() - start
        rc = result.reports[0].reconstruction
        assert rc is not None
        print(f"| {pipeline} | " + " | ".join(cells(rc)) + f" | {seconds:.0f} |")
    # zero-shot: a prompt that never saw an example (the demo measures no membership for it: it used no record)
    start = time.perf_counter()
    members, non_members, prompt = zero_shot_split(args.held_out)
    zero = reconstruction(lm, prompt + "\n", members=members, non_members=non_members)
    print("| zero-shot (control) | " + " | ".join(cells(zero)) + f" | {time.perf_counter() - start:.0f} |")
    rng = np.random.default_rng(0)
    m = len(zero.attacks[0].member_scores)
    print(f"\nExchangeability (zero-shot prompt, {args.permutations} seeded label permutations of the same scores): "
          "how often each attack's 95% AUC interval misses 0.5\n")
    print("| attack | misses | rate |")
    print("|---|---|---|")
    for attack in zero.attacks:
        scores = np.array(attack.member_scores + attack.non_member_scores)
        misses = 0
        for _ in range(args.permutations):
            ci = roc_of(attack.name, rng.permutation(scores), m).auc_ci
            misses += ci is not None and not ci[0] <= 0.5 <= ci[1]
        print(f"| {attack.name} | {misses} of {args.permutations} | {misses / args.permutations:.3f} |")


if __name__ == "__main__":
    main()
