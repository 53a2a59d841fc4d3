"""The walk against the echo on a real llama-cpp-python server (the embedded GGUF), in one run:

    python benchmarks/bench_served_walk.py [--echo-sample 40]

1. Exact `digits:3` and `digits:4` after a short prompt that copies a canary: every candidate scored by next-token
   requests along the tree of their tokens (the walk), and a spread sample of them by echo (every candidate's whole
   text sent; the sample's seconds and prompt tokens a candidate extrapolated to the space). Requests, prompt tokens
   sent, tokens past the previous request's common prefix (what the server's one-slot cache evaluates), seconds, and
   the largest score difference on the sample.
2. End to end: `score_prompt` exact on digits:4 by the walk (probe, checks, stability included), and a copied canary
   in a digits:10 space certified by best-first search over HTTP, with greedy extraction.
Prints Markdown for benchmarks/RESULTS.md. Needs llama-cpp-python[server] (`make install-test` builds it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TEMPLATE = "The secret code is {secret}"


def prompt_for(secret: str) -> str:
    return f"Text: your parcel is ready\nClass: not spam\n{TEMPLATE.format(secret=secret)}.\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--echo-sample", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import ScoringOptions, generate_canary_set, load_model, score_prompt
    from tests.served import ALIAS, llama_server

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores\n")
    rows = []
    with llama_server() as url:
        for space in ("digits:3", "digits:4"):
            cs = generate_canary_set(template=TEMPLATE, space=space, count=1, references=5, seed=4)
            prompt = prompt_for(cs.planted[0].secret) + "\n"
            every = cs.secret_space
            texts = [cs.fill(s) for s in every.enumerate(0, every.size)]
            walker = load_model(f"openai:{ALIAS}", base_url=url, max_connections=1)
            context = walker.open_context(prompt)
            walk = walker.walk
            before = (walk.requests, walk.sent, walk.evaluated)
            t0 = time.perf_counter()
            walked = context(texts).totals(len(cs.prefix))
            took = time.perf_counter() - t0
            requests, sent, evaluated = (a - b for a, b in zip((walk.requests, walk.sent, walk.evaluated), before))
            echoer = load_model(f"openai:{ALIAS}", base_url=url, next_tokens="off", max_connections=1)
            echo_context = echoer.open_context(prompt)
            sample = np.linspace(0, every.size - 1, args.echo_sample).astype(int)
            tokens_before = echoer.served.tokens_sent
            t0 = time.perf_counter()
            echoed = echo_context([texts[i] for i in sample]).totals(len(cs.prefix))
            per_echo = (time.perf_counter() - t0) / len(sample)
            echo_tokens = (echoer.served.tokens_sent - tokens_before) / len(sample)
            gap = float(np.max(np.abs(echoed - walked[sample])))
            rank = int(np.sum(walked >= walked[every.index(cs.planted[0].secret)]))
            rows.append((space, every.size, requests, sent, evaluated, took, per_echo, echo_tokens, gap, rank))
        def end_to_end(space: str, references: int, options: ScoringOptions) -> tuple[object, float, int]:
            cs = generate_canary_set(template=TEMPLATE, space=space, count=1, references=references, seed=4)
            model = load_model(f"openai:{ALIAS}", base_url=url)
            t0 = time.perf_counter()
            result = score_prompt(model, prompt_for(cs.planted[0].secret), cs, options)
            return result, time.perf_counter() - t0, model.walk.requests

        exact, exact_took, exact_requests = end_to_end(
            "digits:4", 5, ScoringOptions(mode="exact", extraction=False, extrapolation=False))
        bounded, bounded_took, bounded_requests = end_to_end(
            "digits:10", 10, ScoringOptions(mode="bounded", extraction=True, extrapolation=False))

    print("| space | candidates | walk: requests | prompt tokens sent | past the common prefix | s | echo: s a "
          "candidate | prompt tokens a candidate | echo, whole space (extrapolated) | speed-up | largest gap (bits) "
          "| copied canary's rank |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for space, size, requests, sent, evaluated, took, per_echo, echo_tokens, gap, rank in rows:
        print(f"| {space} | {size:,} | {requests:,} | {sent:,} | {evaluated:,} | {took:.1f} | {per_echo:.2f} | "
              f"{echo_tokens:.0f} | {per_echo * size / 60:.0f} min | {per_echo * size / took:.0f}x | {gap:.3f} | "
              f"{rank} |")
    row = exact.canaries[0]
    print(f"\nEnd to end, exact digits:4 by the walk: rank {row.rank}, {exact_took:.1f} s, {exact_requests:,} "
          f"next-token requests, stability {exact.checks[0].max_difference_bits:.3f} bits "
          f"(tolerance {exact.checks[0].tolerance_bits:.2f})")
    row = bounded.canaries[0]
    print(f"Copied canary in digits:10, bounded: rank interval {row.rank_lower}-{row.rank_upper} "
          f"({row.exposure_method}), greedy extracted {row.greedy_extracted}, {bounded_took:.1f} s, "
          f"{bounded_requests:,} next-token requests; search: {bounded.search}")


if __name__ == "__main__":
    main()
