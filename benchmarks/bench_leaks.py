"""The paper's fuzzy-leak distance: our vectorised programme vs a plain Python dynamic programme.

    python benchmarks/bench_leaks.py [--examples 1000] [--naive 5]

Private prompt: 10 kB of real SMS messages (the bundled demo data). Examples: 200-character
windows of that text with about 10% of characters edited (what a teacher that paraphrases its
private data writes), so distances are small but not zero. Checks that both programmes agree on
every example the naive one scores, then prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.resources import files

import numpy as np

from privacy_audit._io import read_records
from privacy_audit.scoring.leaks import substring_indel_distance


def naive_distance(example: str, text: str) -> int:
    """The same semi-global insert/delete distance, one Python loop iteration per table cell."""
    prev = [0] * (len(text) + 1)
    for i, ch in enumerate(example, start=1):
        row = [i] + [0] * len(text)
        for j, tc in enumerate(text, start=1):
            best = min(prev[j] + 1, row[j - 1] + 1)
            if ch == tc:
                best = min(best, prev[j - 1])
            row[j] = best
        prev = row
    return min(prev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=1000, help="examples scored by the vectorised programme")
    parser.add_argument("--naive", type=int, default=5, help="examples scored by the naive programme too")
    args = parser.parse_args()
    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")
    text = "\n".join(r["text"] for r in rows)[:10_000]
    rng = np.random.default_rng(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz "
    examples = []
    for _ in range(args.examples):
        start = int(rng.integers(0, len(text) - 200))
        chars = list(text[start : start + 200])
        for pos in rng.choice(200, size=20, replace=False):
            chars[pos] = alphabet[int(rng.integers(len(alphabet)))]
        examples.append("".join(chars))
    t0 = time.perf_counter()
    ours = [substring_indel_distance(e, text) for e in examples]
    ours_s = (time.perf_counter() - t0) / len(examples)
    t0 = time.perf_counter()
    naive = [naive_distance(e, text) for e in examples[: args.naive]]
    naive_s = (time.perf_counter() - t0) / len(naive)
    assert naive == ours[: len(naive)], (naive, ours[: len(naive)])
    print(f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print("| measure | value |\n|---|---|")
    print(f"| private prompt | {len(text):,} characters of SMS messages |")
    print(f"| naive Python dynamic programme ({len(naive)} examples of 200 characters) | {naive_s:.2f} s an example |")
    print(f"| ours, vectorised over the prompt ({len(examples):,} examples) | {ours_s * 1e3:.1f} ms an example, "
          f"{ours_s * len(examples):.1f} s in all |")
    print(f"| speed-up | {naive_s / ours_s:,.0f}x |")
    print(f"| agreement on the naive sample | {len(naive)} of {len(naive)} equal |")
    print(f"| mean normalised distance (about 10% of characters edited) | {np.mean(ours) / 200:.3f} |")


if __name__ == "__main__":
    main()
