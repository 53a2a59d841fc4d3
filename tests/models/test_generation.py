"""Batched generation: left-padded rows sharing a cache give each prompt the output it gets alone."""

from __future__ import annotations

import pytest
import torch

PROMPTS = ["Text: hello\nClass: spam\n\n", "Text: a much longer prompt with more words in it\nClass: not spam\n\n", "x", "Text: hi",
           "Text: hello\nClass: spam\n\n"]  # a repeated prompt is read once and its cache shared


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_output_does_not_depend_on_the_batch(tiny_model, temperature):
    alone = [tiny_model.generate([p], temperature=temperature, seed=[11 + i], max_new_tokens=16, stop=("\n\n",))[0]
             for i, p in enumerate(PROMPTS)]
    for batch_size in (None, 1, 2, 3):
        assert tiny_model.generate(PROMPTS, temperature=temperature, seed=11, max_new_tokens=16, stop=("\n\n",),
                                   batch_size=batch_size) == alone
    assert all("\n\n" not in a for a in alone)


def test_greedy_equals_transformers_own_greedy_decoding(tiny_model):
    ids = tiny_model.prompt_ids(PROMPTS[1])
    with torch.inference_mode():
        out = tiny_model.model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                                        max_new_tokens=12, do_sample=False, pad_token_id=tiny_model.tokenizer.eos_token_id)
    reference = tiny_model.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).lstrip()
    batched = tiny_model.generate([PROMPTS[0], PROMPTS[1], PROMPTS[2]], max_new_tokens=12, batch_size=3)[1]
    assert batched == reference


def test_seeds_per_prompt_and_batch_size_are_checked(tiny_model):
    from privacy_audit.errors import ModelError

    with pytest.raises(ModelError, match="2 seeds for 3 prompts"):
        tiny_model.generate(PROMPTS[:3], seed=[1, 2])
    with pytest.raises(ModelError, match="batch_size"):
        tiny_model.generate(PROMPTS[:1], batch_size=0)
