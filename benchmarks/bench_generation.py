"""Batched against one-at-a-time generation on the examples pipeline, embedded model, in one run.

    python benchmarks/bench_generation.py [--rounds 2]

Runs the paper's synthetic-examples pipeline (8 teachers, n_gen 4, 4 samples each, temperature 0.7,
96 new tokens) on the bundled SMS messages twice with the same seed: `batch_size=1` (one sequence at
a time, the old behaviour) and the default batch (the samples of every round at once, left-padded,
shortest prompts together, sharing one KV cache, a generator per row). Teachers keep samples by the
log-probability they were sampled with in both. Checks that both write the same teaching prompt and
prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.resources import files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="examples the pipeline writes (n)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from privacy_audit import load_model
    from privacy_audit.pipelines import run_pipeline
    from privacy_audit._io import read_records
    from privacy_audit.chain import to_records

    lm = load_model("embedded")
    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:64]
    records = to_records(rows, field="text", label_field="label")
    options = {"teachers": 8, "n": args.rounds, "n_gen": 4, "samples": 4, "temperature": 0.7, "max_new_tokens": 96,
               "labels": {"ham": "not spam"}}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} "
        "threads)\n"
    )
    print("| generation | time (s) | samples | s per sample | teaching prompt |")
    print("|---|---|---|---|---|")
    prompts, times = {}, {}
    samples = 8 * 4 * args.rounds
    for label, batch in (("one at a time (batch_size=1)", 1), ("batched (default)", None)):
        t0 = time.perf_counter()
        out = run_pipeline("examples", records, model=lm, seed=3, options={**options, "batch_size": batch})
        times[label] = time.perf_counter() - t0
        prompts[label] = out.prompt
        print(f"| {label} | {times[label]:.1f} | {samples} | {times[label] / samples:.2f} | {len(out.prompt)} chars |")
    one, many = times.values()
    same = len(set(prompts.values())) == 1
    print(f"\nspeed-up {one / many:.1f}x; same teaching prompt: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
