"""The trie/tree-attention engine must give exactly what plain forward passes give."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import wrapper_encoding
from tests.models.test_canonical import joint_reference

torch = pytest.importorskip("torch")


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
def test_trie_equals_plain_forward(tiny_model, continuations, chunk_tokens):
    tiny_model.chunk_tokens = chunk_tokens
    try:
        context = "Text: hello there, the secret code is 123.\nClass: spam\n"
        got = tiny_model.logprobs(context, continuations)
        for from_char in (0, 5):
            want = [joint_reference(tiny_model, context, cont, from_char) for cont in continuations]
            np.testing.assert_allclose(got.totals(from_char), want, atol=1e-4)
    finally:
        tiny_model.chunk_tokens = 64


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
