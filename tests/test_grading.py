"""The one grading rule (conformance/grading.py): how a shortfall is graded by the statements a case
cites, the catalogue check on citations, and mosquitto's evidence files. No broker needed (< 1 s)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance import case
from conformance.case import CaseSpec
from conformance.codec.errors import HarnessError
from conformance.grading import NotDetected, late_timer
from conformance.run.records import grade
from conformance.transcript import Transcript
from conformance.verdicts import BrokerViolation, Verdict

ROOT = Path(__file__).resolve().parents[1]


def graded(exc: BaseException, version: str, *ids: str) -> Verdict:
    try:
        raise exc
    except BaseException:
        info = pytest.ExceptionInfo.from_current()
    return grade(info, CaseSpec({version: ids}), version).verdict


def test_not_detected_is_fail_where_the_server_must_check_and_non_strict_where_it_must_react():
    assert graded(NotDetected("open"), "3.1.1", "MQTT-4.8.0-1") == Verdict.FAIL
    assert graded(NotDetected("open"), "5.0", "MQTT-3.6.1-1", "MQTT-4.13.1-1") == Verdict.FAIL
    assert graded(NotDetected("open"), "5.0", "MQTT-4.13.1-1") == Verdict.NON_STRICT
    assert graded(BrokerViolation("other"), "5.0", "MQTT-4.13.1-1") == Verdict.FAIL


@dataclass
class Stand:
    """What late_timer reads of a Probe: its name and the case transcript (a real one)."""

    name: str = "c1"
    transcript: Transcript = field(default_factory=Transcript)


def test_late_timer_fails_past_the_tolerance_and_notes_the_time_either_way():
    probe = Stand()
    late_timer(probe, "closed after", [1.2, 1.8], 1.5)  # 0.3 s late: within the 0.4 s tolerance
    assert "1.20, 1.80" in probe.transcript.text()
    with pytest.raises(BrokerViolation, match=r"5\.80 s against .* 4\.30 s late"):
        late_timer(probe, "closed after", [5.8], 1.5)


def test_a_client_only_statement_cannot_be_cited():
    with pytest.raises(HarnessError, match="obliges only the client"):
        case(v5=["MQTT-3.3.4-7"])(lambda: None)


def test_every_mosquitto_evidence_file_is_referenced_and_exists():
    referenced: set[str] = set()
    for name in ("mosquitto", "mosquitto-auth", "mosquitto-limited"):
        profile = tomllib.loads((ROOT / f"fixtures/targets/{name}.toml").read_text())
        referenced |= {d["evidence"] for d in profile.get("deviations", []) if d.get("evidence")}
    files = {str(p.relative_to(ROOT)) for d in ("mosquitto", "mosquitto-auth") for p in (ROOT / "fixtures/evidence" / d).iterdir()}
    assert files - referenced == set(), "evidence files no deviation references"
    assert {f for f in referenced if not (ROOT / f).is_file()} == set(), "deviations without their evidence file"
    for f in files:  # a transcript that shows the behaviour: packets on the wire, not only a header
        assert re.search(r"^\s*\d+\.\d+s\s+\S+\s+(->|<-) ", (ROOT / f).read_text(), re.M), f"{f} shows no packets"
