"""junit.xml: one <testcase> per case, one <testsuite> per MQTT version, for CI test dashboards.

Verdict mapping (so that the counts agree with the exit code):

- FAIL -> <failure>, ERROR -> <error>; UNSUPPORTED -> <skipped>; PASS -> passed.
- NON-STRICT and INFORMATIONAL pass with a note (they are not violations); under --strict a NON-STRICT
  case is a <failure>, as it fails the run.
- A known deviation (FAIL listed in the target profile) is <skipped>, so CI stays green on what the
  profile documents.
- With --baseline: a failure the baseline accepts is <skipped> ("accepted by the baseline"); a NEW one
  stays a <failure> with "NEW" in its message; a case that passed in the baseline and is UNSUPPORTED now
  is a <failure> of type NOW-UNSUPPORTED (it fails the run). Each carries a ``baseline`` property.
- An interrupted run gets an ``interrupted`` property and one <error> test case "run interrupted".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from .model import BAD, Case, Run, run_of, version_key
from .transcript import as_text

# XML 1.0 cannot carry most control characters, even escaped; broker bytes in messages may contain them.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    return _INVALID_XML.sub("\ufffd", "" if value is None else str(value))


def classname(case: Case) -> str:
    """'mqtt5_0.cases.test_3_2_connack': version first so that CI groups per version, then module."""
    source = case.module.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")
    source = source or (f"section_{case.section.replace('.', '_')}" if case.section else "unknown")
    return f"mqtt{case.version.replace('.', '_')}.{source}"


def testname(case: Case) -> str:
    """The case id without its statements (they are a property): citing another statement must not
    make a CI dashboard see a new test."""
    return case.short_id


def _testcase(parent: ET.Element, case: Case, run: Run) -> Counter[str]:
    node = ET.SubElement(parent, "testcase", classname=xml_text(classname(case)), name=xml_text(testname(case)),
                         time=f"{case.duration_s:.3f}")
    props = ET.SubElement(node, "properties")
    mark = run.baseline_mark(case)
    pairs = [("statements", " ".join(case.statements)), ("verdict", case.verdict),
             ("mqtt_version", case.version), ("level", case.level), ("section", case.section),
             ("known_deviation", str(case.known_deviation).lower())]
    if run.baseline is not None:
        pairs.append(("baseline", mark or ("accepted" if case.verdict in BAD else "unchanged")))
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=xml_text(value))
    message = xml_text(case.message or case.verdict)
    transcript = xml_text(as_text(case.transcript, case.version))
    if mark == "NOW UNSUPPORTED":
        text = xml_text(f"passed in the baseline, UNSUPPORTED now: {case.message}")
        ET.SubElement(node, "failure", message=text, type="NOW-UNSUPPORTED").text = text
        return Counter(failures=1)
    if mark == "NEW":  # the baseline decides, even over the profile: a NEW case fails the run
        text = xml_text(f"NEW {case.verdict} (not in the baseline): {message}")
        kind = "error" if case.verdict == "ERROR" else "failure"
        ET.SubElement(node, kind, message=text, type=case.verdict).text = f"{text}\n\n{transcript}"
        return Counter(errors=1) if kind == "error" else Counter(failures=1)
    if run.baseline is not None and case.verdict in ("FAIL", "ERROR"):
        ET.SubElement(node, "skipped", message=xml_text(f"accepted by the baseline: {case.verdict}")).text = message
        return Counter(skipped=1)
    if case.known_deviation and case.verdict == "FAIL":
        reason = case.deviation_reason or "listed in the target profile"
        ET.SubElement(node, "skipped", message=xml_text(f"known deviation: {reason}")).text = message
        return Counter(skipped=1)
    if case.verdict == "NON-STRICT" and bool(run.options.get("strict")):
        ET.SubElement(node, "failure", message=message, type="NON-STRICT").text = f"{message}\n\n{transcript}"
        return Counter(failures=1)
    if case.verdict == "FAIL":
        ET.SubElement(node, "failure", message=message, type="FAIL").text = f"{message}\n\n{transcript}"
        return Counter(failures=1)
    if case.verdict == "ERROR":
        ET.SubElement(node, "error", message=message, type="ERROR").text = f"{message}\n\n{transcript}"
        return Counter(errors=1)
    if case.verdict == "UNSUPPORTED":
        ET.SubElement(node, "skipped", message=message)
        return Counter(skipped=1)
    if case.verdict in ("NON-STRICT", "INFORMATIONAL"):
        note = {"NON-STRICT": "passes, but only non-strictly (fails under --strict)",
                "INFORMATIONAL": "informational: the spec leaves this to the implementation"}[case.verdict]
        if case.known_deviation:
            note += f"; known deviation: {case.deviation_reason or 'listed in the target profile'}"
        ET.SubElement(node, "system-out").text = xml_text(f"{case.verdict}: {note}\n{case.message}")
    return Counter()


def render_junit(results: dict[str, Any]) -> bytes:
    run = run_of(results)
    root = ET.Element("testsuites", name=xml_text(f"{run.tool_name} {run.target_name}"))
    totals: Counter[str] = Counter()
    versions = sorted({c.version for c in run.cases}, key=version_key)
    for version in versions:
        cases = [c for c in run.cases if c.version == version]
        suite = ET.SubElement(root, "testsuite", name=xml_text(f"MQTT {version}"), timestamp=run.start.isoformat(),
                              hostname=xml_text(run.target_name))
        _suite_properties(suite, run)
        counts: Counter[str] = Counter()
        for case in cases:
            counts += _testcase(suite, case, run)
        _set_counts(suite, len(cases), counts, sum(c.duration_s for c in cases))
        totals += counts
    tests = len(run.cases)
    if run.interrupted:
        totals += _interrupted_suite(root, run)
        tests += 1
    _set_counts(root, tests, totals, run.duration_s)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _interrupted_suite(root: ET.Element, run: Run) -> Counter[str]:
    """One <error> so that a CI dashboard cannot show an interrupted run as green."""
    suite = ET.SubElement(root, "testsuite", name="mqtt-conformance run", timestamp=run.start.isoformat(),
                          hostname=xml_text(run.target_name))
    _suite_properties(suite, run)
    node = ET.SubElement(suite, "testcase", classname="mqtt_conformance", name="run interrupted", time="0.000")
    text = f"the run was interrupted after {len(run.cases)} cases; the remaining cases did not run"
    ET.SubElement(node, "error", message=text, type="INTERRUPTED").text = text
    _set_counts(suite, 1, Counter(errors=1), 0.0)
    return Counter(errors=1)


def _suite_properties(suite: ET.Element, run: Run) -> None:
    props = ET.SubElement(suite, "properties")
    pairs = [("target", run.target_name), ("tool", f"{run.tool_name} {run.tool_version}"),
             ("started_at", run.started_at), ("interrupted", str(run.interrupted).lower())]
    pairs += [(f"url_{v}", u) for v, u in sorted(run.urls.items())]
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=xml_text(value))


def _set_counts(node: ET.Element, tests: int, counts: Counter[str], seconds: float) -> None:
    node.set("tests", str(tests))
    for key in ("failures", "errors", "skipped"):
        node.set(key, str(counts[key]))
    node.set("time", f"{seconds:.3f}")


def write_junit(results: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "junit.xml"
    path.write_bytes(render_junit(results))
    return path
