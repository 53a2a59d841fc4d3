"""Scoring over HTTP against a real llama-cpp-python server (the embedded GGUF), in one run:

    python benchmarks/bench_served.py

1. Correctness: each prompt token's log-probability from the server against llama-cpp-python in process (same
   weights, same start text) and against the embedded transformers model (the same GGUF de-quantised to fp32,
   conditioned on the same start token).
2. Ranks: a copied canary in a digits:2 space, scored exactly by the server and by the embedded model.
3. Cost: requests, prompt tokens and seconds per candidate of that exact scoring (with its probe, canonical-token
   checks and stability check), against the embedded model's trie engine on the same space.
Prints Markdown for benchmarks/RESULTS.md. Needs llama-cpp-python[server] (`make install-test` builds it).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TEXTS = [
    "Text: your parcel is ready for collection\nClass: not spam\nThe secret code is 4821.",
    "Text: WINNER!! claim your prize now, call 09061701461\nClass: spam",
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.",
]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_cpp import Llama

    from privacy_audit import ScoringOptions, generate_canary_set, load_model, score_prompt
    from privacy_audit.models.embedded import gguf_path
    from tests.served import ALIAS, llama_server

    embedded = load_model("embedded")
    local = Llama(model_path=str(gguf_path()), n_ctx=1024, n_threads=2, logits_all=True, verbose=False)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores\n")
    with llama_server() as url:
        served = load_model(f"openai:{ALIAS}", base_url=url, next_tokens="off")
        probe = served.probe()
        print(f"probe: {probe.reason} (third copy {probe.aligned_nats:.2f} nats a token)\n")
        gaps_local, gaps_hf = [], []
        for text in TEXTS:
            (echo,) = served.served.echo([text])
            server = np.array(echo.logprobs[1:], dtype=float)
            mine = local.create_completion(
                served.served.start_text + text, max_tokens=1, echo=True, logprobs=1, temperature=0
            )
            in_process = np.array(
                [v for v in mine["choices"][0]["logprobs"]["token_logprobs"][: len(echo.tokens)] if v is not None]
            )
            ids = [1] + embedded.tokenizer(text, add_special_tokens=False)["input_ids"]  # <|im_start|> is id 1
            hf = embedded.plain_logprobs(ids, 2) * math.log(2)  # from the second text token, in nats
            gaps_local.append(np.abs(server - in_process))
            gaps_hf.append(np.abs(server - hf[: len(server)]))
        local_gap, hf_gap = np.concatenate(gaps_local), np.concatenate(gaps_hf)
        print("| comparison | tokens | mean abs gap | max abs gap |")
        print("|---|---|---|---|")
        print(
            f"| server vs llama-cpp-python in process | {local_gap.size} | {local_gap.mean():.2e} nats | "
            f"{local_gap.max():.2e} nats |"
        )
        print(
            f"| server (Q4_1) vs transformers (fp32) | {hf_gap.size} | {hf_gap.mean():.3f} nats "
            f"({hf_gap.mean() / math.log(2):.3f} bits) "
            f"| {hf_gap.max():.3f} nats |\n"
        )
        cs = generate_canary_set(
            template="The secret code is {secret}", space="digits:2", count=1, references=5, seed=4
        )
        prompt = f"Text: your parcel is ready\nClass: not spam\nThe secret code is {cs.planted[0].secret}.\n"
        options = ScoringOptions(mode="exact", extraction=False, extrapolation=False)
        before_requests, before_tokens = served.endpoint.requests, served.served.tokens_sent
        t0 = time.perf_counter()
        remote = score_prompt(served, prompt, cs, options)
        took = time.perf_counter() - t0
        requests, tokens = served.endpoint.requests - before_requests, served.served.tokens_sent - before_tokens
        t0 = time.perf_counter()
        here = score_prompt(embedded, prompt, cs, options)
        took_here = time.perf_counter() - t0
    print(
        "| scorer | rank of the copied canary (of 100) | stability check | requests | prompt tokens | time | per "
        "candidate |"
    )
    print("|---|---|---|---|---|---|---|")
    check = remote.checks[0]
    print(
        f"| llama-cpp-python server, exact | {remote.canaries[0].rank} | {check.max_difference_bits:.2g} bits over "
        f"{check.compared} "
        f"| {requests} | {tokens:,} | {took:.1f} s | {took / 100:.2f} s |"
    )
    print(f"| embedded transformers, exact (trie) | {here.canaries[0].rank} | n/a | 0 | n/a | {took_here:.1f} s | "
          f"{took_here / 100 * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
