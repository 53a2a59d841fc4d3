"""JUnit XML: one test case per planted canary and one per gate rule, for CI test-report viewers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from privacy_audit.reports.schema import AuditReport
from privacy_audit.reports.text import clean

_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _x(text: object) -> str:
    """Text that XML 1.0 can hold: control sequences and characters it forbids removed."""
    return _NOT_XML.sub("", clean(str(text)))


def render_junit(report: AuditReport) -> str:
    """A <testsuites> document; without a gate outcome in the report every canary case passes with its numbers."""
    result = report.gate
    suites = ET.Element("testsuites", name="privacy-audit")
    failing: dict[str, list[str]] = {}
    if result is not None:
        for rule in result.rules:
            if not rule.passed:
                failing.setdefault(rule.subject, []).append(rule.message)
    canaries = ET.SubElement(suites, "testsuite", name=f"canaries ({_x(report.run.pipeline)})")
    n_fail = 0
    for c in report.canaries:
        if not c.planted:
            continue
        case = ET.SubElement(canaries, "testcase", classname="privacy_audit.canaries", name=_x(c.id), time="0")
        props = ET.SubElement(case, "properties")
        for key in ("exposure_bits", "rank", "rank_pool", "p_value", "guesses", "greedy_extracted"):
            ET.SubElement(props, "property", name=key, value=_x(getattr(c, key)))
        if c.id in failing:
            n_fail += 1
            msg = "; ".join(failing[c.id])
            ET.SubElement(case, "failure", message=_x(msg), type="GateFailure").text = _x(msg)
    canaries.set("tests", str(sum(1 for c in report.canaries if c.planted)))
    canaries.set("failures", str(n_fail))
    canaries.set("errors", "0")
    if result is not None:
        rules = ET.SubElement(suites, "testsuite", name="gate rules")
        for rule in result.rules:
            case = ET.SubElement(
                rules, "testcase", classname=f"privacy_audit.gate.{_x(rule.rule)}",
                name=_x(f"{rule.rule}[{rule.subject}]"), time="0",
            )
            if not rule.passed:
                ET.SubElement(case, "failure", message=_x(rule.message), type="GateFailure").text = _x(rule.message)
        for skip in result.skipped:
            case = ET.SubElement(
                rules, "testcase", classname=f"privacy_audit.gate.{_x(skip.rule)}", name=_x(skip.rule), time="0"
            )
            ET.SubElement(case, "skipped", message=_x(f"{skip.rule}: {skip.reason}"))
        rules.set("tests", str(len(result.rules) + len(result.skipped)))
        rules.set("failures", str(sum(not r.passed for r in result.rules)))
        rules.set("skipped", str(len(result.skipped)))
        rules.set("errors", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
