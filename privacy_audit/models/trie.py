"""Trie scoring with tree attention: every candidate continuation of one context in few forward passes.

The context runs once; its KV cache is shared (never copied per candidate). Candidates' token
sequences form a prefix tree; each internal node needs one token step, the leaves none (their
log-probs come from the parent's logits). Internal nodes are taken in pre-order, in chunks; a
chunk is one sequence of at most `chunk_tokens` tree tokens (plus the few ancestors of its first
node), with a 4D attention mask in which each token sees the context and its own ancestors, and
position ids equal to its depth. A k-digit space costs 1 + 10 + ... + 10^(k-1) token steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LN2 = math.log(2.0)


class Trie:
    """Prefix tree over token sequences; node 0 is the root (the end of the context)."""

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        self.token: list[int] = [-1]
        self.parent: list[int] = [-1]
        self.depth: list[int] = [0]
        self.children: list[dict[int, int]] = [{}]
        paths: list[int] = []
        offsets = [0]
        for seq in sequences:
            node = 0
            for tok in seq:
                nxt = self.children[node].get(tok)
                if nxt is None:
                    nxt = len(self.token)
                    self.children[node][tok] = nxt
                    self.token.append(tok)
                    self.parent.append(node)
                    self.depth.append(self.depth[node] + 1)
                    self.children.append({})
                node = nxt
                paths.append(node)
            offsets.append(len(paths))
        self.paths = np.asarray(paths, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.token)

    def internal_preorder(self) -> list[int]:
        """Non-root nodes that have children, in pre-order (ancestors before descendants)."""
        order: list[int] = []
        stack = list(reversed(self.children[0].values()))
        while stack:
            node = stack.pop()
            kids = self.children[node]
            if kids:
                order.append(node)
                stack.extend(reversed(kids.values()))
        return order

    def ancestors(self, node: int) -> list[int]:
        """Non-root ancestors of `node`, root-most first."""
        out = []
        node = self.parent[node]
        while node > 0:
            out.append(node)
            node = self.parent[node]
        return out[::-1]


def score_trie(
    forward: Callable[..., Any],
    root_logits: Any,
    context_len: int,
    trie: Trie,
    *,
    chunk_tokens: int = 512,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Log2-probability of each trie node's token given the context and the node's ancestors.

    `forward(input_ids, position_ids, mask)` runs tree tokens against the cached context (batch 1)
    and returns their logits, restoring the cache afterwards. `root_logits` are the context's
    last logits. Returns an array indexed by node (node 0 holds 0).
    """
    import torch

    node_lp = np.zeros(len(trie), dtype=np.float64)
    _fill_children(node_lp, trie, [0], torch.log_softmax(root_logits.float().reshape(1, -1), dim=-1))
    order = trie.internal_preorder()
    tokens = torch.tensor(trie.token, dtype=torch.long)
    depth = torch.tensor(trie.depth, dtype=torch.long)
    for start in range(0, len(order), chunk_tokens):
        run = order[start : start + chunk_tokens]
        seq = trie.ancestors(run[0]) + run
        pos = {node: i for i, node in enumerate(seq)}
        n = len(seq)
        tree = torch.zeros((n, n), dtype=torch.bool)
        for i, node in enumerate(seq):
            parent = trie.parent[node]
            if parent > 0:
                tree[i] = tree[pos[parent]]
            tree[i, i] = True
        idx = torch.tensor(seq, dtype=torch.long)
        logits = forward(tokens[idx][None, :], (depth[idx] + context_len - 1)[None, :], tree, keep=len(run))
        logp = torch.log_softmax(logits.float(), dim=-1)
        _fill_children(node_lp, trie, run, logp)
        if progress is not None:
            progress(len(run))
    return node_lp


def _fill_children(node_lp: np.ndarray, trie: Trie, parents: list[int], logp: Any) -> None:
    """node_lp[child] = log2 p(child's token | parent) for every child of each parent (row i = parents[i])."""
    import torch

    rows, toks, kids = [], [], []
    for row, parent in enumerate(parents):
        for tok, child in trie.children[parent].items():
            rows.append(row)
            toks.append(tok)
            kids.append(child)
    if rows:
        values = logp[torch.tensor(rows), torch.tensor(toks)].double().numpy() / LN2
        node_lp[np.asarray(kids)] = values
