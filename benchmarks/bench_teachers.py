"""A served teacher (llama-cpp-python's OpenAI-compatible server over the embedded GGUF) against the transformers
backend on the same model, in one run.

    python benchmarks/bench_teachers.py [--rounds 2]

The instructions pipeline (one request) and the examples pipeline (teachers x samples x rounds requests) through
the server with max_connections 1 and 4, then through the transformers backend (batched generation). Prints
Markdown for benchmarks/RESULTS.md. Needs llama-cpp-python[server] (`make install-test` builds it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="examples the examples pipeline writes (n)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import load_model
    from privacy_audit.pipelines import run_pipeline
    from privacy_audit._io import read_records
    from privacy_audit.chain import to_records
    from tests.served import ALIAS, llama_server

    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:64]
    records = to_records(rows, field="text", label_field="label")
    examples = {"teachers": 4, "n": args.rounds, "n_gen": 4, "samples": 2, "temperature": 0.7, "max_new_tokens": 64,
                "labels": {"ham": "not spam"}}
    instructions = {"labels": {"ham": "not spam"}, "max_new_tokens": 128}
    requests = examples["teachers"] * examples["samples"] * args.rounds
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores\n")
    print("| teacher | pipeline | requests | time (s) | s per request |")
    print("|---|---|---|---|---|")
    with llama_server() as url:
        for connections in (1, 4):
            served = load_model(f"openai:{ALIAS}", base_url=url, max_connections=connections)
            for name, options, count in (("instructions", instructions, 1), ("examples", examples, requests)):
                t0 = time.perf_counter()
                run_pipeline(name, records, model=served, seed=3, options=options)
                took = time.perf_counter() - t0
                print(
                    f"| llama-cpp-python server, max_connections {connections} | {name} | {count} | {took:.1f} | "
                    f"{took / count:.2f} |"
                )
    local = load_model("embedded")
    for name, options, count in (("instructions", instructions, 1), ("examples", examples, requests)):
        t0 = time.perf_counter()
        run_pipeline(name, records, model=local, seed=3, options=options)
        took = time.perf_counter() - t0
        print(
            f"| transformers (embedded, fp32, batched) | {name} | {count} samples | {took:.1f} | {took / count:.2f} |"
        )


if __name__ == "__main__":
    main()
