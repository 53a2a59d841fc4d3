"""The OpenAI-compatible teacher against a fault-injecting server: retries, errors, concurrency, keys, seeds."""

from __future__ import annotations

import json
import math
import time

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models import load_model
from privacy_audit.models.http import public_url, resolve, retry_delay

from tests.models.fault_server import chat_reply, serve


def teacher(url: str, **options):
    return load_model("openai:tiny-teacher", base_url=url, max_retry_wait=0.05, **options)


def test_a_sample_is_a_chat_completion_with_its_own_seed_and_log_probabilities():
    with serve(lambda n, body: chat_reply(f"answer {n}", [-0.5, -1.0])) as (url, seen):
        model = teacher(url, max_connections=1)
        out = model.complete(["a plain prompt", [{"role": "user", "content": "chat"}]], temperature=0.7, seed=10,
                             max_new_tokens=7, stop=("\n\n",))
    assert [c.text for c in out] == ["answer 0", "answer 1"]
    assert out[0].logprob == pytest.approx(-1.5 / math.log(2)) and out[0].tokens == 2
    first, second = seen.bodies
    assert (
        first["messages"] == [{"role": "user", "content": "a plain prompt"}]
        and second["messages"][0]["content"] == "chat"
    )
    assert (first["seed"], second["seed"]) == (10, 11) and first["temperature"] == 0.7 and first["max_tokens"] == 7
    assert first["logprobs"] is True and first["stop"] == ["\n\n"] and first["model"] == "tiny-teacher"
    info = model.info()
    assert info.endpoint == url and info.served_model is None and info.system_fingerprint == "fp-1"  # none named
    assert "best effort" in info.seeding


def test_without_log_probabilities_a_sample_has_none():
    with serve(lambda n, body: chat_reply("no numbers")) as (url, _):
        (out,) = teacher(url).complete(["p"])
    assert out.logprob is None and out.mean_logprob is None


def test_429_and_5xx_are_retried_honouring_retry_after():
    replies = [
        (429, {"retry-after": "0.2"}, {"error": {"message": "slow down"}}), (503, {}, {"error": {"message": "busy"}}),
        chat_reply("finally"),
    ]
    with serve(lambda n, body: replies[n]) as (url, seen):
        started = time.monotonic()
        (out,) = teacher(url).complete(["p"])
    assert out.text == "finally" and len(seen.bodies) == 3 and time.monotonic() - started >= 0.2


def test_other_4xx_end_with_the_servers_message_and_no_retry():
    with serve(lambda n, body: (400, {}, {"error": {"message": "model 'tiny-teacher' does not exist"}})) as (url, seen):
        with pytest.raises(ModelError, match="answered 400: model 'tiny-teacher' does not exist"):
            teacher(url).complete(["p"])
    assert len(seen.bodies) == 1


def test_retries_end_and_a_hanging_server_times_out():
    with serve(lambda n, body: (500, {}, {"error": {"message": "boom"}})) as (url, seen):
        with pytest.raises(ModelError, match="failed 3 times .*status 500: boom"):
            teacher(url, max_retries=2).complete(["p"])
    assert len(seen.bodies) == 3
    with serve(lambda n, body: None) as (url, seen):
        started = time.monotonic()
        with pytest.raises(ModelError, match="ReadTimeout"):
            teacher(url, timeout=0.3, max_retries=1).complete(["p"])
    assert time.monotonic() - started < 5 and len(seen.bodies) == 2


def test_at_most_max_connections_requests_are_in_flight():
    with serve(lambda n, body: chat_reply("x"), delay=0.1) as (url, seen):
        teacher(url, max_connections=3).complete([f"p{i}" for i in range(12)])
    assert seen.most_in_flight == 3


def test_keys_go_only_where_they_belong_and_are_never_shown(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert resolve(None, None) == ("https://api.openai.com/v1", "sk-openai-secret")
    assert resolve("http://127.0.0.1:9/v1", None) == (
        "http://127.0.0.1:9/v1", None,
    )  # another endpoint gets no OpenAI key
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway.local/v1")
    assert resolve(None, None) == ("http://gateway.local/v1", "sk-openai-secret")
    monkeypatch.setenv("MY_KEY", "sk-mine-secret")
    with serve(lambda n, body: (401, {}, {"error": {"message": "bad key sk-mine-secret"}})) as (url, seen):
        with pytest.raises(ModelError) as err:
            load_model("openai:m", base_url=url, api_key_env="MY_KEY").complete(["p"])
    assert seen.headers[0]["authorization"] == "Bearer sk-mine-secret" and "sk-mine-secret" not in str(err.value)
    with pytest.raises(InputError, match="NOT_SET .named by api_key_env. is not set"):
        load_model("openai:m", base_url="http://127.0.0.1:9/v1", api_key_env="NOT_SET")
    assert public_url("https://user:pw@host:8443/v1?key=abc") == "https://host:8443/v1"


def test_retry_delay_reads_both_headers_and_is_capped():
    import random

    rng = random.Random(0)
    assert retry_delay(0, {"retry-after-ms": "1500"}, cap=60, rng=rng) == 1.5
    assert retry_delay(0, {"retry-after": "7"}, cap=60, rng=rng) == 7
    assert retry_delay(0, {"retry-after": "600"}, cap=60, rng=rng) == 60
    assert 0 <= retry_delay(3, {}, cap=60, rng=rng) <= 4


def test_teach_through_the_cli_with_a_served_teacher_and_a_key_nowhere(tmp_path, sms_jsonl, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-never-shown")
    with serve(lambda n, body: chat_reply("Classify each message as spam or not spam.")) as (url, seen):
        args = [
            "teach", "--pipeline", "instructions", "--data", str(sms_jsonl), "--label-field", "label", "--model",
            "openai:tiny-teacher", "-m", f"base_url={url}", "-m", "api_key_env=TEACHER_KEY", "-m", "max_connections=2",
        ]
        first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "p.txt")])
        second = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "q.txt")])
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    assert len(seen.bodies) == 1  # the second run reused the teaching cache
    assert (tmp_path / "p.txt").read_text() == "Classify each message as spam or not spam."
    sidecar = json.loads((tmp_path / "p.txt.teaching.json").read_text())
    assert sidecar["model"]["endpoint"] == url and sidecar["model"]["backend"] == "openai"
    for path in [*tmp_path.rglob("*")]:
        assert not path.is_file() or "sk-never-shown" not in path.read_text(errors="replace")


def test_a_served_teacher_cannot_score_and_says_what_to_do(tmp_path):
    def refuse(n, body):
        return 400, {}, {"error": {"message": "echo is not supported with logprobs"}}

    CliRunner().invoke(
        main,
        [
            "canaries", "generate", "--template", "code {secret}", "--space", "digits:2", "--count", "1", "--seed", "0",
            "--out", str(tmp_path / "s.json"),
        ],
    )
    (tmp_path / "p.txt").write_text("a prompt\n")
    with serve(refuse) as (url, _):
        model = load_model("openai:m", base_url=url)
        with pytest.raises(ModelError, match="cannot give log-probabilities .* score with another model"):
            model.open_context("a prompt")
        result = CliRunner().invoke(
            main,
            [
                "score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"), "--model",
                "openai:m", "-m", f"base_url={url}", "--out", str(tmp_path / "r.json"),
            ],
        )
    assert result.exit_code == 2 and result.output.startswith(
        f"error: model m (openai backend) cannot give log-probabilities of a prompt's continuations: at {url}: ")
    down = CliRunner().invoke(
        main,
        [
            "score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"), "--model", "openai:m",
            "-m", "base_url=http://127.0.0.1:9/v1", "-m", "max_retries=0", "--out", str(tmp_path / "r.json"),
        ],
    )
    assert down.exit_code == 2 and "failed 1 times (ConnectError)" in down.output


def test_backend_options_are_checked_by_the_backend(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "teach", "--pipeline", "instructions", "--data", str(tmp_path / "x"), "--model", "openai:m", "-m",
            "max_connections=0", "--out", str(tmp_path / "p.txt"),
        ],
    )
    assert result.exit_code == 2 and "max_connections" in result.output
    result = CliRunner().invoke(
        main,
        [
            "score", "--prompt", "p", "--canaries", "c", "--model", "openai:m", "-m", "colour=blue", "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 2 and "backend 'openai' has no option colour" in result.output


def test_a_model_the_server_does_not_list_is_refused_and_the_served_name_recorded():
    """A server that lists its models (GET /v1/models) refuses a name it does not serve before any sample is sent;
    one that answers under another name has that name recorded; -m check_model=false lets a router take any name."""
    def reply(n, body):
        return 200, {}, {**chat_reply("hi")[2], "model": "smollm2-135m-q4"}

    with serve(reply, models=["smollm2-135m-q4"]) as (url, seen):
        with pytest.raises(ModelError, match=r"serves 'smollm2-135m-q4', not 'tiny-teacher'; name one of them"):
            teacher(url).complete(["x"])
        assert seen.bodies == []
        model = teacher(url, check_model=False)
        model.complete(["x"])
        listed = load_model("openai:smollm2-135m-q4", base_url=url)
        listed.complete(["y"])
    assert model.info().served_model == "smollm2-135m-q4" and listed.info().served_model == "smollm2-135m-q4"


def test_refusals_say_what_they_most_likely_mean(monkeypatch):
    """401 with no key sent names the reason ($OPENAI_API_KEY withheld from other endpoints) and the option; 401
    with a key names its variable; 404 from a base_url without /v1 suggests it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("MY_KEY", "sk-mine")
    denied = lambda n, body: (401, {}, {"error": {"message": "Unauthorized"}})  # noqa: E731
    with serve(denied) as (url, _):
        with pytest.raises(ModelError, match=r"401: Unauthorized; no key was sent: \$OPENAI_API_KEY goes only to the "
                                              r"OpenAI API.*-m api_key_env=NAME"):
            teacher(url).complete(["x"])
        with pytest.raises(ModelError, match=r"401: Unauthorized; the key from \$MY_KEY was refused") as e:
            teacher(url, api_key_env="MY_KEY").complete(["x"])
        assert "sk-mine" not in str(e.value)
    missing = lambda n, body: (404, {}, {"detail": "Not Found"})  # noqa: E731
    with serve(missing) as (url, _):
        with pytest.raises(ModelError, match=r"404: Not Found; OpenAI-compatible servers answer under /v1: try "
                                              r"base_url http://127.0.0.1:\d+/v1"):
            teacher(url.removesuffix("/v1")).complete(["x"])
