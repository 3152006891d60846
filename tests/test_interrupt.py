"""An interrupted run (Ctrl-C) says so in every report and exits 2: never "no failures · exit code 0".

A real ``mqtt-conformance run`` against the embedded mosquitto is started in a subprocess and sent
SIGINT once its progress line shows finished cases. Wall time: about 10 s for both tests on an idle
machine (most of it the xdist start-up of the second).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto

pytestmark = pytest.mark.xdist_group("interrupt")
PROGRESS = re.compile(r"^\[\s*(\d+)/(\d+)")


def wait_for_progress(proc: subprocess.Popen, least: int, timeout: float = 90.0) -> list[str]:
    """Lines read until a progress line counts at least ``least`` finished cases (bounded)."""
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = PROGRESS.match(line)
        if match and int(match.group(1)) >= least and int(match.group(1)) < int(match.group(2)):
            return lines
    proc.kill()
    pytest.fail(f"no progress line with {least} finished cases within {timeout:g} s: {''.join(lines)[-2000:]}")


def interrupt_run(tmp_path: Path, workers: str, whole_group: bool) -> tuple[int, str, Path]:
    report_dir = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", "-n", workers, "--report-dir", str(report_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        cwd=Path(__file__).resolve().parents[1])
    try:
        before = wait_for_progress(proc, least=2)
        # Ctrl-C reaches the whole process group (xdist workers included); `kill -INT` only the CLI.
        os.killpg(proc.pid, signal.SIGINT) if whole_group else proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode, "".join(before) + rest, report_dir


def check_reports(report_dir: Path, output: str) -> None:
    doc = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    assert doc["interrupted"] is True and doc["exit_code"] == 2
    ran = len(doc["cases"])
    assert 2 <= ran < 500, ran  # the finished cases were kept, the rest did not run
    summary = (report_dir / "summary.md").read_text(encoding="utf-8")
    assert "INTERRUPTED" in summary.splitlines()[0] and "no failures" not in summary
    assert "exit code 0" not in summary
    assert "Interrupted run." in (report_dir / "report.html").read_text(encoding="utf-8")
    junit = ET.parse(report_dir / "junit.xml").getroot()
    assert int(junit.get("errors")) >= 1
    assert junit.find(".//testcase[@name='run interrupted']/error") is not None
    allure = [json.loads(p.read_text(encoding="utf-8")) for p in (report_dir / "allure-results").glob("*-result.json")]
    assert [r["status"] for r in allure if r["name"] == "run interrupted"] == ["broken"]
    assert "INTERRUPTED after" in output and "Traceback" not in output


def test_sigint_serial_run(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    code, output, report_dir = interrupt_run(tmp_path, "0", whole_group=False)
    assert code == 2, output[-2000:]
    check_reports(report_dir, output)


def test_ctrl_c_parallel_run(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    code, output, report_dir = interrupt_run(tmp_path, "2", whole_group=True)
    assert code == 2, output[-2000:]
    check_reports(report_dir, output)
