"""Issue 5 end to end: one run against a real mosquitto with password authentication produces every
report; JUnit counts match; tshark decodes the pcaps as MQTT; the password is in no file; a baseline
lets the same failures pass and catches a new one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto_transports import USERS, MosquittoTransports

ROOT = Path(__file__).resolve().parents[1]
# Its module-scoped fixtures (a broker, a whole run) run once, on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("reports-e2e")
SELECTION = "fixed_header or connack or retain"  # includes cases mosquitto fails
PASSWORD = USERS["alice"]


def cli(*args: str, env_password: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if env_password:
        env["MQTT_CONFORMANCE_PASSWORD"] = PASSWORD
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def broker():  # noqa: ANN201
    require_broker(MosquittoTransports)
    with MosquittoTransports() as running:
        yield running


@pytest.fixture(scope="module")
def run_dir(broker, tmp_path_factory) -> Path:  # noqa: ANN001
    out = tmp_path_factory.mktemp("e2e")
    proc = cli("run", "--broker", broker.url_for("mqtt"), "--username", "alice", "-k", SELECTION,
               "--report-dir", str(out))
    assert proc.returncode == 1, proc.stderr[-2000:]  # no profile: mosquitto's deviations are failures
    return out


def test_every_report_is_written(run_dir: Path):
    doc = json.loads((run_dir / "results.json").read_text())
    cases = doc["cases"]
    assert len(cases) > 30
    for name in ("report.html", "summary.md", "junit.xml"):
        assert (run_dir / name).stat().st_size > 0
    assert list((run_dir / "allure-results").glob("*-result.json"))
    testcases = ET.parse(run_dir / "junit.xml").getroot().iter("testcase")
    assert len(list(testcases)) == len(cases)
    pcaps = [run_dir / c["pcap"] for c in cases if c["pcap"]]
    assert len(pcaps) == len([c for c in cases if c["transcript"]]) and all(p.is_file() for p in pcaps)


def test_tshark_decodes_the_pcaps_as_mqtt(run_dir: Path):
    if shutil.which("tshark") is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed; .ci/install-brokers installs it")
        pytest.skip("tshark is not installed")
    seen: set[str] = set()
    for pcap in sorted((run_dir / "pcap").glob("*.pcap"), key=lambda p: "publish" not in p.name)[:20]:
        out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "mqtt", "-T", "fields", "-e", "mqtt.msgtype"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        assert out, f"tshark found no MQTT in {pcap.name}"
        seen.update(value for line in out for value in line.split(","))
    assert {"1", "2", "3"} <= seen  # CONNECT, CONNACK, PUBLISH


def test_the_password_is_in_no_file(run_dir: Path):
    secrets = [PASSWORD.encode(), PASSWORD.encode().hex().encode()]
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), f"password found in {path}"


def test_the_password_was_really_used(run_dir: Path):
    doc = json.loads((run_dir / "results.json").read_text())
    connects = [e for c in doc["cases"] for e in c["transcript"] if e["summary"].startswith("CONNECT")]
    assert any("password=" in e["summary"] and "***" in e["summary"] for e in connects)


def test_baseline_accepts_known_failures_and_catches_a_new_one(broker, run_dir: Path, tmp_path: Path):
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", str(run_dir), "--output", str(baseline)).returncode == 0
    recorded = json.loads(baseline.read_text())
    assert recorded["cases"]
    same = cli("run", "--broker", broker.url_for("mqtt"), "--username", "alice", "-k", SELECTION,
               "--report-dir", str(tmp_path / "same"), "--baseline", str(baseline))
    assert same.returncode == 0, same.stdout[-2000:]
    dropped = recorded["cases"].pop(0)
    recorded["cases"].append({**dropped, "id": "cases/test_x.py::test_fixed_meanwhile[3.1.1]", "mqtt_version": "3.1.1"})
    baseline.write_text(json.dumps(recorded))
    more = cli("run", "--broker", broker.url_for("mqtt"), "--username", "alice", "-k", SELECTION,
               "--report-dir", str(tmp_path / "more"), "--baseline", str(baseline))
    assert more.returncode == 1
    assert dropped["id"].split("::")[-1] in more.stdout
