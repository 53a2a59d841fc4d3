"""The fourth reliability corpus, by class, through the command line: option values (a run without a gate, infinite
values, options nobody uses, a Secret Sharer setting that must take effect), the data-only scorer (word tokens
see a copy, an empty or relative background corpus), files and the terminal (a corrupt cache entry, a long prompt
under the test double, empty folders, control characters, an echo prefix in a shared report). The served-model
classes are in tests/models/test_hostile_server.py, the report classes in tests/test_fail_closed.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from tests.models.fault_server import serve

CONFIG = ("[canaries]\ntemplate = 'The secret code is {secret}'\nspace = 'digits:3'\ncount = 2\nreferences = 10\n"
          "[data]\nlimit = 12\n[model]\nspec = 'mock'\n")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.output


def test_a_run_without_a_gate_table_applies_the_chance_rule_and_gate_false_turns_it_off(tmp_path):
    """The raw pipeline copies the planted canaries into its prompt: with no [gate] the default chance rule fails."""
    (tmp_path / "c.toml").write_text(CONFIG)
    gated = run("run", tmp_path / "c.toml", "--out", tmp_path / "a")
    assert gated.exit_code == 1, gated.output
    assert json.loads((tmp_path / "a" / "report.json").read_text())["gate"]["rules"][0]["rule"] == "chance"
    (tmp_path / "off.toml").write_text("gate = false\n" + CONFIG)
    ungated = run("run", tmp_path / "off.toml", "--out", tmp_path / "b")
    assert ungated.exit_code == 0, ungated.output
    assert json.loads((tmp_path / "b" / "report.json").read_text())["gate"] is None


@pytest.mark.parametrize("args, words", [
    (["-m", "alpha=Infinity"], "option alpha"),
    (["-m", "alpha=NaN"], "option alpha"),
])
def test_an_infinite_option_is_refused_up_front_naming_it(tmp_path, args, words):
    (tmp_path / "p.txt").write_text("a prompt\n")
    run("canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--count", "1", "--seed", "0",
        "--out", tmp_path / "s.json")
    one_line(run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "mock",
                 *args, "--out", tmp_path / "r.json"), words)
    assert not (tmp_path / "r.json").exists()


def test_an_infinite_option_in_a_config_is_refused_naming_it(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG.replace("spec = 'mock'", "spec = 'mock'\n[model.options]\nalpha = inf"))
    one_line(run("run", tmp_path / "c.toml", "--out", tmp_path / "o"), "option alpha")
    assert not (tmp_path / "o").exists()


def test_a_model_option_for_a_pipeline_that_runs_no_model_is_refused(tmp_path, sms_jsonl):
    one_line(run("teach", "--pipeline", "raw", "--data", sms_jsonl, "-m", "order=3", "--model", "mock", "--out",
                 tmp_path / "p.txt"), "runs no model, so the model option order would not be used")
    one_line(run("teach", "--pipeline", "raw", "--data", sms_jsonl, "-m", "dtype=float64", "--out",
                 tmp_path / "p.txt"), "option dtype")
    assert not (tmp_path / "p.txt").exists()


def test_secret_sharer_trials_plant_into_the_fraction_of_shards_the_config_names(tmp_path, monkeypatch):
    import privacy_audit.chain as chain

    seen = []
    real = chain.plant
    monkeypatch.setattr(chain, "plant", lambda cs, rows, options: seen.append(options) or real(cs, rows, options))
    (tmp_path / "c.toml").write_text(
        CONFIG.replace("limit = 12", "limit = 24\nshards = 4\nfraction = 0.5")
        + "[secret_sharer]\ntrials = 2\ncandidates = 5\n")
    result = run("secret-sharer", tmp_path / "c.toml", "--out", tmp_path / "ss")
    assert result.exit_code == 0, result.output
    assert len(seen) == 2 and all(o.shards == 4 and o.fraction == 0.5 for o in seen)


def test_word_tokens_see_a_verbatim_copy(tmp_path):
    run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:3", "--count", "1",
        "--references", "20", "--seed", "3", "--out", tmp_path / "s.json")
    secret = json.loads((tmp_path / "s.json").read_text())["canaries"][0]["secret"]
    (tmp_path / "p.txt").write_text(f"Text: hello there\nThe secret code is {secret}\nText: bye\n")
    scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "ngram",
                 "-m", "tokens=words", "--exact", "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    assert json.loads((tmp_path / "r.json").read_text())["canaries"][0]["rank"] == 1


def test_a_background_corpus_is_read_from_the_configs_folder_and_an_empty_one_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "corpus.txt").write_text("ordinary text of the domain, some numbers 123 and 456\n")
    (folder / "c.toml").write_text(
        CONFIG.replace("[model]\nspec = 'mock'", "[model]\nspec = 'ngram'\n[model.options]\nbackground = 'corpus.txt'"))
    monkeypatch.chdir(tmp_path)  # not the config's folder
    result = run("run", folder / "c.toml", "--out", tmp_path / "o")
    assert result.exit_code in (0, 1), result.output
    options = json.loads((tmp_path / "o" / "report.json").read_text())["run"]["model"]["options"]
    assert options["background"] == str(folder / "corpus.txt")
    (folder / "corpus.txt").write_text("  \n")
    one_line(run("run", folder / "c.toml", "--out", tmp_path / "o2"), "background corpus")


def test_a_corrupt_teaching_cache_entry_is_replaced(tmp_path, sms_jsonl, private_teaching_cache):
    args = ["teach", "--pipeline", "raw", "--data", sms_jsonl, "--label-field", "label", "--out", tmp_path / "p.txt"]
    assert run(*args).exit_code == 0
    (entry,) = (private_teaching_cache / "teaching").glob("*.json")
    entry.write_text("{ not json")
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert json.loads(entry.read_text())["pipeline"] == "raw"


def test_the_test_double_reads_a_long_prompt_in_a_window(tmp_path, monkeypatch):
    """The mock's tokenization check re-reads only the head's last token and the candidate, never the whole prompt
    (a 1 MB prompt once took minutes); its scores are the whole text's (tests/models/test_mock.py)."""
    from privacy_audit.models.mock import Pieces

    longest = [0]
    split = Pieces.split

    def watched(self, text):
        if len(text) < 500_000:
            longest[0] = max(longest[0], len(text))
        return split(self, text)

    monkeypatch.setattr(Pieces, "split", watched)
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:4", "--count", "1", "--seed", "0",
        "--out", tmp_path / "s.json")
    (tmp_path / "p.txt").write_text("words and 12345 numbers. " * 40_000)
    scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "mock", "-m",
                 "digits=3", "--bounded", "--search-budget", "200", "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    assert longest[0] < 100  # only windows: the whole prompt is split once, when the context is read


def test_a_scorer_refused_late_leaves_no_output_folder(tmp_path):
    refusing = (400, {}, {"error": {"message": "echo is not supported with logprobs"}})
    run("canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--count", "1", "--seed", "0",
        "--out", tmp_path / "s.json")
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.txt").write_text("two\n")
    with serve(lambda n, b: refusing) as (url, _):
        scored = run("score", "--prompt", tmp_path / "a.txt", "--prompt", tmp_path / "b.txt", "--canaries",
                     tmp_path / "s.json", "--model", "openai:m", "-m", f"base_url={url}", "--out", tmp_path / "out")
        (tmp_path / "c.toml").write_text(
            CONFIG + f"[scorer]\nspec = 'openai:m'\n[scorer.options]\nbase_url = '{url}'\n")
        ran = run("run", tmp_path / "c.toml", "--out", tmp_path / "run")
    one_line(scored, "cannot give log-probabilities")
    one_line(ran, "cannot give log-probabilities")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_canaries_show_strips_control_characters_of_an_echo_template(tmp_path):
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"text": "hello \x1b[31mred\x07 \u202eevil words here and more words to come"}) + "\n")
    made = run("canaries", "generate", "--design", "echo", "--data", tmp_path / "d.jsonl", "--prefix-words", "4",
               "--count", "1", "--references", "2", "--seed", "0", "--out", tmp_path / "s.json")
    assert made.exit_code == 0, made.output
    shown = run("canaries", "show", tmp_path / "s.json").output
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "template: hello" in shown


def test_an_echo_prefix_stays_out_of_a_report_written_without_secrets(tmp_path):
    private = "Dear Dr Okonkwo your biopsy results from the clinic"
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": private}) + "\n")
    run("canaries", "generate", "--design", "echo", "--data", tmp_path / "d.jsonl", "--prefix-words", "6",
        "--count", "1", "--references", "3", "--seed", "0", "--out", tmp_path / "s.json")
    (tmp_path / "p.txt").write_text("a teaching prompt\n")
    for flag, out in (([], "shared.json"), (["--include-secrets"], "private.json")):
        scored = run("score", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "s.json", "--model", "mock",
                     "--sampled", *flag, "--out", tmp_path / out)
        assert scored.exit_code == 0, scored.output
    shared = (tmp_path / "shared.json").read_text()
    assert "Okonkwo" not in shared and "biopsy" not in shared
    assert "characters of a private record" in json.loads(shared)["run"]["template"]
    assert "Okonkwo" in json.loads((tmp_path / "private.json").read_text())["run"]["template"]
    run("report", tmp_path / "shared.json", "--md", tmp_path / "r.md", "--html", tmp_path / "r.html")
    assert "Okonkwo" not in (tmp_path / "r.md").read_text() + (tmp_path / "r.html").read_text()
