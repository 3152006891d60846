"""A run leaves the broker as it found it: no retained message on the cases' topics, no session of
the cases' client IDs (checked on a real mosquitto after the cases that create the most of both)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conformance.codec import Publish
from conformance.net import parse_url
from conformance.probe import Probe
from conformance.run.hygiene import find_leftovers
from conformance.transcript import Transcript

ROOT = Path(__file__).resolve().parents[1]
SELECTION = "retain or session or will or persistent or qos"


def _probe(url: str, version: str, client_id: str) -> Probe:
    return Probe(parse_url(url), version, Transcript(), client_id=client_id)


def test_a_run_leaves_no_retained_message_and_no_session(mosquitto, tmp_path):
    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--broker", mosquitto.url("5.0"), "--profile",
         str(ROOT / "fixtures/targets/mosquitto.toml"), "--report-dir", str(out), "-n", "2", "-k", SELECTION],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    cases = json.loads((out / "results.json").read_text())["cases"]
    sessions = {e["packet"]["client_id"]: c["mqtt_version"] for c in cases for e in c["transcript"]
                if e["dir"] == "out" and (e["packet"] or {}).get("type") == "CONNECT"
                and not e["packet"].get("clean_start", True)}
    assert len(cases) > 60 and len(sessions) > 20

    # Every retained message a case stored would reach this wildcard subscriber (the PINGREQ after
    # the SUBACK is ordered behind them).
    with _probe(mosquitto.url("5.0"), "5.0", "hygienecheck").connect() as observer:
        observer.subscribe("mqttc/#", qos=0)
        observer.ping()
        assert not observer.drain(lambda p: isinstance(p, Publish)), "retained messages were left behind"

    for client_id, version in sessions.items():
        probe = _probe(mosquitto.url(version), version, client_id)
        # Clean Start 0 (and no expiry): finds a session if one was left, and ends with this connection.
        probe.connect(clean_start=False, expect_code=None)
        probe.disconnect()
        if probe.connack.reason_code:
            continue  # an identifier the case used to be refused
        assert not probe.connack.session_present, f"session {client_id} was left"
        if version == "3.1.1":  # that Clean Session 0 connection left a session of its own
            _probe(mosquitto.url(version), version, client_id).connect(clean_start=True).disconnect()


def test_leftovers_are_found_only_on_the_cases_own_ids_and_topics(mosquitto):
    transcript = Transcript()
    accepted = _probe(mosquitto.url("3.1.1"), "3.1.1", "mqttcabcdefc1")
    accepted.transcript = transcript
    accepted.connect(clean_start=False)
    accepted.publish("mqttc/mqttcabcdef/t", b"x", retain=True)
    accepted.publish("mqttc/mqttcabcdef/cleared", b"", retain=True)  # an empty payload stores nothing
    accepted.publish("elsewhere/t", b"x", retain=True)  # not the case's: never touched
    accepted.publish("mqttc/mqttcabcdef/plain", b"x")
    accepted.disconnect()
    found = find_leftovers([accepted], transcript, "mqttcabcdef", "mqttc/mqttcabcdef")
    assert list(found.sessions) == ["mqttcabcdefc1"]
    assert list(found.retained.values()) == [{"mqttc/mqttcabcdef/t"}]
    with _probe(mosquitto.url("3.1.1"), "3.1.1", "cleaner") as cleaner:
        cleaner.connect()
        cleaner.publish("elsewhere/t", b"", retain=True)
