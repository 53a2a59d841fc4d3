"""Markdown renderings of reports (terminal, PR comments). Model-generated text is never rendered raw."""

from __future__ import annotations

from collections.abc import Sequence

from privacy_audit.reports.schema import AuditReport


def _cell(text: object) -> str:
    """A table cell: pipes and newlines escaped, control characters removed."""
    s = "".join(ch for ch in str(text) if ch.isprintable())
    return s.replace("|", "\\|")


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _yes(x: bool | None) -> str:
    return "" if x is None else ("yes" if x else "no")


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2g}"


def summary_rows(report: AuditReport) -> list[tuple[str, str]]:
    s = report.summary
    return [
        ("pipeline", report.run.pipeline),
        ("model", str(report.run.model.get("name"))),
        ("mode", f"{report.run.mode} ({report.run.space}, |S| = {report.canaries[0].space_size:,})"),
        ("max exposure, planted (bits)", f"{_f(s.max_exposure_bits)} of {_f(s.max_possible_exposure_bits)}"),
        ("mean exposure, planted (bits)", _f(s.mean_exposure_planted)),
        ("mean exposure, references (bits)", _f(s.mean_exposure_references)),
        ("null mean exposure (bits)", _f(s.null_mean_exposure_bits)),
        ("best rank of a planted canary", f"{s.min_rank_planted:,}"),
        ("planted secrets verbatim in prompt", f"{s.planted_in_prompt} of {s.planted_count}"),
        ("planted secrets recovered by greedy decoding", "n/a" if s.greedy_extracted is None else f"{s.greedy_extracted} of {s.planted_count}"),
        ("fewest guesses to a planted secret", "n/a" if s.min_guesses_planted is None else f"{s.min_guesses_planted:,}"),
        ("p-value, planted > references", _p(s.planted_vs_references_p_value)),
    ]


def render_markdown(report: AuditReport) -> str:
    """A summary table, then one row per canary (ids only: secrets are never printed here)."""
    lines = ["## privacy-audit report", "", "| measure | value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in summary_rows(report)]
    if report.gate is not None:
        verdict = "PASS" if report.gate.passed else "FAIL"
        lines += ["", f"**Gate: {verdict}**"] + [f"- {_cell(f)}" for f in report.gate.failures]
    lines += [
        "",
        "| canary | planted | log2 p (bits) | rank | exposure (bits) | p-value | in prompt | guesses | greedy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(report.canaries, key=lambda c: (not c.planted, -c.exposure_bits, c.id)):
        lines.append(
            f"| {_cell(c.id)} | {'yes' if c.planted else 'no'} | {c.logprob_bits:.2f} | {c.rank:,} of {c.rank_pool:,} "
            f"| {c.exposure_bits:.2f} | {_p(c.p_value)} | {_yes(c.in_prompt)} | {'' if c.guesses is None else f'{c.guesses:,}'} "
            f"| {_yes(c.greedy_extracted)} |"
        )
    return "\n".join(lines) + "\n"


def render_comparison(reports: Sequence[AuditReport]) -> str:
    """Reports side by side (e.g. the demo's raw and instructions pipelines on the same canaries)."""
    header = "| measure | " + " | ".join(_cell(r.run.pipeline) for r in reports) + " |"
    lines = [header, "|---|" + "---|" * len(reports)]
    rows = [summary_rows(r) for r in reports]
    for i, (key, _) in enumerate(rows[0]):
        if key == "pipeline":
            continue
        lines.append(f"| {_cell(key)} | " + " | ".join(_cell(r[i][1]) for r in rows) + " |")
    return "\n".join(lines) + "\n"
