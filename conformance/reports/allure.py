"""allure-results/: Allure 2 result files written by hand (one ``<uuid>-result.json`` per case).

Behaviours tab: epic = MQTT version, feature = spec section, story = statement, so Allure's own
grouping becomes a statement browser. UUIDs are derived from the run start and case id, so rendering
the same results twice rewrites the same files instead of adding duplicates.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from .model import Case, Run, catalogue, chapter_title, run_of, version_key
from .transcript import as_text, direction_label

# NON-STRICT is not green: a SHOULD was not met. "broken" with its own category keeps it apart from
# both broker violations (failed) and harness errors.
STATUS = {
    "PASS": "passed", "FAIL": "failed", "ERROR": "broken", "UNSUPPORTED": "skipped",
    "NON-STRICT": "broken", "INFORMATIONAL": "passed",
}
MAX_STEPS = 80  # a flood test's transcript would bury the rest; the attachment has every entry
SEVERITY = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}
NOTES = {
    "NON-STRICT": "NON-STRICT: permitted but discouraged behaviour (a SHOULD not met); fails under --strict.",
    "INFORMATIONAL": "INFORMATIONAL: the specification leaves this choice to the implementation; recorded only.",
}
CATEGORIES = [  # matched in order: known deviations must not be mistaken for new violations
    {"name": "Known deviations", "matchedStatuses": ["failed"], "messageRegex": "(?s)known deviation.*"},
    {"name": "Broker violations", "matchedStatuses": ["failed"]},
    {"name": "NON-STRICT (a SHOULD not met)", "matchedStatuses": ["broken"], "messageRegex": "(?s)NON-STRICT.*"},
    {"name": "Interrupted run", "matchedStatuses": ["broken"], "messageRegex": "(?s)interrupted.*"},
    {"name": "Harness errors", "matchedStatuses": ["broken"]},
    {"name": "Unsupported by the target", "matchedStatuses": ["skipped"]},
]
_NAMESPACE = uuid.UUID("5d0b7c52-6d2b-4c8e-9d3e-8a1f3b2c4d5e")  # fixed: stable uuids across renders


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def _labels(case: Case, run: Run) -> list[dict[str, str]]:
    """Behaviours (epic, feature, story), suites, tags and the worker as a timeline lane."""
    title = chapter_title(case.chapter, case.version)
    labels = [
        {"name": "epic", "value": f"MQTT {case.version}"},
        {"name": "feature", "value": f"{case.section or '?'} {title}".strip()},
        *({"name": "story", "value": s} for s in case.statements),
        {"name": "severity", "value": SEVERITY.get(case.level.upper(), "normal")},
        {"name": "parentSuite", "value": f"MQTT {case.version}"},
        {"name": "suite", "value": case.module or case.section or "cases"},
        {"name": "tag", "value": case.verdict},
        {"name": "framework", "value": run.tool_name},
        {"name": "language", "value": "python"},
        {"name": "host", "value": run.target_name},
    ]
    if case.known_deviation:
        labels.append({"name": "tag", "value": "known-deviation"})
    labels.append({"name": "thread", "value": str(case.raw.get("worker") or "main")})
    return labels


def _links(case: Case) -> list[dict[str, str]]:
    known = catalogue(case.version)
    return [{"type": "link", "name": s, "url": known[s].url} for s in case.statements if s in known]


def _message(case: Case) -> str:
    """The verdict message, prefixed so that CATEGORIES sorts known deviations and NON-STRICT apart."""
    if case.known_deviation:
        return f"known deviation: {case.deviation_reason or 'listed in the target profile'}\n{case.message}".rstrip()
    if case.verdict == "NON-STRICT":
        return f"NON-STRICT: {case.message}".rstrip()
    return case.message


def _description(case: Case) -> str:
    expectation = f"Expectation: {case.expectation}" if case.expectation else ""
    return "\n\n".join(p for p in (case.description, expectation, NOTES.get(case.verdict, "")) if p)


def _attachments(case: Case, test_uuid: str, out_dir: Path, report_dir: Path) -> list[dict[str, str]]:
    """The transcript as text, and the case's pcap when write_pcaps made one."""
    attachments = [_attach(out_dir, test_uuid, "transcript", "txt", "text/plain",
                           as_text(case.transcript, case.version).encode("utf-8"))]
    pcap = report_dir / case.pcap if case.pcap else None
    if pcap is not None and pcap.is_file():
        attachments.append(_attach(out_dir, test_uuid, "capture (pcap)", "pcap", "application/vnd.tcpdump.pcap",
                                   pcap.read_bytes()))
    return attachments


def result_for(case: Case, run: Run, start_ms: int, out_dir: Path, report_dir: Path) -> dict[str, Any]:
    """The Allure result of one case; writes its attachments into ``out_dir`` on the way."""
    test_uuid = _uuid(run.started_at, case.id, case.version)
    message = _message(case)
    stop_ms = start_ms + max(1, round(case.duration_s * 1000))
    status = STATUS.get(case.verdict, "broken")
    # Identity without the statements: citing another statement must not start a new history.
    return {
        "uuid": test_uuid,
        "historyId": hashlib.md5(f"{case.module}::{case.short_id}|{case.version}".encode()).hexdigest(),
        "testCaseId": hashlib.md5(f"{case.module}::{case.name}".encode()).hexdigest(),
        "fullName": f"{case.module}::{case.short_id}" if case.module else case.id,
        "name": case.short_id,
        "status": status,
        "statusDetails": {"known": case.known_deviation, "muted": False, "flaky": False, "message": message},
        "stage": "finished",
        "description": _description(case),
        "steps": steps_for(case, start_ms, stop_ms, status, message),
        "attachments": _attachments(case, test_uuid, out_dir, report_dir),
        "parameters": [{"name": "mqtt_version", "value": case.version}, {"name": "verdict", "value": case.verdict}],
        "labels": _labels(case, run),
        "links": _links(case),
        "start": start_ms,
        "stop": stop_ms,
    }


def steps_for(case: Case, start_ms: int, stop_ms: int, status: str, message: str) -> list[dict[str, Any]]:
    """One step per wire event (packet sent or received, close, note), timed from the transcript, and
    a last step carrying the verdict, so that Allure shows where the case went wrong."""
    steps = []
    for entry in case.transcript[:MAX_STEPS]:
        t = entry.get("t")
        at = start_ms + round(float(t) * 1000) if isinstance(t, int | float) else start_ms
        at = min(max(at, start_ms), stop_ms)
        name = f"{direction_label(entry)}: {entry.get('summary') or ''}".strip()
        steps.append({"name": name[:300], "status": "passed", "stage": "finished", "start": at, "stop": at,
                      "steps": [], "attachments": [], "parameters": []})
    if len(case.transcript) > MAX_STEPS:
        steps.append({"name": f"… {len(case.transcript) - MAX_STEPS} more wire events (see the transcript)",
                      "status": "passed", "stage": "finished", "start": stop_ms, "stop": stop_ms,
                      "steps": [], "attachments": [], "parameters": []})
    verdict = f"verdict {case.verdict}" + (f": {message.splitlines()[0][:200]}" if message else "")
    steps.append({"name": verdict, "status": status, "stage": "finished", "start": stop_ms, "stop": stop_ms,
                  "statusDetails": {"message": message}, "steps": [], "attachments": [], "parameters": []})
    return steps


def _attach(out_dir: Path, test_uuid: str, name: str, ext: str, mime: str, data: bytes) -> dict[str, str]:
    source = f"{_uuid(test_uuid, name)}-attachment.{ext}"
    (out_dir / source).write_bytes(data)
    return {"name": name, "source": source, "type": mime}


def _write_result(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    path = out_dir / f"{result['uuid']}-result.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return [path, *(out_dir / a["source"] for a in result["attachments"])]


def _interrupted_result(run: Run, at_ms: int) -> dict[str, Any]:
    """A broken result standing for the cases an interrupted run never ran."""
    message = f"interrupted: the run was stopped after {len(run.cases)} cases; the remaining cases did not run"
    return {"uuid": _uuid(run.started_at, "interrupted"), "historyId": hashlib.md5(b"run-interrupted").hexdigest(),
            "fullName": "mqtt-conformance::run interrupted", "name": "run interrupted", "status": "broken",
            "statusDetails": {"message": message}, "stage": "finished", "description": message, "steps": [],
            "attachments": [], "parameters": [], "links": [], "start": at_ms, "stop": at_ms + 1,
            "labels": [{"name": "suite", "value": "mqtt-conformance"}, {"name": "host", "value": run.target_name}]}


def _properties_line(key: str, value: str) -> str:
    """Java .properties escaping: backslashes, separators in keys, line breaks anywhere."""
    def escape(text: str, is_key: bool) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return text.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ") if is_key else text
    return f"{escape(key, True)}={escape(value, False)}"


def write_allure(results: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write ``allure-results/`` under ``report_dir``; run ``write_pcaps`` first to get pcap attachments."""
    run = run_of(results)
    out_dir = report_dir / "allure-results"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Real start times (with the worker as the thread label, Allure's timeline shows the parallel lanes);
    # results without them (older runs) are laid end to end from the run start.
    clock = round(run.start.timestamp() * 1000)
    written: list[Path] = []
    for case in run.cases:
        started = case.raw.get("started")
        start_ms = round(float(started) * 1000) if isinstance(started, int | float) and started > 0 else clock
        result = result_for(case, run, start_ms, out_dir, report_dir)
        clock = max(clock, result["stop"])
        written += _write_result(out_dir, result)
    if run.interrupted:
        written += _write_result(out_dir, _interrupted_result(run, clock))
    env = {"target": run.target_name, "mqtt.versions": ", ".join(sorted({c.version for c in run.cases},
                                                                        key=version_key)),
           "tool": run.tool_name, "tool.version": run.tool_version, "started_at": run.started_at,
           "interrupted": str(run.interrupted).lower()}
    env.update({f"url.{v}": u for v, u in sorted(run.urls.items())})
    env_path = out_dir / "environment.properties"
    env_path.write_text("".join(_properties_line(k, v) + "\n" for k, v in env.items()), encoding="utf-8")
    cat_path = out_dir / "categories.json"
    cat_path.write_text(json.dumps(CATEGORIES, indent=1), encoding="utf-8")
    written += [env_path, cat_path]
    return written

