"""The gate's verdict: a checked report compared with thresholds, the chance rule always, and every set rule."""

from __future__ import annotations

from privacy_audit.errors import InputError
from privacy_audit.gate.registry import RULES, Measurement, Rule, Thresholds, outcome
from privacy_audit.reports.schema import AuditReport, GateOutcome, RuleOutcome, SkippedRule
from privacy_audit.reports.text import checks
from privacy_audit.reports.validate import check_report
from privacy_audit.scoring.figures import summary_tests


def apply_gate(report: AuditReport, thresholds: Thresholds | None = None) -> GateOutcome:
    """Check the report (`check_report`: every number valid and consistent), then the chance rule and every
    set threshold rule (and `max_epsilon` at the teacher's claimed epsilon, `max_mu` at its claimed mu, where it
    states one and the rule is not set); references never fail it. A rule whose data the report lacks is listed as
    skipped.

    The gate fails closed: an invalid report, or one with no planted canaries, is an error, not a pass. Without
    thresholds, the chance rule alone runs (as `privacy-audit gate REPORT` with no flags).
    """
    thresholds = Thresholds() if thresholds is None else thresholds
    check_report(report)
    planted = {c.id for c in report.canaries if c.planted}
    unknown = sorted(set(thresholds.overrides) - planted)
    if unknown:
        raise InputError(f"gate overrides name canaries not planted in this report: {', '.join(unknown)}")
    claim = report.run.claim
    if claim is not None and thresholds.limits.get("max_epsilon") is None:  # the teacher is held to its promise
        thresholds = thresholds.merged(max_epsilon=claim.epsilon)
    if claim is not None and claim.mu is not None and thresholds.limits.get("max_mu") is None:  # like with like
        thresholds = thresholds.merged(max_mu=claim.mu)
    results = [chance_rule(report, alpha=thresholds.alpha), *score_check_rules(report)]
    skipped: list[SkippedRule] = []
    wanted = {name for name in RULES if thresholds.limits.get(name) is not None}
    wanted |= {name for rules in thresholds.overrides.values() for name in rules}
    for name in sorted(wanted, key=list(RULES).index):
        r = RULES[name]
        why = r.missing(report) if r.missing is not None else None
        if why is not None:
            skipped.append(SkippedRule(rule=name, reason=why))
            continue
        results += _checked(r, report, thresholds)
    failures = tuple(o.message for o in results if not o.passed)
    return GateOutcome(passed=not failures, failures=failures, thresholds=thresholds.as_dict(), rules=tuple(results),
                       skipped=tuple(skipped))


def _checked(r: Rule, report: AuditReport, thresholds: Thresholds) -> list[RuleOutcome]:
    """A rule's outcomes; a per-canary rule runs per canary with that canary's own limit (its override)."""
    limit = thresholds.limits.get(r.name)
    if not r.per_canary or not thresholds.overrides:
        return r.outcomes(report, limit, thresholds) if limit is not None else []
    out = []
    for c in (c for c in report.canaries if c.planted):
        own = thresholds.overrides.get(c.id, {}).get(r.name, limit)
        if own is not None:
            out += [o for o in r.outcomes(report, own, thresholds) if o.subject == c.id]
    return out


def chance_rule(report: AuditReport, *, alpha: float) -> RuleOutcome:
    """Fail when the planted canaries are more exposed than chance, at family-wise level `alpha`.

    The family is each planted canary's exact rank test (p = rank / pool) and every registered summary test that
    counts toward chance (`scoring.figures`; built in: the exact verbatim test of the planted canaries found in
    the prompt, and with references the permutation tests of planted against references by score and by
    similarity to the prompt); Bonferroni over the family needs no independence, so a prompt that never saw a
    canary fails with probability at most `alpha`, and one that copies a canary fails under every tokenizer and
    scoring mode.
    """
    planted = [c for c in report.canaries if c.planted]
    family = [c.p_value for c in planted]
    for test in summary_tests().values():
        record = test.of(report.summary)
        if test.chance and record is not None:
            family.append(record.p)
    adjusted = min(1.0, len(family) * min(family))
    what = f"Bonferroni-adjusted p-value that the planted canaries are exposed by chance ({len(family)} exact tests)"
    return outcome("chance", Measurement("report", adjusted, alpha), alpha, upper=False, what=what)




def score_check_rules(report: AuditReport) -> list[RuleOutcome]:
    """Scores computed twice must agree: a failed stability or precision check fails the gate (the report's
    numbers cannot be trusted), whatever the thresholds."""
    out = []
    for c in report.run.score_checks:
        what = f"largest difference of scores computed twice ({c.check}: {c.note})"
        out.append(
            outcome(
                f"{c.check}_check", Measurement("report", c.max_difference_bits, None), c.tolerance_bits, upper=True,
                what=what, unit=" bits",
            )
        )
    return out


def verdict_lines(outcome: GateOutcome, name: str) -> list[str]:
    """The verdict as a CI log reads it: one line per checked rule naming the report and the rule, then the verdict
    with the rules that failed (`name`: the report's file, or its folder)."""
    lines = [f"{'ok  ' if r.passed else 'FAIL'} {name} [{r.rule}] {r.message}" for r in outcome.rules]
    failed = list(dict.fromkeys(r.rule for r in outcome.rules if not r.passed))
    if outcome.passed:
        return [*lines, f"gate passed: {name}, {checks(len(outcome.rules))} ({', '.join(_names(outcome))})"]
    return [*lines, f"gate failed: {name}, {len(outcome.failures)} of {checks(len(outcome.rules))} failed "
                    f"({', '.join(failed)})"]


def _names(outcome: GateOutcome) -> list[str]:
    return list(dict.fromkeys(r.rule for r in outcome.rules))
