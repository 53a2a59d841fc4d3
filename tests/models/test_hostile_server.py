"""A hostile OpenAI-compatible server on 127.0.0.1 (a test double): bodies that drip or never end, redirects, odd
retry-after values, a tokenize endpoint that is not implemented, answers that change between calls, a key echoed
back, credentials in the URL, a proxy that cannot be used. Each is one line and exit 2 (or a failed gate), through
the command line, and nothing of the user's is lost."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from tests.models.fault_server import chat_reply, serve
from tests.models.test_served import echo_server

KEY = "sk-test-4c9f1e7d2b"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line(result, words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.output


@pytest.fixture
def data(tmp_path, sms_jsonl):
    return sms_jsonl


def teach_args(url, tmp_path, data, *extra):
    return ["teach", "--pipeline", "instructions", "--data", data, "--label-field", "label", "--out",
            tmp_path / "p.txt", "--model", "openai:m", "-m", f"base_url={url}", "-m", "max_retry_wait=0.05", *extra]


def dripping(handler) -> None:
    """Headers at once, then a byte every 0.2 s, for ever: no single read ever times out."""
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.end_headers()
    handler.wfile.write(b'{"choices": [')
    for _ in range(200):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.2)


def endless(handler) -> None:
    """A chunked body that never ends, sent as fast as the client reads it."""
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for _ in range(100_000):
        handler.wfile.write(b"400\r\n" + b" " * 1024 + b"\r\n")
        time.sleep(0.001)


@pytest.mark.parametrize("body", [dripping, endless], ids=["drip", "endless"])
def test_timeout_bounds_the_whole_answer_not_each_read(tmp_path, data, body):
    with serve(lambda n, b: body) as (url, _):
        started = time.monotonic()
        result = run(*teach_args(url, tmp_path, data, "-m", "timeout=1", "-m", "max_retries=0"))
        assert time.monotonic() - started < 15
    one_line(result, "ReadTimeout")
    assert not (tmp_path / "p.txt").exists()


def test_a_redirect_is_not_an_answer(tmp_path, data):
    reply = (302, {"location": "http://u:pw@127.0.0.1:9/v2/chat"}, chat_reply("taken as the answer")[2])
    with serve(lambda n, b: reply) as (url, seen):
        result = run(*teach_args(url, tmp_path, data))
    one_line(result, "answered 302, a redirect to http://127.0.0.1:9/v2/chat")
    assert "pw" not in result.output and len(seen.bodies) == 1 and not (tmp_path / "p.txt").exists()


@pytest.mark.parametrize("value", ["soon", "Tue, 99 Foo 2026 00:00:00", "-5", ""])
def test_a_retry_after_that_is_neither_seconds_nor_a_date_backs_off_as_without_one(tmp_path, data, value):
    replies = [(429, {"retry-after": value}, {"error": {"message": "slow down"}}), chat_reply("Write the class.")]
    with serve(lambda n, b: replies[min(n, 1)]) as (url, seen):
        result = run(*teach_args(url, tmp_path, data))
    assert result.exit_code == 0, result.output
    assert len(seen.bodies) == 2 and (tmp_path / "p.txt").read_text() == "Write the class."


def test_a_tokenize_endpoint_that_is_not_implemented_is_asked_once(tmp_path):
    copying = echo_server(lambda prefix, token: -0.05 if token in prefix else -6.0)

    def respond(n, body):
        return (501, {}, {"error": {"message": "not implemented"}}) if "echo" not in body else copying(n, body)

    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:2", "--count", "1", "--references",
        "5", "--seed", "0", "--out", tmp_path / "s.json")
    (tmp_path / "p.txt").write_text("some words here\n")
    with serve(respond) as (url, seen):
        started = time.monotonic()
        result = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "openai:m",
                     "-m", f"base_url={url}", "-m", "start_text=", "--exact", "--out", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    tokenize = [b for b in seen.bodies if "echo" not in b]
    assert len(tokenize) <= 2 and time.monotonic() - started < 60  # each endpoint once, never retried


def test_a_server_whose_answers_alternate_fails_the_gate_however_the_rescorings_agree(tmp_path):
    """Every other request says the copied canary is likely: the stability check compares the scores the ranks were
    computed from (the space's scan) with a rescoring, so the check fails and so does the gate."""
    copying = echo_server(lambda prefix, token: -0.05 if token.strip() and token.strip() in "".join(prefix) else -6.0)
    calls = {"n": 0}

    def respond(n, body):
        if "echo" not in body:
            return 404, {}, {"error": {"message": "no tokenize"}}
        calls["n"] += 1
        status, headers, data = copying(n, body)
        if calls["n"] % 2 == 0:  # this answer forgets what the prompt copies
            data["choices"][0]["logprobs"]["token_logprobs"] = [
                None if v is None else -6.0 for v in data["choices"][0]["logprobs"]["token_logprobs"]]
        return status, headers, data

    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:2", "--count", "1", "--references",
        "5", "--seed", "1", "--out", tmp_path / "s.json")
    secret = json.loads((tmp_path / "s.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text(f"the code {secret}\n")
    with serve(respond) as (url, _):
        scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model",
                     "openai:m", "-m", f"base_url={url}", "-m", "start_text=", "-m", "cache=false", "--exact",
                     "-m", "max_connections=1", "--out", tmp_path / "r.json")  # one request at a time: "every
    assert scored.exit_code == 0, scored.output  # other" is then the order the scan and the rescoring asked in
    (check,) = json.loads((tmp_path / "r.json").read_text())["run"]["score_checks"]
    assert check["check"] == "stability" and not check["passed"] and check["max_difference_bits"] > 1
    gate = run("gate", tmp_path / "r.json")
    assert gate.exit_code == 1 and "the scores are unstable" in gate.output


def test_a_key_the_server_echoes_back_never_reaches_the_prompt_or_the_cache(tmp_path, data, monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    with serve(lambda n, b: chat_reply(f"Classify as spam or not. Your key was {KEY}.")) as (url, seen):
        result = run(*teach_args(url, tmp_path, data, "-m", "api_key_env=MY_KEY"))
    assert result.exit_code == 0, result.output
    assert seen.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in (tmp_path / "p.txt").read_text() and "[key]" in (tmp_path / "p.txt").read_text()
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:8000/v1\x1b[2J", "control character"), ("http://127.0.0.1:80 00/v1", "control character"),
    ("http://127.0.0.1:port/v1", "not a valid URL"), ("ftp://127.0.0.1/v1", "not an http(s) URL"),
])
def test_a_base_url_with_control_characters_or_no_port_is_one_line(tmp_path, data, url, words):
    one_line(run(*teach_args(url, tmp_path, data)), words)


def test_a_socks_proxy_without_its_package_is_one_line(tmp_path, data):
    pytest.importorskip("httpx")
    try:
        import socksio  # noqa: F401

        pytest.skip("socksio is installed here, so the proxy can be used")
    except ImportError:
        pass
    result = run(*teach_args("http://127.0.0.1:9/v1", tmp_path, data), env={"ALL_PROXY": "socks5://127.0.0.1:1080"})
    one_line(result, "socksio")


def test_credentials_in_a_base_url_are_never_written(tmp_path):
    """A Secret Sharer run records its config; the URL's user and password are not in it (nor in a report)."""
    with serve(lambda n, b: chat_reply("Write: Class: spam or ham.")) as (url, _):
        secret_url = url.replace("http://", "http://alice:hunter2@")
        (tmp_path / "c.toml").write_text(
            "[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:2'\n[data]\nlimit = 12\n"
            "[pipeline]\nname = 'instructions'\n[pipeline.options]\nmax_new_tokens = 8\n"
            f"[teacher]\nspec = 'openai:m'\n[teacher.options]\nbase_url = '{secret_url}'\n"
            "[scorer]\nspec = 'mock'\n[secret_sharer]\ntrials = 1\ncandidates = 5\n")
        result = run("secret-sharer", tmp_path / "c.toml", "--out", tmp_path / "ss")
    assert result.exit_code == 0, result.output
    written = [p for p in (tmp_path / "ss").rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in written)
    assert all(b"hunter2" not in p.read_bytes() and b"alice" not in p.read_bytes() for p in written)
