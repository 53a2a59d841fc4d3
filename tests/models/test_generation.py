"""Batched generation: left-padded rows sharing a cache give each prompt the output it gets alone."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")

PROMPTS = [
    "Text: hello\nClass: spam\n\n", "Text: a much longer prompt with more words in it\nClass: not spam\n\n", "x",
    "Text: hi", "Text: hello\nClass: spam\n\n",
]  # a repeated prompt is read once and its cache shared


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
        out = tiny_model.model.generate(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            max_new_tokens=12, do_sample=False, pad_token_id=tiny_model.tokenizer.eos_token_id,
        )
    reference = tiny_model.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).lstrip()
    batched = tiny_model.generate([PROMPTS[0], PROMPTS[1], PROMPTS[2]], max_new_tokens=12, batch_size=3)[1]
    assert batched == reference


def test_seeds_per_prompt_and_batch_size_are_checked(tiny_model):
    from privacy_audit.errors import ModelError

    with pytest.raises(ModelError, match="2 seeds for 3 prompts"):
        tiny_model.generate(PROMPTS[:3], seed=[1, 2])
    with pytest.raises(ModelError, match="batch_size"):
        tiny_model.generate(PROMPTS[:1], batch_size=0)


def test_a_completion_carries_the_models_own_log_probability_of_its_tokens(tiny_model):
    """The log2-probability a completion reports is that of a plain forward pass over prompt + sampled tokens."""
    ids = tiny_model.prompt_ids(PROMPTS[1])
    with torch.inference_mode():
        out = tiny_model.model.generate(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            max_new_tokens=12, do_sample=False, pad_token_id=tiny_model.tokenizer.eos_token_id,
        )
        new = out[0, len(ids):]
        logits = tiny_model.model(input_ids=out).logits[0, len(ids) - 1 : -1].double()
    reference = float(torch.log_softmax(logits, -1).gather(1, new[:, None]).sum()) / math.log(2)
    (completion,) = tiny_model.complete([PROMPTS[1]], max_new_tokens=12)
    assert completion.tokens == len(new)
    assert completion.logprob == pytest.approx(reference, abs=1e-3)
    assert completion.mean_logprob == pytest.approx(reference / len(new), abs=1e-4)


def test_log_probabilities_do_not_depend_on_the_batch(tiny_model):
    alone = [
        tiny_model.complete([p], temperature=0.9, seed=[3 + i], max_new_tokens=16)[0] for i, p in enumerate(PROMPTS)
    ]
    together = tiny_model.complete(PROMPTS, temperature=0.9, seed=3, max_new_tokens=16, batch_size=4)
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.logprob for c in together] == pytest.approx([c.logprob for c in alone], abs=1e-3)
    assert all(c.logprob is not None and c.logprob < 0 for c in together)


def test_generation_reports_its_progress_to_whoever_watches(tiny_model):
    from privacy_audit._progress import watching

    seen: list[tuple[str, str, int, int]] = []

    def watcher(label, unit):
        return lambda done, total: seen.append((label, unit, done, total))

    tiny_model.generate(PROMPTS, temperature=0.9, max_new_tokens=8, batch_size=2)
    assert seen == []  # nobody watching: nothing reported
    with watching(watcher):
        tiny_model.generate(PROMPTS, temperature=0.9, max_new_tokens=8, batch_size=2)
    assert {(label, unit) for label, unit, _, _ in seen} == {("generating", "samples")}
    done = [d for *_, d, _ in seen]
    assert done == sorted(done) and done[-1] == len(PROMPTS) and all(t == len(PROMPTS) for *_, t in seen)
