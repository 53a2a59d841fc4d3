"""Exact exposure over a 4-digit space: the trie engine vs one full forward pass per candidate.

Run by hand on the embedded model: `python benchmarks/bench_exact.py [--sample 30]`. Prints a
Markdown table for benchmarks/RESULTS.md. Both approaches score the same prompt in the same run;
the engine's log-probs are checked against the naive ones on the naive sample (1e-3 bits).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=30, help="candidates scored the naive way")
    parser.add_argument("--digits", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from privacy_audit import generate_canary_set, plant_records
    from privacy_audit._io import read_records
    from privacy_audit.models import load_model
    from privacy_audit.pipelines import Record, run_pipeline

    t0 = time.perf_counter()
    model = load_model("embedded")
    load_s = time.perf_counter() - t0

    from importlib.resources import files

    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:8]
    cs = generate_canary_set(template="The secret code is {secret}", space=f"digits:{args.digits}", count=3, references=0, seed=0)
    planted, _ = plant_records(rows, cs, field="text", seed=0)
    prompt = run_pipeline("raw", [Record(text=r["text"], label=r["label"]) for r in planted], options={"labels": {"ham": "not spam"}}).prompt
    context = prompt + "\n"
    space = cs.secret_space
    prefix = len(cs.prefix)
    ctx_ids = model.encode_context(context)

    rng = np.random.default_rng(0)
    sample = sorted(int(i) for i in rng.choice(space.size, size=args.sample, replace=False))
    t0 = time.perf_counter()
    naive = []
    for i in sample:
        ids = model.tokenizer(cs.fill(space.secret(i)), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(model.model(torch.tensor([ctx_ids + ids])).logits[0].float(), dim=-1)
        n = args.digits
        naive.append(sum(logp[len(ctx_ids) + len(ids) - n + j - 1, t].item() for j, t in enumerate(ids[-n:])) / np.log(2))
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    scorer = model.open_context(context)
    totals = scorer([cs.fill(s) for s in space.enumerate()]).totals(prefix)
    engine_s = time.perf_counter() - t0
    diff = float(np.max(np.abs(totals[sample] - np.array(naive))))
    steps = sum(10**d for d in range(args.digits))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    naive_rate = args.sample / naive_s
    engine_rate = space.size / engine_s
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; prompt {len(ctx_ids)} tokens")
    print("| measure | value |\n|---|---|")
    print(f"| model load from converted cache | {load_s:.2f} s |")
    print(f"| naive: one forward pass per candidate ({args.sample} sampled) | {naive_rate:.2f} candidates/s |")
    print(f"| engine: all {space.size:,} candidates (incl. prompt pass) | {engine_s:.2f} s, {engine_rate:,.0f} candidates/s |")
    print(f"| speed-up over naive | {engine_rate / naive_rate:,.0f}x |")
    print(f"| token steps (trie) | {steps:,} ({steps / engine_s:,.0f} steps/s) |")
    print(f"| max abs difference vs naive on the sample | {diff:.2e} bits |")
    print(f"| peak RSS | {peak_gb:.2f} GB |")


if __name__ == "__main__":
    main()
