"""The scoring engine on a GPU: a 1B-class Llama built from a config with random weights (nothing downloaded), exact
scoring of a 10^6 space against the naive approach on the same device, in one run.

    python benchmarks/bench_gpu.py [--device cuda] [--dtype bfloat16] [--digits 6] [--naive 256]

The model: Llama with hidden size 2048, 16 layers, 32 heads (8 key-value heads), MLP 8192, and the embedded model's
tokenizer (49,152 tokens): about 1.2 B parameters. The prompt: the demo's teaching prompt (8 SMS examples, 3 canaries
planted). Measured: exact scoring of every secret of the space with the tree-attention engine (prompt pass included);
naive scoring, one forward pass of the whole prompt + candidate per candidate, one at a time and in padded batches of
--batch, on --naive sampled candidates, extrapolated to the space; their agreement on the sample; the lower precision's
largest difference from float32 on the canaries (the check every scoring in a lower precision records); peak GPU
memory. Finishes in a few minutes on one GPU. `--device cpu --layers 2 --hidden 256 --digits 3` is a smoke test
for a machine without one. Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.resources import files

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--digits", type=int, default=6, help="the space: digits:N")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--naive", type=int, default=256, help="candidates scored the naive way")
    parser.add_argument("--batch", type=int, default=64, help="candidates per padded batch, naive batched")
    parser.add_argument("--chunk-tokens", type=int, default=4096, help="tree tokens per forward pass")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from privacy_audit import generate_canary_set, load_model
    from privacy_audit.pipelines import Record, run_pipeline
    from privacy_audit.canaries import plant_records
    from privacy_audit._io import read_records
    from privacy_audit.models.hf import TransformersModel

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    tokenizer = load_model("embedded", device="cpu").tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=max(1, args.hidden // 64),
        num_key_value_heads=max(1, args.hidden // 256), max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with device:
        network = LlamaForCausalLM(config).to(dtype)
    parameters = sum(p.numel() for p in network.parameters())
    model = TransformersModel(network, tokenizer, name="random-llama", chunk_tokens=args.chunk_tokens)

    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:8]
    cs = generate_canary_set(
        template="The secret code is {secret}", space=f"digits:{args.digits}", count=3, references=20, seed=0
    )
    planted, _ = plant_records(rows, cs, field="text", seed=0)
    records = [Record(text=r["text"], label=r["label"]) for r in planted]
    context = run_pipeline("raw", records, options={"labels": {"ham": "not spam"}}).prompt + "\n"
    space = cs.secret_space

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # engine: every secret of the space, exact
    synchronize()
    t0 = time.perf_counter()
    scorer = model.open_context(context)
    totals = np.empty(space.size)
    block = 100_000
    for start in range(0, space.size, block):
        stop = min(start + block, space.size)
        totals[start:stop] = scorer([cs.fill(s) for s in space.enumerate(start, stop)]).totals(len(cs.prefix))
    synchronize()
    engine_s = time.perf_counter() - t0

    # naive: the whole text tokenized at once and read by one forward pass, per candidate
    rng = np.random.default_rng(0)
    sample = sorted(int(i) for i in rng.choice(space.size, size=min(args.naive, space.size), replace=False))
    encodings = [tokenizer(context + cs.fill(space.secret(i)), return_offsets_mapping=True) for i in sample]
    past = len(context) + len(cs.prefix)

    def naive_total(logp: torch.Tensor, enc) -> float:
        ids = enc["input_ids"]
        keep = [j for j in range(1, len(ids)) if enc["offset_mapping"][j][1] > past]
        return float(sum(logp[j - 1, ids[j]].item() for j in keep) / np.log(2))

    naive = []
    synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for enc in encodings:
            logits = network(torch.tensor([enc["input_ids"]], device=device)).logits[0]
            naive.append(naive_total(torch.log_softmax(logits.float(), dim=-1), enc))
    synchronize()
    naive_s = (time.perf_counter() - t0) / len(sample) * space.size

    synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(encodings), args.batch):
            group = encodings[start:start + args.batch]
            width = max(len(e["input_ids"]) for e in group)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in group], device=device)
            mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in group],
                                device=device)
            network(ids, attention_mask=mask).logits.float().log_softmax(-1)
    synchronize()
    batched_s = (time.perf_counter() - t0) / len(sample) * space.size

    # the lower precision against float32, on the canaries (what a --dtype scoring records)
    precision = "float32: none"
    if dtype != torch.float32:
        texts = [c.text for c in cs.canaries]
        low = model.open_context(context)(texts).totals(len(cs.prefix))
        network.to(torch.float32)
        high = TransformersModel(network, tokenizer, name="random-llama").open_context(context)(texts)
        precision = f"{np.max(np.abs(low - high.totals(len(cs.prefix)))):.3f} bits"

    engine_tokens = sum(10**d for d in range(args.digits))
    memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "(CPU)"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"device: {name}; {parameters / 1e9:.2f} B parameters in {args.dtype}; prompt "
          f"{len(model.encode_context(context))} tokens; digits:{args.digits} ({space.size:,} candidates)\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| engine, exact (prompt pass included) | {engine_s:.1f} s = {space.size / engine_s:,.0f} candidates/s |")
    print(f"| naive, one candidate a pass ({len(sample)} sampled, extrapolated) | {naive_s:,.0f} s "
          f"({naive_s / engine_s:,.0f}x the engine) |")
    print(f"| naive, padded batches of {args.batch} (extrapolated) | {batched_s:,.0f} s "
          f"({batched_s / engine_s:,.0f}x the engine) |")
    print(f"| tree tokens read by the engine | {engine_tokens:,} (naive: "
          f"{sum(len(e['input_ids']) for e in encodings) / len(sample) * space.size:,.0f}) |")
    print(f"| max abs difference, engine vs naive, on the sample | "
          f"{np.max(np.abs(totals[sample] - np.array(naive))):.3f} bits |")
    print(f"| lower precision against float32, on {len(cs.canaries)} canaries | {precision} |")
    print(f"| peak GPU memory | {memory} |")


if __name__ == "__main__":
    main()
