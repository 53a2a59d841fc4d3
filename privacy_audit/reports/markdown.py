"""Markdown renderings of reports (terminal, PR comments). Model-generated text is never rendered raw."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from privacy_audit.canaries.canary import DESIGNS
from privacy_audit.canaries.spaces import brief
from privacy_audit.models.base import ModelInfo
from privacy_audit.reports.schema import AuditReport, GateOutcome
from privacy_audit.reports.text import checks, clean, format_p
from privacy_audit.scoring.figures import canary_figures, summary_tests
from privacy_audit.scoring.measures import extrapolated_beyond_references
from privacy_audit.scoring.membership import BLIND, EVIDENCE, blind_verdict, label_of, strongest
from privacy_audit.scoring.types import CanaryScore, MembershipRoc, Reconstruction


def _cell(text: object) -> str:
    """A table cell: terminal escapes and control characters removed, HTML escaped (Markdown viewers render
    it), newlines flattened, pipes escaped."""
    return html.escape(clean(str(text)), quote=False).replace("\n", " ").replace("\t", " ").replace("|", "\\|")


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _yes(x: bool | None) -> str:
    return "" if x is None else ("yes" if x else "no")


def _ci(ci: tuple[float, float] | None) -> str:
    return "n/a" if ci is None else f"{ci[0]:.2f} to {ci[1]:.2f}"


def _p(x: float | None) -> str:
    return format_p(x)


def summary_rows(report: AuditReport) -> list[tuple[str, str]]:
    """The summary as (measure, value) rows: the run, the exposures against the null baseline, what leaked, every
    summary test the report holds (registered in `scoring.figures`, each rendering its own row), the statistics and
    the other measurements."""
    s = report.summary
    rows = [
        ("pipeline", report.run.pipeline),
        ("teacher", "none (the prompt was given)" if report.run.teacher is None else who(report.run.teacher)),
        ("scorer", who(report.run.model)),
        ("mode", f"{report.run.mode} ({brief(report.run.space)}, |S| = {report.canaries[0].space_size:,})"),
        ("canary design", DESIGNS[report.run.canary_design]),
        ("max exposure, planted (bits)", f"{_f(s.max_exposure_bits)} of {_f(s.max_possible_exposure_bits)}"),
        ("mean exposure, planted (bits)", _f(s.mean_exposure_planted)),
        ("mean exposure, references (bits)", _f(s.mean_exposure_references)),
        ("null mean exposure (bits)", _f(s.null_mean_exposure_bits)),
        ("best rank of a planted canary", f"{s.min_rank_planted:,}"),
        (
            "planted secrets recovered by greedy decoding",
            "n/a" if s.greedy_extracted is None else f"{s.greedy_extracted} of {s.planted_count}",
        ),
        (
            "fewest guesses to a planted secret",
            "n/a" if s.min_guesses_planted is None else f"{s.min_guesses_planted:,}",
        ),
    ]
    for test in summary_tests().values():
        record = test.of(s)
        if record is not None:
            rows.append((test.label, test.render(report.canaries, s, record)))
    return rows + _statistics_rows(report, rows) + _other_rows(report)


def _statistics_rows(report: AuditReport, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The intervals (placed beside the means they are of), the epsilon bound and the extrapolation fit."""
    st = report.statistics
    out: list[tuple[str, str]] = []
    if st is None:
        return out
    level = f"{st.confidence:.0%}"
    rows.insert(5, (f"{level} CI of mean exposure, planted", _ci(st.mean_exposure_planted_ci)))
    rows.insert(7, (f"{level} CI of mean exposure, references", _ci(st.mean_exposure_references_ci)))
    out.append(("confidence intervals", st.interval_method))
    if st.rank_interval_note:
        out.append(("rank intervals over the whole space", st.rank_interval_note))
    if st.epsilon is not None:
        eps = st.epsilon
        out.append((f"empirical epsilon lower bound ({eps.confidence:.0%}, delta = {eps.delta:g}, {eps.design} bound)",
                    _f(eps.epsilon)))
    if st.gdp is not None:
        g = st.gdp
        out.append((f"f-DP (Gaussian) mu lower bound ({g.confidence:.0%}, randomized inclusion)",
                    f"{_f(g.mu)} (read as a Gaussian mechanism's epsilon at delta = {g.delta:g}: "
                    f"{_f(g.epsilon_if_gaussian)}; for other mechanisms mu alone is a bound)"))
    claim = report.run.claim
    if claim is not None:
        how = ("stated by the user" if claim.source == "stated" else
               f"accounted by the pipeline: {claim.mechanism}, noise multiplier {claim.noise_multiplier:.4g}, "
               f"{claim.accountant}, {claim.ledger}")
        mu = "" if claim.mu is None else f", mu {claim.mu:.4g} (Gaussian DP)"
        out.append(("claimed privacy of the teacher", f"epsilon {claim.epsilon:.4g} at delta = {claim.delta:g}{mu} "
                    f"({how}; the gate's max_epsilon and max_mu hold the audited bounds to it)"))
    fit = st.extrapolation
    out.append(("extrapolated exposure fit (skew-normal)", "not computed" if fit is None else
                f"KS p = {_p(fit.ks_p_value)} ({fit.calibration}){' (poor fit)' if fit.poor_fit else ''}"))
    return out


def _other_rows(report: AuditReport) -> list[tuple[str, str]]:
    """Leaks of generated text, utility, reconstruction, and the gate's verdict."""
    out: list[tuple[str, str]] = []
    if report.leaks is not None:
        lk = report.leaks
        out.append(("generated units copied verbatim", f"{lk.verbatim_copies} of {lk.units}"))
        out.append(("mean distance of generated text to private prompt", _f(lk.mean_distance)))
    if report.utility is not None:
        u = report.utility
        per_token = "" if u.accuracy_per_token is None else f", {u.accuracy_per_token:.3f} per token"
        accuracy = f"{u.accuracy:.3f}{per_token} on {u.examples} examples"
        out.append(("student accuracy with this prompt (utility)",
                    accuracy + (f", student {u.student}" if u.student else "")))
    if report.reconstruction is not None:
        out += membership_rows(report.reconstruction)
    if report.gate is not None:
        out.append(("gate", verdict_cell(report.gate)))
    return out


def membership_rows(rc: Reconstruction) -> list[tuple[str, str]]:
    """Each membership attack's AUC and TPRs (private against held-out examples), the blind control's beside them,
    and whether any attack beats it."""

    def roc(r: MembershipRoc) -> str:
        return (f"{_f(r.auc)} (95% CI {_ci(r.auc_ci)}); TPR {_f(r.tpr_at_1pct_fpr)} at 1% FPR, "
                f"{_f(r.tpr_at_0_1pct_fpr)} at 0.1%")

    m, n = len(rc.attacks[0].member_scores), len(rc.attacks[0].non_member_scores)
    out = [(f"membership AUC, {label_of(a.name)}", roc(a)) for a in rc.attacks]
    out += [(f"membership AUC, {label_of(a.name)}", f"not run: {a.reason}") for a in rc.not_run]
    blind = rc.blind
    out.append((f"membership AUC, {label_of(BLIND)}",
                roc(blind) if blind is not None else "not run: fewer than 2 examples on a side"))
    if blind is not None:
        best, verdict = strongest(rc), blind_verdict(rc)
        sentence = {
            "as well": f"the blind control does as well (AUC {_f(blind.auc)} against {best.name}'s {_f(best.auc)}): "
                       "the texts alone separate the split, not the prompt",
            "within": f"not told apart at this size: the blind control's AUC {_f(blind.auc)} lies within {best.name}'s "
                      f"interval ({_ci(best.auc_ci)})",
            "beaten": f"{best.name} beats it (AUC {_f(best.auc)}, 95% CI {_ci(best.auc_ci)}, against {_f(blind.auc)})",
        }[verdict or "beaten"]
        out.append((f"membership attacks against the blind control ({m} private, {n} held-out examples)", sentence))
    return out


def who(info: ModelInfo) -> str:
    """A model as people read it: its name, backend and where it was served (never a credential)."""
    where = [info.backend] + ([info.endpoint] if info.endpoint else [])
    if info.served_model and info.served_model != info.name:
        where.append(f"served as {info.served_model}")
    return f"{info.name} ({', '.join(where)})"


def verdict_cell(outcome: GateOutcome | None) -> str:
    """The gate's verdict in one cell: PASS or FAIL with the rules checked or failed, or that none was applied."""
    if outcome is None:
        return "not gated (run privacy-audit gate on the report)"
    names = list(dict.fromkeys(r.rule for r in outcome.rules))
    if outcome.passed:
        return f"PASS ({checks(len(outcome.rules))}: {', '.join(names)})"
    failed = list(dict.fromkeys(r.rule for r in outcome.rules if not r.passed))
    return f"FAIL ({len(outcome.failures)} of {checks(len(outcome.rules))}: {', '.join(failed)})"


def canary_columns() -> list[tuple[str, Callable[[CanaryScore], str]]]:
    """The canary table's columns: the row's own measurements, then every registered per-canary figure that asks for
    a column (`scoring.figures`), each rendering its own cell."""
    columns: list[tuple[str, Callable[[CanaryScore], str]]] = [
        ("canary", lambda c: c.id), ("planted", lambda c: "yes" if c.planted else "no"),
        ("log2 p (bits)", lambda c: f"{c.logprob_bits:.2f}"),
        ("rank", rank_cell),
        ("exposure (bits)", lambda c: f"{c.exposure_bits:.2f}"), ("over the whole space", interval),
        ("p-value", lambda c: _p(c.p_value)), ("in prompt", lambda c: _yes(c.in_prompt)),
        ("guesses", lambda c: "" if c.guesses is None else f"{c.guesses:,}"),
    ]
    return columns + [(f.label, f.cell) for f in canary_figures().values() if f.column]


def render_markdown(report: AuditReport) -> str:
    """A summary table, then one row per canary (ids only: secrets are never printed here)."""
    lines = ["## privacy-audit report", "", "| measure | value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in summary_rows(report)]
    lines += ["", f"Evidence: {EVIDENCE}."]
    if report.gate is not None:
        verdict = "PASS" if report.gate.passed else "FAIL"
        lines += ["", f"**Gate: {verdict}**"] + [
            f"- {'ok' if r.passed else 'FAIL'} [{_cell(r.rule)}] {_cell(r.message)}"
            for r in sorted(report.gate.rules, key=lambda r: r.passed)]
    columns = canary_columns()
    lines += ["", "| " + " | ".join(_cell(name) for name, _ in columns) + " |", "|" + "---|" * len(columns)]
    for c in sorted(report.canaries, key=lambda c: (not c.planted, -c.exposure_bits, c.id)):
        lines.append("| " + " | ".join(_cell(cell(c)) for _, cell in columns) + " |")
    if any(extrapolated_beyond_references.of(c) for c in report.canaries):
        lines += ["", "\\* beyond every reference: the skew-normal tail is extrapolated, not measured"]
    return "\n".join(lines) + "\n"


def rank_cell(c: CanaryScore) -> str:
    """A canary's rank as the report ranks it: exact, the upper end of a certified interval (bounded mode: "at
    most"), or among the references it was sampled against."""
    if c.rank_pool < c.space_size:
        return f"{c.rank:,} of {c.rank_pool:,} sampled"
    if c.rank_lower < c.rank_upper:
        return f"at most {c.rank:,} of {c.rank_pool:,}"
    return f"{c.rank:,} of {c.rank_pool:,}"


def interval(c: CanaryScore) -> str:
    """A canary's rank and exposure over the whole space, with how they were obtained."""
    if c.rank_lower == c.rank_upper:
        return f"rank {c.rank_lower:,}, {c.exposure_bits_upper:.2f} bits ({c.exposure_method})"
    return (
        f"rank {c.rank_lower:,} to {c.rank_upper:,}, {c.exposure_bits_lower:.2f} to {c.exposure_bits_upper:.2f} bits "
        f"({c.exposure_method})"
    )


def render_comparison(reports: Sequence[AuditReport], names: Sequence[str] | None = None) -> str:
    """Reports side by side (the demo's raw and instructions pipelines on the same canaries, or several prompts),
    headed by `names` (default: each report's pipeline)."""
    heads = names if names is not None else [r.run.pipeline for r in reports]
    lines = ["| measure | " + " | ".join(_cell(h) for h in heads) + " |", "|---|" + "---|" * len(reports)]
    lines += [f"| {_cell(k)} | " + " | ".join(_cell(v) for v in values) + " |"
              for k, values in comparison_rows(reports)]
    return "\n".join(lines + ["", f"Evidence: {EVIDENCE}."]) + "\n"


def comparison_rows(reports: Sequence[AuditReport]) -> list[tuple[str, list[str]]]:
    """The rows of reports side by side, led by each one's verdict: (measure, one value per report)."""
    tables = [{"verdict": verdict_cell(r.gate), **dict(summary_rows(r))} for r in reports]
    keys = list(dict.fromkeys(k for t in tables for k in t if k not in ("pipeline", "gate")))
    return [(k, [t.get(k, "n/a") for t in tables]) for k in keys]
