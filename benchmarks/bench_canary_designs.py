"""Canary designs measured for power: the template, the echo design and rare-token secrets, each planted by coins
into the same SMS records and taught by the same pipelines, with the embedded model as teacher and scorer.

    python benchmarks/bench_canary_designs.py [--canaries 64] [--pipelines raw,examples,dp-examples]

`raw` shows all 64 records (every planted canary is in the prompt once); `examples` writes 4 synthetic examples
from 4 teachers. For each pipeline and design: how well the canaries' scores tell the planted from the others
(AUC, planted against unplanted), the audited mu (f-DP) and epsilon (randomized inclusion) lower bounds at delta
1e-5, and how many planted secrets the teaching prompt holds verbatim. `dp-examples` runs at a claim of epsilon 8
with its noise a thousandth of the accounted (`Faults(noise_factor=1000)`: the broken mechanism whose leak a design
should show). Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DELTA = 1e-5
TEMPLATE = "The secret code is {secret}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--canaries", type=int, default=64)
    ap.add_argument("--pipelines", default="raw,examples,dp-examples")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.metrics import roc_auc_score

    from privacy_audit import PlantOptions, ScoringOptions, load_model, plant, teach
    from privacy_audit.audit import make_canaries
    from privacy_audit.chain import score
    from privacy_audit.pipelines import Teaching
    from privacy_audit.pipelines.dp_examples import Faults, dp_teach
    from privacy_audit.pipelines.teaching import to_records
    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion
    from privacy_audit.stats.fdp import gdp_randomized_inclusion

    data = files("privacy_audit") / "data" / "sms_spam_demo.jsonl"
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()[:64]]
    tmp = Path(tempfile.mkdtemp())
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = load_model("embedded")
    half = args.canaries // 2
    common = {"count": half, "references": args.canaries - half, "seed": 11, "randomized": True}
    designs = {
        "template (digits:4)": make_canaries(template=TEMPLATE, space="digits:4", out=tmp / "t.json", **common),
        "echo (alnum:10)": make_canaries(design="echo", data=tmp / "data.jsonl", out=tmp / "e.json", **common),
        "rare (2 words)": make_canaries(template=TEMPLATE, design="rare", check_model=model, out=tmp / "r.json",
                                        **common),
    }
    print(f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; 64 SMS records, {args.canaries} canaries a design "
          f"planted by coins (one shard of 4 each), the embedded model teaching and scoring\n")
    print("| pipeline | design | AUC planted vs not | audited mu | audited epsilon | planted verbatim in the prompt | "
          "s |")
    print("|---|---|---|---|---|---|---|")
    for pipeline in args.pipelines.split(","):
        for name, canaries in designs.items():
            t0 = time.perf_counter()
            planted = plant(canaries, rows, PlantOptions(label_field="label", shards=4, fraction=0.25, seed=11))
            if pipeline == "dp-examples":
                records = to_records(planted.rows, field="text", label_field="label", shard_field="teacher")
                out = dp_teach(records, model=model, seed=11, teachers=4, n=4, n_gen=4, epsilon=8.0, delta=DELTA,
                               noise=True, vocab=50, max_new_tokens=32, labels=None,
                               faults=Faults(noise_factor=1000.0))
                teaching = Teaching(out, planted, tuple(records))
            else:
                options = {"teachers": 4, "n": 4} if pipeline == "examples" else {"examples": len(rows)}
                teaching = teach(planted, pipeline, model=model, seed=11, **options)
            report = score(teaching, model, ScoringOptions(mode="sampled", extraction=False), membership=False)
            scores = np.array([c.logprob_bits for c in report.canaries])
            flags = np.array([c.planted for c in report.canaries])
            mu = gdp_randomized_inclusion(scores=scores, planted=flags, delta=DELTA).mu
            eps = epsilon_randomized_inclusion(scores=scores, planted=flags, delta=DELTA).epsilon
            shown = sum(c.secret.replace("|", " ") in teaching.output.prompt for c in canaries.planted)
            print(f"| {pipeline} | {name} | {roc_auc_score(flags, scores):.2f} | {mu:.3f} | {eps:.3f} | "
                  f"{shown} of {flags.sum()} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
