"""No unbounded wait: the whole suite ends within a bound whatever the broker does.

A real mosquitto behind the fault-injecting proxy (tests/faulty_proxy.py), given with --broker (so the
harness did not start it and cannot restart it):

- a broker that ignores Keep Alive: the proxy rewrites every CONNECT's Keep Alive to 0 (mosquitto then
  never closes a silent client) and drops the Server Keep Alive from 5.0 CONNACKs, so the client still
  believes its Keep Alive 1 holds. The keep-alive cases FAIL, the rest is judged, the run ends < 120 s.
- a broker that hangs mid-run: the proxy STALLs (accepts, never forwards) once a number of connections
  went through. Every case after that fails or errs on its own bounded waits; the run ends within
  STALL_BOUND.

Also the watchdog itself (conformance/run/deadline.py): a case that loops on bounded waits forever is cut
at --case-deadline with what it awaited, and the next case runs clean.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_broker
from faulty_proxy import B2C, C2B, STALL, Action, FaultyProxy, Frame, Replace, remaining_length_bytes

from conformance.brokers.mosquitto import Mosquitto
from conformance.codec import Connack, Connect, Properties, encode

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "fixtures" / "targets" / "mosquitto.toml"
KEEP_ALIVE_BOUND = 120.0  # the bound for the whole suite against a Keep-Alive-ignoring broker
STALL_AFTER = 200  # connections through the proxy before it hangs: about a fifth of the suite
# A hung broker is noticed at the first failure of each worker (a 5 s CONNECT check), then the rest is
# ERROR at once: 30-40 s on an idle machine, 70 s with two whole suites and others on 2 CPUs.
STALL_BOUND = 120.0
SILENT_CASE = "test_silent_client_is_disconnected_after_one_and_a_half_keep_alive"

pytestmark = pytest.mark.xdist_group("bounded")


def ignore_keep_alive(frame: Frame) -> Action | None:
    """The broker never learns the client's Keep Alive; the client never learns it was changed."""
    packet = frame.packet
    if frame.direction == C2B and isinstance(packet, Connect) and packet.keep_alive:
        # Patch the two bytes in place: re-encoding would also repair the CONNECTs cases break on purpose.
        name_at = 1 + len(remaining_length_bytes(frame.raw))
        keep_alive_at = name_at + 2 + int.from_bytes(frame.raw[name_at:name_at + 2], "big") + 2
        return Replace(frame.raw[:keep_alive_at] + b"\0\0" + frame.raw[keep_alive_at + 2:])
    if frame.direction == B2C and isinstance(packet, Connack) and "server_keep_alive" in packet.properties:
        kept = Properties.of([(k, v) for k, v in packet.properties if k != "server_keep_alive"])
        return Replace(encode(dataclasses.replace(packet, properties=kept), frame.conn.level))
    return None


def stall_after(connections: int):  # noqa: ANN201
    def fault(frame: Frame) -> Action | None:
        return STALL if frame.conn.id > connections and frame.direction == C2B else None
    return fault


def run_suite(url: str, report_dir: Path, timeout: float, *extra: str) -> tuple[dict, float]:
    """The whole suite through the CLI (default workers), as a user runs it; returns results and wall time."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--broker", url, "--profile", str(PROFILE),
           "--report-dir", str(report_dir), *extra, "--", "--no-reports"]  # results.json is what is judged
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT)
    wall = time.monotonic() - started
    assert proc.returncode in (0, 1), proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads((report_dir / "results.json").read_text()), wall


def by_name(doc: dict, name: str) -> dict[str, str]:
    return {c["mqtt_version"]: c["verdict"] for c in doc["cases"] if c["name"] == name}


def count(doc: dict, verdict: str) -> int:
    return sum(1 for c in doc["cases"] if c["verdict"] == verdict)


def test_keep_alive_ignoring_broker_whole_suite_is_bounded(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    with Mosquitto() as broker, FaultyProxy(broker.url("5.0"), ignore_keep_alive) as proxy:
        doc, wall = run_suite(proxy.url, tmp_path / "reports", KEEP_ALIVE_BOUND)
    assert wall < KEEP_ALIVE_BOUND, f"whole suite took {wall:.0f} s"
    assert by_name(doc, SILENT_CASE) == {"3.1.1": "FAIL", "5.0": "FAIL"}
    judged = len(doc["cases"]) - count(doc, "ERROR")
    assert judged >= 500 and count(doc, "ERROR") < 5, doc["summary"]


def test_stalling_broker_whole_suite_is_bounded(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    with Mosquitto() as broker, FaultyProxy(broker.url("5.0"), stall_after(STALL_AFTER)) as proxy:
        doc, wall = run_suite(proxy.url, tmp_path / "reports", STALL_BOUND)
        assert proxy.stalled, "the proxy never stalled: the test proves nothing"
    assert wall < STALL_BOUND, f"whole suite took {wall:.0f} s"
    assert count(doc, "PASS") > 30, doc["summary"]  # the cases before the stall were judged
    hung = [c for c in doc["cases"] if c["verdict"] == "ERROR"]
    assert hung and all("answer" in c["message"] for c in hung), hung[:1]


STUCK_CASES = '''
from conformance import BrokerViolation, Connack, case


@case("MQTT-3.1.4-4")
def test_catches_every_timeout_and_waits_again(make_probe):
    """Waits, forever, for a second CONNACK, and swallows each bounded wait's FAIL."""
    probe = make_probe().connect()
    while True:
        try:
            probe.expect(Connack, timeout=0.2)
        except BrokerViolation:
            pass


@case("MQTT-3.1.4-4")
def test_after_the_stuck_one(probe):
    """Runs after the stuck case, on a clean slate."""
    probe.ping()
'''


def test_watchdog_cuts_a_stuck_case_with_what_it_awaited(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_stuck.py").write_text(STUCK_CASES)
    with Mosquitto() as broker:
        cmd = [sys.executable, "-m", "pytest", str(cases), "-p", "no:cacheprovider", "-q", "--broker",
               broker.url("5.0"), "--case-deadline", "1.5", "--report-dir", str(tmp_path / "reports")]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        wall = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout[-2000:]
    records = {c["name"]: c for c in json.loads((tmp_path / "reports" / "results.json").read_text())["cases"]}
    stuck = records["test_catches_every_timeout_and_waits_again"]
    assert stuck["verdict"] == "FAIL"
    assert "case deadline of 1.5 s" in stuck["message"] and "CONNACK" in stuck["message"], stuck["message"]
    assert stuck["duration_s"] < 4.0
    assert records["test_after_the_stuck_one"]["verdict"] == "PASS"
    assert wall < 30
