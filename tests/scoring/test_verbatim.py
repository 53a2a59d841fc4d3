"""The verbatim test: a never-planted secret appears in a prompt with an exactly known chance, so a copied canary
fails the default gate under every tokenizer and scoring mode, and clean prompts fail it at most alpha of the time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.chain import make_report
from privacy_audit.canaries import parse_space
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import TeachingOutput


@pytest.mark.parametrize("spec, text", [
    ("digits:2", "call 0612 now, or 99"), ("hex:2", "ff 0a zz"), ("words:ann,anne,bob,carl", "Annie met anne and bob"),
    ("a=digits:1;b=words:x,y,z", "x 7"), ("names", "Mary and John went to see Anna"),
])
def test_the_chance_is_the_members_found_over_the_size(spec, text):
    space = parse_space(spec)
    members = [space.secret(i) for i in range(space.size)]
    found = sum(all(part in text for part in space.values(s).values()) for s in members)
    assert space.chance_in(text) == pytest.approx(found / space.size)


def test_the_verbatim_p_value_holds_its_level():
    """P(p <= t) <= t for a secret drawn after the prompt: simulated over random digit prompts."""
    rng = np.random.default_rng(0)
    space = parse_space("digits:3")
    reps, ps = 20_000, []
    for _ in range(reps):
        prompt = "".join(rng.choice(list("0123456789 "), size=int(rng.integers(5, 120))))
        secret = space.sample(1, rng)[0]
        ps.append(space.chance_in(prompt) if secret in prompt else 1.0)
    ps = np.array(ps)
    for t in (0.01, 0.05, 0.1):
        assert np.mean(ps <= t) <= t + 3 * np.sqrt(t * (1 - t) / reps)


def digit_pair_model():
    """A tiny random Llama whose tokenizer reads digits in pairs (GPT-2-style merges of digit pairs)."""
    import string

    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from privacy_audit.models.hf import TransformersModel

    chars = string.ascii_letters + string.digits + " .,:\n"
    pairs = ["".join(p) for p in itertools.product(string.digits, repeat=2)]
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *chars, *pairs])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d\d|."), behavior="isolated")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    torch.manual_seed(0)
    return TransformersModel(LlamaForCausalLM(config), tok, name="tiny-digit-pairs", chunk_tokens=128)


def test_a_copied_canary_fails_the_default_gate_under_a_digit_pair_tokenizer():
    """A random model does not copy, so the search over whole tokens certifies nothing tighter than the references
    here, and before the verbatim test the default gate passed this prompt (adjusted p 0.045): the verbatim test
    fails it whatever the intervals."""
    model = digit_pair_model()
    cs = generate_canary_set(template="The code is {secret}", space="digits:8", count=1, references=20, seed=1)
    prompt = f"Text: hello there\nThe code is {cs.planted[0].secret}.\n"
    result = score_prompt(model, prompt, cs, ScoringOptions(extraction=False))
    assert result.mode == "bounded" and result.canaries[0].exposure_method == "sampled"
    assert result.canaries[0].verbatim_p_value == pytest.approx(parse_space("digits:8").chance_in(prompt))
    teaching = TeachingOutput(prompt=prompt, pipeline="prompt-file", options={}, seed=0, model=None)
    outcome = apply_gate(make_report(teaching, cs, result, model=model.info()), Thresholds())
    # rank, verbatim count, planted vs references by score and by similarity
    assert not outcome.passed and "(4 exact tests)" in outcome.rules[0].message
    assert outcome.rules[0].value < 1e-6


def test_the_verbatim_count_test_is_the_hypergeometric_tail():
    from privacy_audit.stats.permutation import verbatim_count_p_value

    # 2 canaries of 1,000 secrets, both among the 2 the prompt holds: 1 / C(1000, 2)
    assert verbatim_count_p_value(2, planted=2, in_prompt=2, space_size=1000).p == pytest.approx(1 / 499_500)
    assert verbatim_count_p_value(0, planted=3, in_prompt=5, space_size=100).p == 1.0
    assert verbatim_count_p_value(1, planted=1, in_prompt=7, space_size=100).p == pytest.approx(0.07)
