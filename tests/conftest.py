"""Shared fixtures: a tiny random Llama with a character tokenizer, built in memory (no download)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

CHARS = string.ascii_letters + string.digits + " .,:;!?'\"-_()\n{}<>/|@#"


def make_tiny_model(seed: int = 0):
    """A 2-layer Llama over single characters, plus a fast tokenizer with offsets and a chat template."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from privacy_audit.models.hf import TransformersModel

    specials = ["<unk>", "<s>", "</s>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(CHARS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # sharpen the random model so scores differ clearly between candidates
        model.lm_head.weight.mul_(20.0)
    return TransformersModel(model, tokenizer, name="tiny-llama", chunk_tokens=256)


@pytest.fixture(autouse=True)
def private_teaching_cache(tmp_path_factory, monkeypatch):
    """Teaching outputs and served completions cached by tests go to a temporary folder, not the user's cache."""
    import privacy_audit.models.openai
    import privacy_audit.pipelines.teaching

    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setattr(privacy_audit.pipelines.teaching, "cache_root", lambda: folder)
    monkeypatch.setattr(privacy_audit.models.openai, "cache_root", lambda: folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model():
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model):
    """The tiny model saved as a folder, for CLI tests that load a model by path."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny_model.model.save_pretrained(folder)
    tiny_model.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def sms_jsonl(tmp_path) -> Path:
    """Twenty SMS records (bundled demo data) as a JSONL file."""
    from importlib.resources import files

    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wrapper_encoding(tokenizer, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and end offsets as the transformers tokenizer wrapper gives them (the reference)."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    return [list(x) for x in enc["input_ids"]], [[end for _, end in offs] for offs in enc["offset_mapping"]]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def teach_file(pipeline: str, *, options: dict | None = None, **kwargs):
    """`teach` as the command runs it (files in, prompt file out), with the pipeline's options configured first."""
    from privacy_audit.audit_runs import teach
    from privacy_audit.pipelines import configure

    return teach(configure(pipeline, options or {}), **kwargs)


def at_level(failures: int, trials: int, alpha: float, *, false_alarm: float = 0.01, power: float = 0.9) -> bool:
    """Whether a seeded simulation's count of rejections (or failures) is consistent with a level of `alpha`: at most
    the count Binomial(trials, alpha) exceeds with probability `false_alarm`. The design must see a doubled rate
    with probability `power` (checked here, so a simulation too small to catch a doubled error cannot pass)."""
    from scipy import stats

    limit = int(stats.binom.isf(false_alarm, trials, alpha))
    caught = float(stats.binom.sf(limit, trials, min(1.0, 2 * alpha)))
    assert caught >= power, f"{trials} trials catch a doubled rate of {alpha} with probability {caught:.2f} only"
    return failures <= limit
