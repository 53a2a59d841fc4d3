"""The built-in gate rules: each measures one figure of a checked report and says how often a prompt that
never saw a canary fails it (its false-alarm probability, from the exact nulls of `scoring`)."""

from __future__ import annotations

import math
from typing import Any

from privacy_audit.canaries.spaces import is_charset_spec
from privacy_audit.gate.registry import Measurement, Thresholds, rule
from privacy_audit.reports.schema import AuditReport
from privacy_audit.scoring.derived import epsilon_of, gdp_of, total_leak
from privacy_audit.scoring.measures import protocol_mean_rank
from privacy_audit.scoring.membership import strongest
from privacy_audit.stats.permutation import hypergeometric_tail, none_in_top
from privacy_audit.stats.roc import auc_above_null


def _planted(report: AuditReport) -> list[Any]:
    return [c for c in report.canaries if c.planted]


def _interval(c: Any) -> str:
    if c.exposure_method == "exact":
        return f" (rank {c.rank_lower:,} of {c.space_size:,}, exact)"
    span = f"rank {c.rank_lower:,} to {c.rank_upper:,} of {c.space_size:,}"
    return f" (upper end of the {c.exposure_method} interval: {span})"


def _exposure_false_alarm(report: AuditReport, limit_bits: float) -> float:
    """P(some planted canary's exposure, at the upper end of its interval, exceeds `limit_bits`) for a prompt
    that never saw them.

    Exact mode: the planted secrets are a uniform draw from the space, so it is the chance that one lands
    among the ranks that fail. Otherwise a canary's upper end is at most the one its references give
    (`Statistics.sampled_rank_lower_by_references_above`), so the rule can only fail when some canary has
    at most k* references at least as likely, where k* is the largest count whose sampled lower rank is
    still below |S| 2^-limit; with shared references that happens exactly when the top k*+1 of all planted
    and references are not all references. Without references no false-alarm bound below 1 holds.
    """
    planted = _planted(report)
    size, k = planted[0].space_size, len(planted)
    if report.run.mode == "exact":
        failing = max(0, math.ceil(size * 2.0 ** (-limit_bits)) - 1)
        return 1.0 - none_in_top(population=size, drawn=k, top=failing)
    table = report.statistics.sampled_rank_lower_by_references_above if report.statistics is not None else None
    if not table:
        return 1.0
    cut = size * 2.0 ** (-limit_bits)
    failing = sum(1 for lower in table if lower < cut)  # the table rises with the count, so these are counts 0..k*
    refs = len(table) - 1
    return 1.0 - none_in_top(population=refs + k, drawn=k, top=failing) if failing <= refs else 1.0


@rule("max_exposure_bits", flag="--max-exposure", kind=float, low=0, high=math.inf, per_canary=True, what="exposure",
      unit=" bits", help="Fail when a planted canary's exposure (upper end of its interval) exceeds BITS.")
def _max_exposure(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    alarm = _exposure_false_alarm(report, limit) if not thresholds.overrides else None
    return [Measurement(c.id, c.exposure_bits_upper, alarm, _interval(c)) for c in _planted(report)]


@rule("max_exposure_fraction", flag="--max-exposure-fraction", kind=float, low=0, high=1, per_canary=True,
      what="exposure as a fraction of log2|S|", help="Same, as a fraction of log2|S| (0..1).")
def _max_exposure_fraction(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    out = []
    for c in _planted(report):
        bits = math.log2(c.space_size) if c.space_size > 1 else 0.0
        alarm = _exposure_false_alarm(report, limit * bits) if not thresholds.overrides else None
        out.append(Measurement(c.id, c.exposure_bits_upper / bits if bits else 0.0, alarm, _interval(c)))
    return out


@rule(
    "max_greedy_extracted",
    flag="--max-greedy-extracted",
    kind=int,
    low=0,
    high=math.inf,
    what="planted secrets recovered by greedy decoding",
    help="Fail when more planted secrets are recovered by greedy decoding.",
    missing=lambda r: (
        None
        if r.summary.greedy_extracted is not None
        else "the report has no extraction (score without --no-extraction)"
    ),
)
def _max_greedy(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    """A prompt that never saw the canaries decodes one text whatever they are, so at most one distinct
    secret can match it, each of the k with probability 1/|S|."""
    planted = _planted(report)
    alarm = min(1.0, len(planted) / planted[0].space_size) if limit == 0 else 0.0
    return [Measurement("report", float(report.summary.greedy_extracted or 0), alarm)]


@rule(
    "min_guesses", flag="--min-guesses", kind=int, low=1, high=math.inf, upper=False,
    what="guesses to extract the secret",
    help="Fail when a planted secret may be found in fewer most-likely-first guesses (unknown counts: the rank's lower "
         "end).",
)
def _min_guesses(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    """Guesses are the canary's rank once known; otherwise the lower end of its rank interval, so a canary
    the search did not reach fails closed."""
    planted = _planted(report)
    alarm = None
    if report.run.mode == "exact":
        alarm = 1.0 - none_in_top(population=planted[0].space_size, drawn=len(planted), top=int(limit) - 1)
    out = []
    for c in planted:
        value, detail = (
            (c.guesses, "")
            if c.guesses is not None
            else (c.rank_lower, " (at least: the lower end of its rank interval)")
        )
        out.append(Measurement(c.id, float(value), alarm, detail))
    return out


def _no_references(report: AuditReport) -> str | None:
    return (
        None
        if report.summary.protocol_rank_zero_count is not None
        else "the report has no references for the paper protocol"
    )


@rule("max_rank_zero", flag="--max-rank-zero", kind=int, low=0, high=math.inf, what="paper-protocol rank-0 count",
      help="Paper protocol: fail when more canaries have rank 0.", missing=_no_references)
def _max_rank_zero(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    """With no ties, P(at least j of k canaries above all N references) = C(k, j) / C(k + N, j)."""
    s = report.summary
    k, refs, j = s.planted_count, s.reference_count, int(limit) + 1
    alarm = none_in_top(population=k + refs, drawn=refs, top=j) if j <= k else 0.0
    return [Measurement("report", float(s.protocol_rank_zero_count or 0), alarm)]


@rule("min_mean_rank_p_value", flag="--min-mean-rank-p", kind=float, low=0, high=1, upper=False,
      what="paper-protocol mean-rank p-value", help="Paper protocol: fail when the mean-rank p-value is lower.",
      missing=_no_references)
def _min_mean_rank_p(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    record = protocol_mean_rank.of(report.summary)
    return [Measurement("report", record.p if record is not None else 0.0, limit)]


@rule(
    "max_verbatim", flag="--max-verbatim", kind=int, low=0, high=math.inf,
    what="planted secrets verbatim in the teaching prompt",
    help="Fail when more planted secrets appear verbatim in the prompt.",
)
def _max_verbatim(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    """For fixed-length secrets a prompt that never saw them holds at most one secret per character position,
    a set fixed before the canaries were drawn, so the count is at most hypergeometric."""
    alarm = None
    if is_charset_spec(report.run.space):
        planted = _planted(report)
        size = planted[0].space_size
        alarm = hypergeometric_tail(
            population=size, marked=min(report.run.prompt_chars, size), drawn=len(planted), more_than=int(limit)
        )
    return [Measurement("report", float(report.summary.planted_in_prompt), alarm)]


def _no_leaks(report: AuditReport) -> str | None:
    return None if report.leaks is not None else "the pipeline generated no text to compare with private text"


@rule(
    "max_verbatim_rate", flag="--max-verbatim-rate", kind=float, low=0, high=1,
    what="generated units copied verbatim (rate)",
    help="Fail when more generated units copy private text verbatim (rate).", missing=_no_leaks,
)
def _max_verbatim_rate(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    return [Measurement("report", report.leaks.verbatim_rate, None)] if report.leaks is not None else []


@rule(
    "max_fuzzy_fraction", flag="--max-fuzzy-fraction", kind=float, low=0, high=1,
    what="fraction of generated units near private text",
    help="Fail when more generated units lie within --fuzzy-distance.", missing=_no_leaks,
)
def _max_fuzzy_fraction(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    if report.leaks is None:
        return []
    near = sum(r.distance < thresholds.fuzzy_distance for r in report.leaks.rows) / report.leaks.units
    return [Measurement("report", near, None, f" (distance under {thresholds.fuzzy_distance:g})")]


@rule(
    "max_auc", flag="--max-auc", kind=float, low=0, high=1, what="largest membership-attack AUC",
    help="Fail when a membership attack's AUC (the largest; the blind control aside) exceeds this.",
    missing=lambda r: None if r.reconstruction is not None else "the report has no reconstruction (score with --data)",
)
def _max_auc(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    recon = report.reconstruction
    if recon is None:
        return []
    best, n = strongest(recon), len(recon.attacks)
    # the largest of n attacks' AUCs: at most n times one attack's chance of passing the limit (Bonferroni)
    alarm = min(1.0, n * auc_above_null(members=len(best.member_scores), non_members=len(best.non_member_scores),
                                        limit=limit))
    return [Measurement("report", best.auc, alarm, f" (the {best.name} attack, the largest of {n})")]


def _ceiling(most: float, limit: float) -> str:
    """What a total leak of these canaries would certify, and whether that could pass the limit at all."""
    return f"a total leak of these canaries would certify {most:.3g}" + (
        ", so they cannot fail this rule: plant more" if most <= limit else "")


@rule(
    "max_epsilon", flag="--max-epsilon", kind=float, low=0, high=100, what="audited epsilon lower bound",
    help="Fail when the canaries certify an epsilon above this (a teacher's claimed epsilon; a report whose teacher "
         "states a claim is held to it without this flag).",
)
def _max_epsilon(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    # The bound is recomputed at the claim's delta (0 without a claim): a teacher that keeps an (epsilon, delta)
    # promise makes it exceed epsilon with probability at most 1 - its confidence, whatever its mechanism.
    claim = report.run.claim
    delta = claim.delta if claim is not None else 0.0
    size = report.canaries[0].space_size
    bound = epsilon_of(report.canaries, space_size=size, inclusion=report.run.inclusion, delta=delta)
    most = epsilon_of(total_leak(report.canaries), space_size=size, inclusion=report.run.inclusion, delta=delta)
    stated = "" if claim is None else f"; claimed ({claim.epsilon:g}, {claim.delta:g}), {claim.source}"
    return [Measurement("report", bound.epsilon, 1 - bound.confidence,
                        f" ({bound.confidence:.0%} {bound.design} bound at delta = {delta:g}{stated}; "
                        f"{_ceiling(most.epsilon, limit)})")]


@rule(
    "max_mu", flag="--max-mu", kind=float, low=0, high=64, what="audited mu lower bound (f-DP, Gaussian)",
    help="Fail when canaries planted by coins reject mu-GDP above this (a claim in Gaussian DP: an accounted "
         "Gaussian pipeline's mu holds a report to it without this flag).",
    missing=lambda r: None if r.run.inclusion == "randomized" else (
        "the f-DP bound needs canaries planted by coins (canaries generate --randomized-inclusion)"),
)
def _max_mu(report: AuditReport, limit: float, thresholds: Thresholds) -> list[Measurement]:
    # mu against mu: the bound holds for any mechanism, so a teacher that keeps a mu-GDP promise makes it exceed mu
    # with probability at most 1 - its confidence; its epsilon reading would assume a Gaussian mechanism.
    bound = gdp_of(report.canaries, inclusion=report.run.inclusion)
    if bound is None:
        return []
    most = gdp_of(total_leak(report.canaries), inclusion=report.run.inclusion)
    claim = report.run.claim
    stated = "" if claim is None or claim.mu is None else f"; claimed mu {claim.mu:.4g}, {claim.source}"
    return [Measurement("report", bound.mu, 1 - bound.confidence,
                        f" ({bound.confidence:.0%} f-DP bound, Mahloujifar et al.{stated}; "
                        f"{_ceiling(most.mu if most else 0.0, limit)})")]
