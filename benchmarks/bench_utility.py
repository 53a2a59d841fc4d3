"""Student accuracy on SMS spam for each teaching pipeline, with the embedded model as teacher and student.

    python benchmarks/bench_utility.py [--eval 100] [--seed 0]

Data: ../shared/data/sms_spam/SMSSpamCollection.tsv (not part of the package), base format
"Text: <message>" / "Class: spam|not spam", classes balanced by under-sampling as in the paper. The
private pool (64 messages, 8 teachers x 8) and the evaluation set are disjoint. The paper's PaLM 2-S
numbers are printed beside ours for reference; ours come from a 135M model.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection.tsv"
PAPER = {"zero-shot": 14.2, "raw": 96.0, "examples": 86.5, "instructions": 92.9}
LABELS = {"ham": "not spam"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=int, default=100, help="evaluation messages (balanced)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"the SMS data is not at {DATA}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit.models import load_model
    from privacy_audit.pipelines import Record, run_pipeline, student_accuracy

    with DATA.open(encoding="utf-8") as f:
        rows = [(label, text) for label, text in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]
    rng = np.random.default_rng(args.seed)
    by = {lab: rng.permutation([i for i, (l, _) in enumerate(rows) if l == lab]) for lab in ("ham", "spam")}
    pool = [Record(text=rows[i][1], label=rows[i][0]) for lab in ("ham", "spam") for i in by[lab][:32]]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    half = args.eval // 2
    evals = [Record(text=rows[i][1], label=rows[i][0]) for lab in ("ham", "spam") for i in by[lab][32 : 32 + half]]
    model = load_model("embedded")
    settings = {
        "zero-shot": {},
        "raw": {"examples": 8, "labels": LABELS},
        "instructions": {"examples": 8, "labels": LABELS},
        "examples": {"teachers": 8, "n": 8, "n_gen": 4, "samples": 2, "keep": 1, "temperature": 0.7,
                     "aggregator": "random", "labels": LABELS, "max_new_tokens": 80},
    }
    print(f"{time.strftime('%Y-%m-%d')}: SMS spam, {len(pool)} private messages, {len(evals)} evaluation messages "
          f"(balanced), seed {args.seed}, model {model.name}")
    print(
        "| pipeline | settings | accuracy (ours, SmolLM2-135M) | per-token accuracy (ours) | paper (PaLM 2-S) | "
        "teaching time | prompt chars |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, opts in settings.items():
        t0 = time.perf_counter()
        out = run_pipeline(name, pool, model=model, seed=args.seed, options=opts)
        teach_s = time.perf_counter() - t0
        u = student_accuracy(model, out.prompt, evals, labels=LABELS)
        shown = ", ".join(f"{k}={v}" for k, v in opts.items() if k != "labels") or "-"
        print(
            f"| {name} | {shown} | {100 * u.accuracy:.1f} ({u.correct}/{u.examples}; predicted {u.predicted_counts}) "
            f"| {100 * (u.accuracy_per_token or 0):.1f} | {PAPER[name]} | {teach_s:.0f} s | {len(out.prompt):,} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
