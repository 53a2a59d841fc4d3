"""Batched generation for the transformers backend: left-padded rows sharing one KV cache, a generator per row.

Each distinct prompt is read once and its cache copied to the rows that repeat it; finished rows leave
the batch. A row's output does not depend on the batch it is in: same seed, same text, at any size.
Each row also carries the model's log2-probability of the tokens it sampled (at temperature 1), so a
teacher that keeps its most likely samples need not read its prompt again to score them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from privacy_audit.models.base import Completion


class Generating(Protocol):
    """What batched generation needs of a model (the transformers backend has it): the causal LM, its
    tokenizer, the device it runs on, and the name of the forward pass's cache argument."""

    model: Any
    tokenizer: Any
    device: Any
    cache_kwarg: str

# Rows generated at once: as many as keep their KV cache under this size, at most MAX_GENERATION_BATCH.
GENERATION_CACHE_BYTES = 1 << 30
MAX_GENERATION_BATCH = 64


def default_batch(cfg: Any, tokens: int) -> int:
    """Rows generated at once: as many as keep the KV cache of `tokens` per row within GENERATION_CACHE_BYTES."""
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    per_token = 2 * cfg.num_hidden_layers * heads * head_dim * 4
    return int(max(1, min(MAX_GENERATION_BATCH, GENERATION_CACHE_BYTES // max(1, per_token * tokens))))


def generate_batch(
    lm: Generating, batch: list[list[int]], seeds: list[int], *, max_new_tokens: int, temperature: float,
    stop: tuple[str, ...], finished: Callable[[int], None] | None = None,
) -> list[Completion]:
    """Prompts left-padded into one batch sharing a KV cache: each distinct prompt is read once and its
    cache copied to the rows that repeat it; a row samples with its own generator and leaves the batch
    at EOS or a stop string, so a row's output is the same in any batch. `finished(k)` hears of rows done."""
    import torch
    from transformers import DynamicCache

    eos = lm.tokenizer.eos_token_id
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else eos
    distinct = list(dict.fromkeys(tuple(row) for row in batch))
    width = max(len(row) for row in distinct)
    ids = torch.full((len(distinct), width), pad, dtype=torch.long)
    mask = torch.zeros((len(distinct), width), dtype=torch.long)
    for r, row in enumerate(distinct):
        ids[r, width - len(row) :] = torch.tensor(row)
        mask[r, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = [torch.Generator().manual_seed(int(s) % 2**63) for s in seeds]
    new: list[list[int]] = [[] for _ in batch]
    logprob = [0.0] * len(batch)
    cache = DynamicCache()
    with torch.inference_mode():
        logits = forward(lm, ids, mask, positions, cache)
        of_row = torch.tensor([distinct.index(tuple(row)) for row in batch])
        cache.batch_select_indices(of_row.to(lm.device))
        logits, mask, positions = logits[of_row], mask[of_row], positions[of_row, -1:]
        active = list(range(len(batch)))
        enders = {s[-1] for s in stop if s}
        for left in range(max_new_tokens - 1, -1, -1):
            step, step_logprobs = next_tokens(logits, temperature, [generators[r] for r in active])
            keep = []
            for k, (r, tok, lp) in enumerate(zip(active, step, step_logprobs)):
                new[r].append(tok)
                logprob[r] += lp
                if not _ended(lm.tokenizer, new[r], eos, enders, stop):
                    keep.append(k)
            if finished is not None and len(keep) < len(active):
                finished(len(active) - len(keep))
            if not keep or not left:  # all done, or no token left to generate (no step computed in vain)
                active = [active[k] for k in keep]
                break
            if len(keep) < len(active):
                chosen = torch.tensor(keep)
                cache.batch_select_indices(chosen.to(lm.device))
                mask, positions, step = mask[chosen], positions[chosen], [step[k] for k in keep]
                active = [active[k] for k in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            positions = positions + 1
            logits = forward(lm, torch.tensor(step).unsqueeze(1), mask, positions, cache)
    if finished is not None and active:
        finished(len(active))
    return [
        Completion(lm.tokenizer.decode(row, skip_special_tokens=True).lstrip(), lp, len(row))
        for row, lp in zip(new, logprob)
    ]


def _ended(tokenizer: Any, row: list[int], eos: int, enders: set[str], stop: tuple[str, ...]) -> bool:
    """A row ends at EOS or once its text holds a stop string (decoded only when the last token could end one)."""
    tok = row[-1]
    return tok == eos or (any(c in tokenizer.decode([tok]) for c in enders)
                          and any(s in tokenizer.decode(row[-32:]) for s in stop))


def forward(lm: Generating, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    """Last-position logits of a batch step, extending `cache`."""
    out = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), position_ids=positions.to(lm.device),
                   use_cache=True, logits_to_keep=1, **{lm.cache_kwarg: cache})
    return out.logits[:, -1].float().cpu()


def next_tokens(logits: Any, temperature: float, generators: list[Any]) -> tuple[list[int], list[float]]:
    """Greedy at temperature 0, else one draw per row from softmax(logits / temperature) (no top-k or top-p),
    by inverting the row's CDF at a uniform from the row's own generator; with each token's log2-probability
    under the model (temperature 1)."""
    import torch

    if temperature <= 0:
        picks = torch.argmax(logits, dim=-1)
    else:
        cdf = torch.softmax(logits.double() / temperature, dim=-1).cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators]) * cdf[:, -1]
        picks = torch.searchsorted(cdf, u[:, None]).squeeze(1).clamp(max=cdf.shape[1] - 1)
    logprobs = torch.log_softmax(logits.double(), dim=-1).gather(1, picks[:, None]).squeeze(1) / math.log(2)
    return [int(t) for t in picks], [float(v) for v in logprobs]
