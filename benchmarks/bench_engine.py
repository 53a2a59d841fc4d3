"""Scoring engine vs the naive approach, on the embedded model, in one run.

    python benchmarks/bench_engine.py [--sample 30] [--skip-6] [--skip-cli]

Measures: model load from the converted-model cache; naive scoring (one full forward pass per
candidate, on a sample); the engine's exact exposure over the 4-digit and 6-digit spaces (with the
prompt pass included); best-first search for a high-exposure canary in the 10^6 space; token steps
per second against the machine's measured fp32 matmul rate; agreement with naive (max |diff| in bits
on the sample); peak resident memory; and where a 4-digit exact `privacy-audit score` through the
CLI spends its time (fresh processes for the CLI and the imports, in-process for load and scoring).
Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from importlib.resources import files

import numpy as np


def matmul_floor(model, rows: int = 512) -> tuple[float, float]:
    """(GFLOP/s, token steps/s) of the model's own matrix products alone, at `rows` tokens a pass.

    Times every distinct nn.Linear weight shape of the model (the best of 10 runs each, on random
    data of the same shape) and sums them with their multiplicities: a step can be no faster than
    its GEMMs, so this is the machine's floor for this model, whatever the attention costs.
    """
    import torch

    shapes: dict[tuple[int, int], int] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shape = tuple(module.weight.shape)
            shapes[shape] = shapes.get(shape, 0) + 1
    seconds = flops = 0.0
    with torch.inference_mode():
        for (out_f, in_f), count in shapes.items():
            w, x = torch.randn(out_f, in_f), torch.randn(rows, in_f)
            torch.nn.functional.linear(x, w)
            best = float("inf")
            for _ in range(10):
                t0 = time.perf_counter()
                torch.nn.functional.linear(x, w)
                best = min(best, time.perf_counter() - t0)
            seconds += count * best
            flops += count * 2.0 * rows * out_f * in_f
    return flops / seconds / 1e9, rows / seconds


def wall(argv: list[str]) -> float:
    """Seconds a fresh process takes to run `argv` (the best of 3), failing loudly if it fails."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        best = min(best, time.perf_counter() - t)
    return best


def cli_split(model, canary_set, context: str, load_s: float) -> list[tuple[str, str]]:
    """Where a 4-digit exact `privacy-audit score` spends its time: the whole command, the imports
    (fresh processes), and model load and scoring with the command's defaults (in process)."""
    from privacy_audit.canaries.canary import save_canary_set
    from privacy_audit.scoring.options import ScoringOptions
    from privacy_audit.scoring.score import score_prompt

    cli = str(Path(sys.executable).with_name("privacy-audit"))
    with tempfile.TemporaryDirectory() as tmp:
        save_canary_set(canary_set, Path(tmp) / "c.json")
        (Path(tmp) / "p.txt").write_text(context, encoding="utf-8")
        total = wall(
            [
                cli, "score", "--exact", "--prompt", f"{tmp}/p.txt", "--canaries", f"{tmp}/c.json", "--out",
                f"{tmp}/r.json",
            ]
        )
    python = wall([sys.executable, "-c", "pass"])
    imports_cli = wall([sys.executable, "-c", "import privacy_audit.cli"])
    imports_torch = wall(
        [
            sys.executable, "-c",
            "import torch, transformers; from transformers import AutoModelForCausalLM, AutoTokenizer",
        ]
    )
    t = time.perf_counter()
    score_prompt(model, context, canary_set, ScoringOptions(mode="exact"))
    scoring = time.perf_counter() - t
    rest = total - imports_cli - (imports_torch - python) - load_s - scoring
    return [
        ("CLI: `privacy-audit score --exact`, 4-digit, whole command (best of 3)", f"{total:.2f} s"),
        ("  Python start and the CLI's imports (no torch)", f"{imports_cli:.2f} s"),
        ("  torch and transformers imports", f"{imports_torch - python:.2f} s"),
        ("  model load (converted cache; in process, imports done)", f"{load_s:.2f} s"),
        ("  scoring with the command's defaults (exact ranks, extraction, statistics; in process)", f"{scoring:.2f} s"),
        ("  the rest (report, plots, writing; by difference)", f"{rest:.2f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=30, help="candidates scored the naive way")
    parser.add_argument("--skip-6", action="store_true", help="skip the 6-digit exact run (about 4 minutes)")
    parser.add_argument("--skip-cli", action="store_true", help="skip the CLI start-up split")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from privacy_audit import generate_canary_set
    from privacy_audit.canaries import plant_records
    from privacy_audit._io import read_records
    from privacy_audit.models import load_model
    from privacy_audit.pipelines import Record, run_pipeline
    from privacy_audit.scoring.search import align, best_first

    import transformers  # noqa: F401  (imported before the clock starts: load_s is the load alone)

    t0 = time.perf_counter()
    model = load_model("embedded")
    load_s = time.perf_counter() - t0
    gflops, floor = matmul_floor(model.model)
    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:8]
    out: list[tuple[str, str]] = [
        ("model load from converted cache", f"{load_s:.2f} s"),
        ("fp32 GEMM rate of the model's own weight shapes, 512 rows", f"{gflops:.0f} GFLOP/s"),
        ("token-step floor at that rate", f"{floor:.0f} steps/s"),
    ]

    def prompt_for(digits: int):
        cs = generate_canary_set(
            template="The secret code is {secret}", space=f"digits:{digits}", count=3, references=0, seed=0
        )
        planted, _ = plant_records(rows, cs, field="text", seed=0)
        records = [Record(text=r["text"], label=r["label"]) for r in planted]
        return cs, run_pipeline("raw", records, options={"labels": {"ham": "not spam"}}).prompt + "\n"

    cs4, context = prompt_for(4)
    ctx_ids = model.encode_context(context)
    space4 = cs4.secret_space
    rng = np.random.default_rng(0)
    sample = sorted(int(i) for i in rng.choice(space4.size, size=args.sample, replace=False))
    t0 = time.perf_counter()
    naive = []
    naive_tokens = 0
    for i in sample:  # the whole text tokenized at once, as the model reads it (canonical tokens)
        enc = model.tokenizer(
            context + cs4.fill(space4.secret(i)), add_special_tokens=True, return_offsets_mapping=True
        )
        ids = enc["input_ids"]
        naive_tokens += len(ids)
        with torch.inference_mode():
            logp = torch.log_softmax(model.model(torch.tensor([ids])).logits[0].float(), dim=-1)
        past = len(context) + len(cs4.prefix)
        naive.append(
            sum(logp[j - 1, ids[j]].item() for j in range(1, len(ids)) if enc["offset_mapping"][j][1] > past)
            / np.log(2)
        )
    naive_rate = args.sample / (time.perf_counter() - t0)
    out.append((f"naive: one forward pass per candidate ({args.sample} sampled, prompt {len(ctx_ids)} tokens)",
                f"{naive_rate:.2f} candidates/s"))

    def exact(cs, ctx):
        t = time.perf_counter()
        scorer = model.open_context(ctx)
        space = cs.secret_space
        totals = np.empty(space.size)
        for start in range(0, space.size, 10_000):
            stop = min(start + 10_000, space.size)
            totals[start:stop] = scorer([cs.fill(s) for s in space.enumerate(start, stop)]).totals(len(cs.prefix))
        return totals, time.perf_counter() - t

    totals4, t4 = exact(cs4, context)
    steps4 = sum(10**d for d in range(4))
    engine_tokens = steps4 + len(ctx_ids)
    out += [
        ("engine, exact 4-digit (10^4 candidates, incl. prompt pass)", f"{t4:.2f} s = {1e4 / t4:,.0f} candidates/s"),
        ("  speed-up over naive", f"{1e4 / t4 / naive_rate:,.0f}x"),
        (
            "  speed-up at equal speed per token (naive tokens / engine tokens)",
            f"{naive_tokens / args.sample * 1e4 / engine_tokens:,.0f}x",
        ),
        (
            "  token steps/s (1,111 trie steps + prompt)",
            f"{engine_tokens / t4:,.0f} ({engine_tokens / t4 / floor:.0%} of floor)",
        ),
        ("  max |engine - naive| on the sample", f"{np.max(np.abs(totals4[sample] - np.array(naive))):.1e} bits"),
    ]
    cs6, context6 = prompt_for(6)
    ctx6 = len(model.encode_context(context6))
    if not args.skip_6:
        totals6, t6 = exact(cs6, context6)
        steps6 = sum(10**d for d in range(6))
        out += [
            (
                "engine, exact 6-digit (10^6 candidates, incl. prompt pass)",
                f"{t6:.1f} s = {1e6 / t6:,.0f} candidates/s",
            ),
            ("  speed-up over naive", f"{1e6 / t6 / naive_rate:,.0f}x"),
            (
                "  floor for 111,111 steps + prompt at the measured matmul rate",
                f"{(steps6 + ctx6) / floor:.0f} s ({t6 / ((steps6 + ctx6) / floor):.2f}x the floor)",
            ),
        ]
        ranks6 = [int(np.sum(totals6 >= totals6[int(c.secret)])) for c in cs6.planted]
    best = cs6.planted[0]
    t0 = time.perf_counter()
    ctx = model.open_context(context6)
    alignment = align(ctx, cs6)
    target = ctx([best.text]).totals(len(cs6.prefix))[0]
    result = best_first(ctx.search, alignment, stop_below=float(target))
    tb = time.perf_counter() - t0
    line = f"rank {len(result.secrets)} found in {tb:.2f} s ({result.token_steps} token steps, incl. prompt pass)"
    if not args.skip_6:
        line += f"; exact rank {ranks6[0]}"
    out.append(("best-first search, planted canary in the 10^6 space", line))
    out.append(("peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB"))
    if not args.skip_cli:
        out += cli_split(model, cs4, context, load_s)
    print(f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), chunk_tokens {model.chunk_tokens}")
    print("| measure | value |\n|---|---|")
    for k, v in out:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
