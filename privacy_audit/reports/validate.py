"""Every number of a report checked against the raw data it was derived from, so the gate, `compare` and
the renderers never see a value the report itself contradicts. Pure numpy (no scipy, no model).

Types and ranges (finite numbers, p-values in [0, 1], ranks >= 1) are the schema's; here are the
relations between fields: a canary's exposure and p-value follow from its rank and pool, its rank
interval lies in the space, ranks follow the log-probabilities they were computed from, and each
summary figure, exact p-value, leak count and ROC figure is recomputed from the per-canary and
per-example rows. The first disagreement is a ReportError naming the field.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from privacy_audit.canaries.spaces import known_size
from privacy_audit.errors import ReportError
from privacy_audit.reports.schema import AuditReport
from privacy_audit.scoring.exposure import null_mean_exposure
from privacy_audit.scoring.permutation import (
    conservative_ranks, rank_sum_cells, rank_sum_p_value, rank_zero_p_value, verbatim_count_p_value,
)
from privacy_audit.scoring.roc import auc, tpr_at_fpr
from privacy_audit.scoring.types import CanaryScore, PValueRecord

# Bits and p-values are recomputed in float64 from the same inputs: they agree to rounding.
TOLERANCE = 1e-9
# Exact rank-sum p-values are recomputed when their table has at most this many cells (milliseconds).
RECOMPUTE_CELLS = 20_000_000


def check_report(report: AuditReport) -> None:
    """Raise ReportError naming the first field that contradicts the others (see the module docstring)."""
    _canaries(report)
    _summary(report)
    _statistics(report)
    _leaks(report)
    _reconstruction(report)
    _run(report)


def _fail(field: str, problem: str) -> None:
    raise ReportError(f"{field} {problem}")


def _close(a: float, b: float, tolerance: float = TOLERANCE) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _pool(report: AuditReport, c: CanaryScore, references: int) -> int:
    """The candidates a canary is ranked among: the whole space, or in sampled mode the references (and itself)."""
    return references + int(c.planted) if report.run.mode == "sampled" else c.space_size


def _canaries(report: AuditReport) -> None:
    cs = report.canaries
    if not any(c.planted for c in cs):
        _fail(
            "canaries",
            "include no planted canaries, so nothing can be measured or gated (is the report truncated or tampered "
            "with?)",
        )
    if len({c.space_size for c in cs}) > 1:
        _fail("canaries", "disagree on the size of their space")
    size = known_size(report.run.space)
    if size is not None and cs[0].space_size != size:
        _fail("canaries.space_size", f"is {cs[0].space_size:,} but the space {report.run.space} holds {size:,} secrets")
    if len({c.id for c in cs}) < len(cs):
        _fail("canaries", "repeat an id")
    references = sum(not c.planted for c in cs)
    for i, c in enumerate(cs):
        _canary(report, f"canaries[{i}] ({c.id})", c, references)
    _ranks_follow_scores(report)
    _protocol_ranks(report)


def _canary(report: AuditReport, where: str, c: CanaryScore, references: int) -> None:
    size, mode = c.space_size, report.run.mode
    pool = _pool(report, c, references)
    if c.rank_pool != pool:
        _fail(f"{where}.rank_pool", f"is {c.rank_pool:,} but a {mode}-mode rank is among {pool:,} candidates")
    if c.rank > pool:
        _fail(f"{where}.rank", f"{c.rank:,} lies beyond its pool of {pool:,}")
    if not _close(c.exposure_bits, math.log2(pool) - math.log2(c.rank)):
        _fail(
            f"{where}.exposure_bits",
            f"is {c.exposure_bits!r} but rank {c.rank:,} of {pool:,} gives {math.log2(pool / c.rank):.6g}",
        )
    if not _close(c.p_value, c.rank / pool):
        _fail(f"{where}.p_value", f"is {c.p_value!r} but rank {c.rank:,} of {pool:,} gives {c.rank / pool:.6g}")
    if not c.rank_lower <= c.rank_upper <= size:
        _fail(
            f"{where}.rank_lower",
            f"..rank_upper ({c.rank_lower:,}..{c.rank_upper:,}) is not an interval within the space of {size:,}",
        )
    bits = math.log2(size)
    if not _close(c.exposure_bits_lower, bits - math.log2(c.rank_upper)) or not _close(
        c.exposure_bits_upper, bits - math.log2(c.rank_lower)
    ):
        _fail(
            f"{where}.exposure_bits_lower",
            f"..exposure_bits_upper do not follow from its rank interval {c.rank_lower:,}..{c.rank_upper:,}",
        )
    if (c.exposure_method == "exact") != (mode == "exact") or (
        c.exposure_method == "exact" and c.rank_lower != c.rank_upper
    ):
        _fail(
            f"{where}.exposure_method",
            f"is {c.exposure_method} with rank interval {c.rank_lower:,}..{c.rank_upper:,} in {mode} mode",
        )
    if mode == "exact" and c.rank != c.rank_lower or mode == "bounded" and c.rank != c.rank_upper:
        _fail(
            f"{where}.rank", f"{c.rank:,} is not the {'exact rank' if mode == 'exact' else 'upper end of its interval'}"
        )
    if c.guesses is not None and not c.rank_lower <= c.guesses <= c.rank_upper:
        _fail(f"{where}.guesses", f"{c.guesses:,} lies outside its rank interval {c.rank_lower:,}..{c.rank_upper:,}")
    if c.extrapolated_exposure_bits is not None and c.extrapolated_exposure_bits > bits * (1 + TOLERANCE):
        _fail(f"{where}.extrapolated_exposure_bits", f"exceeds log2|S| = {bits:.6g}")
    if c.verbatim_p_value is not None and not c.in_prompt and c.verbatim_p_value != 1.0:
        _fail(f"{where}.verbatim_p_value", f"is {c.verbatim_p_value!r} for a canary that does not appear in the prompt")
    if not c.planted and (
        c.greedy_extracted is not None or c.protocol_rank is not None or c.verbatim_p_value is not None
    ):
        _fail(where, "is a reference but carries a planted canary's greedy extraction or protocol rank")


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
                _fail(
                    f"canaries[{i}] ({c.id}).rank",
                    f"is {c.rank:,} but its log-probability places it at {expected:,} among the references",
                )
    if report.run.mode != "exact":
        return
    for i, c in enumerate(cs):
        at_least = int(np.sum(lp >= c.logprob_bits))
        if c.rank < at_least:
            _fail(
                f"canaries[{i}] ({c.id}).rank",
                f"is {c.rank:,} but {at_least} canaries of this report are at least as likely",
            )
    order = np.argsort(-lp, kind="stable")
    for a, b in zip(order[:-1], order[1:]):
        tied = lp[a] == lp[b]
        if (cs[a].rank != cs[b].rank) if tied else (cs[a].rank >= cs[b].rank):
            _fail(
                f"canaries[{b}] ({cs[b].id}).rank",
                f"{cs[b].rank:,} does not follow from the log-probabilities (vs {cs[a].id}, rank {cs[a].rank:,})",
            )


def _protocol_ranks(report: AuditReport) -> None:
    """The paper's rank of each planted canary: references scoring at least as high (length-normalised)."""
    planted = [c for c in report.canaries if c.planted]
    refs = [c for c in report.canaries if not c.planted]
    if not refs:
        if any(c.protocol_rank is not None for c in planted):
            _fail("canaries", "carry protocol ranks but the report has no references")
        return
    if any(c.normalised_logprob_bits is None for c in report.canaries):
        _fail("canaries", "lack the length-normalised scores their protocol ranks come from")
    ranks = conservative_ranks(canary_scores=np.array([c.normalised_logprob_bits for c in planted]),
                               reference_scores=np.array([c.normalised_logprob_bits for c in refs]))
    for c, r in zip(planted, ranks):
        if c.protocol_rank != int(r):
            _fail(
                f"canary {c.id}.protocol_rank",
                f"is {c.protocol_rank} but its score ranks it {int(r)} among the references",
            )


def _summary(report: AuditReport) -> None:
    s, cs = report.summary, report.canaries
    planted = [c for c in cs if c.planted]
    refs = [c for c in cs if not c.planted]
    pool = len(refs) + 1 if report.run.mode == "sampled" else planted[0].space_size
    greedy = [c.greedy_extracted for c in planted if c.greedy_extracted is not None]
    guesses = [c.guesses for c in planted if c.guesses is not None]
    expected: dict[str, float | int | None] = {
        "planted_count": len(planted), "reference_count": len(refs),
        "max_exposure_bits": max(c.exposure_bits for c in planted),
        "mean_exposure_planted": float(np.mean([c.exposure_bits for c in planted])),
        "mean_exposure_references": float(np.mean([c.exposure_bits for c in refs])) if refs else None,
        "null_mean_exposure_bits": null_mean_exposure(pool), "max_possible_exposure_bits": math.log2(pool),
        "min_rank_planted": min(c.rank for c in planted), "planted_in_prompt": sum(c.in_prompt for c in planted),
        "greedy_extracted": sum(greedy) if greedy else None, "min_guesses_planted": min(guesses) if guesses else None,
    }
    if refs:
        ranks = [c.protocol_rank or 0 for c in planted]
        expected |= {"protocol_mean_rank": float(np.mean(ranks)), "protocol_null_mean_rank": len(refs) / 2,
                     "protocol_rank_zero_count": sum(r == 0 for r in ranks)}
    for name, value in expected.items():
        _same(f"summary.{name}", getattr(s, name), value)
    _p_values(report, planted, refs)


def _same(field: str, got: float | int | None, want: float | int | None, source: str = "canaries") -> None:
    if (got is None) != (want is None) or got is not None and want is not None and not _close(float(got), float(want)):
        _fail(field, f"is {got!r} but {source if '.' in source else f'its {source} give'} {want!r}")


def _p_values(report: AuditReport, planted: Sequence[CanaryScore], refs: Sequence[CanaryScore]) -> None:
    """Each p-value in [0, 1] with its log10; exact ones recomputed (to RECOMPUTE_CELLS); the summary's copies equal."""
    s = report.summary
    similar = all(c.similarity is not None for c in report.canaries)
    names = ({"planted_vs_references", "protocol_mean_rank", "protocol_rank_zero"} if refs else set()) | (
        {"planted_in_prompt"} if s.secrets_in_prompt is not None else set()) | (
        {"similarity"} if refs and similar else set())
    if set(s.p_values) != names:
        _fail(
            "summary.p_values",
            f"hold {sorted(s.p_values) or 'none'}; this report's design has {sorted(names) or 'none'}",
        )
    for name, record in s.p_values.items():
        _log10_agrees(f"summary.p_values.{name}", record)
    _verbatim(report, planted)
    _similarity(planted, refs)
    if not refs:
        for name in ("planted_vs_references_p_value", "protocol_mean_rank_p_value", "protocol_rank_zero_p_value"):
            _same(f"summary.{name}", getattr(s, name), None)
        return
    raw = (np.array([c.logprob_bits for c in planted]), np.array([c.logprob_bits for c in refs]))
    norm = (
        np.array([c.normalised_logprob_bits for c in planted], dtype=float),
        np.array([c.normalised_logprob_bits for c in refs], dtype=float),
    )
    zero = rank_zero_p_value(planted_scores=norm[0], reference_scores=norm[1])
    _same("summary.p_values.protocol_rank_zero.p", s.p_values["protocol_rank_zero"].p, zero.p)
    tests = {"planted_vs_references": raw, "protocol_mean_rank": norm}
    if "similarity" in s.p_values:
        tests["similarity"] = (np.array([c.similarity for c in planted], dtype=float),
                               np.array([c.similarity for c in refs], dtype=float))
    for key, (a, b) in tests.items():
        record = s.p_values[key]
        if (
            record.method == "exact permutation"
            and rank_sum_cells(planted_scores=a, reference_scores=b) <= RECOMPUTE_CELLS
        ):
            again = rank_sum_p_value(planted_scores=a, reference_scores=b, rng=np.random.default_rng(0))
            if not _close(record.p, again.p, 1e-6):
                _fail(f"summary.p_values.{key}.p", f"is {record.p!r} but the canaries' scores give {again.p:.6g}")
    for name, key in (
        ("planted_vs_references_p_value", "planted_vs_references"),
        ("protocol_mean_rank_p_value", "protocol_mean_rank"), ("protocol_rank_zero_p_value", "protocol_rank_zero"),
    ):
        _same(f"summary.{name}", getattr(s, name), s.p_values[key].p, f"summary.p_values.{key}.p")


def _similarity(planted: Sequence[CanaryScore], refs: Sequence[CanaryScore]) -> None:
    """A planted canary's similarity p-value is its rank among the references' similarities."""
    others = np.array([c.similarity for c in refs if c.similarity is not None], dtype=float)
    for c in planted:
        if c.similarity_p_value is None:
            continue
        if c.similarity is None or others.size != len(refs):
            _fail(f"canary {c.id}.similarity_p_value", "is given without the similarities it is computed from")
        want = (1 + np.sum(others >= c.similarity)) / (others.size + 1)
        _same(f"canary {c.id}.similarity_p_value", c.similarity_p_value, float(want), "the references' similarities")


def _verbatim(report: AuditReport, planted: Sequence[CanaryScore]) -> None:
    """The verbatim tests follow from how many of the space's secrets the prompt holds."""
    found = report.summary.secrets_in_prompt
    if found is None:
        return
    size = planted[0].space_size
    if found > size:
        _fail("summary.secrets_in_prompt", f"is {found:,}, more than the {size:,} secrets of the space")
    again = verbatim_count_p_value(
        report.summary.planted_in_prompt, planted=len(planted), in_prompt=found, space_size=size
    )
    _same("summary.p_values.planted_in_prompt.p", report.summary.p_values["planted_in_prompt"].p, again.p, "the counts")
    for c in planted:
        if c.in_prompt and c.verbatim_p_value is not None and not _close(c.verbatim_p_value, found / size):
            _fail(
                f"canary {c.id}.verbatim_p_value",
                f"is {c.verbatim_p_value!r} but {found:,} of {size:,} secrets appear in the prompt",
            )


def _log10_agrees(field: str, record: PValueRecord) -> None:
    if record.p > 0 and abs(math.log10(record.p) - record.log10_p) > (1e-6 if record.p > 1e-300 else 1e-2):
        _fail(f"{field}.log10_p", f"is {record.log10_p!r} but p is {record.p!r}")
    if record.p == 0 and record.log10_p > -300:
        _fail(f"{field}.log10_p", f"is {record.log10_p!r} for a p-value of 0")


def _statistics(report: AuditReport) -> None:
    st = report.statistics
    if st is None:
        return
    refs = sum(not c.planted for c in report.canaries)
    top = report.summary.max_possible_exposure_bits * (1 + TOLERANCE)
    for name in ("mean_exposure_planted_ci", "mean_exposure_references_ci"):
        ci = getattr(st, name)
        if ci is not None and not 0 <= ci[0] <= ci[1] <= top:
            _fail(f"statistics.{name}", f"{ci} is not an interval within [0, {top:.6g}] bits")
    table = st.sampled_rank_lower_by_references_above
    if table is not None:
        size = report.canaries[0].space_size
        if len(table) != refs + 1 or any(a > b for a, b in zip(table, table[1:])) or table[-1] > size:
            _fail(
                "statistics.sampled_rank_lower_by_references_above",
                f"must rise from 1 to at most {size:,} over {refs + 1} counts",
            )
    eps = st.epsilon
    if eps is not None:
        if eps.threshold_rank is not None and eps.threshold_rank not in eps.grid:
            _fail("statistics.epsilon.threshold_rank", f"{eps.threshold_rank} is not on its grid")
        if eps.hits is not None and eps.hits > eps.canaries:
            _fail("statistics.epsilon.hits", f"{eps.hits} exceeds its {eps.canaries} canaries")


def _leaks(report: AuditReport) -> None:
    leaks = report.leaks
    if leaks is None:
        return
    if len(leaks.rows) != leaks.units:
        _fail("leaks.units", f"is {leaks.units} but the report lists {len(leaks.rows)} units")
    copies = sum(r.verbatim for r in leaks.rows)
    distances = [r.distance for r in leaks.rows]
    _same("leaks.verbatim_copies", leaks.verbatim_copies, copies, "rows")
    _same("leaks.verbatim_rate", leaks.verbatim_rate, copies / leaks.units, "rows")
    _same("leaks.mean_distance", leaks.mean_distance, float(np.mean(distances)), "rows")
    _same("leaks.min_distance", leaks.min_distance, min(distances), "rows")
    if any(r.verbatim and r.distance != 0 for r in leaks.rows):
        _fail("leaks.rows", "mark a unit verbatim whose distance is not 0")


def _reconstruction(report: AuditReport) -> None:
    rc = report.reconstruction
    if rc is None:
        return
    if not rc.member_scores or not rc.non_member_scores:
        _fail("reconstruction", "needs member and non-member scores")
    members, non_members = np.array(rc.member_scores), np.array(rc.non_member_scores)
    _same("reconstruction.auc", rc.auc, auc(member_scores=members, non_member_scores=non_members), "scores")
    _same(
        "reconstruction.tpr_at_1pct_fpr", rc.tpr_at_1pct_fpr,
        tpr_at_fpr(member_scores=members, non_member_scores=non_members, fpr=0.01), "scores",
    )
    if rc.tpr_at_0_1pct_fpr is not None:
        _same("reconstruction.tpr_at_0_1pct_fpr", rc.tpr_at_0_1pct_fpr,
              tpr_at_fpr(member_scores=members, non_member_scores=non_members, fpr=0.001), "scores")
    if rc.auc_ci is not None and not rc.auc_ci[0] <= rc.auc_ci[1]:
        _fail("reconstruction.auc_ci", f"{rc.auc_ci} is not an interval")
    ok = len(rc.fpr) == len(rc.tpr) >= 2 and all(np.diff(rc.fpr) >= 0) and all(np.diff(rc.tpr) >= 0)
    if not ok or (rc.fpr[0], rc.tpr[0], rc.fpr[-1], rc.tpr[-1]) != (0.0, 0.0, 1.0, 1.0):
        _fail("reconstruction.fpr", "and tpr are not a ROC curve from (0, 0) to (1, 1)")


def _run(report: AuditReport) -> None:
    run, u = report.run, report.utility
    for i, c in enumerate(run.score_checks):
        if c.passed != (c.max_difference_bits <= c.tolerance_bits):
            _fail(f"run.score_checks[{i}].passed", f"is {c.passed} for a difference of {c.max_difference_bits!r} bits "
                                                  f"and a tolerance of {c.tolerance_bits!r}")
    if report.prompt is not None:
        if len(report.prompt) != run.prompt_chars:
            _fail(
                "run.prompt_chars",
                f"is {run.prompt_chars:,} but the stored prompt has {len(report.prompt):,} characters",
            )
        if hashlib.sha256(report.prompt.encode("utf-8")).hexdigest() != run.prompt_sha256:
            _fail("run.prompt_sha256", "is not the hash of the stored prompt")
    if u is not None:
        if u.correct > u.examples or sum(u.predicted_counts.values()) != u.examples:
            _fail("utility.correct", f"({u.correct}) and predicted_counts do not fit its {u.examples} examples")
        _same("utility.accuracy", u.accuracy, u.correct / u.examples, "counts")
