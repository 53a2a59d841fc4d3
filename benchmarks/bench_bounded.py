"""Bounded exposure on the embedded model, in one run: certified ranks in large spaces, and against exhaustive scoring.

    python benchmarks/bench_bounded.py

Measures, after one model load: for the phone (10^10) and card (10^16) presets with the first canary
copied into an SMS-style prompt, the time `score_prompt` takes in its default (auto -> bounded) mode,
the token steps of its search and the copied canary's certified interval; the width of planted
canaries' certified intervals (no references) against the search budget; bounded against exhaustive
exact scoring on a 10^5 space (times, and whether every interval holds the exact rank); sampled
against exact on a 10^4 space; peak resident memory. Then, under tokenizers that group digits (no model with
such a tokenizer is on this machine: the mock n-gram scorer, copying strongly, reads digits in pairs or in threes
as Llama 3 does), the seconds and token steps of the search over whole tokens to a certified rank 1 for a copied
phone number and card number, beside the references' interval, which is all there was before.
Prints Markdown for benchmarks/RESULTS.md.

    python benchmarks/bench_bounded.py --fanout-against REV

Only the wide fan-out table: a 12-digit number in a prompt that never saw it (the search spends its whole budget)
under the mock scorer reading digits in groups of up to 2, 3 or 4 (110, 1,110 and 11,110 digit tokens after each
node), each in a fresh process, with this tree and with the git revision REV (checked out in a temporary worktree):
seconds, peak resident memory and whether the intervals are the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prompt_with(text: str) -> str:
    return f"Text: Hi, it's me. {text}\nClass: not spam\n\nText: WIN a prize now, call 0800\nClass: spam"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from privacy_audit import ScoringOptions, generate_canary_set, load_model, score_prompt
    from privacy_audit.canaries.presets import load_preset

    lm, load_s = timed(lambda: load_model("embedded"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; model load "
        f"{load_s:.1f} s\n"
    )
    print("| preset | space | extraction | time after load (s) | search | copied canary: rank interval | method |")
    print("|---|---|---|---|---|---|---|")
    for name in ("phone", "card"):
        p = load_preset(name)
        cs = generate_canary_set(template=p.template, space=p.space, count=5, references=20, seed=1, derived=p.derived)
        for extraction in (False, True):
            r, s = timed(score_prompt, lm, prompt_with(cs.planted[0].text), cs, ScoringOptions(extraction=extraction))
            c = r.canaries[0]
            print(f"| {name} | {cs.secret_space.size:.0e} | {'on' if extraction else 'off'} | {s:.2f} | {r.search} | "
                  f"{c.rank_lower:,} to {c.rank_upper:,} | {c.exposure_method} |")

    print("\nCertified interval widths without references (phone preset, the 4 planted canaries not in the prompt):\n")
    print("| budget (token steps) | time (s) | median width, log2(upper / lower) bits | narrowest |")
    print("|---|---|---|---|")
    p = load_preset("phone")
    cs = generate_canary_set(template=p.template, space=p.space, count=5, references=0, seed=1, derived=p.derived)
    for budget in (100, 1_000, 4_000):
        r, s = timed(score_prompt, lm, prompt_with(cs.planted[0].text), cs,
                     ScoringOptions(mode="bounded", search_budget=budget, extraction=False))
        widths = sorted(math.log2(c.rank_upper / c.rank_lower) for c in r.canaries[1:])
        print(f"| {budget:,} | {s:.1f} | {widths[len(widths) // 2]:.1f} | {widths[0]:.1f} |")

    print("\nBounded against exhaustive exact scoring, and sampled against exact:\n")
    print("| space | mode | time (s) | search | copied canary | every interval holds the exact rank |")
    print("|---|---|---|---|---|---|")
    for space, modes in (("digits:5", ("exact", "bounded")), ("digits:4", ("exact", "sampled"))):
        cs = generate_canary_set(template="The secret code is {secret}", space=space, count=5, references=20, seed=2)
        results = {}
        for mode in modes:
            results[mode], s = timed(score_prompt, lm, prompt_with(cs.planted[0].text), cs, ScoringOptions(mode=mode))
            exact = {c.id: c.rank_lower for c in results["exact"].canaries}
            c = results[mode].canaries[0]
            holds = all(x.rank_lower <= exact[x.id] <= x.rank_upper for x in results[mode].canaries)
            print(
                f"| {space} | {mode} | {s:.1f} | {results[mode].search} | {c.rank_lower:,} to {c.rank_upper:,} "
                f"({c.exposure_method}) "
                f"| {'yes' if holds else 'NO'} |"
            )
    print(f"\npeak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    digit_groups()


def digit_groups() -> None:
    """A copied phone or card number under digit-group tokenizers: the search over whole tokens against the
    references' interval."""
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt
    from privacy_audit.canaries.presets import load_preset

    print("\nDigit-group tokenizers (mock n-gram scorer, order 8, alpha 0.001; 20 references):\n")
    print("| tokenizer | preset | time (s) | search | copied canary: certified | references only |")
    print("|---|---|---|---|---|---|")
    for digits, rule in ((2, "digit pairs"), (3, "digits in threes (Llama 3)")):
        lm = MockModel(digits=digits, order=8, alpha=0.001)
        for name in ("phone", "card"):
            p = load_preset(name)
            cs = generate_canary_set(template=p.template, space=p.space, count=5, references=20, seed=1)
            prompt = prompt_with(cs.planted[0].text)
            r, s = timed(score_prompt, lm, prompt, cs, ScoringOptions(extraction=False))
            ref = score_prompt(lm, prompt, cs, ScoringOptions(mode="sampled", extraction=False)).canaries[0]
            c = r.canaries[0]
            print(f"| {rule} | {name} | {s:.2f} | {r.search} | {c.rank_lower:,} to {c.rank_upper:,} "
                  f"({c.exposure_method}) | {ref.rank_lower:,} to {ref.rank_upper:,} |")


FANOUT_PROMPT = "Customer notes.\nCall me at 159738914634 now\nThanks.\nCall me at "


def fanout_case(digits: int) -> None:
    """One wide fan-out search in this process; prints seconds, peak memory and the intervals as JSON."""
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt

    cs = generate_canary_set(template="Call me at {secret} now", space="digits:12", count=2, references=20, seed=3)
    r, s = timed(score_prompt, MockModel(digits=digits), FANOUT_PROMPT, cs, ScoringOptions(extraction=False))
    print(json.dumps({"seconds": s, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "search": r.search, "intervals": [[c.rank_lower, c.rank_upper] for c in r.canaries]}))


def fanout(rev: str) -> None:
    """The wide fan-out table: this tree against revision `rev`, each case in a fresh process."""
    root = Path(__file__).resolve().parent.parent
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(f"| digit tokens per node | {rev}: time (s) | peak memory (MB) | this tree: time (s) | peak memory (MB) "
          "| search | same intervals |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(old), rev], check=True,
                       capture_output=True)
        try:
            for digits in (2, 3, 4):
                runs = [_case(tree, digits) for tree in (old, root)]
                same = runs[0]["intervals"] == runs[1]["intervals"]
                print(f"| {sum(10**k for k in range(1, digits + 1)):,} | {runs[0]['seconds']:.1f} | "
                      f"{runs[0]['peak_mb']:.0f} | {runs[1]['seconds']:.1f} | {runs[1]['peak_mb']:.0f} | "
                      f"{runs[1]['search']} | {'yes' if same else 'NO'} |")
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(old)], check=True)


def _case(tree: Path, digits: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--case", str(digits)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fanout-against", metavar="REV", help="only the wide fan-out table, against git REV")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        fanout_case(args.case)
    elif args.fanout_against:
        fanout(args.fanout_against)
    else:
        main()
