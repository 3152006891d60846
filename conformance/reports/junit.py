"""junit.xml: one <testcase> per case, one <testsuite> per MQTT version, for CI test dashboards.

Known deviations are reported as skipped so that CI stays green on behaviour the profile already
documents; NON-STRICT and INFORMATIONAL pass with a note, since they are not violations.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from .model import Case, Run, run_of, version_key
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
    return f"{case.short_id} [{', '.join(case.statements)}]" if case.statements else case.short_id


def _testcase(parent: ET.Element, case: Case) -> Counter[str]:
    node = ET.SubElement(parent, "testcase", classname=xml_text(classname(case)), name=xml_text(testname(case)),
                         time=f"{case.duration_s:.3f}")
    props = ET.SubElement(node, "properties")
    for name, value in (("statements", " ".join(case.statements)), ("verdict", case.verdict),
                        ("mqtt_version", case.version), ("level", case.level), ("section", case.section),
                        ("known_deviation", str(case.known_deviation).lower())):
        ET.SubElement(props, "property", name=name, value=xml_text(value))
    message = xml_text(case.message or case.verdict)
    transcript = xml_text(as_text(case.transcript, case.version))
    if case.known_deviation and case.verdict == "FAIL":
        reason = case.deviation_reason or "listed in the target profile"
        ET.SubElement(node, "skipped", message=xml_text(f"known deviation: {reason}")).text = message
        return Counter(skipped=1)
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
            counts += _testcase(suite, case)
        _set_counts(suite, len(cases), counts, sum(c.duration_s for c in cases))
        totals += counts
    _set_counts(root, len(run.cases), totals, run.duration_s)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _suite_properties(suite: ET.Element, run: Run) -> None:
    props = ET.SubElement(suite, "properties")
    pairs = [("target", run.target_name), ("tool", f"{run.tool_name} {run.tool_version}"),
             ("started_at", run.started_at)]
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
