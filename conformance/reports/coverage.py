"""Statement coverage: which in-scope statements the cases cite (statically) or executed (from a run)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import catalogue
from ..case import CaseSpec

EXECUTED = {"PASS", "FAIL", "NON-STRICT", "INFORMATIONAL"}


@dataclass(frozen=True)
class CaseInfo:
    module: str
    name: str
    spec: CaseSpec
    doc: str


def discover_cases(cases_dir: Path) -> list[CaseInfo]:
    """Import every ``test_*.py`` under ``cases_dir`` and return its @case functions."""
    found: list[CaseInfo] = []
    sys.path.insert(0, str(cases_dir))
    try:
        for path in sorted(cases_dir.rglob("test_*.py")):
            name = f"_mqttc_cases_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for attr, fn in sorted(vars(module).items()):
                case_spec = getattr(fn, "mqtt_case", None)
                if attr.startswith("test") and isinstance(case_spec, CaseSpec):
                    found.append(CaseInfo(str(path.relative_to(cases_dir.parent)), attr, case_spec,
                                          (fn.__doc__ or "").strip()))
    finally:
        sys.path.remove(str(cases_dir))
    return found


def known_gaps() -> dict[tuple[str, str], str]:
    """Reasons for in-scope statements without a case: (version, id) -> reason."""
    text = resources.files("conformance.data").joinpath("not-covered.csv").read_text(encoding="utf-8")
    return {(row["version"], row["id"]): row["reason"] for row in csv.DictReader(text.splitlines())}


@dataclass
class Coverage:
    version: str
    in_scope: list[catalogue.Statement]
    covered: set[str]
    reasons: dict[str, str]  # uncovered id -> why

    @property
    def ratio(self) -> float:
        return len(self.covered) / len(self.in_scope) if self.in_scope else 1.0

    def by_section(self) -> dict[str, tuple[int, int]]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for st in self.in_scope:
            totals[st.chapter][1] += 1
            totals[st.chapter][0] += st.id in self.covered
        return {k: (v[0], v[1]) for k, v in sorted(totals.items(), key=lambda kv: _section_key(kv[0]))}


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in section.split(".") if p.isdigit())


def static_coverage(cases: list[CaseInfo], version: str) -> Coverage:
    cited = {sid for c in cases for sid in c.spec.statements.get(version, ())}
    return _coverage(version, cited, {})


def run_coverage(results: dict[str, Any], version: str) -> Coverage:
    """Coverage by executed cases of a results.json; an unexecuted statement's reason is its cases' messages."""
    executed: set[str] = set()
    why: dict[str, str] = {}
    for record in results.get("cases", []):
        if record["mqtt_version"] != version:
            continue
        failed = record.get("precondition")
        if isinstance(failed, dict):  # the case never reached its statements; its setup step ran
            if failed.get("statement"):
                executed.add(failed["statement"])
            for sid in record["statements"]:
                why.setdefault(sid, f"not reached: {record['message']}")
            continue
        for sid in record["statements"]:
            if record["verdict"] in EXECUTED:
                executed.add(sid)
            else:
                why.setdefault(sid, f"{record['verdict']}: {record['message'] or record['name']}")
    return _coverage(version, executed, why)


def _coverage(version: str, covered: set[str], why: dict[str, str]) -> Coverage:
    statements = [s for s in catalogue.load(version).values() if s.in_scope]
    gaps = known_gaps()
    reasons = {}
    for st in statements:
        if st.id not in covered:
            reasons[st.id] = why.get(st.id) or gaps.get((version, st.id)) or "no case yet"
    return Coverage(version, statements, covered & {s.id for s in statements}, reasons)


def format_coverage(cov: Coverage) -> str:
    lines = [f"MQTT {cov.version}: {len(cov.covered)}/{len(cov.in_scope)} in-scope statements covered "
             f"({cov.ratio:.1%})"]
    for section, (done, total) in cov.by_section().items():
        lines.append(f"  {section:<6} {done:>3}/{total:<3}")
    if cov.reasons:
        lines.append("  not covered:")
        for st in cov.in_scope:
            if st.id in cov.reasons:
                lines.append(f"    {st.id:<16} {cov.reasons[st.id]}")
    return "\n".join(lines)
