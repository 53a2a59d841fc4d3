"""Next-token requests over HTTP (the walk), against doubles of vLLM's and SGLang's answer shapes: found by the probe,
checked against the echo, exact scores equal to the echo's with a request per internal node, a copied canary
certified and extracted, and servers whose next-token numbers disagree or are capped left to the echo."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from privacy_audit.models import load_model
from tests.models.walk_server import walk_server


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def plant(tmp_path, space: str) -> str:
    """A canary set over `space` and a prompt that copies its first canary; the copied secret."""
    made = run("canaries", "generate", "--template", "The secret code is {secret}", "--space", space, "--count", "2",
               "--references", "12", "--seed", "0", "--out", tmp_path / "set.json")
    assert made.exit_code == 0, made.output
    secret = json.loads((tmp_path / "set.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text(f"Text: your parcel is ready\nClass: ham\nThe secret code is {secret}.\n")
    return secret


def score(tmp_path, url, *extra, out="r.json"):
    result = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "set.json", "--model",
                 "openai:double", "-m", f"base_url={url}", *extra, "--out", tmp_path / out)
    return result, (json.loads((tmp_path / out).read_text()) if result.exit_code in (0, 1) else None)


def walk_requests(seen, kind: str) -> int:
    if kind == "sglang":
        return len(seen.bodies("/generate"))
    return sum("logprob_token_ids" in b for b in seen.bodies("/v1/completions"))


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_exact_scores_by_next_token_requests_equal_the_echos_with_a_request_per_node(tmp_path, kind):
    plant(tmp_path, "digits:2")
    with walk_server(kind) as (url, seen):
        walked, report = score(tmp_path, url, "--exact", out="walk.json")
        assert walked.exit_code == 0, walked.output
        requests = walk_requests(seen, kind)
        echoed, by_echo = score(tmp_path, url, "--exact", "-m", "next_tokens=off", out="echo.json")
        assert echoed.exit_code == 0, echoed.output
    options = report["run"]["model"]["options"]
    assert options["next_tokens"] == kind and by_echo["run"]["model"]["options"]["next_tokens"].startswith("not used")
    for a, b in zip(report["canaries"], by_echo["canaries"]):
        assert a["rank"] == b["rank"] and a["logprob_bits"] == pytest.approx(b["logprob_bits"], abs=1e-9)
    # the space's tree: the prompt's own tokens, then one node per first digit (10), one per two digits' end (100
    # leaves need no request), plus the probe's positions, the check and the stability rescoring of the canaries
    assert requests < 200 and report["run"]["score_checks"][0]["passed"]


def test_a_copied_canary_is_certified_first_and_extracted_in_a_million_secrets_over_sglang(tmp_path):
    plant(tmp_path, "digits:6")
    with walk_server("sglang") as (url, _):
        result, report = score(tmp_path, url, "--extraction")
    assert result.exit_code == 0, result.output
    first = report["canaries"][0]
    assert (first["rank_lower"], first["rank_upper"], first["exposure_method"]) == (1, 1, "certified")
    assert first["greedy_extracted"] is True and first["guesses"] == 1
    assert "best-first search" in report["run"]["extraction"]


def test_a_server_whose_next_token_numbers_disagree_with_its_echo_is_scored_by_echo_or_refused(tmp_path):
    plant(tmp_path, "digits:2")
    with walk_server("vllm", shift=-1.0) as (url, _):
        auto, report = score(tmp_path, url, "--exact")
        named, _ = score(tmp_path, url, "--exact", "-m", "next_tokens=vllm", out="named.json")
    assert auto.exit_code in (0, 1), auto.output
    assert "differ from the echo's" in report["run"]["model"]["options"]["next_tokens"]
    assert named.exit_code == 2 and len(named.output.strip().splitlines()) == 1
    assert "differ from the echo's" in named.output


def test_a_server_that_rejects_chosen_ids_and_caps_its_top_tokens_is_scored_by_echo(tmp_path):
    plant(tmp_path, "digits:2")
    with walk_server("vllm-old") as (url, _):
        result, report = score(tmp_path, url, "--exact")
    assert result.exit_code in (0, 1), result.output
    note = report["run"]["model"]["options"]["next_tokens"]
    assert "logprob_token_ids" in note and "caps logprobs" in note


def test_nodes_are_asked_in_token_order_once_and_again_only_when_asked():
    with walk_server("vllm") as (url, seen):
        model = load_model("openai:double", base_url=url, max_connections=1)
        assert model.probe().ok and model.walk is not None
        walk = model.walk
        paths = [[ord(c) for c in f"code {i:02d}"] for i in range(30)]
        random.Random(0).shuffle(paths)
        before = len(seen.requests)
        first = walk.next_logprobs(paths, [ord("0"), ord("1")])
        sent = [b["prompt"] for _, b in seen.requests[before:]]
        assert sent == sorted(sent) and len(sent) == len(paths)
        again = walk.next_logprobs(paths, [ord("0"), ord("1")])
        assert len(seen.requests) == before + len(paths) and np.array_equal(first, again)
        context = model.open_context("The secret code is 42.\n")
        kept = context(["The secret code is 42"])
        asked = walk_requests(seen, "vllm")
        assert np.array_equal(context(["The secret code is 42"]).logprobs, kept.logprobs)
        assert walk_requests(seen, "vllm") == asked
        context.again(["The secret code is 42"])
        assert walk_requests(seen, "vllm") > asked
