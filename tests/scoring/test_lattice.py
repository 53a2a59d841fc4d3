"""Best-first search over whole tokens: under tokenizers that group digits (GPT-2-style byte-level BPE with irregular
digit-pair merges, a Llama-3-style pre-tokenizer reading digits in threes, the mock's digit groups) it lists secrets
in exhaustive scoring's order, its certified intervals hold the exact rank, a copied canary is certified at rank 1
and fails the default gate, and clean prompts fail the gate at most at alpha."""

from __future__ import annotations

import itertools
import random
import string

import numpy as np
import pytest

from tests.conftest import at_level
from privacy_audit import CanarySet, MockModel, ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.canaries.presets import load_preset
from privacy_audit.chain import make_report
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import TeachingOutput
from privacy_audit.scoring.bounded import walk_for
from privacy_audit.scoring.lattice import TokenLattice
from privacy_audit.scoring.search import best_first


def byte_level_bpe(*, threes: bool):
    """A byte-level BPE tokenizer: digit pairs merged in a shuffled (learnt-looking) order and " 1"-style merges of a
    space with a digit, as GPT-2's; or, with `threes`, digits split into groups of up to three before byte-level BPE
    merges them whole, as Llama 3's."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *sorted(ByteLevel.alphabet())])}
    merges: list[tuple[str, str]] = []

    def merge(a: str, b: str) -> None:
        merges.append((a, b))
        vocab.setdefault(a + b, len(vocab))

    pairs = list(itertools.product(string.digits, repeat=2))
    random.Random(0).shuffle(pairs)
    for a, b in pairs:
        merge(a, b)
    if threes:
        for a, b, c in itertools.product(string.digits, repeat=3):
            merge(a + b, c)
            merges.append((a, b + c))
    else:
        for d in string.digits:
            merge("Ġ", d)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = (
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\p{N}{1,3}| ?[^\s\p{N}]+|\s+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        if threes
        else pre_tokenizers.ByteLevel(add_prefix_space=False)
    )
    backend.decoder = decoders.ByteLevel()
    return backend


def sentencepiece_bpe():
    """A sentencepiece-style tokenizer (a word-start mark for spaces) with BPE merges learnt from the bundled names, so
    names are read in merged pieces ("▁Jo", "hn")."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from privacy_audit.canaries import parse_space

    names = parse_space("names").words
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=list(string.printable.strip() + " "))
    backend.train_from_iterator([f"My name is {n}. " * 2 for n in names] + [PROMPT], trainer=trainer)
    return backend


def rare_join_bpe():
    """A GPT-2-style byte-level BPE whose only multi-digit token is " 7305" (the space joined to four digits): one
    secret in 10^4 begins with a token that no other holds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *sorted(ByteLevel.alphabet())])}
    merges = [("7", "3"), ("0", "5"), ("73", "05"), ("Ġ", "7305")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return backend


def bpe_model(*, threes: bool = False, names: bool = False, backend=None):
    """A tiny random Llama over `byte_level_bpe`'s vocabulary (or `sentencepiece_bpe`'s, or the one given)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from privacy_audit.models.hf import TransformersModel

    backend = backend or (sentencepiece_bpe() if names else byte_level_bpe(threes=threes))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=backend.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=1, eos_token_id=2,
        pad_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # sharper than random, so secrets' scores spread
        model.lm_head.weight.mul_(8.0)
    return TransformersModel(model, tok, name="tiny-bpe", chunk_tokens=256)


PROMPT = "Text: call me at 417 052, the code is 0527.\nClass: spam\n"
MODELS = {
    "gpt2-pairs": lambda: bpe_model(threes=False),
    "llama3-threes": lambda: bpe_model(threes=True),
    "mock-pairs": lambda: MockModel(digits=2),
    "mock-threes": lambda: MockModel(digits=3, order=6, alpha=0.01),
}


def copier(digits: int = 3) -> MockModel:
    """The mock with digit groups, copying its context strongly (as LLMs copy a secret they were shown)."""
    return MockModel(digits=digits, order=8, alpha=0.001)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("template", ["The code is {secret}.", "code {secret}"])
def test_search_over_whole_tokens_lists_secrets_in_exhaustive_order(name, template):
    model = MODELS[name]()
    cs = generate_canary_set(template=template, space="digits:3", count=1, references=2, seed=0)
    ctx = model.open_context(PROMPT)
    secrets = list(cs.secret_space.enumerate())
    scores = ctx([cs.fill(s) for s in secrets]).totals(len(cs.prefix))
    walk = walk_for(ctx, cs)
    assert isinstance(walk, TokenLattice)
    result = best_first(ctx.search, walk, max_results=30, batch=16)
    order = np.argsort(-scores, kind="stable")[:30]
    np.testing.assert_allclose(result.logprobs, scores[order], atol=1e-4)
    np.testing.assert_allclose([scores[secrets.index(s)] for s in result.secrets], result.logprobs, atol=1e-4)
    assert len(set(result.secrets)) == 30


@pytest.mark.parametrize("name", MODELS)
def test_certified_intervals_hold_the_exact_rank(name):
    model = MODELS[name]()
    cs = generate_canary_set(template="My PIN is {secret}.", space="digits:4", count=4, references=6, seed=3)
    prompt = PROMPT + cs.planted[1].text + "\n"
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    ranks = {c.id: c.rank_lower for c in exact.canaries}
    for budget in (40, 400):
        bounded = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                   extraction=False))
        assert "over whole tokens" in bounded.search
        for c in bounded.canaries:
            assert c.rank_lower <= ranks[c.id] <= c.rank_upper, (c.id, c.exposure_method)


@pytest.mark.parametrize("preset, digits", [("phone", 3), ("card", 3), ("card", 2)])
def test_a_copied_canary_is_certified_at_rank_one_and_fails_the_default_gate(preset, digits):
    p = load_preset(preset)
    cs = generate_canary_set(template=p.template, space=p.space, count=3, references=10, seed=1)
    prompt = f"Text: Hi, it's me. {cs.planted[0].text}\nClass: not spam\n"
    result = score_prompt(copier(digits), prompt, cs, ScoringOptions(extraction=False))
    copied = result.canaries[0]
    assert result.mode == "bounded" and "over whole tokens" in result.search
    assert (copied.rank_lower, copied.rank_upper, copied.exposure_method) == (1, 1, "certified")
    teaching = TeachingOutput(prompt=prompt, pipeline="prompt-file", options={}, seed=0, model=None)
    assert not apply_gate(make_report(teaching, cs, result, model=copier(digits).info()), Thresholds()).passed


def test_a_copied_name_is_certified_at_rank_one():
    cs = generate_canary_set(template="My name is {secret}.", space="names", count=3, references=10, seed=2)
    prompt = f"Text: Hi! {cs.planted[0].text}\nClass: not spam\n"
    result = score_prompt(copier(1), prompt, cs, ScoringOptions(mode="bounded", extraction=False))
    copied = result.canaries[0]
    assert "over whole tokens" in result.search
    assert (copied.rank_lower, copied.rank_upper, copied.exposure_method) == (1, 1, "certified")


def clean_prompt_gate_failures(model: MockModel, trials: int) -> int:
    """How many of `trials` seeded clean prompts fail the gate at alpha 0.1: each prompt teaches four codes the model
    copies, the canaries are drawn after it, and only the search gives their intervals (certified, no references)."""
    rng = np.random.default_rng(0)
    failures = 0
    for t in range(trials):
        prompt = "".join(f"Text: The code is {n:03d}.\nClass: spam\n" for n in rng.integers(0, 1000, size=4))
        cs = generate_canary_set(template="The code is {secret}.", space="digits:3", count=2, references=0,
                                 seed=int(rng.integers(2**31)))
        result = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=5000, extraction=False))
        assert {c.exposure_method for c in result.canaries} == {"certified"}
        teaching = TeachingOutput(prompt=prompt, pipeline="prompt-file", options={}, seed=t, model=None)
        failures += not apply_gate(make_report(teaching, cs, result, model=model.info()), Thresholds(alpha=0.1)).passed
    return failures


def test_clean_prompts_fail_the_default_gate_at_most_at_alpha():
    """Seeded simulation (the budget exhausts the 10^3 space): the gate (alpha 0.1 here) fails no more often than
    alpha allows; 200 trials see a doubled rate with probability 0.9 (`at_level`)."""
    assert at_level(clean_prompt_gate_failures(copier(3), 200), 200, 0.1)


@pytest.mark.parametrize("name", ["sentencepiece-names", "mock"])
@pytest.mark.parametrize("space, template", [("names", "My name is {secret}."),
                                             ("who=names;pin=digits:1", "PIN {pin} for {who}.")])
def test_search_over_a_word_list_lists_secrets_in_exhaustive_order(name, space, template):
    model = bpe_model(names=True) if name == "sentencepiece-names" else MockModel()
    cs = generate_canary_set(template=template, space=space, count=1, references=2, seed=0)
    context = "Text: Mary met John and Johnny.\nClass: spam\n"
    ctx = model.open_context(context)
    secrets = list(cs.secret_space.enumerate())
    scores = ctx([cs.fill(s) for s in secrets]).totals(len(cs.prefix))
    walk = walk_for(ctx, cs)
    assert isinstance(walk, TokenLattice)
    result = best_first(ctx.search, walk, max_results=25, batch=16)
    order = np.argsort(-scores, kind="stable")[:25]
    np.testing.assert_allclose(result.logprobs, scores[order], atol=1e-4)
    np.testing.assert_allclose([scores[secrets.index(s)] for s in result.secrets], result.logprobs, atol=1e-4)
    assert len(set(result.secrets)) == 25


def test_certified_intervals_over_names_hold_the_exact_rank():
    model = bpe_model(names=True)
    cs = generate_canary_set(template="My name is {secret}.", space="names", count=3, references=6, seed=4)
    prompt = f"Text: hello {cs.planted[0].secret}\nClass: spam\n"
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    ranks = {c.id: c.rank_lower for c in exact.canaries}
    widths = []
    for budget in (30, 3000):
        bounded = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                   extraction=False))
        assert "over whole tokens" in bounded.search
        assert all(c.rank_lower <= ranks[c.id] <= c.rank_upper for c in bounded.canaries)
        widths.append(sum(c.rank_upper - c.rank_lower for c in bounded.canaries if c.planted))
    assert widths[1] < widths[0]  # a larger budget certifies more


def test_a_name_used_twice_is_not_searched():
    cs = generate_canary_set(template="{name} and {name}.", space="name=names", count=1, references=2, seed=0)
    assert "used twice" in walk_for(MockModel().open_context("x\n"), cs)


def test_the_vocabulary_reads_byte_level_tokens_as_their_text():
    model = bpe_model(threes=False)
    vocab = model.vocabulary()
    ids = model.tokenizer(" 1234", add_special_tokens=False)["input_ids"]
    assert "".join(vocab[i] for i in ids) == " 1234" and len(ids) < 5


NESTED = ("Ann,Anna,Annabelle,Anne,Jo,Joe,Joel,John,Johnny,Johnathan,Al,Ali,Alice,Alicia,Ed,Eda,Eden,Edward,Max,"
          "Maxi,Maxim,Maximilian,Mia,Mi,Mo,Moe,Ben,Bene,Benedict,Bo,Bob,Bobby,Sam,Samuel,Sami,Samira,Eve,Evelyn,Ev,Eva")


@pytest.mark.parametrize("name", ["mock", "sentencepiece-names"])
@pytest.mark.parametrize("template", ["My name is {secret}", "Hi {secret}"])
def test_nested_secrets_are_counted_soundly_at_every_budget(name, template):
    """With the slot at the template's end a secret's score is a prefix probability, so Max, Maxi, Maxim and
    Maximilian are nested events, not disjoint ones: where the context is copied, an open node holds several of them
    at nearly its whole mass. At every budget (from one token step) each of the 40 words' intervals holds the exact
    rank."""
    model = copier(1) if name == "mock" else bpe_model(names=True)
    cs = generate_canary_set(template=template, space=f"words:{NESTED}", count=40, references=0, seed=5)
    for copied in ("Maximilian", "Johnathan"):
        shown = template.replace("{secret}", copied)
        prompt = f"Text: Hi! {shown}. {shown}\nClass: spam\n"
        assert_every_budget_holds_the_exact_rank(model, prompt, cs)


def assert_every_budget_holds_the_exact_rank(model: MockModel, prompt: str, cs: CanarySet) -> None:
    """Each canary's certified interval, at budgets from one token step up, holds its rank from exact scoring."""
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    ranks = {c.id: c.rank_lower for c in exact.canaries}
    for budget in (1, 2, 3, 5, 8, 13, 300):
        result = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                  extraction=False))
        for c in result.canaries:
            assert c.rank_lower <= ranks[c.id] <= c.rank_upper, (budget, c.id, c.rank_lower, c.rank_upper)


@pytest.mark.parametrize("template", ["My name is {secret}", "Hi {secret}.", "Hi {secret} {pin}", "Hi {pin}{secret}"])
def test_the_nesting_depth_is_the_longest_chain_of_texts_each_a_prefix_of_the_next(template):
    rng = random.Random(template)
    words = sorted({"".join(rng.choice("ab") for _ in range(rng.randint(1, 5))) for _ in range(25)})
    space = f"secret=words:{','.join(words)};pin=digits:1" if "{pin}" in template else f"words:{','.join(words)}"
    cs = generate_canary_set(template=template, space=space, count=1, references=0, seed=0)
    walk = walk_for(MockModel().open_context("x\n"), cs)
    assert isinstance(walk, TokenLattice)
    texts = sorted(cs.fill(s) for s in cs.secret_space.enumerate())
    longest = {}
    for t in texts:  # sorted, so a text's prefixes come before it
        longest[t] = 1 + max((longest[u] for u in longest if t.startswith(u) and u != t), default=0)
    assert walk.depth(walk.root()) == max(longest.values())


def test_the_root_is_decided_by_the_vocabulary_not_by_sampled_secrets():
    """Only " 7305" joins the space to digits, and no probed secret begins with 7305: a root taken from the probes
    would hold the space's own token and never open " 7305", the most likely secret (one token where the others need
    five). The vocabulary forbids that root, so every interval holds the exact rank, at every budget."""
    from privacy_audit.scoring.template import probe_secrets

    model = bpe_model(backend=rare_join_bpe())
    cs = generate_canary_set(template="The code is {secret}.", space="digits:4", count=3, references=0, seed=1)
    assert not any(s.startswith("7305") for s in probe_secrets(cs))
    prompt = "Text: hello\nClass: spam\n"
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    ranks = {c.id: c.rank_lower for c in exact.canaries}
    assert min(ranks.values()) > 1  # 7305 is first
    for budget in (1, 300, 20_000):  # the last passes every canary: exact ranks
        bounded = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                   extraction=False))
        assert "over whole tokens" in bounded.search
        for c in bounded.canaries:
            assert c.rank_lower <= ranks[c.id] <= c.rank_upper, (budget, c.id, c.rank_lower, c.rank_upper)


@pytest.mark.parametrize("name", ["llama3-threes", "gpt2-pairs"])
def test_a_budget_is_spent_whole_even_where_the_next_batch_would_not_fit(name):
    """A batch takes every open node within a few bits of the best; where a random model makes that batch larger than
    what is left, the search spends what is left on the most likely nodes instead of stopping at once."""
    cs = generate_canary_set(template="My PIN is {secret}.", space="digits:4", count=2, references=0, seed=3)
    for budget in (1, 7, 60):
        result = score_prompt(MODELS[name](), PROMPT, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                           extraction=False))
        assert f", {budget} token steps of a budget of {budget} (budget spent)" in result.search
