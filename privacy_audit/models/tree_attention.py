"""Tree attention for transformers models: each tree token attends to the context's cached keys and to
its own ancestors only, instead of to the whole chunk through a dense (chunk x chunk) mask. The two
parts are softmax-normalised apart and merged by their log-sum-exps (as flash-decoding merges splits).

Registered with transformers' AttentionInterface (its public extension point) under one name; a call
without a tree (the prompt pass, generation, greedy decoding) goes to the model's SDPA attention
unchanged. Exact: the same fp32 softmax over the same keys as the dense mask, minus the masked ones.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "privacy_audit_tree"
# SDPA's CPU flash kernel, called for its log-sum-exp (the public SDPA returns only the output), which
# merges the context part with the ancestors part exactly; without it the context part is two matmuls.
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def install(model: Any) -> bool:
    """Route the model's attention through `attention` if it uses transformers' SDPA attention through
    the AttentionInterface; False (model untouched) for any other implementation."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    except ImportError:  # transformers before the AttentionInterface
        return False
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    can_set = getattr(model, "_can_set_attn_implementation", None)
    if can_set is None or not can_set():
        return False
    AttentionInterface.register(NAME, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME


class Unsupported(Exception):
    """The model asked for an attention feature tree attention does not implement; score through the mask."""


def ancestors(tree: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From a (n, n) bool mask (row i: the chunk tokens token i sees, itself included), the (n, A) indices
    of those tokens in chunk order, padded with the row's own index, and the (n, A) additive bias
    (0 for a real ancestor, -inf for padding); A is the deepest row's count."""
    counts = tree.sum(dim=1)
    width = int(counts.max()) if tree.shape[0] else 0
    idx = torch.sort(tree.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :width]
    valid = torch.arange(width)[None, :] < counts[:, None]
    idx = torch.where(valid, idx, torch.arange(tree.shape[0])[:, None])
    bias = torch.zeros(idx.shape, dtype=torch.float32).masked_fill_(~valid, float("-inf"))
    return idx, bias


def attention(
    module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
    dropout: float = 0.0, scaling: float | None = None, tree_context: Any = None,
    tree_ancestors: torch.Tensor | None = None, **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of a tree chunk (query, key, value: [1, heads, n, d], the chunk's own keys) against the
    context's cache (`tree_context`, a transformers cache of the context alone) and each token's
    ancestors (`tree_ancestors` and, as `attention_mask` [1, 1, n, A], their bias from `ancestors`);
    without a tree, the SDPA attention the model had."""
    if tree_context is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if kwargs.get("softcap") is not None or kwargs.get("sliding_window") is not None:
        raise Unsupported("soft-capping or a sliding window")
    if hasattr(tree_context, "layers"):
        layer = tree_context.layers[module.layer_idx]
        k_ctx, v_ctx = layer.keys, layer.values  # [1, kv_heads, ctx, d]
    else:  # caches of transformers 4.x
        k_ctx, v_ctx = tree_context.key_cache[module.layer_idx], tree_context.value_cache[module.layer_idx]
    idx, bias = tree_ancestors, attention_mask[0, 0]
    b, heads, n, d = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    q = query.reshape(
        b, kv_heads, groups * n, d
    )  # query head h reads kv head h // groups; no mask, so groups fold into rows
    scale = scaling if scaling is not None else d**-0.5
    k_anc, v_anc = key[:, :, idx], value[:, :, idx]  # [1, kv_heads, n, A, d]
    s_anc = torch.einsum("bkgnd,bknad->bkgna", q.view(b, kv_heads, groups, n, d), k_anc).mul_(scale).add_(bias)
    if q.device.type == "cpu" and _FLASH_CPU is not None:
        o_ctx, lse_ctx = _FLASH_CPU(q, k_ctx, v_ctx, 0.0, False, scale=scale)
    else:
        scores = torch.matmul(q, k_ctx.transpose(-1, -2)).mul_(scale)
        lse_ctx = torch.logsumexp(scores, dim=-1)
        o_ctx = torch.matmul(torch.softmax(scores, dim=-1), v_ctx)
    lse_ctx = lse_ctx.view(b, kv_heads, groups, n)
    lse_anc = torch.logsumexp(s_anc, dim=-1)
    lse = torch.logaddexp(lse_ctx, lse_anc)
    o_anc = torch.einsum("bkgna,bknad->bkgnd", torch.softmax(s_anc, dim=-1), v_anc)
    out = (
        o_ctx.view(b, kv_heads, groups, n, d) * torch.exp(lse_ctx - lse)[..., None]
        + o_anc * torch.exp(lse_anc - lse)[..., None]
    )
    # the log-sum-exps come in float32 whatever the model computes in: the merged output goes back to its dtype
    return out.reshape(b, heads, n, d).transpose(1, 2).to(query.dtype).contiguous(), None
