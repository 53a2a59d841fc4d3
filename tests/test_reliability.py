"""Nothing lost, nothing torn, same inputs give the same bytes, parsers never crash."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy_audit import generate_canary_set
from privacy_audit.canaries import parse_space
from privacy_audit.demo import run_demo
from privacy_audit._io import iter_jsonl, read_records
from privacy_audit.canaries import check_template
from privacy_audit.errors import InputError

WRITER = """
import sys
from privacy_audit._io import atomic_write
path, size = sys.argv[1], int(sys.argv[2])
i = 0
while True:
    atomic_write(path, (b"a" if i % 2 else b"b") * size)
    i += 1
"""


def test_killing_a_writer_never_leaves_a_torn_file(tmp_path):
    target, size = tmp_path / "out.bin", 4_000_000
    target.write_bytes(b"o" * size)
    for delay in (0.05, 0.2, 0.35, 0.5, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        assert len(data) == size and data in (b"a" * size, b"b" * size, b"o" * size)


def default_sigint() -> None:
    """In the child: Ctrl-C acts as usual even when the tests run in the background (where it is inherited ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_and_keeps_no_partial_output(tmp_path):
    cs = tmp_path / "set.json"
    subprocess.run(
        [
            sys.executable, "-m", "privacy_audit", "canaries", "generate", "--template", "code {secret}", "--space",
            "digits:6", "--count", "1", "--references", "3", "--seed", "0", "--out", str(cs),
        ],
        check=True,
    )
    (tmp_path / "p.txt").write_text("some prompt " * 20)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "privacy_audit", "score", "--model", "mock", "--prompt", str(tmp_path / "p.txt"),
            "--canaries", str(cs), "--out", str(tmp_path / "r.json"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    time.sleep(3)
    assert proc.poll() is None, "scoring finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_the_demo_chain_is_byte_identical_twice(tmp_path, tiny_model):
    for name in ("a", "b"):
        run_demo(tmp_path / name, model=tiny_model, references=10, held_out_count=8, space="digits:2")
    for report in ("report-raw.json", "report-instructions.json", "canaries.json", "planted.jsonl", "summary.md"):
        assert (tmp_path / "a" / report).read_bytes() == (tmp_path / "b" / report).read_bytes(), report
    raw = json.loads((tmp_path / "a" / "report-raw.json").read_text())
    assert raw["run"]["model"]["name"] == "tiny-llama" and raw["utility"]["examples"] == 8


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_jsonl_reader_refuses_in_one_line_or_reads_records(tmp_path_factory, data):
    """Any bytes: a one-line InputError, or records that are objects each holding a text field (what a reader of
    the data relies on); anything else (another exception) fails the test."""
    path = tmp_path_factory.mktemp("j") / "d.jsonl"
    path.write_bytes(data)
    try:
        records = read_records(path, "text")
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert records and all(isinstance(r, dict) and isinstance(r["text"], str) for r in records)
        assert [r for _, r in iter_jsonl(path)] == records


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_space_and_template_parsers_refuse_in_one_line_or_give_something_usable(text):
    """Any text: a one-line InputError, or a space whose secrets round-trip through their index, or a template with
    one {secret} slot and text around it; anything else fails the test."""
    try:
        space = parse_space(text)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        last = space.secret(space.size - 1)
        assert space.size >= 1 and last in space and space.index(last) == space.size - 1
    try:
        check_template(text)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert text.count("{secret}") == 1 and text.replace("{secret}", "").strip()


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 6))
def test_canary_sets_are_reproducible(seed, length):
    a = generate_canary_set(template="c {secret}", space=f"hex:{length}", count=2, references=3, seed=seed)
    b = generate_canary_set(template="c {secret}", space=f"hex:{length}", count=2, references=3, seed=seed)
    assert a == b and len({c.secret for c in a.canaries}) == 5
