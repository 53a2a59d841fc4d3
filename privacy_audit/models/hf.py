"""Transformers backend: a local folder, a GGUF file or a hub id; CPU or CUDA; exact fp32 scoring."""

from __future__ import annotations

import bisect
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from privacy_audit._progress import tracker
from privacy_audit._registry import register
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models.base import Completion, LanguageModel, ModelInfo, Prompt
from privacy_audit.models.context import ContextBackend, ScoredContinuations, Tokens
from privacy_audit.models.trie import Trie, log2_probs, next_token_logits, score_trie


# Tree tokens per forward pass: a backend option, range-checked wherever it is set (flag, config, Python).
ChunkTokens = Annotated[int, Field(ge=1, le=1_000_000)]


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core count once); os.cpu_count() where
    the topology is not readable."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = set()
    for cpu in cpus:
        base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((base / "physical_package_id").read_text().strip() + ":" + (base / "core_id").read_text().strip())
        except OSError:
            return len(cpus) or os.cpu_count() or 1
    return len(cores) or os.cpu_count() or 1


def import_torch() -> Any:
    """Import torch and transformers, or say how to install them; torch's threads are set to the physical
    cores (sharing a core between two threads slows dense kernels) unless OMP_NUM_THREADS says otherwise."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"the transformers backend needs torch and transformers ({exc.name} is missing): "
            "pip install torch==2.13.0 transformers"
        ) from None
    cores = physical_cores()
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch


class TransformersModel(LanguageModel):
    """A causal LM from transformers with its tokenizer.

    Scoring conditions on the context once and walks a trie of the candidates' tokens with tree
    attention (see `models.trie`); generation uses the tokenizer's chat template for messages.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str | None = None,
        chunk_tokens: int = 512,
    ) -> None:
        if not 1 <= chunk_tokens <= 1_000_000:
            raise ModelError(f"chunk_tokens must be between 1 and 1,000,000, got {chunk_tokens}")
        torch = import_torch()
        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.chunk_tokens = chunk_tokens
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._last_session: _HFContext | None = None
        params = inspect.signature(model.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        from privacy_audit.models import tree_attention

        self._tree_attention = tree_attention.install(model)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"{name}: scoring needs a fast tokenizer (one with character offsets)")

    @classmethod
    def load(
        cls, source: str, *, device: str | None = None, gguf_file: str | None = None, local_files_only: bool = False, **kwargs: Any
    ) -> TransformersModel:
        """Load from a folder, a .gguf file or a hub id (offline unless the hub is reachable and allowed;
        `local_files_only` forbids the hub whatever the environment says)."""
        torch = import_torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(source)
        if path.suffix == ".gguf":
            if not path.is_file():
                raise InputError(f"model file {source} does not exist")
            folder, gguf_file = str(path.parent), path.name
        else:
            folder = source
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tick = tracker("loading model", "part")
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file, local_files_only=local_files_only)
            if tick is not None:
                tick(1, 2)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32, local_files_only=local_files_only)
            if tick is not None:
                tick(2, 2)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {source!r}: {first}") from None
        return cls(model.to(device), tokenizer, name=source, **kwargs)

    backend = "hf"

    def info(self) -> ModelInfo:
        return super().info().model_copy(update={"dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device)})

    def encode_context(self, context: str) -> list[int]:
        """Context token ids (with the tokenizer's own special tokens; never empty)."""
        ids = list(self.tokenizer(context, add_special_tokens=True)["input_ids"])
        if not ids:
            bos = self.tokenizer.bos_token_id
            ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        return ids

    def encode_continuations(self, continuations: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of each continuation (tokenized on its own) and each token's end offset in characters."""
        ids, offsets = self.encode_plain(continuations)
        return ids, [[end for _, end in offs] for offs in offsets]

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        ids, ends = self.encode_continuations(texts)
        return list(zip(ids, ends))

    def start_tokens(self) -> list[int]:
        """The special tokens the tokenizer puts before a text (a BOS for Llama-style tokenizers; often none)."""
        with_special = list(self.tokenizer("a", add_special_tokens=True)["input_ids"])
        plain = list(self.tokenizer("a", add_special_tokens=False)["input_ids"])
        for i in range(len(with_special)):
            if with_special[i:i + len(plain)] == plain:
                return with_special[:i]
        return []

    def encode_plain(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        """Token ids and (start, end) character offsets of each text, tokenized on its own without special tokens.

        Calls the Rust tokenizer directly, set up as the transformers wrapper sets it up for an
        unpadded, untruncated batch; the wrapper's Python conversions cost more than tokenizing.
        """
        backend = self.tokenizer.backend_tokenizer
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        backend.encode_special_tokens = bool(getattr(self.tokenizer, "split_special_tokens", False))
        encodings = backend.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings], [e.offsets for e in encodings]

    def _open_context(self, context: str) -> ContextBackend:
        """The context's KV cache, reused when the same context is opened again (scoring, then search)."""
        if self._last_session is None or self._last_session.context != context:
            self._last_session = None  # free the previous context's cache before building the next
            self._last_session = _HFContext(self, context)
        return self._last_session

    def plain_logprobs(self, ids: Sequence[int], start: int) -> np.ndarray:
        """log2 p(ids[j] | ids[:j]) for j >= start, by one ordinary forward pass (no cache, no trie)."""
        torch = self.torch
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([list(ids)], device=self.device)).logits[0].float().cpu()
        rows = list(range(start - 1, len(ids) - 1))
        return log2_probs(logits, rows, list(ids[start:]))

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Token ids of a plain-text prompt, or of chat messages through the model's chat template."""
        if isinstance(prompt, str):
            return self.encode_context(prompt)
        if not self.tokenizer.chat_template:
            raise ModelError(f"{self.name} has no chat template; pass plain-text prompts")
        text = self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int], stop: tuple[str, ...],
        batch_size: int | None,
    ) -> list[Completion]:
        """Prompts batched shortest first (a batch of like lengths pads little); outputs in the callers' order."""
        from privacy_audit.models.generation import default_batch, generate_batch

        encoded = [self.prompt_ids(p) for p in prompts]
        if not encoded:
            return []
        size = batch_size or default_batch(self.model.config, max(len(e) for e in encoded) + max_new_tokens)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        outputs: dict[int, Completion] = {}
        tick, done_rows = tracker("generating", "samples"), 0

        def finished(k: int) -> None:
            nonlocal done_rows
            done_rows += k
            tick(done_rows, len(encoded))

        for start in range(0, len(order), size):
            rows = order[start : start + size]
            done = generate_batch(self, [encoded[i] for i in rows], [seeds[i] for i in rows], max_new_tokens=max_new_tokens,
                                  temperature=temperature, stop=stop, finished=finished if tick is not None else None)
            outputs.update(zip(rows, done))
        return [outputs[i] for i in range(len(encoded))]


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


class _HFContext(ContextBackend):
    """The context's stable head run through the model once; tree tokens run against its cache, which
    each forward restores. The unstable tail (text after the head) is tokenized with every continuation,
    after an anchor (the head's last token's text) so that tokenizers that mark a text's start (a
    sentencepiece prefix space) see the tail where the joint text has it: mid-text.

    The model reads the tokenizer's own start tokens (a BOS, for Llama-style tokenizers) and then the
    text. A tokenizer that adds none keeps at least the context's first token in the head; only an empty
    context is read after a BOS (else EOS) token, as lm-evaluation-harness does."""

    def __init__(self, lm: TransformersModel, context: str) -> None:
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
        self.anchor = context[offsets[h - 1][0] : cut] if h else ""
        self.tail = context[cut:]
        self.ctx_len = len(self.head)
        self.cache = DynamicCache(config=lm.model.config)
        with torch.inference_mode():
            out = lm.model(
                input_ids=torch.tensor([self.head], device=lm.device), use_cache=True, logits_to_keep=1, **{lm.cache_kwarg: self.cache}
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

    def joint(self, continuation: str) -> tuple[list[int], list[int]]:
        (ids,), (offsets,) = self.lm.encode_plain([self.context + continuation])
        n = len(self.context)
        return self.start + list(ids), [0] * len(self.start) + [end - n for _, end in offsets]

    def score_tokens(self, ids: list[list[int]], ends: list[list[int]]) -> ScoredContinuations:
        trie = Trie(ids)
        node_lp = score_trie(self.forward, self.root_logits, self.ctx_len, trie, chunk_tokens=self.lm.chunk_tokens)
        return ScoredContinuations(
            node_lp[trie.paths],
            np.fromiter((e for row in ends for e in row), dtype=np.int64, count=len(trie.paths)),
            trie.offsets,
        )

    def score_full(self, ids: list[int], ends: list[int], start: int) -> ScoredContinuations:
        lps = self.lm.plain_logprobs(ids, start)
        return ScoredContinuations(lps, np.asarray(ends[start:], dtype=np.int64), np.array([0, len(lps)], dtype=np.int64))

    def next_logprobs(self, paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
        trie = Trie()
        nodes = []
        for path in paths:
            node = 0
            for tok in path:
                node = trie.child(node, tok)
            nodes.append(node)
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

    def greedy(self, path: Sequence[int], max_new_tokens: int) -> str:
        lm, torch = self.lm, self.lm.torch
        ids = self.head + list(path)
        with torch.inference_mode():
            out = lm.model.generate(
                input_ids=torch.tensor([ids], device=lm.device),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=lm.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id,
                do_sample=False, temperature=None, top_k=None, top_p=None,
            )
        return lm.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)

    def forward(self, input_ids: Any, position_ids: Any, tree: Any, keep: int) -> Any:
        lm, torch = self.lm, self.lm.torch
        from privacy_audit.models.tree_attention import NAME, Unsupported, ancestors

        if lm._tree_attention and lm.model.config._attn_implementation == NAME:
            idx, bias = ancestors(tree)
            try:
                return self._logits(input_ids, position_ids, keep, attention_mask=bias[None, None].to(lm.device, lm.dtype),
                                    use_cache=False, tree_context=self.cache, tree_ancestors=idx.to(lm.device))
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
            result = lm.model(input_ids=input_ids.to(lm.device), position_ids=position_ids.to(lm.device), logits_to_keep=keep, **kwargs)
        return result.logits[0].cpu()


@register("backend", "hf", fixed=("source",))
def _hf_backend(source: str, *, chunk_tokens: ChunkTokens = 512, device: str | None = None) -> TransformersModel:
    """Any transformers causal LM: a local folder, a .gguf file, or a hub id (needs HF_HUB_OFFLINE unset)."""
    if not os.path.exists(source) and os.environ.get("HF_HUB_OFFLINE") == "1" and "/" not in source:
        raise InputError(f"model {source!r} is neither a local folder nor a .gguf file")
    return TransformersModel.load(source, chunk_tokens=chunk_tokens, device=device)
