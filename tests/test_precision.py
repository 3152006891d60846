"""Precise verdicts: a violation in a setup step is charged to the statement the step needs, not to the
ones the case cites, and a malformed answer is the broker's FAIL, never our ERROR.

The end-to-end tests run real cases through a fault-injecting proxy over a real mosquitto: one that never
acknowledges QoS 2 (PUBREC and PUBCOMP dropped), one whose SUBACKs carry no return codes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from faulty_proxy import FaultyProxy, empty_suback, never_ack_qos2

from conformance import BrokerViolation, Probe, Publish, Pubrec, Subscribe, Subscription, craft
from conformance.case import CaseSpec
from conformance.codec.errors import HarnessError
from conformance.judge import VIOLATION
from conformance.net import parse_url
from conformance.probe import Timing
from conformance.reports.coverage import run_coverage
from conformance.reports.model import run_of, statement_rows
from conformance.run.records import grade
from conformance.setup_steps import PreconditionFailed, setup
from conformance.steps.topics import react
from conformance.transcript import Transcript
from conformance.verdicts import SHOULD, Verdict

ROOT = Path(__file__).resolve().parents[1]
QOS2_STATEMENTS = {"3.1.1": {"MQTT-4.3.3-2"}, "5.0": {"MQTT-4.3.3-8", "MQTT-4.3.3-11"}}


def _raised(block) -> pytest.ExceptionInfo:  # noqa: ANN001
    with pytest.raises(AssertionError) as info:
        block()
    return info


def _in_step() -> None:
    with setup("retained message stored", "MQTT-3.3.1-5"):
        raise BrokerViolation("expected PUBACK, nothing arrived")


# -- judgement (no broker) -----------------------------------------------------------------------------
def test_failed_setup_step_names_the_step_and_its_statement():
    spec = CaseSpec({"3.1.1": ("MQTT-4.6.0-6",)})
    judgement = grade(_raised(_in_step), spec, "3.1.1")
    assert judgement.verdict == Verdict.FAIL
    assert judgement.precondition == {"step": "retained message stored", "statement": "MQTT-3.3.1-5",
                                      "message": "expected PUBACK, nothing arrived"}
    assert "retained message stored" in judgement.message and "MQTT-3.3.1-5" in judgement.message


def test_a_case_citing_the_step_statement_fails_on_its_own():
    judgement = grade(_raised(_in_step), CaseSpec({"3.1.1": ("MQTT-3.3.1-5",)}), "3.1.1")
    assert (judgement.verdict, judgement.precondition) == (Verdict.FAIL, None)
    assert judgement.message == "expected PUBACK, nothing arrived"


def test_nested_steps_charge_the_innermost_unless_the_case_tests_any_of_them():
    def nested() -> None:
        with setup("outer", "MQTT-3.3.1-5"), setup("inner", "MQTT-4.3.2-2", v5="MQTT-4.3.2-4"):
            raise BrokerViolation("no PUBACK")

    assert grade(_raised(nested), CaseSpec({"5.0": ("MQTT-4.6.0-6",)}), "5.0").precondition["statement"] == (
        "MQTT-4.3.2-4")
    assert grade(_raised(nested), CaseSpec({"5.0": ("MQTT-3.3.1-5",)}), "5.0").precondition is None


def test_level_and_non_violations_are_kept():
    assert grade(_raised(_in_step), CaseSpec({"3.1.1": ("MQTT-4.6.0-6",)}, level=SHOULD), "3.1.1").verdict == (
        Verdict.NON_STRICT)
    with pytest.raises(HarnessError), setup("typo", "MQTT-9.9.9-9"):  # a typo in a step's statement: our bug
        pass


def test_roll_up_and_coverage_charge_the_step_statement():
    failed = {"step": "QoS 2 publish: PUBREC", "statement": "MQTT-4.3.3-8", "message": "no PUBREC"}
    doc = {"cases": [
        {"id": "a[5.0]", "mqtt_version": "5.0", "statements": ["MQTT-4.6.0-6"], "verdict": "FAIL",
         "message": "precondition failed", "name": "a", "precondition": failed},
        {"id": "b[5.0]", "mqtt_version": "5.0", "statements": ["MQTT-4.6.0-6"], "verdict": "FAIL",
         "message": "precondition failed", "name": "b", "precondition": {**failed, "statement": None}},
    ]}
    rows = {r.id: r for r in statement_rows(run_of(doc), uncovered=False)}
    assert set(rows) == {"MQTT-4.3.3-8"} and rows["MQTT-4.3.3-8"].verdict == "FAIL"
    cov = run_coverage(doc, "5.0")
    assert "MQTT-4.3.3-8" in cov.covered and "MQTT-4.6.0-6" not in cov.covered
    assert cov.reasons["MQTT-4.6.0-6"].startswith("not reached")


# -- through fault-injecting proxies over mosquitto ----------------------------------------------------
def _suite(url: str, report_dir: Path, keyword: str) -> dict:
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--broker", url, "--profile",
           str(ROOT / "fixtures/targets/mosquitto.toml"), "--report-dir", str(report_dir), "-n", "0",
           "--response-timeout", "0.5", "-k", keyword, "--", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads((report_dir / "results.json").read_text())


def _probe(url: str, version: str) -> Probe:
    return Probe(parse_url(url), version, Transcript(), client_id=f"prec{uuid.uuid4().hex[:8]}",
                 timing=Timing(response=0.5, connect=2.0))


NOT_ABOUT_QOS2 = ("test_messages_from_one_publisher_keep_their_order", "test_retained_message_keeps_its_qos",
                  "test_server_packets_carry_the_listed_flags", "test_pubrel_with_wrong_flags_closes_the_connection")


@pytest.mark.xdist_group("precision")
def test_never_acked_qos2_charges_the_qos2_statements(mosquitto, tmp_path):
    """Cases that only prepare with a QoS 2 publication name the QoS 2 step; the QoS 2 flow case fails
    on its own statements. No ERROR."""
    with FaultyProxy(mosquitto.url("5.0"), never_ack_qos2) as proxy:
        doc = _suite(proxy.url, tmp_path, " or ".join((*NOT_ABOUT_QOS2, "test_qos2_publish_flow")))
    cases = doc["cases"]
    assert cases and not [c for c in cases if c["verdict"] == "ERROR"]
    for record in cases:
        version = record["mqtt_version"]
        assert record["verdict"] == "FAIL", record["id"]
        if record["name"] == "test_qos2_publish_flow":
            assert record["precondition"] is None
            assert QOS2_STATEMENTS[version] & set(record["statements"])
        else:
            assert record["precondition"]["statement"] in QOS2_STATEMENTS[version], record["id"]
    charged = {r.id for r in statement_rows(run_of(doc), uncovered=False) if r.verdict == "FAIL"}
    assert charged <= QOS2_STATEMENTS["3.1.1"] | QOS2_STATEMENTS["5.0"] | {
        sid for c in cases if c["name"] == "test_qos2_publish_flow" for sid in c["statements"]}


@pytest.mark.xdist_group("precision")
def test_only_answers_to_our_own_requests_are_setup_steps(mosquitto):
    """A missing PUBREC after the Probe's own QoS 2 PUBLISH fails the QoS 2 step; after a crafted one
    (whatever the case does on purpose) it is the case's own failure."""
    with FaultyProxy(mosquitto.url("5.0"), never_ack_qos2) as proxy:
        probe = _probe(proxy.url, "5.0").connect()
        with pytest.raises(PreconditionFailed) as info:
            probe.publish("prec/q2", b"x", qos=2)
        assert info.value.steps[0].statement("5.0") == "MQTT-4.3.3-8"
        probe.send(craft(Publish(topic="prec/q2", payload=b"y", qos=2, packet_id=9)))
        with pytest.raises(BrokerViolation) as info:
            probe.expect(Pubrec, packet_id=9)
        assert not isinstance(info.value, PreconditionFailed)
        probe.close()


@pytest.mark.xdist_group("precision")
@pytest.mark.parametrize("version", ["3.1.1", "5.0"])
def test_empty_suback_is_the_brokers_fail(mosquitto, version):
    with FaultyProxy(mosquitto.url("5.0"), empty_suback) as proxy:
        probe = _probe(proxy.url, version).connect()
        with pytest.raises(PreconditionFailed, match="0 return codes for 2 topic filters"):
            probe.subscribe("prec/a", "prec/b", qos=1)
        other = _probe(proxy.url, version).connect()
        reaction = react(other, Subscribe(packet_id=7, subscriptions=(Subscription("prec/ok", 0),)), "a filter")
        assert reaction.outcome == VIOLATION  # a SUBACK without reason codes breaks a rule of its own
        probe.close()
        other.close()


@pytest.mark.xdist_group("precision")
def test_empty_suback_cases_fail_without_error(mosquitto, tmp_path):
    """Cases that crashed the harness on an empty SUBACK (IndexError, ValueError) now FAIL."""
    keyword = ("test_will_is_published_only_once or test_identical_filter_replaces_the_subscription or "
               "test_each_message_goes_to_one_member_at_its_granted_qos or test_malformed_shared_filters_are_refused")
    with FaultyProxy(mosquitto.url("5.0"), empty_suback) as proxy:
        doc = _suite(proxy.url, tmp_path, keyword)
    verdicts = {c["id"]: c["verdict"] for c in doc["cases"]}
    assert len(verdicts) >= 6 and set(verdicts.values()) == {"FAIL"}, verdicts
