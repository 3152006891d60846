"""The fuzzer finds faulty brokers: a real mosquitto behind a fault-injecting proxy (tests/faulty_proxy.py)
that (a) dies, or stalls, on one malformed input, and (b) loses a queued QoS 1 message when a persistent
session comes back, a wrong state that only shows after several steps. Each is found within the budget,
shrunk to a small reproducer that replays (exit 1) against the faulty broker and not (exit 0) against a
correct mosquitto."""

from __future__ import annotations

import json

from faulty_proxy import B2C, C2B, DROP, KILL, STALL, FaultyProxy, non_minimal_remaining_length
from test_fuzz import MOSQUITTO_KNOWN

from conformance.cli import main
from conformance.codec import Connack, Publish, Suback
from conformance.fuzz.campaign import Campaign, CampaignOptions
from conformance.fuzz.common import IgnoreList, Limits, resolve_target


def crash_on_non_minimal_length(frame):  # noqa: ANN001, ANN201
    """A broker that dies for good on a Remaining Length with a needless continuation byte."""
    if frame.direction == C2B and non_minimal_remaining_length(frame.raw):
        return KILL
    return None


def hang_on_qos3(frame):  # noqa: ANN001, ANN201
    """A broker that hangs (accepts connections, answers nothing) after a PUBLISH with QoS bits 11."""
    if frame.direction == C2B and frame.raw[:1] and frame.raw[0] >> 4 == 3 and (frame.raw[0] >> 1) & 3 == 3:
        return STALL
    return None


def drop_queued_qos1(frame):  # noqa: ANN001, ANN201
    """A broker whose session resumption loses the first queued QoS 1 message: after a CONNACK with Session
    Present 1, the first QoS 1 PUBLISH it sends (before answering anything the client sent) is dropped."""
    state = frame.conn.state
    if frame.direction == B2C:
        if isinstance(frame.packet, Connack):
            state["armed"] = frame.packet.session_present
        elif isinstance(frame.packet, Suback):
            state["armed"] = False
        elif state.get("armed") and isinstance(frame.packet, Publish) and frame.packet.qos == 1:
            state["armed"] = False
            return DROP
    return None


def _campaign(url: str, restart, modes: tuple[str, ...], versions: tuple[str, ...], budget: float,  # noqa: ANN001
              limits: Limits | None = None, shrink_time: float = 10) -> Campaign:
    options = CampaignOptions(versions=versions, seed=7, time_budget=budget, modes=modes, shrink_time=shrink_time,
                              ignore=IgnoreList(MOSQUITTO_KNOWN), restart=restart, limits=limits or Limits(),
                              max_findings=1)
    return Campaign(resolve_target(url, False), options).run()


def _replays(report_dir, name: str, fault, mosquitto, *extra: str) -> tuple[int, int]:  # noqa: ANN001
    path = str(report_dir / "fuzz" / f"{name}.json")
    with FaultyProxy(mosquitto.url("5.0"), fault) as fresh:
        against_faulty = main(["replay", path, "--broker", fresh.url, *extra])
    return against_faulty, main(["replay", path, "--broker", mosquitto.url("5.0"), *extra])


def test_a_broker_that_dies_on_a_malformed_input(mosquitto, tmp_path, capsys):
    with FaultyProxy(mosquitto.url("5.0"), crash_on_non_minimal_length) as proxy:
        campaign = _campaign(proxy.url, proxy.reset, ("packet",), ("3.1.1", "5.0"), 10)
        campaign.write_reports(tmp_path)
    crashes = [f for f in campaign.findings if f.kind == "liveness"]
    assert crashes and all(f.kind == "liveness" for f in campaign.findings), campaign.findings
    first = crashes[0]
    print(f"\ncrash found after {first.found_at:.2f} s ({first.examples_run} examples): {first.description}")
    assert first.found_at < 10 and len(first.steps) == 1 and "non-minimal" in first.description
    doc = json.loads((tmp_path / "fuzz" / "liveness-1.json").read_text())
    assert doc["rule"].startswith("liveness/") and doc["steps"][0]["send"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert any(c["id"] == "fuzz::liveness::1" and c["verdict"] == "FAIL" and c["transcript"] for c in results["cases"])
    assert _replays(tmp_path, "liveness-1", crash_on_non_minimal_length, mosquitto) == (1, 0)
    assert "reproduced" in capsys.readouterr().out


def test_a_broker_that_stalls_on_a_malformed_input(mosquitto, tmp_path):
    with FaultyProxy(mosquitto.url("5.0"), hang_on_qos3) as proxy:
        campaign = _campaign(proxy.url, proxy.reset, ("packet",), ("3.1.1",), 6,
                             Limits(timeout=0.5, liveness_timeout=0.5), shrink_time=5)
        campaign.write_reports(tmp_path)
    stalls = [f for f in campaign.findings if f.kind == "liveness"]
    assert stalls, campaign.findings
    print(f"\nstall found after {stalls[0].found_at:.2f} s: {stalls[0].description}")
    assert len(stalls[0].steps) == 1 and "Qos3" in stalls[0].description
    assert _replays(tmp_path, "liveness-1", hang_on_qos3, mosquitto, "--timeout", "0.5") == (1, 0)


def test_a_broker_that_loses_a_queued_message_after_several_steps(mosquitto, tmp_path):
    with FaultyProxy(mosquitto.url("5.0"), drop_queued_qos1) as proxy:
        campaign = _campaign(proxy.url, proxy.reset, ("stateful",), ("3.1.1",), 15)
        campaign.write_reports(tmp_path)
    assert [f.rule for f in campaign.findings] == ["model/missing-queued"], campaign.findings
    finding = campaign.findings[0]
    print(f"\nlost message found after {finding.found_at:.2f} s ({finding.examples_run} examples), "
          f"{len(finding.steps)} steps")
    actions = [s["action"] for s in finding.steps]
    assert 4 <= len(actions) <= 8 and actions[-1] == "connect" and "publish" in actions, finding.steps
    assert _replays(tmp_path, "model-1", drop_queued_qos1, mosquitto) == (1, 0)


def test_the_command_line_reports_a_crash_it_cannot_recover_from(mosquitto, tmp_path, capsys):
    """Without a way to restart the broker the campaign stops, reports the failing batch, exits 1."""
    with FaultyProxy(mosquitto.url("5.0"), crash_on_non_minimal_length) as proxy:
        code = main(["fuzz", "--broker", proxy.url, "--mqtt-version", "3.1.1", "--mode", "packet", "--seed", "3",
                     "--time-budget", "8", "--report-dir", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1, captured.out
    assert "stopped early" in captured.err and "fuzz::liveness::1" in captured.out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["exit_code"] == 1 and results["options"]["fuzz"]["aborted"]
    doc = json.loads((tmp_path / "fuzz" / "liveness-1.json").read_text())
    assert any("non-minimal" in label for step in doc["steps"] for label in step["inputs"])
    with FaultyProxy(mosquitto.url("5.0"), crash_on_non_minimal_length) as fresh:
        assert main(["replay", str(tmp_path / "fuzz" / "liveness-1.json"), "--broker", fresh.url]) == 1
