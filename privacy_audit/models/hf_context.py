"""The transformers backend's read context: the prompt's stable head run through the model once, its KV cache
reused for every candidate by walking a trie of their tokens with tree attention (`models.trie`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from privacy_audit.models.context import (
    ContextBackend, Distributions, Greedy, Joint, NextTokens, ScoredContinuations, Tokens, Vocabulary,
)
from privacy_audit.models.trie import Trie, log2_moments, log2_probs, next_token_logits, score_trie


class Reader(Protocol):
    """What a read context needs of its model (the transformers backend has it)."""

    model: Any
    tokenizer: Any
    torch: Any
    device: Any
    dtype: Any
    chunk_tokens: int
    cache_kwarg: str
    _tree_attention: bool

    def encode_plain(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]: ...

    def start_tokens(self) -> list[int]: ...

    def vocabulary(self) -> dict[int, str]: ...

    def digit_groups(self) -> int | None: ...

    def plain_logprobs(self, ids: Sequence[int], start: int) -> np.ndarray: ...


# The longest unstable tail kept out of the cache (a long unbroken word is cut here; the check still holds).
TAIL_TOKENS = 16


def stable_head_length(context: str, offsets: Sequence[tuple[int, int]]) -> int:
    """How many of the context's tokens stay put whatever text follows: those that end before its last
    word (with the whitespace before it) and its trailing whitespace, at most TAIL_TOKENS from the end.

    Pre-tokenizers split text at whitespace and merges never cross those splits, so appending text can
    only re-tokenize the last word and the whitespace around it (lm-evaluation-harness moves trailing
    whitespace into the continuation for the same reason). `Context` checks the rule on every scoring.
    """
    body = context.rstrip()
    i = len(body)
    while i > 0 and not body[i - 1].isspace():
        i -= 1
    n = bisect.bisect_right([end for _, end in offsets], max(i - 1, 0))
    return max(n, len(offsets) - TAIL_TOKENS)


# A context longer than this is tokenized jointly with a candidate from a window at its end, not whole.
WINDOW_CHARS = 4096
# The window starts at a pre-token this far into the last WINDOW_CHARS characters (pre-tokens near a cut in the
# middle of a text may split differently from the whole text's; the window's tokens are checked against it once).
WINDOW_PRETOKENS = 32


@dataclass(frozen=True)
class JointWindow:
    """Where the joint tokenization of context + candidate is read from: the whole context (start 0), or a window
    from `start`, a pre-token boundary far before the end, preceded by the whole context's own tokens before it.

    Exact, not approximate: a tokenizer with a pre-tokenizer (a regex, whitespace, byte-level, digits) tokenizes
    each pre-token on its own, and text appended at the end can only re-split the last pre-tokens; the window's
    tokens are checked once to equal the whole context's tokens from `start` on, and a tokenizer without a
    pre-tokenizer (merges across words) always reads the whole context. It makes the check of every candidate
    cost the window, not the context (a 5 MB prompt was re-tokenized whole for each checked candidate)."""

    start: int = 0
    before: int = 0

    @classmethod
    def of(
        cls, lm: Reader, context: str, ids: Sequence[int], offsets: Sequence[tuple[int, int]], *, before: int
    ) -> JointWindow:
        """The window for this context, or the whole context where no window is proved to give the same tokens."""
        pre = getattr(lm.tokenizer.backend_tokenizer, "pre_tokenizer", None)
        if pre is None or len(context) <= WINDOW_CHARS:
            return cls()
        origin = len(context) - WINDOW_CHARS
        pieces = pre.pre_tokenize_str(context[origin:])
        if len(pieces) <= 2 * WINDOW_PRETOKENS:
            return cls()
        start = origin + pieces[WINDOW_PRETOKENS][1][0]
        k = bisect.bisect_left([a for a, _ in offsets], start)
        if start > before or k >= len(offsets) or offsets[k][0] != start:
            return cls()
        (own,), (own_offsets,) = lm.encode_plain([context[start:]])
        shifted = [(a + start, b + start) for a, b in own_offsets]
        if list(own) != list(ids[k:]) or shifted != [tuple(o) for o in offsets[k:]]:
            return cls()
        return cls(start, k)

    def tokens(self, lm: Reader, context: str, continuation: str) -> tuple[int, list[int], list[int]]:
        """(how many of the context's tokens come before the window, the window's joint tokens with the
        continuation, their ends relative to the continuation's start)."""
        (ids,), (offsets,) = lm.encode_plain([context[self.start :] + continuation])
        shift = self.start - len(context)
        return self.before, list(ids), [end + shift for _, end in offsets]


class HFContext(ContextBackend, NextTokens, Greedy, Vocabulary, Distributions):
    """The context's stable head run through the model once; tree tokens run against its cache, which
    each forward restores. The unstable tail (text after the head) is tokenized with every continuation,
    after an anchor (the head's last token's text) so that tokenizers that mark a text's start (a
    sentencepiece prefix space) see the tail where the joint text has it: mid-text.

    The model reads the tokenizer's own start tokens (a BOS, for Llama-style tokenizers) and then the
    text. A tokenizer that adds none keeps at least the context's first token in the head; only an empty
    context is read after a BOS (else EOS) token, as lm-evaluation-harness does."""

    def __init__(self, lm: Reader, context: str) -> None:
        from transformers import DynamicCache

        torch = lm.torch
        self.lm = lm
        self.context = context
        (ids,), (offsets,) = lm.encode_plain([context])
        self.start = lm.start_tokens()
        h = stable_head_length(context, offsets)
        if not self.start and h == 0:
            if ids:
                h = 1
            else:
                bos = lm.tokenizer.bos_token_id
                self.start = [bos if bos is not None else lm.tokenizer.eos_token_id]
        self.head = self.start + list(ids[:h])
        cut = offsets[h - 1][1] if h else 0
        self.window = JointWindow.of(lm, context, ids, offsets, before=offsets[h - 1][0] if h else 0)
        self.anchor = context[offsets[h - 1][0] : cut] if h else ""
        self.tail = context[cut:]
        self.ctx_len = len(self.head)
        self.cache = DynamicCache(config=lm.model.config)
        with torch.inference_mode():
            out = lm.model(
                input_ids=torch.tensor([self.head], device=lm.device), use_cache=True, logits_to_keep=1,
                **{lm.cache_kwarg: self.cache},
            )
        self.root_logits = out.logits[0, -1].cpu()

    def tokenize(self, continuations: Sequence[str]) -> Tokens:
        lead = self.anchor + self.tail
        a, shift = len(self.anchor), len(lead)
        ids, offsets = self.lm.encode_plain([lead + c for c in continuations])
        out_ids, out_ends = [], []
        for row, offs in zip(ids, offsets):
            k = bisect.bisect_left([s for s, _ in offs], a) if a else 0
            out_ids.append(row[k:])
            out_ends.append([end - shift for _, end in offs[k:]])
        return out_ids, out_ends

    def joint(self, continuation: str) -> Joint:
        before, ids, ends = self.window.tokens(self.lm, self.context, continuation)
        if before:
            return Joint(len(self.start) + before, ids, ends)
        return Joint(0, self.start + ids, [0] * len(self.start) + ends)

    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        trie = Trie(ids)
        node_lp = score_trie(self.forward, self.root_logits, self.ctx_len, trie, chunk_tokens=self.lm.chunk_tokens)
        return ScoredContinuations(
            node_lp[trie.paths], np.fromiter((e for row in ends for e in row), dtype=np.int64, count=len(trie.paths)),
            trie.offsets,
        )

    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        lps = self.lm.plain_logprobs(ids, start)
        return ScoredContinuations(
            lps, np.asarray(ends[start:], dtype=np.int64), np.array([0, len(lps)], dtype=np.int64)
        )

    def vocabulary(self) -> dict[int, str]:
        return self.lm.vocabulary()

    def digit_groups(self) -> int | None:
        return self.lm.digit_groups()

    def _nodes(self, paths: Sequence[Sequence[int]]) -> tuple[Trie, list[int]]:
        """The paths as one trie, and each path's node (0: the empty path, whose logits the head gave)."""
        trie = Trie()
        nodes = []
        for path in paths:
            node = 0
            for tok in path:
                node = trie.child(node, tok)
            nodes.append(node)
        return trie, nodes

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        trie, nodes = self._nodes(paths)
        out = np.empty((len(nodes), len(allowed)), dtype=np.float64)
        rows_all = np.repeat(np.arange(len(nodes)), len(allowed))
        toks_all = np.tile(np.asarray(allowed, dtype=np.int64), len(nodes))
        inner = [i for i, node in enumerate(nodes) if node > 0]
        for start in range(0, len(inner), self.lm.chunk_tokens):
            chunk = inner[start : start + self.lm.chunk_tokens]
            logits = next_token_logits(self.forward, trie, self.ctx_len, [nodes[i] for i in chunk])
            sel = np.isin(rows_all, chunk)
            local = np.searchsorted(chunk, rows_all[sel])
            out.reshape(-1)[sel] = log2_probs(logits, local, toks_all[sel])
        roots = [i for i, node in enumerate(nodes) if node == 0]
        if roots:
            out[roots] = log2_probs(self.root_logits.reshape(1, -1), [0] * len(allowed), allowed)
        return out

    def moments(self, paths: Sequence[Sequence[int]]) -> np.ndarray:
        trie, nodes = self._nodes(paths)
        unique = sorted(set(nodes))  # paths shared by several continuations (a context's tail) run once
        by_node = np.empty((len(unique), 2), dtype=np.float64)
        inner = [i for i, node in enumerate(unique) if node > 0]
        for start in range(0, len(inner), self.lm.chunk_tokens):
            chunk = inner[start : start + self.lm.chunk_tokens]
            logits = next_token_logits(self.forward, trie, self.ctx_len, [unique[i] for i in chunk])
            by_node[chunk] = log2_moments(logits)
        if unique and unique[0] == 0:
            by_node[0] = log2_moments(self.root_logits.reshape(1, -1))[0]
        return by_node[np.searchsorted(unique, nodes)]

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        lm, torch = self.lm, self.lm.torch
        ids = self.head + list(path)
        with torch.inference_mode():
            out = lm.model.generate(
                input_ids=torch.tensor([ids], device=lm.device),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=lm.device),
                max_new_tokens=max_new_tokens, pad_token_id=lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id,
                do_sample=False, temperature=None, top_k=None, top_p=None,
            )
        return lm.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)

    def forward(self, input_ids: Any, position_ids: Any, tree: Any, keep: int) -> Any:
        lm, torch = self.lm, self.lm.torch
        from privacy_audit.models.tree_attention import NAME, Unsupported, ancestors

        if lm._tree_attention and lm.model.config._attn_implementation == NAME:
            idx, bias = ancestors(tree)
            try:
                return self._logits(
                    input_ids, position_ids, keep, attention_mask=bias[None, None].to(lm.device, lm.dtype),
                    use_cache=False, tree_context=self.cache, tree_ancestors=idx.to(lm.device),
                )
            except Unsupported:
                lm._tree_attention = False  # this model needs the dense mask from now on
        n = input_ids.shape[1]
        allowed = torch.cat([torch.ones((n, self.ctx_len), dtype=torch.bool), tree], dim=1)
        mask = torch.zeros(allowed.shape, dtype=lm.dtype).masked_fill_(~allowed, torch.finfo(lm.dtype).min)
        try:
            return self._logits(input_ids, position_ids, keep, attention_mask=mask[None, None].to(lm.device),
                                use_cache=True, **{lm.cache_kwarg: self.cache})
        finally:
            extra = self.cache.get_seq_length() - self.ctx_len
            if extra:
                self.cache.crop(-extra)

    def _logits(self, input_ids: Any, position_ids: Any, keep: int, **kwargs: Any) -> Any:
        """The model's logits of the last `keep` tokens of one tree chunk, on the CPU."""
        lm = self.lm
        with lm.torch.inference_mode():
            result = lm.model(
                input_ids=input_ids.to(lm.device), position_ids=position_ids.to(lm.device), logits_to_keep=keep,
                **kwargs,
            )
        return result.logits[0].cpu()
