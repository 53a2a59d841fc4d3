"""The real Llama 3 and GPT-2 tokenizers for the tests, offline once set up: llama.cpp's vocabulary files from the
source distribution of llama-cpp-python (the package `make test` builds for the served tests), read by transformers'
GGUF loader and saved as tokenizer.json files in the user's cache. `make test` runs this module once."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.3.36"
# file stem in llama.cpp's models/ -> what it is
TOKENIZERS = {"llama-bpe": "Llama 3 (digits in threes)", "gpt-2": "GPT-2 (a space joined to digits, runs merged)"}


def folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "privacy-audit" / "tokenizers"


def path(name: str) -> Path:
    """Where the tokenizer.json of `name` (a key of TOKENIZERS) is kept."""
    return folder() / name / "tokenizer.json"


def main(pip_cache: str | None = None) -> None:
    missing = [name for name in TOKENIZERS if not path(name).exists()]
    if not missing:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        cache = ["--cache-dir", pip_cache] if pip_cache else []
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={VERSION}", "-d", tmp, *cache], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        models = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/models"
        wanted = {f"{models}/ggml-vocab-{name}.gguf": name for name in missing}
        with tarfile.open(sdist) as tar:
            for member in tar:
                if member.name in wanted:
                    tar.extract(member, tmp, filter="data")
        from transformers import AutoTokenizer

        for member, name in wanted.items():
            gguf = Path(tmp) / member
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            path(name).parent.mkdir(parents=True, exist_ok=True)
            tokenizer.backend_tokenizer.save(str(path(name)))
            print(f"saved the {TOKENIZERS[name]} tokenizer ({len(tokenizer)} tokens) to {path(name)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
