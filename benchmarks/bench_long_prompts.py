"""Scoring time against prompt length (10 KB to 5 MB), and the joint-tokenization check read from a window at the
prompt's end against re-tokenizing the whole prompt for every checked candidate, in one run.

    python benchmarks/bench_long_prompts.py [--sizes 10000 100000 1000000 5000000]

1. The whole scoring (`score_prompt`, digits:2 exact, 2 canaries + 20 references) with the mock and the n-gram
   scorers, whose joint check reads only the prompt's last token (the mock: none) with each candidate.
2. The check of one candidate with the embedded model's tokenizer: the whole prompt + candidate tokenized (what
   every checked candidate cost before), against the window (`hf_context.JointWindow`), with their tokens compared.
Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.resources import files


def prompt_of(size: int) -> str:
    rows = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()
    text = "\n".join(rows)
    return (text * (size // len(text) + 1))[:size].rsplit(" ", 1)[0] + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 5_000_000])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, load_model, score_prompt
    from privacy_audit.models.hf_context import JointWindow
    from privacy_audit.models.hf import TransformersModel

    cs = generate_canary_set(template="The secret code is {secret}", space="digits:2", count=2, references=20, seed=1)
    options = ScoringOptions(mode="exact", extraction=False, extrapolation=False)
    embedded = load_model("embedded")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores\n")
    print("| prompt | mock: score | n-gram: score | tokenizer: whole prompt + candidate | tokenizer: window "
          "| same tokens |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        prompt = prompt_of(size)
        t0 = time.perf_counter()
        score_prompt(MockModel(), prompt, cs, options)
        mock = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_prompt(load_model("ngram"), prompt, cs, options)
        ngram = time.perf_counter() - t0
        (ids,), (offsets,) = TransformersModel.encode_plain(embedded, [prompt])
        window = JointWindow.of(embedded, prompt, ids, offsets, before=offsets[-20][0])
        candidate = cs.canaries[0].text
        t0 = time.perf_counter()
        (whole,), (whole_offsets,) = TransformersModel.encode_plain(embedded, [prompt + candidate])
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        before, part, _ = window.tokens(embedded, prompt, candidate)
        windowed = time.perf_counter() - t0
        same = list(whole[before:]) == part and list(whole[:before]) == list(ids[:before])
        print(f"| {len(prompt) / 1e3:,.0f} KB | {mock:.1f} s | {ngram:.1f} s | {full * 1e3:,.1f} ms "
              f"| {windowed * 1e3:.2f} ms | {'yes' if same else 'NO'} (window from character {window.start:,}) |")


if __name__ == "__main__":
    main()
