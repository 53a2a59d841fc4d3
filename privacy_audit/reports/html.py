"""One self-contained HTML file per report: summary first, plots embedded, every model text escaped."""

from __future__ import annotations

import base64
from collections.abc import Sequence
import html
import json


from privacy_audit.reports.markdown import canary_columns, comparison_rows, rank_cell, summary_rows
from privacy_audit.scoring.membership import EVIDENCE
from privacy_audit.reports.plots import exposure_plot, png, privacy_utility_plot, rank_cdf_plot, roc_plot, teacher_plot
from privacy_audit.reports.schema import AuditReport
from privacy_audit.reports.text import clean
from privacy_audit.scoring.measures import protocol_rank

CSS = """
body{font:14px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:60rem;color:#222;
padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.pass{background:#e6f4ea;color:#1e6b34}.fail{background:#fde8e6;color:#a52714}.none{background:#eef1f4;color:#333}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f6f8fa}pre{background:#f6f8fa;padding:.8rem;white-space:pre-wrap;word-break:break-word}
img{max-width:100%}.keys{display:flex;gap:1rem;flex-wrap:wrap}
.key{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.key b{display:block;font-size:1.3rem}
"""


def e(value: object) -> str:
    """Escape anything for HTML text or attribute context."""
    return html.escape(clean(str(value)), quote=True)


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def _verdict(report: AuditReport) -> str:
    if report.gate is None:
        return ('<div class="verdict none">No gate applied (run <code>privacy-audit gate</code> or pass thresholds to '
                '<code>report</code>).</div>')
    cls, word = ("pass", "PASS") if report.gate.passed else ("fail", "FAIL")
    items = "".join(f"<li>{'ok' if r.passed else 'FAIL'} [{e(r.rule)}] {e(r.message)}</li>"
                    for r in sorted(report.gate.rules, key=lambda r: r.passed))
    return f'<div class="verdict {cls}">Gate: {word} ({len(report.gate.rules)} checks)<ul>{items}</ul></div>'


def _keys(report: AuditReport) -> str:
    s = report.summary
    worst = max((c for c in report.canaries if c.planted), key=lambda c: c.exposure_bits)
    keys = [
        (
            "worst canary", f"{worst.exposure_bits:.2f} bits",
            f"{e(worst.id)}: rank {e(rank_cell(worst))}, p = {worst.p_value:.2g}",
        ),
        ("null baseline", f"{s.null_mean_exposure_bits:.2f} bits", "mean exposure of a never-planted secret"),
        (
            "references", "n/a" if s.mean_exposure_references is None else f"{s.mean_exposure_references:.2f} bits",
            f"mean over {s.reference_count} never-planted secrets",
        ),
    ]
    return "".join(f'<div class="key">{e(k)}<b>{v}</b><small>{d}</small></div>' for k, v, d in keys)


def _plots(report: AuditReport) -> str:
    s = report.summary
    planted = [c for c in report.canaries if c.planted]
    plots = [
        _img(png(exposure_plot(
            planted=[c.exposure_bits for c in planted],
            references=[c.exposure_bits for c in report.canaries if not c.planted],
            max_bits=s.max_possible_exposure_bits, null_mean=s.null_mean_exposure_bits,
        )), "exposure of planted canaries against references")
    ]
    protocol = [int(r) for r in map(protocol_rank.of, planted) if r is not None]
    if protocol:
        plots.append(
            _img(png(rank_cdf_plot(ranks=protocol, n_candidates=s.reference_count + 1)), "paper-protocol rank CDF")
        )
    if report.reconstruction is not None:
        rc = report.reconstruction
        curves = [*rc.attacks, *([rc.blind] if rc.blind is not None else [])]
        plots.append(_img(png(roc_plot([(r.name, r.fpr, r.tpr, r.auc) for r in curves])),
                          "membership attacks and the blind control, ROC"))
    if report.leaks is not None and len({r.teacher for r in report.leaks.rows}) > 1:
        teachers = sorted({r.teacher for r in report.leaks.rows})
        rows_by = {t: [r for r in report.leaks.rows if r.teacher == t] for t in teachers}
        plots.append(_img(png(teacher_plot(
            teachers=teachers, mean_distance=[sum(r.distance for r in rows_by[t]) / len(rows_by[t]) for t in teachers],
            verbatim=[sum(r.verbatim for r in rows_by[t]) for t in teachers],
        )), "per-teacher attribution"))
    return "".join(plots)


def _canaries(report: AuditReport) -> str:
    columns = canary_columns()
    head = "<tr>" + "".join(f"<th>{e(name)}</th>" for name, _ in columns) + "</tr>"
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(cell(c))}</td>" for _, cell in columns) + "</tr>"
        for c in sorted(report.canaries, key=lambda c: (not c.planted, -c.exposure_bits, c.id))
    )
    return f"<h2>Canaries</h2><table>{head}{rows}</table>"


def _details(report: AuditReport) -> str:
    """Leaks of generated text, the epsilon bound, and the prompt (when the report holds it)."""
    out = ""
    if report.leaks is not None:
        leak_rows = "".join(
            f"<tr><td>{e(r.teacher)}</td><td>{r.unit:,}</td><td>{r.chars:,}</td><td>{r.distance:.3f}</td>"
            f"<td>{'yes' if r.verbatim else 'no'}</td></tr>"
            for r in report.leaks.rows
        )
        out += (
            "<h2>Generated text vs private text</h2><p>The paper's distance: insert/delete edits to the closest "
            "substring of "
            "the private prompt, over the unit's length (0 = verbatim "
            "copy).</p><table><tr><th>teacher</th><th>unit</th>"
            f"<th>chars</th><th>distance</th><th>verbatim</th></tr>{leak_rows}</table>"
        )
    if report.statistics is not None and report.statistics.epsilon is not None:
        eps = report.statistics.epsilon
        out += (
            f"<h2>Empirical epsilon lower bound ({e(eps.design)} bound)</h2><p>epsilon &ge; {eps.epsilon:.2f} at delta "
            f"= {eps.delta:g}, "
            f"{eps.confidence:.0%} confidence, from {eps.canaries} canaries. {e(eps.assumptions)}.</p>"
            f"<p>Extrapolated exposure: {e(report.statistics.extrapolation_note)}.</p>"
        )
    if report.prompt is not None:
        out += f"<h2>Teaching prompt (untrusted model output, shown as text)</h2><pre>{e(report.prompt)}</pre>"
    return out


def render_html(report: AuditReport) -> str:
    """The report as one HTML page with no external resources."""
    summary = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary_rows(report))
    run = json.dumps(report.run.model_dump(mode="json"), indent=2, sort_keys=True)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src "
        "'unsafe-inline'\">"
        f"<title>privacy-audit: {e(report.run.pipeline)}</title><style>{CSS}</style></head><body>"
        f'<h1>privacy-audit report: pipeline {e(report.run.pipeline)}</h1>{_verdict(report)}<div '
        f'class="keys">{_keys(report)}</div>'
        f"<h2>Summary</h2><table>{summary}</table><p><small>Evidence: {e(EVIDENCE)}.</small></p>"
        f"<h2>Plots</h2>{_plots(report)}"
        f"{_canaries(report)}{_details(report)}"
        f"<h2>Run</h2><pre>{e(run)}</pre><p><small>schema version {report.schema_version}</small></p></body></html>\n"
    )


def render_comparison_html(reports: Sequence[AuditReport]) -> str:
    """Several reports side by side, with privacy against utility when every report has a utility figure."""
    head = "<tr><th>measure</th>" + "".join(f"<th>{e(r.run.pipeline)}</th>" for r in reports) + "</tr>"
    body = "".join(
        f"<tr><th>{e(k)}</th>" + "".join(f"<td>{e(v)}</td>" for v in values) + "</tr>"
        for k, values in comparison_rows(reports)
    )
    plot = ""
    if all(r.utility is not None for r in reports):
        plot = _img(png(privacy_utility_plot(
            labels=[r.run.pipeline for r in reports], exposure=[r.summary.max_exposure_bits for r in reports],
            accuracy=[r.utility.accuracy for r in reports if r.utility is not None],
            max_bits=max(r.summary.max_possible_exposure_bits for r in reports),
        )), "privacy against utility")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src "
        "'unsafe-inline'\">"
        f"<title>privacy-audit: comparison</title><style>{CSS}</style></head><body><h1>privacy-audit: pipelines "
        "compared</h1>"
        f"<table>{head}{body}</table><p><small>Evidence: {e(EVIDENCE)}.</small></p>{plot}</body></html>\n"
    )
