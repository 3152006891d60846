"""A tolerant read-only view of ``results.json`` shared by every renderer.

Renderers never index the raw dict directly: results may come from an older or half-finished run, so
every optional field gets a default here and unknown verdicts are treated as ERROR.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..catalogue import VERSIONS, Statement, load
from ..codec.version import Version
from ..verdicts import SEVERITY, Verdict, worst
from .coverage import EXECUTED

# Display order (most interesting first); NOT_COVERED is a statement state, not a case verdict.
VERDICTS: tuple[str, ...] = ("FAIL", "ERROR", "NON-STRICT", "PASS", "INFORMATIONAL", "UNSUPPORTED")
NOT_COVERED = "NOT COVERED"
BAD = frozenset({"FAIL", "ERROR", "NON-STRICT"})

# Chapter headings shortened to the packet/topic name; used when the catalogue has no row for the chapter.
_COMMON_TITLES = {
    "1.5": "Data representation", "3.1": "CONNECT", "3.2": "CONNACK", "3.3": "PUBLISH", "3.4": "PUBACK",
    "3.5": "PUBREC", "3.6": "PUBREL", "3.7": "PUBCOMP", "3.8": "SUBSCRIBE", "3.9": "SUBACK",
    "3.10": "UNSUBSCRIBE", "3.11": "UNSUBACK", "3.12": "PINGREQ", "3.13": "PINGRESP", "3.14": "DISCONNECT",
    "3.15": "AUTH", "4.1": "Session state", "4.3": "Quality of Service levels", "4.4": "Message delivery retry",
    "4.5": "Message receipt", "4.6": "Message ordering", "4.7": "Topic Names and Topic Filters",
    "6": "WebSocket transport", "7": "Conformance", "7.1": "Conformance targets",
}
CHAPTER_TITLES: dict[str, dict[str, str]] = {
    Version.V311: {**_COMMON_TITLES, "2.2": "Fixed header", "2.3": "Variable header", "4.8": "Handling errors"},
    Version.V50: {
        **_COMMON_TITLES, "2.1": "Structure of a Control Packet", "2.2": "Variable header",
        "4.2": "Network connections", "4.8": "Subscriptions", "4.9": "Flow control", "4.10": "Request / Response",
        "4.11": "Server redirection", "4.12": "Enhanced authentication", "4.13": "Handling errors",
    },
}


def chapter_of(section: str) -> str:
    return ".".join(section.split(".")[:2]) if section else ""


def chapter_title(chapter: str, version: str) -> str:
    return CHAPTER_TITLES.get(version, {}).get(chapter, "")


def section_key(section: str) -> tuple[int, ...]:
    """Numeric sort key so that 3.10 comes after 3.9; non-numeric parts sort last."""
    return tuple(int(p) if p.isdigit() else 10_000 for p in section.split(".")) if section else (10_000,)


def version_key(version: str) -> tuple[int, ...]:
    return section_key(version)


def verdict_of(value: Any) -> str:
    try:
        return Verdict(value).value
    except ValueError:
        return Verdict.ERROR.value


def catalogue(version: str) -> dict[str, Statement]:
    return load(version) if version in VERSIONS else {}


@dataclass
class Case:
    raw: dict[str, Any]
    index: int
    id: str
    name: str
    module: str
    section: str
    version: str
    statements: list[str]
    level: str
    verdict: str
    known_deviation: bool
    deviation: dict[str, Any] | None
    duration_s: float
    message: str
    description: str
    expectation: str
    transcript: list[dict[str, Any]]
    pcap: str | None

    @property
    def chapter(self) -> str:
        return chapter_of(self.section)

    @property
    def short_id(self) -> str:
        """The test function part of the node id, parameters included."""
        return self.id.rsplit("::", 1)[-1]

    @property
    def deviation_reason(self) -> str:
        dev = self.deviation or {}
        return str(dev.get("reason") or "") if isinstance(dev, dict) else str(dev)


def _case(raw: dict[str, Any], index: int) -> Case:
    case_id = str(raw.get("id") or raw.get("name") or f"case-{index}")
    version = str(raw.get("mqtt_version") or "")
    if not version:  # older results: the version only survives as the [x.y] parameter
        match = re.search(r"\[(?:.*-)?(3\.1\.1|5\.0)(?:-.*)?\]$", case_id)
        version = match.group(1) if match else "?"
    statements = [str(s) for s in raw.get("statements") or []]
    section = str(raw.get("section") or "")
    if not section and statements:
        stmt = catalogue(version).get(statements[0])
        section = stmt.chapter if stmt else chapter_of(_section_from_id(statements[0]))
    transcript = raw.get("transcript") or []
    verdict, message = verdict_of(raw.get("verdict")), str(raw.get("message") or "")
    if verdict != raw.get("verdict"):  # say so rather than silently turning it into ERROR
        message = f"(results.json verdict {raw.get('verdict')!r} is not a known verdict) {message}".rstrip()
    return Case(
        raw=raw, index=index, id=case_id, name=str(raw.get("name") or case_id.rsplit("::", 1)[-1]),
        module=str(raw.get("module") or (case_id.split("::", 1)[0] if "::" in case_id else "")),
        section=section, version=version, statements=statements, level=str(raw.get("level") or ""),
        verdict=verdict, known_deviation=bool(raw.get("known_deviation")),
        deviation=raw.get("deviation") or None, duration_s=float(raw.get("duration_s") or 0.0),
        message=message, description=str(raw.get("description") or ""),
        expectation=whole_expectation(str(raw.get("expectation") or ""), str(raw.get("description") or "")),
        transcript=[e for e in transcript if isinstance(e, dict)], pcap=raw.get("pcap") or None,
    )


def whole_expectation(expectation: str, description: str) -> str:
    """The expectation as a whole sentence: older runs took the docstring's first line, which a wrapped
    docstring cuts mid-sentence; then use the first paragraph's first sentence instead."""
    first = " ".join(description.split("\n\n")[0].split())
    if not expectation or not first.startswith(" ".join(expectation.split())) or len(first) <= len(expectation):
        return expectation
    match = re.match(r"(.+?[.!?])(\s|$)", first)
    return match.group(1) if match else first


@dataclass
class Run:
    raw: dict[str, Any]
    tool_name: str
    tool_version: str
    target_name: str
    urls: dict[str, str]
    started_at: str
    start: datetime
    duration_s: float
    options: dict[str, Any]
    exit_code: int | None
    cases: list[Case]

    @property
    def counts(self) -> Counter[str]:
        """Cases per verdict, every verdict present (zeros included), computed from the cases themselves."""
        counts: Counter[str] = Counter({v: 0 for v in VERDICTS})
        counts.update(c.verdict for c in self.cases)
        return counts

    @property
    def versions(self) -> list[str]:
        found = {c.version for c in self.cases} | {v for v in self.urls if v in VERSIONS}
        return sorted(found, key=version_key)

    @property
    def known_deviations(self) -> list[Case]:
        return [c for c in self.cases if c.known_deviation]

    @property
    def interrupted(self) -> bool:
        """The run was stopped (Ctrl-C) before every selected case ran."""
        return bool(self.raw.get("interrupted"))

    @property
    def baseline(self) -> dict[str, Any] | None:
        block = self.raw.get("baseline")
        return block if isinstance(block, dict) else None

    def baseline_mark(self, case: Case) -> str | None:
        """NEW / FIXED / NOW UNSUPPORTED when a --baseline comparison lists the case, else None."""
        block = self.baseline or {}
        key = re.sub(r"^\[gw\d+\]\s*", "", case.id)
        for mark, field_name in BASELINE_MARKS:
            if key in (block.get(field_name) or ()):
                return mark
        return None

    def baseline_cases(self, field_name: str) -> list[Case]:
        ids = set((self.baseline or {}).get(field_name) or ())
        return [c for c in self.cases if re.sub(r"^\[gw\d+\]\s*", "", c.id) in ids]


# The marks of a baseline comparison and the results.json lists they come from (see reports.baseline).
BASELINE_MARKS = (("NEW", "new_failures_ids"), ("NOW UNSUPPORTED", "now_unsupported_ids"), ("FIXED", "fixed_ids"))


def parse_time(value: Any) -> datetime:
    """``started_at`` as an aware datetime; the epoch when missing or unreadable."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run_of(results: dict[str, Any]) -> Run:
    tool = results.get("tool") or {}
    target = results.get("target") or {}
    urls = {str(k): str(v) for k, v in (target.get("urls") or {}).items()}
    name = str(target.get("name") or next(iter(urls.values()), "") or "unknown target")
    exit_code = results.get("exit_code")
    return Run(
        raw=results, tool_name=str(tool.get("name") or "mqtt-conformance"), tool_version=str(tool.get("version") or "?"),
        target_name=name, urls=urls, started_at=str(results.get("started_at") or ""),
        start=parse_time(results.get("started_at")), duration_s=float(results.get("duration_s") or 0.0),
        options=dict(results.get("options") or {}), exit_code=int(exit_code) if exit_code is not None else None,
        cases=[_case(raw, i) for i, raw in enumerate(results.get("cases") or []) if isinstance(raw, dict)],
    )


@dataclass
class StatementRow:
    """One statement of one version, with the cases that cite it rolled up into one verdict."""

    id: str
    version: str
    section: str
    chapter: str
    section_title: str
    summary: str
    in_scope: bool
    url: str
    known: bool  # present in the catalogue
    cases: list[Case] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        rolled = worst([c.verdict for c in self.cases])
        return rolled.value if rolled else NOT_COVERED

    @property
    def known_deviation(self) -> bool:
        """Every case behind a bad verdict is a listed deviation."""
        bad = [c for c in self.cases if c.verdict == self.verdict and c.verdict in BAD]
        return bool(bad) and all(c.known_deviation for c in bad)


def statement_rows(run: Run, *, uncovered: bool = True) -> list[StatementRow]:
    """Cited statements plus (with ``uncovered``) the in-scope ones no case cites, in spec order per version."""
    rows: dict[tuple[str, str], StatementRow] = {}
    for version in sorted({c.version for c in run.cases} | set(run.versions), key=version_key):
        for stmt in catalogue(version).values():
            rows[(version, stmt.id)] = StatementRow(
                id=stmt.id, version=version, section=stmt.section, chapter=stmt.chapter,
                section_title=stmt.section_title, summary=stmt.summary, in_scope=stmt.in_scope, url=stmt.url,
                known=True,
            )
    for case in run.cases:
        for sid in charged_statements(case):
            row = rows.get((case.version, sid))
            if row is None:  # cited but not in the catalogue: keep it visible rather than drop it
                section = _section_from_id(sid) or case.section
                row = rows[(case.version, sid)] = StatementRow(
                    id=sid, version=case.version, section=section, chapter=case.chapter or chapter_of(section),
                    section_title="", summary="(not in the statement catalogue)", in_scope=False, url="",
                    known=False,
                )
            row.cases.append(case)
    kept = [r for r in rows.values() if r.cases or (uncovered and r.in_scope)]
    order = {key: i for i, key in enumerate(rows)}
    return sorted(kept, key=lambda r: (version_key(r.version), section_key(r.chapter), order[(r.version, r.id)]))


def charged_statements(case: Case) -> list[str]:
    """The statements a case's verdict counts for: the cited ones, except after a failed setup step,
    which charges only the statement that step relies on (none if it names none)."""
    failed = case.raw.get("precondition")
    if isinstance(failed, dict):
        return [str(failed["statement"])] if failed.get("statement") else []
    return case.statements


def _section_from_id(statement_id: str) -> str:
    match = re.fullmatch(r"MQTT-([\d.]+)-\d+", statement_id)
    return match.group(1).rstrip(".") if match else ""


@dataclass
class Coverage:
    version: str
    in_scope: int
    covered: int
    rolled: Counter[str]

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.in_scope if self.in_scope else 0.0


def coverage(rows: list[StatementRow]) -> list[Coverage]:
    """Per version: how many in-scope statements a case that executed cites (as ``mqtt-conformance
    coverage`` counts: an UNSUPPORTED case covers nothing), and their rolled-up verdicts."""
    out: dict[str, Coverage] = {}
    for row in rows:
        cov = out.setdefault(row.version, Coverage(row.version, 0, 0, Counter()))
        if row.in_scope:
            cov.in_scope += 1
            cov.covered += any(case.verdict in EXECUTED for case in row.cases)
        cov.rolled[row.verdict] += 1
    return [out[v] for v in sorted(out, key=version_key)]


def severity_rank(verdict: str) -> int:
    """Lower is worse, following ``verdicts.SEVERITY``."""
    try:
        return SEVERITY.index(Verdict(verdict))
    except ValueError:
        return len(SEVERITY)


def safe_name(text: str, limit: int = 100) -> str:
    """A file-name-safe rendering of a case id, unique enough to tell parametrizations apart."""
    tail = text.split("/")[-1]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", tail.replace("::", "-")).strip("._-") or "case"
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{clean[:limit]}-{digest}"


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def fmt_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s"
