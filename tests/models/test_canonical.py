"""Canonical tokens: every score equals a plain forward pass over context + candidate tokenized at once.

Two tokenizer families are built in memory (no download): a GPT-2-style byte-level BPE (merges "\\n\\n",
groups digits) and a Llama-style sentencepiece BPE with byte fallback and a prefix space. The
reference below uses only transformers and torch, never the engine.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")

CORPUS = [
    "The secret code is 4821.\n\nHello there, my friend!\n",
    "Call me at 555 1234 now.  Free entry in 2 a wkly comp\tto win\n",
    "My name is Alice and her name is Bob. The code: 007 ends here.\n\n\n",
    "Text: I'll be there soon\nClass: ham\nText: WINNER!! claim your prize\nClass: spam\n",
    "café déjà vu 🎉 naïve résumé ✓\n", "numbers 12 34 56 78 90 123 456 7890 and codes 0000 1111 2222\n",
] * 3

ENDINGS = {
    "newline": "Text: see you soon\nClass: ham\n", "blank-line": "Text: see you soon\nClass: ham\n\n",
    "space": "Text: see you soon\nClass: ham ", "tab": "Text: see you soon\nClass:\t",
    "letter": "Text: see you soon\nClass: ham", "word-cut-short": "Text: see you so",
    "non-ascii": "Texte: déjà vu, naïve café", "emoji": "Party tonight 🎉", "two-spaces": "The code is  ",
}


def _tiny_llama(vocab_size: int, bos: int, eos: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model


def byte_level_model():
    """GPT-2-style: byte-level pre-tokenizer with its regex, no start token (like SmolLM2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from privacy_audit.models.hf import TransformersModel

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    return TransformersModel(
        _tiny_llama(backend.get_vocab_size(), 0, 0, seed=1), tok, name="tiny-bytelevel", chunk_tokens=64
    )


def llama_style_model(*, cross_word_merges: bool = False):
    """Llama-2-style: "▁" for spaces with a prefix space, BPE with byte fallback, a <s> start token.

    With `cross_word_merges` the merges are learned across word boundaries, so the tokens before a
    word can change with what follows (the boundary check must catch it and fall back).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from privacy_audit.models.hf import TransformersModel

    specials = ["<unk>", "<s>", "</s>"]
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    if not cross_word_merges:
        learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    chars = sorted(set("".join(CORPUS).replace(" ", "▁")) - set("🎉✓"))
    learner.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=chars, show_progress=False),
    )
    vocab = learner.get_vocab()
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    import json

    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(learner.to_str())["model"]["merges"]
    ]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    model = _tiny_llama(len(vocab), vocab["<s>"], vocab["</s>"], seed=2)
    return TransformersModel(model, tok, name="tiny-llama-sp", chunk_tokens=64)


def joint_reference(lm, context: str, candidate: str, from_char: int) -> float:
    """Sum of log2-probs of the candidate's tokens past `from_char`, by one plain forward pass over the
    whole text tokenized at once (the tokenizer's own special tokens included)."""
    text = context + candidate
    enc = lm.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    special = set(lm.tokenizer.all_special_ids)
    if ids[0] not in special:  # no start token: the plain pass cannot score its first token
        assert offsets[0][1] <= len(context), "the first token reaches into the candidate"
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].double(), dim=-1)
    total = 0.0
    for j in range(1, len(ids)):
        if ids[j] not in special and offsets[j][1] > len(context) + from_char:
            total += logp[j - 1, ids[j]].item()
    return total / np.log(2)


@pytest.fixture(scope="module", params=["byte-level", "llama-style"])
def family(request):
    return byte_level_model() if request.param == "byte-level" else llama_style_model()


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize(
    "template,secrets",
    [
        ("The secret code is {}", [f"{i:02d}" for i in range(0, 100, 7)]),
        ("code {} ends here.", ["12", "345", "7", "0000"]),
        ("My name is {}", ["Alice", "Bob", "Al", "Christopher", "Zoë"]),
    ],
    ids=["digits", "text-after-secret", "names"],
)
def test_scores_equal_a_joint_forward_pass(family, ending, template, secrets):
    context = ENDINGS[ending] + "\n" if ending != "letter" else ENDINGS[ending]
    prefix = len(template.split("{}")[0])
    candidates = [template.format(s) for s in secrets]
    ctx = family.open_context(context)
    got = ctx(candidates).totals(prefix)
    want = [joint_reference(family, context, c, prefix) for c in candidates]
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert ctx.boundary.checked > 0 and not ctx.boundary.mismatched


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_raw_prompt_endings_without_a_separator(family, ending):
    """With an empty separator the candidate can merge into the prompt's last word itself."""
    context = ENDINGS[ending]
    candidates = ["Code 42.", "ode 42.", "s 42", " 42", "\n42", "42"]
    got = family.open_context(context)(candidates).totals(0)
    want = [joint_reference(family, context, c, 0) for c in candidates]
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_exact_ranks_equal_those_of_the_joint_pass(family):
    from privacy_audit import ScoringOptions, generate_canary_set, score_prompt

    cs = generate_canary_set(template="The secret code is {secret}", space="digits:2", count=3, references=5, seed=4)
    for ending in ("blank-line", "space", "letter"):
        prompt = ENDINGS[ending] + " " + cs.canaries[0].text + "\n"
        result = score_prompt(family, prompt, cs, ScoringOptions(mode="exact", separator="\n"))
        context = prompt + "\n"
        space = [joint_reference(family, context, cs.fill(f"{i:02d}"), len(cs.prefix)) for i in range(100)]
        space = np.array(space)
        for canary, score in zip(cs.canaries, result.canaries):
            lp = space[int(canary.secret)]
            assert abs(score.logprob_bits - lp) < 1e-3
            # ties within the engine's float noise count against the canary, as the report does
            assert score.rank == int(np.sum(space >= lp - 1e-6)) or score.rank == int(np.sum(space >= lp + 1e-6))
        assert result.boundary.checked >= 8 and result.boundary.fallback is False


def test_a_tokenizer_that_moves_the_head_is_caught_and_scored_jointly():
    """Merges across words break the cut; the check sees it and every candidate is tokenized with the
    whole context, scored after the cached head where the head stays, else by a plain pass."""
    lm = llama_style_model(cross_word_merges=True)
    candidates = ["The secret code is 42", "e code", "ham", "s ", "n friend", "ere", "0", "ode"]
    moved = 0
    for context in ("456 7890 and codes 0000 1111 222", "I'll b", " is Bob. The code: 007 ends h", "s her"):
        ctx = lm.open_context(context)
        moved += any(ctx._after_head(ctx.backend.joint(c)) is None for c in candidates)
        got = ctx(candidates).totals(0)
        want = [joint_reference(lm, context, c, 0) for c in candidates]
        np.testing.assert_allclose(got, want, atol=1e-3)
        assert ctx.boundary.mismatched and ctx.boundary.joint_scored >= len(candidates)
    assert moved >= 2


def test_boundary_check_is_in_the_report(family):
    from privacy_audit import generate_canary_set
    from privacy_audit.chain import build_report
    from privacy_audit.pipelines import TeachingOutput

    cs = generate_canary_set(template="The secret code is {secret}", space="digits:2", count=2, references=4, seed=0)
    teaching = TeachingOutput(prompt="Class: ham\n", pipeline="prompt-file", options={}, seed=0, model=None)
    boundary = build_report(teaching, cs, family).model_dump(mode="json")["run"]["tokenization"]
    assert boundary["checked"] >= len(cs.canaries) + 100  # every canary and a sample of the space
    assert boundary["head_tokens"] > 0 and boundary["tail_chars"] > 0 and boundary["fallback"] is False


def test_best_first_and_greedy_use_canonical_tokens(family):
    """Search paths start from the cached head: best-first order equals exhaustive canonical scoring."""
    from privacy_audit import generate_canary_set
    from privacy_audit.scoring.search import align, best_first

    cs = generate_canary_set(template="The code is {secret}", space="digits:2", count=1, references=0, seed=0)
    context = ENDINGS["blank-line"]
    ctx = family.open_context(context)
    secrets = [f"{i:02d}" for i in range(100)]
    scores = ctx([cs.fill(s) for s in secrets]).totals(len(cs.prefix))
    alignment = align(ctx, cs)
    if alignment is None:  # this tokenizer groups digits: best-first does not apply, exact mode does
        ids, _ = ctx.tokenize([cs.fill("12")])
        assert len(ids[0]) < len(ctx.tokenize([cs.fill("1")])[0][0]) + 2
        return
    result = best_first(ctx.search, alignment, max_results=10)
    np.testing.assert_allclose(result.logprobs, np.sort(scores)[::-1][:10], atol=1e-3)


@pytest.mark.parametrize("make", ["char", "byte_level", "llama_style", "llama_cross_word"])
def test_the_joint_check_reads_a_window_that_gives_the_whole_texts_tokens(make, tiny_model):
    """A long context's joint tokens with a candidate, read from a window at its end, are exactly those of the whole
    text; where a window cannot be proved to give them (merges across words, or a normalizer that marks the text's
    start, as these Llama-style tokenizers' prepended "▁"), the whole context is read instead."""
    from privacy_audit.models.hf_context import JointWindow

    lm = {"char": lambda: tiny_model, "byte_level": byte_level_model, "llama_style": llama_style_model,
          "llama_cross_word": lambda: llama_style_model(cross_word_merges=True)}[make]()
    context = " ".join(f"word{i % 97} code {i % 13}." for i in range(3000)) + " The end is"
    (ids,), (offsets,) = lm.encode_plain([context])
    window = JointWindow.of(lm, context, ids, offsets, before=offsets[-5][0])
    assert (window.start == 0) == make.startswith("llama")
    for candidate in [" near", "\nThe secret code is 4821", "s", "  two spaces", "."]:
        (whole,), (whole_offsets,) = lm.encode_plain([context + candidate])
        before, part, ends = window.tokens(lm, context, candidate)
        assert list(whole[:before]) == list(ids[:before]) and list(whole[before:]) == part
        assert ends == [end - len(context) for _, end in whole_offsets[before:]]
