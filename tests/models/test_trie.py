"""The trie/tree-attention engine must give exactly what plain forward passes give."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import wrapper_encoding
from tests.models.test_canonical import joint_reference

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")


@pytest.mark.parametrize(
    "continuations",
    [
        [f"The secret code is {i:03d}" for i in range(0, 1000, 37)],
        ["My name is Al.", "My name is Alice.", "My name is Bob.", "My name is Bo", "My name is Christopher!"],
        [f"Code {i:02d} ends here." for i in range(25)],
    ],
    ids=["digits", "names-of-different-lengths", "text-after-secret"],
)
@pytest.mark.parametrize("chunk_tokens", [3, 64, 4096])
@pytest.mark.parametrize("tree_attention", [True, False], ids=["tree-attention", "dense-mask"])
def test_trie_equals_plain_forward(tiny_model, continuations, chunk_tokens, tree_attention):
    assert tiny_model._tree_attention, "the tiny Llama (SDPA attention) takes the tree-attention path"
    tiny_model.chunk_tokens = chunk_tokens
    tiny_model._tree_attention = tree_attention
    try:
        context = "Text: hello there, the secret code is 123.\nClass: spam\n"
        got = tiny_model.logprobs(context, continuations)
        for from_char in (0, 5):
            want = [joint_reference(tiny_model, context, cont, from_char) for cont in continuations]
            np.testing.assert_allclose(got.totals(from_char), want, atol=1e-4)
    finally:
        tiny_model.chunk_tokens = 64
        tiny_model._tree_attention = True


def assert_codes_equal_plain_forward(model):
    context, continuations = "Text: hello, the code is 123.\n", [f"The code is {i:03d}" for i in range(0, 1000, 41)]
    got = model.logprobs(context, continuations).totals()
    np.testing.assert_allclose(got, [joint_reference(model, context, c, 0) for c in continuations], atol=1e-4)


def test_tree_attention_without_the_cpu_flash_kernel(tiny_model, monkeypatch):
    from privacy_audit.models import tree_attention

    monkeypatch.setattr(tree_attention, "_FLASH_CPU", None)
    assert_codes_equal_plain_forward(tiny_model)


def test_an_attention_feature_tree_attention_lacks_falls_back_to_the_dense_mask(monkeypatch):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from privacy_audit.models import tree_attention
    from tests.conftest import make_tiny_model

    def refuse(module, *args, tree_context=None, **kwargs):
        if tree_context is not None:
            raise tree_attention.Unsupported("as a soft-capped model would")
        return tree_attention.attention(module, *args, **kwargs)

    model = make_tiny_model()
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, tree_attention.NAME, refuse)
    assert_codes_equal_plain_forward(model)
    assert not model._tree_attention


def test_tree_ancestors_from_the_mask():
    from privacy_audit.models.tree_attention import ancestors

    # chunk order: 0 (root child), 1 (child of 0), 2 (child of 1), 3 (another root child)
    tree = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    idx, bias = ancestors(tree)
    assert idx.tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 2], [3, 3, 3]]
    inf = float("-inf")
    assert bias.tolist() == [[0, inf, inf], [0, 0, inf], [0, 0, 0], [0, inf, inf]]


def test_a_model_without_sdpa_attention_scores_through_the_dense_mask():
    import copy

    from transformers import LlamaForCausalLM

    from privacy_audit.models.hf import TransformersModel
    from tests.conftest import make_tiny_model

    sdpa = make_tiny_model()
    eager = LlamaForCausalLM._from_config(copy.deepcopy(sdpa.model.config), attn_implementation="eager")
    eager.load_state_dict(sdpa.model.state_dict())
    model = TransformersModel(eager, sdpa.tokenizer, name="tiny-eager")
    assert not model._tree_attention and model.model.config._attn_implementation == "eager"
    context, continuations = "Text: the code is 12.\n", [f"code {i:02d}" for i in range(30)]
    np.testing.assert_allclose(model.logprobs(context, continuations).totals(),
                               sdpa.logprobs(context, continuations).totals(), atol=1e-4)


def test_context_is_reused_across_batches(tiny_model):
    scorer = tiny_model.open_context("abc\n")
    first = scorer(["x1", "x2"]).totals()
    again = scorer(["x2", "x1"]).totals()
    np.testing.assert_allclose(first, again[::-1], atol=1e-6)


def test_token_ends_select_the_secret(tiny_model):
    scored = tiny_model.logprobs("ctx\n", ["The code is 42"])
    prefix = len("The code is ")
    assert scored.token_counts(prefix)[0] == 2
    np.testing.assert_allclose(scored.totals(prefix), scored.token_logprobs(0)[-2:].sum())


def test_empty_continuation_is_an_error(tiny_model):
    from privacy_audit.errors import ModelError

    with pytest.raises(ModelError):
        tiny_model.logprobs("ctx", ["ok", ""])


def test_generate_is_seeded(tiny_model):
    messages = [[{"role": "user", "content": "Describe: abc"}]]
    a = tiny_model.generate(messages, max_new_tokens=8, temperature=1.0, seed=3)
    b = tiny_model.generate(messages, max_new_tokens=8, temperature=1.0, seed=3)
    greedy = tiny_model.generate(["plain prompt"], max_new_tokens=5)
    assert a == b and len(greedy) == 1


def test_continuations_tokenize_as_the_transformers_tokenizer_does(tiny_model):
    texts = ["The secret code is 0042", "Zoë says ✓ ok", "a\nb", "x" * 50]
    backend = tiny_model.tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=3)
    backend.enable_padding(length=60)
    ids, ends = tiny_model.encode_continuations(texts)
    assert (ids, ends) == wrapper_encoding(tiny_model.tokenizer, texts)
    assert ends[1] == list(range(1, len(texts[1]) + 1))  # offsets count characters, not bytes
    assert len(ids[3]) == 50
