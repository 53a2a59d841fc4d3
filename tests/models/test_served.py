"""Scoring with a served model: the probe refuses servers whose prompt log-probabilities are missing or misaligned,
the stability check catches scores that depend on request order, and vLLM's answer shape is read as documented."""

from __future__ import annotations

import json
import math
import random

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from privacy_audit.errors import ModelError
from privacy_audit.models import load_model
from privacy_audit.models.served import PROBE_TEXT, parse_echo

from tests.models.fault_server import serve

WORDS = PROBE_TEXT.split(" ")


def tokens_of(text: str) -> list[str]:
    """A word-level tokenizer for the double: each word with the space before it."""
    out, at = [], 0
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
        at += len(out[-1])
    return [t for t in out if t]


def echo_server(score, *, shift: bool = False, generated_only: bool = False, jitter: float = 0.0):
    """An echo-capable double: `score(prefix tokens, token)` in nats; optionally shifted by one token, answering
    with generated tokens only, or with scores that change between requests."""
    rng = random.Random(0)

    def respond(n, body):
        if body.get("echo") is not True:
            return 400, {}, {"error": {"message": "this double only scores"}}
        prompt = body["prompt"]
        toks = tokens_of(prompt)
        values = [None] + [score(toks[:i], toks[i]) - rng.uniform(0, jitter) for i in range(1, len(toks))]
        if shift:
            values = [None] + [
                score(toks[: i + 1], toks[i + 1]) if i + 1 < len(toks) else -9.0 for i in range(1, len(toks))
            ]
        offsets = [sum(len(t) for t in toks[:i]) for i in range(len(toks))]
        logprobs = {
            "tokens": toks, "token_logprobs": values, "text_offset": offsets, "top_logprobs": [None] * len(toks),
        }
        if generated_only:
            logprobs = {"tokens": ["x"], "token_logprobs": [-1.0], "text_offset": [len(prompt)], "top_logprobs": [None]}
        return (
            200, {}, {"choices": [{"index": 0, "text": prompt + "x", "logprobs": logprobs, "finish_reason": "length"}]},
        )

    return respond


def copying(prefix: list[str], token: str) -> float:
    """A scorer that copies: a token seen before is likely, a new one is not."""
    return -0.05 if token in prefix else -6.0


def test_an_aligned_server_is_trusted_and_scores_in_bits():
    with serve(echo_server(copying)) as (url, _):
        model = load_model("openai:double", base_url=url, start_text="")
        assert model.probe().ok and model.can("score")
        context = model.open_context("code 41 code")
        assert not context.can_search and not context.can_decode and not context.lists_vocabulary
        scored = context([" 41", " 77"])
    assert scored.totals().tolist() == pytest.approx([-0.05 / math.log(2), -6.0 / math.log(2)])


@pytest.mark.parametrize("kind, words", [
    ("shift", "not aligned"), ("generated_only", "do not place the prompt"),
])
def test_a_server_without_aligned_prompt_log_probabilities_is_refused_in_one_line(tmp_path, kind, words):
    with serve(echo_server(copying, **{kind: True})) as (url, _):
        with pytest.raises(ModelError, match=words):
            load_model("openai:double", base_url=url, start_text="").require("score")
        CliRunner().invoke(
            main,
            [
                "canaries", "generate", "--template", "code {secret}", "--space", "digits:1", "--count", "1",
                "--references", "2", "--seed", "0", "--out", str(tmp_path / "s.json"),
            ],
        )
        (tmp_path / "p.txt").write_text("a prompt\n")
        result = CliRunner().invoke(
            main,
            [
                "score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"), "--model",
                "openai:double", "-m", f"base_url={url}", "-m", "start_text=", "--out", str(tmp_path / "r.json"),
            ],
        )
    lines = result.output.strip().splitlines()
    assert (
        result.exit_code == 2 and len(lines) == 1 and "cannot give log-probabilities" in lines[0] and words in lines[0]
    )
    assert "use it as a teacher and score with another model" in lines[0]


def test_a_server_that_refuses_echo_is_refused():
    def refuse(n, body):
        return 400, {}, {"error": {"message": "echo is not supported with logprobs"}}

    with serve(refuse) as (url, _):
        with pytest.raises(ModelError, match="answered 400: echo is not supported"):
            load_model("openai:double", base_url=url, start_text="").require("score")


def test_unstable_scores_are_recorded_and_fail_the_gate(tmp_path):
    with serve(echo_server(copying, jitter=0.5)) as (url, _):
        CliRunner().invoke(
            main,
            [
                "canaries", "generate", "--template", "code {secret}", "--space", "digits:1", "--count", "1",
                "--references", "2", "--seed", "0", "--out", str(tmp_path / "s.json"),
            ],
        )
        (tmp_path / "p.txt").write_text("a prompt\n")
        scored = CliRunner().invoke(
            main,
            [
                "score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"), "--model",
                "openai:double", "-m", f"base_url={url}", "-m", "start_text=", "--out", str(tmp_path / "r.json"),
            ],
        )
    assert scored.exit_code == 0, scored.output
    (check,) = json.loads((tmp_path / "r.json").read_text())["run"]["score_checks"]
    assert check["check"] == "stability" and not check["passed"] and check["max_difference_bits"] > 0.01
    gated = CliRunner().invoke(main, ["gate", str(tmp_path / "r.json"), "--alpha", "0.5"])
    assert gated.exit_code == 1 and "] report: largest difference of scores computed twice" in gated.output


def test_vllm_echo_answers_are_read_as_its_protocol_documents():
    """vLLM's /v1/completions with echo and logprobs (vllm/entrypoints/openai/protocol.py, CompletionLogProbs:
    text_offset, token_logprobs, tokens, top_logprobs; serving_completion.py echoes the prompt's tokens first, the
    first log-probability None), for a Llama model whose tokenizer shows its start token as text."""
    choice = {"index": 0, "text": "<s>The code is 42", "finish_reason": "length", "logprobs": {
        "text_offset": [0, 3, 6, 11, 14, 16], "token_logprobs": [None, -9.5, -3.25, -0.5, -2.0, -0.75],
        "tokens": ["<s>", "The", " code", " is", " 4", "2"],
        "top_logprobs": [None, {"The": -9.5}, {" code": -3.25}, {" is": -0.5}, {" 4": -2.0}, {"2": -0.75}],
    }}
    echo = parse_echo(choice, "The code is 42", "<s>")
    assert echo.first_empty and echo.tokens == ("The", " code", " is", " 4", "2") and echo.ends == (3, 8, 11, 13, 14)
    assert echo.logprobs == (-9.5, -3.25, -0.5, -2.0, -0.75)
    with pytest.raises(ModelError, match="do not place the prompt"):  # placed by their offsets: "2" is not in "3"
        parse_echo(choice, "The code is 43", "<s>")
