"""Transformers backend: a local folder, a GGUF file or a hub id; CPU or CUDA; exact fp32 scoring."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from privacy_audit._registry import register
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models.base import LanguageModel, Prompt, ScoredContinuations, Scorer, Search
from privacy_audit.models.trie import Trie, log2_probs, next_token_logits, score_trie


def import_torch() -> Any:
    """Import torch and transformers, or say how to install them."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"the transformers backend needs torch and transformers ({exc.name} is missing): "
            "pip install torch==2.13.0 transformers"
        ) from None
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
        extra_info: dict[str, Any] | None = None,
    ) -> None:
        torch = import_torch()
        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.chunk_tokens = chunk_tokens
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._extra_info = extra_info or {}
        self._last_session: _ContextSession | None = None
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"{name}: scoring needs a fast tokenizer (one with character offsets)")

    @classmethod
    def load(cls, source: str, *, device: str | None = None, gguf_file: str | None = None, **kwargs: Any) -> TransformersModel:
        """Load from a folder, a .gguf file or a hub id (offline unless the hub is reachable and allowed)."""
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
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {source!r}: {first}") from None
        return cls(model.to(device), tokenizer, name=source, **kwargs)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            **self._extra_info,
        }

    def encode_context(self, context: str) -> list[int]:
        """Context token ids (with the tokenizer's own special tokens; never empty)."""
        ids = list(self.tokenizer(context, add_special_tokens=True)["input_ids"])
        if not ids:
            bos = self.tokenizer.bos_token_id
            ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        return ids

    def encode_continuations(self, continuations: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of each continuation (tokenized on its own) and each token's end offset in characters.

        Calls the Rust tokenizer directly, set up as the transformers wrapper sets it up for an
        unpadded, untruncated batch; the wrapper's Python conversions cost more than tokenizing.
        """
        backend = self.tokenizer.backend_tokenizer
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        backend.encode_special_tokens = bool(getattr(self.tokenizer, "split_special_tokens", False))
        encodings = backend.encode_batch(list(continuations), add_special_tokens=False)
        return [e.ids for e in encodings], [[end for _, end in e.offsets] for e in encodings]

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        ids, ends = self.encode_continuations(texts)
        return list(zip(ids, ends))

    def _session(self, context: str) -> _ContextSession:
        """The context's KV cache, reused when the same context is scored and then searched."""
        if self._last_session is None or self._last_session.context != context:
            self._last_session = _ContextSession(self, context)
        return self._last_session

    def _open_context(self, context: str) -> Scorer:
        session = self._session(context)

        def score(continuations: Sequence[str]) -> ScoredContinuations:
            ids, ends = self.encode_continuations(continuations)
            trie = Trie(ids)
            node_lp = score_trie(session.forward, session.root_logits, session.ctx_len, trie, chunk_tokens=self.chunk_tokens)
            return ScoredContinuations(
                node_lp[trie.paths],
                np.fromiter((e for row in ends for e in row), dtype=np.int64, count=len(trie.paths)),
                trie.offsets,
            )

        return score

    def _open_search(self, context: str) -> Search:
        session = self._session(context)
        trie = Trie()

        def search(paths: Sequence[Sequence[int]], allowed: Sequence[int]) -> np.ndarray:
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
            for start in range(0, len(inner), self.chunk_tokens):
                chunk = inner[start : start + self.chunk_tokens]
                logits = next_token_logits(session.forward, trie, session.ctx_len, [nodes[i] for i in chunk])
                sel = np.isin(rows_all, chunk)
                local = np.searchsorted(chunk, rows_all[sel])
                out.reshape(-1)[sel] = log2_probs(logits, local, toks_all[sel])
            roots = [i for i, node in enumerate(nodes) if node == 0]
            if roots:
                out[roots] = log2_probs(session.root_logits.reshape(1, -1), [0] * len(allowed), allowed)
            return out

        return search

    def _stop_criteria(self, start: int, stops: tuple[str, ...]) -> Any:
        from transformers import StoppingCriteriaList

        return StoppingCriteriaList([_stop_on_strings(self.tokenizer, start, stops)])

    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seed: int, stop: tuple[str, ...]
    ) -> list[str]:
        torch = self.torch
        outputs = []
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str):
                ids = self.encode_context(prompt)
            else:
                if not self.tokenizer.chat_template:
                    raise ModelError(f"{self.name} has no chat template; pass plain-text prompts")
                text = self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
                ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
                if temperature > 0
                else {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
            )
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                torch.manual_seed(seed + i)
                out = self.model.generate(
                    input_ids=torch.tensor([ids], device=self.device),
                    attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
                    max_new_tokens=max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                    **({"stopping_criteria": self._stop_criteria(len(ids), stop)} if stop else {}),
                    **sampling,
                )
            outputs.append(self.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).lstrip())
        return outputs


def _stop_on_strings(tokenizer: Any, start: int, stops: tuple[str, ...]) -> Any:
    """A generation stopping criterion: the decoded new text contains one of `stops` (any tokenizer)."""
    import torch
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = [any(s in tokenizer.decode(row[start:], skip_special_tokens=True) for s in stops) for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


class _ContextSession:
    """A context run through the model once; `forward` runs tree tokens against its cache and restores it."""

    def __init__(self, lm: TransformersModel, context: str) -> None:
        from transformers import DynamicCache

        torch = lm.torch
        self.lm = lm
        self.context = context
        ids = lm.encode_context(context)
        self.ctx_len = len(ids)
        self.cache = DynamicCache(config=lm.model.config)
        with torch.inference_mode():
            out = lm.model(
                input_ids=torch.tensor([ids], device=lm.device), use_cache=True, logits_to_keep=1, **{lm._cache_kwarg: self.cache}
            )
        self.root_logits = out.logits[0, -1].cpu()

    def forward(self, input_ids: Any, position_ids: Any, tree: Any, keep: int) -> Any:
        lm, torch = self.lm, self.lm.torch
        n = input_ids.shape[1]
        allowed = torch.cat([torch.ones((n, self.ctx_len), dtype=torch.bool), tree], dim=1)
        mask = torch.zeros(allowed.shape, dtype=lm.dtype).masked_fill_(~allowed, torch.finfo(lm.dtype).min)
        try:
            with torch.inference_mode():
                result = lm.model(
                    input_ids=input_ids.to(lm.device),
                    position_ids=position_ids.to(lm.device),
                    attention_mask=mask[None, None].to(lm.device),
                    use_cache=True,
                    logits_to_keep=keep,
                    **{lm._cache_kwarg: self.cache},
                )
        finally:
            extra = self.cache.get_seq_length() - self.ctx_len
            if extra:
                self.cache.crop(-extra)
        return result.logits[0].cpu()


@register("backend", "hf")
def _hf_backend(source: str, **options: Any) -> TransformersModel:
    """Any transformers causal LM: a local folder, a .gguf file, or a hub id (needs HF_HUB_OFFLINE unset)."""
    if not os.path.exists(source) and os.environ.get("HF_HUB_OFFLINE") == "1" and "/" not in source:
        raise InputError(f"model {source!r} is neither a local folder nor a .gguf file")
    return TransformersModel.load(source, **options)
