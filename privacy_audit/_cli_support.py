"""The command line's plumbing: the error boundary (one `error:` line, fixed exit codes), typed options, progress.

Exit codes: 0 success or gate passed, 1 gate failed, 2 bad usage or input, 3 internal error, 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click
from pydantic import JsonValue

from privacy_audit._io import tracking_reads
from privacy_audit._progress import watching
from privacy_audit.errors import PrivacyAuditError, Terminated
from privacy_audit.gate import Thresholds, load_thresholds
from privacy_audit.reports.text import clean

if TYPE_CHECKING:
    from privacy_audit.models import ModelSpec
    from privacy_audit.reports import AuditReport

# Seeds are numpy SeedSequence entropy: whole numbers from 0 up.
SEED = click.IntRange(min=0, max=2**128)
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class AuditGroup(click.Group):
    """The error boundary: every expected failure is one `error:` line and exit 2, Ctrl-C exit 130, and
    anything else exit 3 ("internal error, please report"); a traceback only with --debug.

    Usage errors (a missing option, a bad value) are one line too, with a pointer to --help.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        debug = "--debug" in sys.argv[1:2]
        if threading.current_thread() is threading.main_thread():
            for sig in (
                signal.SIGTERM, signal.SIGHUP,
            ):  # end like Ctrl-C: every `finally` runs (staged outputs removed)
                signal.signal(sig, _terminate)
        try:
            code = super().main(*args, **kwargs)
            sys.stdout.flush()
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "privacy-audit"
            _fail(f"{exc.format_message()} (see '{where} --help')", EXIT_BAD_INPUT)
        except click.ClickException as exc:
            _fail(exc.format_message(), EXIT_BAD_INPUT)
        except click.Abort:
            _fail("interrupted", EXIT_INTERRUPTED, prefix="")
        except SystemExit:
            raise
        except BaseException as exc:  # errors outside a command: argv decoding, stdout on a full disk
            _fail_on(exc, debug=debug)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with (
                watching(progress), tracking_reads(),
            ):  # bars for model load and generation; no output replaces a file read
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail(
                "interrupted: outputs already written are complete; nothing partial was left", EXIT_INTERRUPTED,
                prefix="",
            )
        except Exception as exc:
            _fail_on(exc, debug=bool(ctx.meta.get("privacy_audit.debug")))


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _fail(message: str, code: int, *, prefix: str = "error: ") -> None:
    """One line on stderr (control sequences removed, newlines folded), then exit."""
    line = " ".join(clean(message).split())
    try:
        click.echo(f"{prefix}{line}", err=True)
    except OSError:
        pass
    try:
        sys.stdout.flush()
    except OSError:  # stdout is full or closed: point it at /dev/null so the exit's own flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


def _fail_on(exc: BaseException, *, debug: bool) -> None:
    """Map an exception to its exit: our errors, bad input found by Python, or an internal error."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        _fail("interrupted", EXIT_INTERRUPTED, prefix="")
    if isinstance(exc, Terminated):
        _fail(
            f"terminated by {signal.Signals(exc.signum).name}; outputs already written are complete, nothing partial "
            "was left",
            128 + exc.signum, prefix="",
        )
    if isinstance(exc, PrivacyAuditError):
        _fail(str(exc), EXIT_BAD_INPUT)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _fail(f"cannot use{where}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    if isinstance(exc, UnicodeError):
        _fail(
            f"text that is not valid UTF-8 (or not encodable): {exc.reason if hasattr(exc, 'reason') else exc}",
            EXIT_BAD_INPUT,
        )
    if isinstance(exc, RecursionError):
        _fail("input nested too deeply to process", EXIT_BAD_INPUT)
    if isinstance(exc, MemoryError):
        _fail("not enough memory for this input; use smaller counts or a smaller space", EXIT_BAD_INPUT)
    if isinstance(exc, (ValueError, OverflowError)):
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, EXIT_BAD_INPUT)
    _fail(
        f"internal error, please report: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
        EXIT_INTERNAL,
    )


# In a log (stderr not a terminal), a step says nothing in its first seconds, then a line every so often.
LOG_QUIET_S = 5.0
LOG_EVERY_S = 15.0
LOG_EVERY_FRACTION = 0.1


def progress(label: str, unit: str = "candidates") -> Callable[[int, int], None]:
    """A progress callback on stderr: a tqdm bar on a terminal; in a log, a line with the count, the share, the time
    taken and an estimate of the time left, once a step has run `LOG_QUIET_S` seconds, then every `LOG_EVERY_S`
    seconds or tenth of the work, and when it ends."""
    if not sys.stderr.isatty():
        return _log_progress(label, unit)
    from tqdm import tqdm

    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit=unit, leave=False, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar = None

    return update


def _log_progress(label: str, unit: str) -> Callable[[int, int], None]:
    first: tuple[float, int] | None = None  # when the step first reported, and how far it was then
    last_time, last_share, shown = 0.0, 0.0, False

    def update(done: int, total: int) -> None:
        nonlocal first, last_time, last_share, shown
        now = time.monotonic()
        if first is None or done < first[1]:  # a step's first report (or a new step under the same label)
            first, last_time, last_share, shown = (now, done), now, 0.0, False
        share = done / total if total else 1.0
        finished = done >= total
        spent = now - first[0]
        due = now - last_time >= LOG_EVERY_S or share - last_share >= LOG_EVERY_FRACTION
        if (spent >= LOG_QUIET_S and (due or finished)) or (finished and shown):
            rate = (done - first[1]) / spent if spent > 0 else 0.0
            left = "" if finished or rate <= 0 else f", about {_clock((total - done) / rate)} left"
            click.echo(f"{label}: {done:,} of {total:,} {unit} ({share:.0%}), {_clock(spent)} so far{left}", err=True)
            last_time, last_share, shown = now, share, True
        if finished:  # the next report under this label starts a new step, however quiet this one was
            first = None

    return update


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def say(msg: str) -> None:
    click.echo(msg, err=True)


def model_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--model SPEC and its backend options, -m KEY=VALUE (checked by the backend's own options schema)."""
    fn = click.option("-m", "--model-option", "model_options", multiple=True, metavar="KEY=VALUE",
                      help="A backend option, e.g. -m base_url=http://127.0.0.1:8000/v1 -m max_connections=8 "
                           "(see 'privacy-audit models').")(fn)
    return click.option("--model", default="embedded", show_default=True,
                        help="'embedded' (SmolLM2-135M-Instruct), 'mock', a model folder, a .gguf file, hf:<id>, "
                             "or openai:<model> (see 'privacy-audit models').")(fn)


def model_spec(model: str, pairs: tuple[str, ...], extra: Mapping[str, object] | None = None) -> ModelSpec:
    """--model and its -m KEY=VALUE options (and options other flags set), validated once by the backend's schema."""
    from privacy_audit.models import ModelSpec

    return ModelSpec.parse(model, {**parse_options(pairs, "-m/--model-option"), **(extra or {})})


def parse_options(pairs: tuple[str, ...], flag: str = "-o/--option") -> dict[str, JsonValue]:
    """KEY=VALUE pairs; a VALUE that parses as JSON (numbers, true, lists) is taken as such."""
    out: dict[str, JsonValue] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=flag)
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except (json.JSONDecodeError, RecursionError, ValueError):
            out[key.strip().replace("-", "_")] = value
    return out


class RuleCommand(click.Command):
    """A command that takes the gate's thresholds as flags, made from the rule registry when the command
    runs (so a rule registered by a plugin gets its flag too); each overrides the same key of --config."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from privacy_audit.gate import RULES, SETTINGS

        own = super().get_params(ctx)
        taken = {p.name for p in own}
        flags = [
            click.Option([s.flag, s.name], type=s.kind, default=None, help=s.help)
            for s in [*RULES.values(), *SETTINGS.values()] if s.name not in taken
        ]
        help_option = [p for p in own if p.name == "help"]
        return [p for p in own if p.name != "help"] + flags + help_option


def threshold_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The --config option of a `RuleCommand` (its rule flags come from the registry)."""
    return click.option(
        "--config", "gate_config", type=click.Path(dir_okay=False), default=None,
        help="TOML file with a [gate] table (default: [tool.privacy-audit.gate] in ./pyproject.toml).",
    )(fn)


def thresholds(gate_config: str | None, flags: Mapping[str, object]) -> Thresholds:
    return load_thresholds(gate_config).merged(**flags)


def scored_line(path: object, report: AuditReport) -> str:
    """One scored prompt in a line: where its report went, its largest exposure and its planted secrets verbatim."""
    s = report.summary
    return (f"wrote {path}: max exposure {s.max_exposure_bits:.2f} of {s.max_possible_exposure_bits:.2f} bits, "
            f"{s.planted_in_prompt} of {s.planted_count} planted verbatim")


def claim_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--claimed-epsilon` and `--claimed-delta`, the privacy a teacher promises, as one `claim` argument."""

    def fold(**kwargs: Any) -> Any:
        epsilon, delta = kwargs.pop("claimed_epsilon"), kwargs.pop("claimed_delta")
        if epsilon is None and delta is not None:
            raise click.BadParameter("a claimed delta needs --claimed-epsilon", param_hint="--claimed-delta")
        from privacy_audit.pipelines import PrivacyClaim

        claim = None if epsilon is None else PrivacyClaim(epsilon=epsilon, delta=delta or 0.0)
        return command(claim=claim, **kwargs)

    fold = functools.update_wrapper(fold, command)
    fold = click.option("--claimed-delta", type=click.FloatRange(0, 1, max_open=True), default=None,
                        help="The delta of the teacher's claim (default 0).")(fold)
    return click.option("--claimed-epsilon", type=click.FloatRange(0, 100, min_open=True), default=None,
                        help="The epsilon the teacher promises (a vendor's differential-privacy claim, per record): "
                             "recorded with the prompt, and the gate fails when the canaries certify more.")(fold)
