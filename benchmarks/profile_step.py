"""Where the engine's time goes: one 4-digit exact scoring, split by stage, on the embedded model.

    python benchmarks/profile_step.py

Stages: prompt pass; tokenizing 10^4 candidates and building the trie; and per tree chunk, the
transformer body, the lm_head projection, and the logsumexp normalisation (timed separately by
running the model's parts by hand, same inputs as the engine).
"""

from __future__ import annotations

import os
import time
from importlib.resources import files


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from privacy_audit import generate_canary_set
    from privacy_audit.canaries import plant_records
    from privacy_audit._io import read_records
    from privacy_audit.models import load_model
    from privacy_audit.models.trie import Trie, log2_probs
    from privacy_audit.pipelines import Record, run_pipeline

    lm = load_model("embedded")
    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")[:8]
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=3, references=0, seed=0)
    planted, _ = plant_records(rows, cs, field="text", seed=0)
    context = run_pipeline("raw", [Record(text=r["text"], label=r["label"]) for r in planted]).prompt + "\n"
    timings: dict[str, float] = {}

    t = time.perf_counter()
    session = lm._session(context)
    timings["prompt pass"] = time.perf_counter() - t
    t = time.perf_counter()
    ids, _ = lm.encode_continuations([cs.fill(s) for s in cs.secret_space.enumerate()])
    trie = Trie(ids)
    order = trie.internal_preorder()
    timings["tokenize 10^4 candidates + build trie"] = time.perf_counter() - t

    body = lm.model.model
    for key in ("mask + inputs", "transformer body", "lm_head", "logsumexp + gather"):
        timings[key] = 0.0
    for start in range(0, len(order), lm.chunk_tokens):
        run = order[start : start + lm.chunk_tokens]
        t = time.perf_counter()
        seq = trie.ancestors(run[0]) + run
        pos = {node: i for i, node in enumerate(seq)}
        n = len(seq)
        tree = torch.zeros((n, n), dtype=torch.bool)
        for i, node in enumerate(seq):
            if trie.parent[node] > 0:
                tree[i] = tree[pos[trie.parent[node]]]
            tree[i, i] = True
        allowed = torch.cat([torch.ones((n, session.ctx_len), dtype=torch.bool), tree], dim=1)
        mask = torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)[None, None]
        idx = torch.tensor(seq)
        inp = torch.tensor(trie.token)[idx][None]
        positions = (torch.tensor(trie.depth)[idx] + session.ctx_len - 1)[None]
        timings["mask + inputs"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            hidden = body(input_ids=inp, position_ids=positions, attention_mask=mask, use_cache=True,
                          **{lm.cache_kwarg: session.cache}).last_hidden_state[0, -len(run):]
        session.cache.crop(-(session.cache.get_seq_length() - session.ctx_len))
        timings["transformer body"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            logits = lm.model.lm_head(hidden)
        timings["lm_head"] += time.perf_counter() - t
        t = time.perf_counter()
        kids = [(row, tok) for row, node in enumerate(run) for tok in trie.children[node]]
        log2_probs(logits, [row for row, _ in kids], [tok for _, tok in kids])
        timings["logsumexp + gather"] += time.perf_counter() - t
    total = sum(timings.values())
    print(f"internal trie nodes: {len(order)}, chunks of {lm.chunk_tokens}, prompt {session.ctx_len} tokens")
    print("| stage | seconds | share |\n|---|---|---|")
    for key, value in timings.items():
        print(f"| {key} | {value:.3f} | {value / total:.0%} |")
    print(f"| total | {total:.3f} | |")


if __name__ == "__main__":
    main()
