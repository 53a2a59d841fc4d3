"""Transformers backend: a local folder, a GGUF file or a hub id; CPU or CUDA; exact fp32 scoring."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from privacy_audit._progress import tracker
from privacy_audit._registry import register
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models.base import (
    CachingScorer, Completion, Generator, LanguageModel, ModelInfo, PrecisionCheck, Prompt, ScoringPolicy,
)
from privacy_audit.models.hf_context import HFContext
from privacy_audit.models.pretokens import digit_groups, token_texts
from privacy_audit.models.trie import log2_probs


# Tree tokens per forward pass: a backend option, range-checked wherever it is set (flag, config, Python).
ChunkTokens = Annotated[int, Field(ge=1, le=1_000_000)]
# The precision the model computes in (float32 by default; bfloat16 and float16 are for GPUs), and how far, in bits,
# a sample rescored in float32 may differ.
Precision = Literal["float32", "bfloat16", "float16"]
PrecisionTolerance = Annotated[float, Field(ge=0)]


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def weights_sha256(path: Path) -> str:
    """sha256 over a model's weight files (a .gguf file, or every weight file of a folder, by name and content)."""
    files = (
        [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    )
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(path) if f != path else f.name).encode("utf-8") + b"\0")
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


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


class TransformersModel(LanguageModel, Generator, CachingScorer):
    """A causal LM from transformers with its tokenizer.

    Scoring conditions on the context once and walks a trie of the candidates' tokens with tree
    attention (see `models.trie`); generation uses the tokenizer's chat template for messages.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, name: str, revision: str | None = None, chunk_tokens: int = 512,
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
        self._last_session: HFContext | None = None
        self._vocabulary: dict[int, str] | None = None
        params = inspect.signature(model.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        from privacy_audit.models import tree_attention

        self._tree_attention = tree_attention.install(model)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"{name}: scoring needs a fast tokenizer (one with character offsets)")

    @classmethod
    def load(
        cls, source: str, *, device: str | None = None, gguf_file: str | None = None, local_files_only: bool = False,
        **kwargs: Any,
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
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=gguf_file, dtype=torch.float32, local_files_only=local_files_only
            )
            if tick is not None:
                tick(2, 2)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {source!r}: {first}") from None
        return cls(model.to(device), tokenizer, name=source, **kwargs)

    def lower_precision(self, dtype: Precision, tolerance: float) -> TransformersModel:
        """Compute in `dtype` from now on, keeping the float32 weights (on the CPU) to rescore a sample of every
        scoring with: the report records the largest difference, and the gate fails beyond `tolerance` bits."""
        if dtype == "float32":
            return self
        import copy

        torch = self.torch
        reference = copy.deepcopy(self.model).to("cpu", torch.float32)
        float32 = TransformersModel(reference, self.tokenizer, name=self.name, revision=self.revision,
                                    chunk_tokens=self.chunk_tokens)
        self.policy = ScoringPolicy(precision=PrecisionCheck(float32, tolerance, dtype))
        self.model = self.model.to(getattr(torch, dtype))
        self.dtype = next(self.model.parameters()).dtype
        return self

    backend = "hf"
    # A local folder or file the weights were read from: its weights' hash enters the model info (and the teaching
    # cache key), so a model retrained into the same folder is not taken for the old one.
    weights_path: Path | None = None

    def info(self) -> ModelInfo:
        if self.weights_path is not None and not hasattr(self, "_weights_sha256"):
            self._weights_sha256 = weights_sha256(self.weights_path)
        return ModelInfo(
            backend=self.backend, name=self.name, revision=self.revision, dtype=str(self.dtype).removeprefix("torch."),
            device=str(self.device), weights_sha256=getattr(self, "_weights_sha256", None),
        )

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

    def vocabulary(self) -> dict[int, str]:
        """Each ordinary token's text where it follows other text (`pretokens.token_texts`). Computed once."""
        if self._vocabulary is None:
            self._vocabulary = token_texts(self.tokenizer.backend_tokenizer, set(self.tokenizer.all_special_ids))
        return self._vocabulary

    def digit_groups(self) -> int | None:
        """The digit groups the tokenizer's pre-tokenizer cuts (`pretokens.digit_groups`). Computed once."""
        if not hasattr(self, "_digit_groups"):
            self._digit_groups = digit_groups(self.tokenizer.backend_tokenizer)
        return self._digit_groups

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

    def _open_context(self, context: str) -> HFContext:
        """The context's KV cache, reused when the same context is opened again (scoring, then search)."""
        if self._last_session is None or self._last_session.context != context:
            self._last_session = None  # free the previous context's cache before building the next
            self._last_session = HFContext(self, context)
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
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int],
        stop: tuple[str, ...], batch_size: int | None,
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
            done = generate_batch(
                self, [encoded[i] for i in rows], [seeds[i] for i in rows], max_new_tokens=max_new_tokens,
                temperature=temperature, stop=stop, finished=finished if tick is not None else None,
            )
            outputs.update(zip(rows, done))
        return [outputs[i] for i in range(len(encoded))]


@register("backend", "hf", fixed=("source",))
def _hf_backend(
    source: str, *, chunk_tokens: ChunkTokens = 512, device: str | None = None, dtype: Precision = "float32",
    precision_tolerance: PrecisionTolerance = 0.5,
) -> TransformersModel:
    """Any transformers causal LM: a local folder, a .gguf file, or a hub id (read from the HF cache if offline).

    A hub id is downloaded, except with HF_HUB_OFFLINE=1 (as the Makefile sets it): then only a model already in
    the Hugging Face cache loads.

    dtype float32 (default), or bfloat16 / float16 on a GPU, whose error is measured on every scoring against
    float32 (a sample rescored; beyond precision_tolerance bits the gate fails)."""
    if not os.path.exists(source) and os.environ.get("HF_HUB_OFFLINE") == "1" and "/" not in source:
        raise InputError(f"model {source!r} is neither a local folder nor a .gguf file (and with HF_HUB_OFFLINE=1 a "
                         "hub id loads only from the Hugging Face cache: write it as owner/name)")
    model = TransformersModel.load(source, chunk_tokens=chunk_tokens, device=device)
    if os.path.exists(source):
        model.weights_path = Path(source)
    return model.lower_precision(dtype, precision_tolerance)
