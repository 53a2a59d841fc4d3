"""End to end with a real OpenAI-compatible server (llama-cpp-python serving the embedded GGUF): a served teacher,
the embedded scorer, through the CLI and a config; the served scorer by echo and by next-token requests (the walk:
top-k by token text on this server), whose exact ranks equal the echo's and which certify and extract a copied
canary in a million."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from tests.served import ALIAS, llama_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with llama_server() as url:
        yield url


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_served_teacher_writes_a_prompt_that_the_embedded_model_scores(server, tmp_path, sms_jsonl):
    taught = run(
        "teach", "--pipeline", "instructions", "--data", sms_jsonl, "--label-field", "label", "--model",
        f"openai:{ALIAS}", "-m", f"base_url={server}", "-m", "max_connections=2", "-o", "max_new_tokens=48", "--out",
        tmp_path / "p.txt",
    )
    assert taught.exit_code == 0, taught.output
    assert (tmp_path / "p.txt").read_text().strip()
    run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:2", "--count", "1",
        "--references", "5", "--seed", "0", "--out", tmp_path / "set.json")
    scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "set.json", "--model", "embedded",
                 "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["run"]["teacher"]["backend"] == "openai" and report["run"]["teacher"]["endpoint"] == server
    assert report["run"]["model"]["backend"] == "embedded"


def test_a_config_with_a_served_teacher_and_the_embedded_scorer_names_both(server, tmp_path):
    (tmp_path / "c.toml").write_text(
        "[canaries]\ntemplate = 'The secret code is {secret}'\nspace = 'digits:2'\ncount = 2\nreferences = 10\n"
        "[data]\nlimit = 40\n[pipeline]\nname = 'instructions'\n[pipeline.options]\nmax_new_tokens = 48\n"
        f"[teacher]\nspec = 'openai:{ALIAS}'\n[teacher.options]\nbase_url = '{server}'\n[scorer]\nspec = 'embedded'\n")
    result = run("run", tmp_path / "c.toml", "--out", tmp_path / "out")
    assert result.exit_code in (0, 1), result.output
    run_spec = json.loads((tmp_path / "out" / "report.json").read_text())["run"]
    assert (
        run_spec["teacher"]["served_model"] == ALIAS
        and run_spec["model"]["name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_a_served_scorer_ranks_a_copied_canary_first_with_llama_cpps_own_numbers(server, tmp_path):
    """Exact scoring of a digits:1 space over HTTP: the copied canary ranks first, the scores pass the stability
    check, and each token's log-probability is the one llama-cpp-python computes in process."""
    import math

    from llama_cpp import Llama

    from privacy_audit.models import load_model
    from privacy_audit.models.embedded import gguf_path

    run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:1", "--count", "1",
        "--references", "3", "--seed", "2", "--out", tmp_path / "s.json")
    secret = json.loads((tmp_path / "s.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text(f"Text: your parcel is ready\nClass: ham\nThe secret code is {secret}.\n")
    scored = run(
        "score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", f"openai:{ALIAS}", "-m",
        f"base_url={server}", "--exact", "--out", tmp_path / "r.json",
    )
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["canaries"][0]["rank"] == 1 and report["run"]["score_checks"][0]["passed"]
    assert report["run"]["model"]["options"]["start_text"] == "<|im_start|>"
    served = load_model(f"openai:{ALIAS}", base_url=server)
    text = "Text: your parcel is ready\nClass: ham\nThe secret code is 4"
    (echo,) = served.served.echo([text]) if served.probe().ok else pytest.fail(served.probe().reason)
    local = Llama(model_path=str(gguf_path()), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    mine = local.create_completion(served.served.start_text + text, max_tokens=1, echo=True, logprobs=1, temperature=0)
    theirs = [v for v in mine["choices"][0]["logprobs"]["token_logprobs"][: len(echo.tokens)] if v is not None]
    assert len(theirs) == len(echo.tokens) - 1
    assert max(abs(a - b) for a, b in zip(theirs, echo.logprobs[1:])) < 1e-4 * max(1.0, max(map(abs, theirs)))
    assert all(math.isfinite(v) for v in theirs)


EMOJI = ["Win a 🎉 prize now 😀 call 0800", "Привет, как дела? 東京で会おう", "café ☕ at 5 🕔 ok?", "Γειά σου 👋 φίλε"]


def test_emoji_and_non_latin_text_is_scored_over_http(server, tmp_path):
    """llama-cpp-python echoes a character split across tokens as empty or partial pieces: they are placed by the
    server's offsets, so text of any script scores, and the copied canary still ranks first."""
    run("canaries", "generate", "--template", "Код {secret} 🔑", "--space", "digits:1", "--count", "1",
        "--references", "3", "--seed", "2", "--out", tmp_path / "s.json")
    secret = json.loads((tmp_path / "s.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text("\n".join(EMOJI) + f"\nКод {secret} 🔑\n")
    scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model",
                 f"openai:{ALIAS}", "-m", f"base_url={server}", "--exact", "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["canaries"][0]["rank"] == 1 and report["run"]["score_checks"][0]["passed"]


def test_a_served_teacher_writes_synthetic_examples_from_emoji_data(server, tmp_path):
    """The examples pipeline's teachers keep their likeliest samples by what the server says of them, over data full
    of emoji and other scripts; a rerun reuses every completion already made (the completion cache)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "spam" if i % 2 else "ham"}) + "\n"
                            for i, t in enumerate(EMOJI * 3)))
    args = ["teach", "--pipeline", "examples", "--data", data, "--label-field", "label", "--model", f"openai:{ALIAS}",
            "-m", f"base_url={server}", "-o", "teachers=2", "-o", "n=1", "-o", "n_gen=2", "-o", "samples=2",
            "-o", "keep=1", "-o", "max_new_tokens=12", "--no-cache", "--out", tmp_path / "p.txt"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "p.txt").read_text().strip()


def plant(tmp_path, space: str, references: int) -> None:
    made = run("canaries", "generate", "--template", "The secret code is {secret}", "--space", space, "--count", "1",
               "--references", str(references), "--seed", "3", "--out", tmp_path / "set.json")
    assert made.exit_code == 0, made.output
    secret = json.loads((tmp_path / "set.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text(f"Text: your parcel is ready\nClass: ham\nThe secret code is {secret}.\n")


def score(tmp_path, server, *extra, out):
    result = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "set.json", "--model",
                 f"openai:{ALIAS}", "-m", f"base_url={server}", *extra, "--out", tmp_path / out)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / out).read_text())


def test_exact_ranks_by_next_token_requests_equal_the_echos(server, tmp_path):
    plant(tmp_path, "digits:1", references=5)
    walked = score(tmp_path, server, "--exact", out="walk.json")
    echoed = score(tmp_path, server, "--exact", "-m", "next_tokens=off", out="echo.json")
    assert walked["run"]["model"]["options"]["next_tokens"] == "top-k"
    assert echoed["run"]["model"]["options"]["next_tokens"] == "not used (next_tokens=off)"
    for a, b in zip(walked["canaries"], echoed["canaries"]):
        assert a["rank"] == b["rank"]
        assert abs(a["logprob_bits"] - b["logprob_bits"]) <= 0.3 * a["tokens"]  # llama.cpp's batch-size noise
    assert walked["run"]["score_checks"][0]["passed"]


def test_a_copied_canary_in_a_million_is_certified_first_and_extracted_over_http(server, tmp_path):
    plant(tmp_path, "digits:6", references=10)
    report = score(tmp_path, server, "--extraction", out="r.json")
    first = report["canaries"][0]
    assert (first["rank_lower"], first["rank_upper"], first["exposure_method"]) == (1, 1, "certified")
    assert first["greedy_extracted"] is True and first["guesses"] == 1
    assert report["run"]["model"]["options"]["next_token_requests"] < 400
