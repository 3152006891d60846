"""Managed brokers that recover (conformance/run/supervisor.py), against real brokers.

- The supervisor alone: a real mosquitto killed with SIGKILL is seen dead, its exit status and log
  recorded, and it listens again on the same port.
- A crash-on-input broker (tests/crashing_broker.py: a real mosquitto behind a proxy that exits with
  status 3 on a PUBLISH to a topic starting with U+FEFF) started with ``--broker-command``: the two
  cases that send such a PUBLISH are FAIL with the crash as evidence (record["crash"]), every other case
  is judged (no ERROR), serially and with two workers.
- The same broker started by the test and given with ``--broker`` (not managed): no restart, the
  cases after the crash turn ERROR fast, as before.
- A --broker-command without {port} is a one-line usage error (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.base import free_port, wait_for_port
from conformance.brokers.mosquitto import Mosquitto
from conformance.run import supervisor

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "fixtures" / "targets" / "mosquitto.toml"
CRASHING = f"{sys.executable} {ROOT / 'tests' / 'crashing_broker.py'} {{port}}"
SELECTION = "bom_in_a_topic or connack"
KILLER = "test_bom_in_a_topic_is_kept_not_stripped"
RUN_BOUND = 150.0

pytestmark = pytest.mark.xdist_group("recovery")


def run_cli(report_dir: Path, *args: str, timeout: float = RUN_BOUND) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--report-dir", str(report_dir), *args]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc, time.monotonic() - started


def test_supervisor_restarts_a_killed_broker_on_the_same_port() -> None:
    require_broker(Mosquitto)
    with Mosquitto() as broker:
        watch = supervisor.Supervisor(broker).start()
        try:
            port = broker.ports["3.1.1"]
            old = broker.process
            os.killpg(old.pid, signal.SIGKILL)
            crash = supervisor.crash_since([port], 0.0, 10.0)
            assert crash is not None and crash["exit_code"] == -signal.SIGKILL
            state = supervisor.wait_until_up([port], 20.0)
            assert state is not None and state["up"], state
            assert broker.process is not old and broker.alive()
            wait_for_port("127.0.0.1", port, 5.0)
        finally:
            watch.stop()
    assert not watch.path.exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_crashing_case_is_fail_with_evidence_and_the_rest_is_judged(tmp_path: Path, workers: str) -> None:
    require_broker(Mosquitto)
    proc, wall = run_cli(tmp_path, "--broker-command", CRASHING, "--profile", str(PROFILE), "-n", workers,
                         "-k", SELECTION)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    killers = [c for c in doc["cases"] if c["name"] == KILLER and "topic-start" in c["id"]]
    assert {c["mqtt_version"] for c in killers} == {"3.1.1", "5.0"}
    for case in killers:
        assert case["verdict"] == "FAIL", case["message"]
        assert case["crash"]["exit_code"] == 3
        assert any("U+FEFF" in line for line in case["crash"]["log_tail"])
        assert "BROKER CRASH" in case["message"] and case["id"] in case["crash"]["suspects"]
    errors = [(c["id"], c["message"]) for c in doc["cases"] if c["verdict"] == "ERROR"]
    assert not errors
    others = [c for c in doc["cases"] if c not in killers]
    assert len(others) > 30 and not any(c["crash"] for c in others)
    assert wall < RUN_BOUND


def test_unmanaged_crashing_broker_turns_the_rest_error_fast(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    port = free_port()
    broker = subprocess.Popen(CRASHING.format(port=port).split(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 20.0, broker)
        proc, wall = run_cli(tmp_path, "--broker", f"mqtt://127.0.0.1:{port}", "--profile", str(PROFILE),
                             "-n", "0", "-k", SELECTION)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(10)
    doc = json.loads((tmp_path / "results.json").read_text())
    gone = [c for c in doc["cases"] if c["verdict"] == "ERROR" and "broker is gone" in c["message"]]
    assert gone and not any(c["crash"] for c in doc["cases"])
    assert wall < 60


def test_broker_command_without_port_is_a_usage_error(tmp_path: Path) -> None:
    proc, _ = run_cli(tmp_path, "--broker-command", "mosquitto -v", timeout=30)
    assert proc.returncode == 2
    assert "must contain {port}" in proc.stderr and "Traceback" not in proc.stderr
