"""Reading a report: every figure checked by the code that computes it, so the gate, `compare` and the renderers
never see a value the report itself contradicts.

Types and ranges (finite numbers, p-values in [0, 1], ranks >= 1) are the schema's. Here each canary's exposure and
p-value follow from its rank (`derived.row_exposure`), ranks follow the log-probabilities, every registered figure
and summary test is computed again on the report's rows (`figures`), the summary, the intervals of the mean
exposures and the epsilon bound by the functions scoring used (`derived`), leaks and the ROC likewise; what needs
the prompt's text (which secrets it holds, similarity) is recomputed where the report stores the prompt and
secrets. A report of an older schema is first completed: its derived figures are computed from its own rows, so no
version label can drop a test its data supports. The first disagreement is a ReportError naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import fields

import numpy as np
from pydantic import ValidationError

from privacy_audit._io import read_json
from privacy_audit.canaries.spaces import known_size
from privacy_audit.errors import ReportError, first_problem
from privacy_audit.reports.schema import SCHEMA_VERSION, AuditReport, migrate
from privacy_audit.scoring.derived import (
    INTERVAL_METHOD, epsilon_of, exposure_intervals, gdp_of, row_exposure, summarise,
)
from privacy_audit.scoring.figures import (
    CanaryFigure, Design, Evidence, Value, canary_figures, check_figures, check_test, compute_tests, same,
    summary_tests,
)
from privacy_audit.scoring.leaks import summarise_leaks
from privacy_audit.scoring.membership import BLIND, BUILT_IN, MEMBERSHIP_ATTACKS, roc_of
from privacy_audit.scoring.types import CanaryScore
from privacy_audit.stats.bounds import CONFIDENCE, sampled_lower_table


def load_report(path: str | os.PathLike[str]) -> AuditReport:
    """Read a report and check it: a wrong version, a truncated or non-JSON file, a value of the wrong type
    (numbers are read strictly: "12.5" is not a number, NaN and infinities are refused) or out of range,
    and fields that contradict each other (`check_report`) are ReportErrors naming the field. A report of an
    older schema is upgraded (`schema.migrate`) and completed from its own rows (`complete`)."""
    data = read_json(path, what="report")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{path} is not a privacy-audit report (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError(f"report {path} has an invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version}, newer than this privacy-audit reads ({SCHEMA_VERSION}); "
            "upgrade privacy-audit"
        )
    try:
        report = AuditReport.model_validate_json(json.dumps(migrate(data), allow_nan=True), strict=True)
    except ValidationError as exc:
        raise ReportError(f"report {path} is malformed at {first_problem(exc)}") from None
    try:
        if version < SCHEMA_VERSION:
            report = complete(report)
        check_report(report)
    except ReportError as exc:
        raise ReportError(f"report {path} is invalid: {exc}") from None
    return report


def design_of(report: AuditReport) -> Design:
    """How the report's canaries were drawn and scored (its prompt only where it stores it)."""
    run = report.run
    return Design(mode=run.mode, space=run.space, template=run.template, derived=run.derived,
                  canary_seed=run.canary_seed, prompt=report.prompt)


def evidence_of(report: AuditReport) -> Evidence:
    """The report's rows, design, fit and the space's secrets its prompt holds (recounted where the prompt is
    stored and the space can be read), as every figure's computation takes them."""
    design = design_of(report)
    found = report.summary.secrets_in_prompt
    if report.prompt is not None and design.secret_space is not None:
        found = design.secret_space.members_in(report.prompt)
    fit = report.statistics.extrapolation if report.statistics is not None else None
    return Evidence(tuple(report.canaries), design, fit, found)


def complete(report: AuditReport) -> AuditReport:
    """An older report with every figure that follows from its rows computed by this version (figures the data
    supports that its version did not hold, the summary tests, the summary, the intervals of the mean exposures
    and the epsilon bound); what needs the model (greedy extraction) or text it does not store is kept."""
    old = evidence_of(report)
    texts_known = old.texts() is not None and report.prompt is not None
    computed: dict[CanaryFigure, tuple[Value | None, ...]] = {}
    for figure in canary_figures().values():
        if figure.measured or (figure.needs_prompt and not texts_known):
            continue
        current = Evidence(old.rows, old.design, old.fit, old.secrets_in_prompt, computed=computed)
        computed[figure] = tuple(figure.validate(v) for v in figure.compute(current))
    rows = tuple(r.with_figures({f.name: values[i] for f, values in computed.items()})
                 for i, r in enumerate(report.canaries))
    evidence = Evidence(rows, old.design, old.fit, old.secrets_in_prompt)
    rng = np.random.default_rng(report.run.canary_seed)
    size = rows[0].space_size
    stats = report.statistics
    if stats is not None:
        intervals = exposure_intervals(rows, rng)
        stats = stats.model_copy(update={
            "mean_exposure_planted_ci": intervals[0], "mean_exposure_references_ci": intervals[1],
            "interval_method": INTERVAL_METHOD, "epsilon": epsilon_of(rows, space_size=size,
                                                                       inclusion=report.run.inclusion),
            "gdp": gdp_of(rows, inclusion=report.run.inclusion)})
    summary = summarise(rows, mode=report.run.mode, space_size=size, secrets_in_prompt=evidence.secrets_in_prompt,
                        p_values=compute_tests(evidence, rng))
    return report.model_copy(update={"canaries": tuple(rows), "summary": summary, "statistics": stats})


def check_report(report: AuditReport) -> None:
    """Raise ReportError naming the first field that contradicts the others (see the module docstring)."""
    _rows(report)
    _ranks_follow_scores(report)
    _prompt(report)
    evidence = evidence_of(report)
    check_figures(evidence)
    _summary(report, evidence)
    _statistics(report)
    _leaks(report)
    _reconstruction(report)
    _run(report)


def _fail(field: str, problem: str) -> None:
    raise ReportError(f"{field} {problem}")


def _pool(report: AuditReport, c: CanaryScore, references: int) -> int:
    """The candidates a canary is ranked among: the whole space, or in sampled mode the references (and itself)."""
    return references + int(c.planted) if report.run.mode == "sampled" else c.space_size


def _rows(report: AuditReport) -> None:
    cs = report.canaries
    if not any(c.planted for c in cs):
        _fail("canaries", "include no planted canaries, so nothing can be measured or gated (is the report truncated "
                          "or tampered with?)")
    if len({c.space_size for c in cs}) > 1:
        _fail("canaries", "disagree on the size of their space")
    size = known_size(report.run.space)
    if size is not None and cs[0].space_size != size:
        _fail("canaries.space_size", f"is {cs[0].space_size:,} but the space {report.run.space} holds {size:,} secrets")
    if len({c.id for c in cs}) < len(cs):
        _fail("canaries", "repeat an id")
    references = sum(not c.planted for c in cs)
    for i, c in enumerate(cs):
        _row(report, f"canaries[{i}] ({c.id})", c, references)


def _row(report: AuditReport, where: str, c: CanaryScore, references: int) -> None:
    size, mode = c.space_size, report.run.mode
    pool = _pool(report, c, references)
    if c.rank_pool != pool:
        _fail(f"{where}.rank_pool", f"is {c.rank_pool:,} but a {mode}-mode rank is among {pool:,} candidates")
    if c.rank > pool:
        _fail(f"{where}.rank", f"{c.rank:,} lies beyond its pool of {pool:,}")
    if not c.rank_lower <= c.rank_upper <= size:
        _fail(f"{where}.rank_lower", f"..rank_upper ({c.rank_lower:,}..{c.rank_upper:,}) is not an interval within "
                                     f"the space of {size:,}")
    want = row_exposure(rank=c.rank, pool=pool, lower=c.rank_lower, upper=c.rank_upper, space_size=size)
    for name in (f.name for f in fields(want)):
        if not same(getattr(c, name), getattr(want, name)):
            _fail(f"{where}.{name}", f"is {getattr(c, name)!r} but rank {c.rank:,} of {pool:,} (interval "
                                     f"{c.rank_lower:,}..{c.rank_upper:,}) gives {getattr(want, name):.6g}")
    if (c.exposure_method == "exact") != (mode == "exact") or (
        c.exposure_method == "exact" and c.rank_lower != c.rank_upper
    ):
        _fail(f"{where}.exposure_method",
              f"is {c.exposure_method} with rank interval {c.rank_lower:,}..{c.rank_upper:,} in {mode} mode")
    if mode == "exact" and c.rank != c.rank_lower or mode == "bounded" and c.rank != c.rank_upper:
        _fail(f"{where}.rank",
              f"{c.rank:,} is not the {'exact rank' if mode == 'exact' else 'upper end of its interval'}")
    if c.guesses is not None and not c.rank_lower <= c.guesses <= c.rank_upper:
        _fail(f"{where}.guesses", f"{c.guesses:,} lies outside its rank interval {c.rank_lower:,}..{c.rank_upper:,}")


def _ranks_follow_scores(report: AuditReport) -> None:
    """Sampled ranks are recomputed from the references' log-probabilities; exact ranks must order as their
    log-probabilities do (ties share a rank) and count at least the canaries of the report at least as likely."""
    cs = report.canaries
    lp = np.array([c.logprob_bits for c in cs])
    refs = np.array([c.logprob_bits for c in cs if not c.planted])
    if report.run.mode == "sampled":
        for i, c in enumerate(cs):
            expected = int(np.sum(refs >= c.logprob_bits)) + int(c.planted)
            if c.rank != expected:
                _fail(f"canaries[{i}] ({c.id}).rank",
                      f"is {c.rank:,} but its log-probability places it at {expected:,} among the references")
    if report.run.mode != "exact":
        return
    for i, c in enumerate(cs):
        at_least = int(np.sum(lp >= c.logprob_bits))
        if c.rank < at_least:
            _fail(f"canaries[{i}] ({c.id}).rank",
                  f"is {c.rank:,} but {at_least} canaries of this report are at least as likely")
    order = np.argsort(-lp, kind="stable")
    for a, b in zip(order[:-1], order[1:]):
        tied = lp[a] == lp[b]
        if (cs[a].rank != cs[b].rank) if tied else (cs[a].rank >= cs[b].rank):
            _fail(f"canaries[{b}] ({cs[b].id}).rank",
                  f"{cs[b].rank:,} does not follow from the log-probabilities (vs {cs[a].id}, rank {cs[a].rank:,})")


def _prompt(report: AuditReport) -> None:
    """A stored prompt is the one the run hashed, and what follows from its text does: which canaries appear in it,
    and how many of the space's secrets it holds."""
    run, prompt = report.run, report.prompt
    if prompt is None:
        return
    if len(prompt) != run.prompt_chars:
        _fail("run.prompt_chars", f"is {run.prompt_chars:,} but the stored prompt has {len(prompt):,} characters")
    if hashlib.sha256(prompt.encode("utf-8")).hexdigest() != run.prompt_sha256:
        _fail("run.prompt_sha256", "is not the hash of the stored prompt")
    space = design_of(report).secret_space
    if space is None:
        return
    found = space.members_in(prompt)
    if report.summary.secrets_in_prompt is not None and report.summary.secrets_in_prompt != found:
        _fail("summary.secrets_in_prompt", f"is {report.summary.secrets_in_prompt:,} but the stored prompt holds "
                                           f"{found:,} secrets of the space")
    for c in report.canaries:
        if c.secret is not None and c.secret in space:
            there = all(part in prompt for part in space.values(c.secret).values())
            if c.in_prompt != there:
                _fail(f"canary {c.id}.in_prompt", f"is {c.in_prompt} but its secret is {'' if there else 'not '}in "
                                                  "the stored prompt")


def _summary(report: AuditReport, evidence: Evidence) -> None:
    """The summary as `derived.summarise` makes it from the rows, and each summary test computed again."""
    s = report.summary
    planted = [c for c in report.canaries if c.planted]
    if s.secrets_in_prompt is not None and s.secrets_in_prompt > planted[0].space_size:
        _fail("summary.secrets_in_prompt", f"is {s.secrets_in_prompt:,}, more than the {planted[0].space_size:,} "
                                           "secrets of the space")
    want = summarise(report.canaries, mode=report.run.mode, space_size=planted[0].space_size,
                     secrets_in_prompt=s.secrets_in_prompt, p_values=s.p_values)
    for name in type(s).model_fields:
        got, expected = getattr(s, name), getattr(want, name)
        if name != "p_values" and not same(got, expected):
            _fail(f"summary.{name}", f"is {got!r} but its canaries give {expected!r}")
    rng = np.random.default_rng(0)
    for test in summary_tests().values():
        check_test(test, test.of(s), test.compute(evidence, rng))


def _statistics(report: AuditReport) -> None:
    """The intervals of the mean exposures drawn again from the canary seed, the epsilon bound computed again, the
    sampled lower ranks the gate's false alarms read, and the extrapolation fit's ranges."""
    st = report.statistics
    if st is None:
        return
    rows = report.canaries
    size = rows[0].space_size
    if st.interval_method != INTERVAL_METHOD:
        _fail("statistics.interval_method", f"is {st.interval_method!r}; this version computes {INTERVAL_METHOD!r}")
    planted_ci, refs_ci = exposure_intervals(rows, np.random.default_rng(report.run.canary_seed))
    for name, got, want in (("mean_exposure_planted_ci", st.mean_exposure_planted_ci, planted_ci),
                            ("mean_exposure_references_ci", st.mean_exposure_references_ci, refs_ci)):
        if (got is None) != (want is None) or got is not None and want is not None and not (
                same(got[0], want[0]) and same(got[1], want[1])):
            _fail(f"statistics.{name}", f"is {got} but the canaries' exposures give {want}")
    if st.epsilon is not None:
        want_eps = epsilon_of(rows, space_size=size, inclusion=report.run.inclusion)
        for f in fields(want_eps):
            if not _equal(getattr(st.epsilon, f.name), getattr(want_eps, f.name)):
                _fail(f"statistics.epsilon.{f.name}", f"is {getattr(st.epsilon, f.name)!r} but the canaries' ranks "
                                                      f"give {getattr(want_eps, f.name)!r}")
    want_gdp = gdp_of(rows, inclusion=report.run.inclusion) if st.gdp is not None else None
    if st.gdp is not None and want_gdp is None:
        _fail("statistics.gdp", "is there without randomized inclusion")
    if st.gdp is not None and want_gdp is not None:
        for f in fields(want_gdp):
            if not _equal(getattr(st.gdp, f.name), getattr(want_gdp, f.name)):
                _fail(f"statistics.gdp.{f.name}", f"is {getattr(st.gdp, f.name)!r} but the canaries' scores give "
                                                  f"{getattr(want_gdp, f.name)!r}")
    refs = sum(not c.planted for c in rows)
    table = (sampled_lower_table(sample=refs, population=size - (len(rows) - refs), space_size=size,
                                 confidence=CONFIDENCE) if report.run.mode != "exact" and refs else None)
    if st.sampled_rank_lower_by_references_above != table:
        _fail("statistics.sampled_rank_lower_by_references_above", "is not the table its references give")
    fit = st.extrapolation
    if fit is not None and not (fit.scale > 0 and 0 <= fit.ks_statistic <= 1 and 0 <= fit.ks_p_value <= 1
                                and fit.poor_fit == (fit.ks_p_value < 0.05)):
        _fail("statistics.extrapolation", "is not a skew-normal fit with a test statistic and p-value in range")


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return same(a, b) or math.isnan(a) and math.isnan(b)
    return a == b


def _leaks(report: AuditReport) -> None:
    leaks = report.leaks
    if leaks is None:
        return
    want = summarise_leaks(leaks.rows)
    for name in ("units", "verbatim_copies", "verbatim_rate", "mean_distance", "min_distance"):
        if want is None or not same(getattr(leaks, name), getattr(want, name)):
            _fail(f"leaks.{name}", f"is {getattr(leaks, name)!r} but its rows give "
                                   f"{None if want is None else getattr(want, name)!r}")
    if any(r.verbatim and r.distance != 0 for r in leaks.rows):
        _fail("leaks.rows", "mark a unit verbatim whose distance is not 0")


def _reconstruction(report: AuditReport) -> None:
    """Each membership score's ROC figures recomputed from its own scores (the code that made them); the attacks are
    registered ones, each made or listed as not run once, the loss first, over the same examples."""
    rc = report.reconstruction
    if rc is None:
        return
    names = [a.name for a in rc.attacks] + [n.name for n in rc.not_run]
    if (rc.attacks[0].name != "loss" or len(set(names)) < len(names) or not set(BUILT_IN) <= set(names)
            or not set(names) <= set(MEMBERSHIP_ATTACKS)):
        _fail("reconstruction.attacks", f"are {names}, but each registered attack appears at most once, the loss "
                                        f"first, and each of {list(BUILT_IN)} is made or listed as not run")
    scored = [*rc.attacks, *([rc.blind] if rc.blind is not None else [])]
    if rc.blind is not None and rc.blind.name != BLIND:
        _fail("reconstruction.blind.name", f"is {rc.blind.name!r}, not {BLIND!r}")
    sizes = {(len(r.member_scores), len(r.non_member_scores)) for r in scored}
    if len(sizes) != 1:
        _fail("reconstruction", "scores different numbers of members or non-members in its attacks")
    for r in scored:
        where = f"reconstruction.{r.name}"
        if not r.member_scores or not r.non_member_scores:
            _fail(where, "needs member and non-member scores")
        want = roc_of(r.name, np.array(r.member_scores + r.non_member_scores), len(r.member_scores))
        for name in ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr"):
            if not same(getattr(r, name), getattr(want, name)):
                _fail(f"{where}.{name}", f"is {getattr(r, name)!r} but its scores give {getattr(want, name)!r}")
        got_ci, want_ci = r.auc_ci, want.auc_ci
        if (got_ci is None) != (want_ci is None) or (
            got_ci is not None and want_ci is not None and not all(same(a, b) for a, b in zip(got_ci, want_ci))
        ):
            _fail(f"{where}.auc_ci", f"is {r.auc_ci} but its scores give {want.auc_ci}")
        if len(r.fpr) != len(want.fpr) or not all(same(a, b) for a, b in zip(r.fpr + r.tpr, want.fpr + want.tpr)):
            _fail(f"{where}.fpr", "and tpr are not the ROC curve of its scores")


def _run(report: AuditReport) -> None:
    run, u = report.run, report.utility
    for i, c in enumerate(run.score_checks):
        if c.passed != (c.max_difference_bits <= c.tolerance_bits):
            _fail(f"run.score_checks[{i}].passed", f"is {c.passed} for a difference of {c.max_difference_bits!r} bits "
                                                  f"and a tolerance of {c.tolerance_bits!r}")
    if u is not None:
        if u.correct > u.examples or sum(u.predicted_counts.values()) != u.examples:
            _fail("utility.correct", f"({u.correct}) and predicted_counts do not fit its {u.examples} examples")
        if not same(u.accuracy, u.correct / u.examples):
            _fail("utility.accuracy", f"is {u.accuracy!r} but its counts give {u.correct / u.examples!r}")
