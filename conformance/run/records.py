"""Per-case records and the results.json file every report is rendered from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .. import catalogue
from ..about import __version__
from ..case import CaseSpec
from ..codec.errors import HarnessError
from ..grading import NotDetected, explicit, not_detected_text
from ..setup_steps import precondition, precondition_text
from ..verdicts import (
    MUST,
    BrokerGone,
    BrokerViolation,
    Informational,
    NonStrict,
    Unsupported,
    Verdict,
)
from .profile import Deviation

SCHEMA = 1
# the run's results.json document, the report folder and the baseline comparison's text, for the end-of-run
# summary on the terminal (plugin, console)
SUMMARY = pytest.StashKey[tuple[dict[str, Any], Path, str]]()


@dataclass
class Grade:
    verdict: Verdict
    message: str = ""
    precondition: dict[str, Any] | None = None  # a failed setup step: {"step", "statement", "message"}


def grade(excinfo: pytest.ExceptionInfo | None, spec: CaseSpec, version: str | None = None) -> Grade:
    """Whose fault an exception is: the broker's (FAIL/NON-STRICT), ours (ERROR), or a grade. A broker
    violation in a setup step the case does not test itself names that step (see setup_steps)."""
    if excinfo is None:
        return Grade(Verdict.PASS)
    exc = excinfo.value
    message = str(exc).strip()
    if isinstance(exc, Unsupported):
        return Grade(Verdict.UNSUPPORTED, message)
    if isinstance(exc, pytest.skip.Exception):
        return Grade(Verdict.UNSUPPORTED, getattr(exc, "msg", message))
    if isinstance(exc, NonStrict):
        return Grade(Verdict.NON_STRICT, message)
    if isinstance(exc, Informational):
        return Grade(Verdict.INFORMATIONAL, message)
    if isinstance(exc, BrokerGone | HarnessError):
        return Grade(Verdict.ERROR, message)
    if isinstance(exc, NotDetected) and not explicit(version, spec.statements.get(version or "", ())):
        return Grade(Verdict.NON_STRICT, not_detected_text(message, version, ()))  # conformance/grading.py
    if isinstance(exc, AssertionError):
        if not isinstance(exc, BrokerViolation):
            message = _assertion_text(excinfo)
        verdict = Verdict.FAIL if spec.level == MUST else Verdict.NON_STRICT
        failed = precondition(exc, spec.statements.get(version or "", ()), version)
        if failed is not None:
            return Grade(verdict, precondition_text(failed), failed)
        return Grade(verdict, message)
    return Grade(Verdict.ERROR, f"harness error: {type(exc).__name__}: {message}")


def _assertion_text(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value).strip()
    if text:
        return text.splitlines()[0] if len(text) > 500 else text
    entry = excinfo.traceback[-1]
    return f"assertion failed at {Path(str(entry.path)).name}:{entry.lineno + 1}"


RUN_ONLY = {"run_only": True}  # a record of a pytest run has this key; the fuzzer's records have not


@dataclass(kw_only=True)
class CaseRecord:
    """One case of results.json (docs/results-schema.md), its keys in the order of the file."""

    id: str
    name: str
    module: str
    section: str
    mqtt_version: str
    statements: list[str]
    level: str
    verdict: str
    known_deviation: bool = False
    deviation: dict[str, str] | None = None
    duration_s: float
    started: float = field(default=0.0, metadata=RUN_ONLY)  # epoch seconds: with "worker", a timeline
    worker: str = field(default="main", metadata=RUN_ONLY)
    message: str = ""
    precondition: dict[str, Any] | None = field(default=None, metadata=RUN_ONLY)  # a failed setup step
    nodes: list[str] | None = field(default=None, metadata=RUN_ONLY)  # cluster cases: the nodes used
    description: str = ""
    expectation: str = ""
    timer: bool = False
    transcript: list[dict[str, Any]] = field(default_factory=list)
    pcap: str | None = None
    crash: dict[str, Any] | None = field(default=None, metadata=RUN_ONLY)  # see supervisor.reconcile
    variant: str | None = field(default=None, metadata=RUN_ONLY)  # see variants
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other producers, last (the fuzzer's rule)

    def to_dict(self, run: bool = True) -> dict[str, Any]:
        """The results.json entry; ``run`` False: a record no pytest run made (a fuzz finding), without the
        keys only a run has (started, worker, precondition, nodes, crash, variant)."""
        entry = {f.name: getattr(self, f.name) for f in fields(self)
                 if f.name != "extra" and (run or not f.metadata.get("run_only"))}
        return {**entry, **self.extra}


def deviation_fields(deviation: Deviation | None) -> dict[str, Any]:
    """A record's ``known_deviation`` and ``deviation``, for the profile's deviation a case matched (or None)."""
    entry = None
    if deviation is not None:
        entry = {"statement": deviation.statement, "reason": deviation.reason, "evidence": deviation.evidence}
    return {"known_deviation": deviation is not None, "deviation": entry}


def section_of(spec: CaseSpec, version: str) -> str:
    first = spec.statements[version][0]
    statement = catalogue.get(first, version)
    return statement.chapter if statement else ""


class ResultsFileError(Exception):
    """A results.json that cannot be read (the user's input, not the harness's fault)."""


def load_results(path: str | Path) -> dict[str, Any]:
    """A run's results.json, given the file or its report directory."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsFileError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ResultsFileError(f"{path} is not a readable results file: {exc}") from None


def write_results(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def summarize(cases: list[dict[str, Any]]) -> dict[str, int]:
    counts = {v.value: 0 for v in Verdict}
    for record in cases:
        counts[record["verdict"]] += 1
    return counts


def exit_code(cases: list[dict[str, Any]], strict: bool) -> int:
    bad = {Verdict.FAIL.value, Verdict.ERROR.value} | ({Verdict.NON_STRICT.value} if strict else set())
    return 1 if any(r["verdict"] in bad and not r.get("known_deviation") for r in cases) else 0


def document(target: dict[str, Any], started: float, duration: float, options: dict[str, Any],
             cases: list[dict[str, Any]], capabilities: dict[str, Any], strict: bool,
             interrupted: bool = False) -> dict[str, Any]:
    """The results.json document. An interrupted run (Ctrl-C) keeps the records it has and exits 2:
    the cases that did not run are not a success."""
    cases = sorted(cases, key=lambda r: (r["mqtt_version"], r["module"], r["id"]))
    return {
        "schema": SCHEMA,
        "tool": {"name": "mqtt-conformance", "version": __version__},
        "target": {**target, "capabilities": capabilities},
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration, 3),
        "options": options,
        "summary": summarize(cases),
        "exit_code": 2 if interrupted else exit_code(cases, strict),
        "interrupted": interrupted,
        "cases": cases,
    }
