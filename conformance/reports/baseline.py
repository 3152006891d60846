"""Baselines: accept today's failures, fail CI only on new ones.

A baseline records the FAIL / ERROR / NON-STRICT cases of one run. Comparing a later run against it
sorts every bad case into new / still failing, and every recorded case that is now fine into fixed.
Cases are matched on (case id without worker-specific parts, MQTT version), never on messages,
which carry timings and so change from run to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .model import BAD, run_of, severity_rank

BASELINE_KIND = "mqtt-conformance-baseline"
GOOD = frozenset({"PASS", "INFORMATIONAL"})

Key = tuple[str, str]


def normalize_case_id(case_id: str) -> str:
    """Drop what pytest-xdist adds per worker ('[gw3] ' prefixes, '@gw3' suffixes, 'gw3' parameters)."""
    text = re.sub(r"^\[gw\d+\]\s*", "", case_id.strip())
    text = re.sub(r"@gw\d+$", "", text)

    def params(match: re.Match[str]) -> str:
        kept = [p for p in match.group(1).split("-") if not re.fullmatch(r"gw\d+", p)]
        return f"[{'-'.join(kept)}]" if kept else ""

    return re.sub(r"\[([^\[\]]*)\]$", params, text)


def _bad_cases(results: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for case in run_of(results).cases:
        if case.verdict in BAD:
            key = (normalize_case_id(case.id), case.version)
            out[key] = {
                "id": key[0], "mqtt_version": case.version, "verdict": case.verdict,
                "statements": case.statements, "message": case.message, "known_deviation": case.known_deviation,
            }
    return out


def make_baseline(results: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready baseline of the run's FAIL / ERROR / NON-STRICT cases, plus the ids of its PASS cases
    (so that a later run can tell a case that stopped being supported from one never supported)."""
    run = run_of(results)
    cases = sorted(_bad_cases(results).values(), key=lambda c: (c["mqtt_version"], c["id"]))
    passed = sorted({(normalize_case_id(c.id), c.version) for c in run.cases if c.verdict == "PASS"})
    return {
        "schema": 1, "kind": BASELINE_KIND, "target": run.target_name, "date": run.started_at,
        "tool": {"name": run.tool_name, "version": run.tool_version}, "cases": cases,
        "passed": [{"id": i, "mqtt_version": v} for i, v in passed],
    }


@dataclass(frozen=True)
class Change:
    case: str
    mqtt_version: str
    verdict: str  # now; "NOT RUN" when the case is absent from the run
    previous: str | None  # in the baseline; None when it was not recorded there
    statements: tuple[str, ...] = ()
    message: str = ""

    def line(self) -> str:
        stmts = ", ".join(self.statements) or "no statement"
        was = f"was {self.previous}, now {self.verdict}" if self.previous else self.verdict
        message = f": {self.message}" if self.message else ""
        return f"[{self.mqtt_version}] {self.case} ({stmts}) {was}{message}"


@dataclass
class BaselineComparison:
    new_failures: list[Change] = field(default_factory=list)
    still_failing: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)  # improvements: now PASS or INFORMATIONAL
    not_run: list[Change] = field(default_factory=list)  # recorded but absent or UNSUPPORTED now
    now_unsupported: list[Change] = field(default_factory=list)  # PASS in the baseline, UNSUPPORTED now
    baseline_target: str = ""
    baseline_date: str = ""

    @property
    def exit_code(self) -> int:
        """1 on a new failure, and on a case that passed in the baseline and is UNSUPPORTED now: a
        capability turned off loses coverage the baseline vouched for (record a new baseline to accept it)."""
        return 1 if self.new_failures or self.now_unsupported else 0

    def ids(self) -> dict[str, list[str]]:
        """The case ids per change, for results.json's ``baseline`` block and the renderers' marks."""
        return {"new_failures_ids": [c.case for c in self.new_failures], "fixed_ids": [c.case for c in self.fixed],
                "now_unsupported_ids": [c.case for c in self.now_unsupported]}

    def describe(self) -> str:
        head = (f"Baseline of {self.baseline_target or 'unknown target'} ({self.baseline_date or 'undated'}): "
                f"{len(self.new_failures)} new failure(s), {len(self.still_failing)} still failing, "
                f"{len(self.fixed)} fixed, {len(self.now_unsupported)} now unsupported, {len(self.not_run)} not run.")
        lines = [head]
        for title, changes in (("NEW FAILURE", self.new_failures), ("NOW UNSUPPORTED", self.now_unsupported),
                               ("FIXED", self.fixed), ("NOT RUN", self.not_run)):
            lines += [f"  {title}: {c.line()}" for c in changes]
        if self.still_failing:
            lines.append(f"  still failing (accepted by the baseline): {len(self.still_failing)} case(s)")
        return "\n".join(lines)


def compare_to_baseline(results: dict[str, Any], baseline: dict[str, Any]) -> BaselineComparison:
    """Sort this run's bad cases against the baseline; ``exit_code`` is 1 when any is new (or got worse)."""
    recorded, passed = _recorded(baseline)
    current = {(normalize_case_id(c.id), c.version): c for c in run_of(results).cases}
    out = BaselineComparison(baseline_target=str(baseline.get("target") or ""),
                             baseline_date=str(baseline.get("date") or ""))
    for key, case in sorted(current.items()):
        if case.verdict not in BAD:
            continue
        old = recorded.get(key)
        previous = str(old.get("verdict") or "FAIL") if old else None
        change = Change(key[0], key[1], case.verdict, previous, tuple(case.statements), case.message)
        # A case that got worse (NON-STRICT -> FAIL, FAIL -> ERROR) is news, not an accepted failure.
        if previous is None or severity_rank(case.verdict) < severity_rank(previous):
            out.new_failures.append(change)
        else:
            out.still_failing.append(change)
    for key, old in sorted(recorded.items()):
        now = current.get(key)
        statements = tuple(str(s) for s in old.get("statements") or ())
        previous = str(old.get("verdict") or "FAIL")
        if now is None:
            out.not_run.append(Change(key[0], key[1], "NOT RUN", previous, statements))
        elif now.verdict in GOOD:
            out.fixed.append(Change(key[0], key[1], now.verdict, previous, statements))
        elif now.verdict not in BAD:
            out.not_run.append(Change(key[0], key[1], now.verdict, previous, statements))
    for key in sorted(passed):
        now = current.get(key)
        if now is not None and now.verdict == "UNSUPPORTED":
            out.now_unsupported.append(Change(key[0], key[1], now.verdict, "PASS", tuple(now.statements),
                                              now.message))
    return out


def _key(entry: dict[str, Any]) -> Key:
    return normalize_case_id(str(entry["id"])), str(entry.get("mqtt_version") or "")


def _recorded(baseline: dict[str, Any]) -> tuple[dict[Key, dict[str, Any]], set[Key]]:
    """The baseline's accepted bad cases and its PASS cases; a results.json works as a baseline too
    (its good cases are then not mistaken for accepted failures)."""
    bad: dict[Key, dict[str, Any]] = {}
    passed: set[Key] = set()
    for entry in baseline.get("cases") or []:
        if not (isinstance(entry, dict) and entry.get("id")):
            continue
        verdict = str(entry.get("verdict") or "FAIL")
        if verdict == "PASS":
            passed.add(_key(entry))
        elif verdict in BAD:
            bad[_key(entry)] = entry
    passed |= {_key(e) for e in baseline.get("passed") or [] if isinstance(e, dict) and e.get("id")}
    return bad, passed
