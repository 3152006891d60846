"""The whole conformance suite against a real mosquitto: serial and parallel verdicts are identical,
and every FAIL or ERROR is a known, evidenced deviation in mosquitto's profile."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]


def run_suite(report_dir: Path, workers: str, url: str) -> dict:
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--broker", url, "--profile",
           str(ROOT / "fixtures/targets/mosquitto.toml"), "--report-dir", str(report_dir), "-n", workers]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads((report_dir / "results.json").read_text())


def verdicts(doc: dict) -> dict[tuple[str, str], str]:
    return {(c["id"], c["mqtt_version"]): c["verdict"] for c in doc["cases"]}


def test_whole_suite_against_mosquitto_serial_and_parallel(tmp_path):
    """One test, not three sharing a module fixture: under xdist every worker that ran one of them
    would run both whole suites again."""
    require_broker(Mosquitto)
    with Mosquitto() as broker:
        url = broker.url("5.0")
        serial = run_suite(tmp_path / "serial", "0", url)
        parallel = run_suite(tmp_path / "parallel", "2", url)

    assert verdicts(serial) == verdicts(parallel)

    for doc in (serial, parallel):
        unexplained = [f"{c['id']}: {c['verdict']} {c['message'][:200]}" for c in doc["cases"]
                       if c["verdict"] in ("FAIL", "ERROR") and not c["known_deviation"]]
        assert not unexplained, "\n".join(unexplained)

    for case in serial["cases"]:
        if case["known_deviation"]:
            evidence = case["deviation"]["evidence"]
            assert evidence and (ROOT / evidence).is_file(), f"{case['id']}: deviation without evidence file"

    # No stale entry: every TCP deviation of the profile is a FAIL of this run (docs/grading.md; a shortfall
    # graded NON-STRICT needs no entry).
    # Entries whose cases did not run here (UNSUPPORTED: no WebSocket URL given) are not judged.
    failing = {(c["deviation"]["statement"], c["deviation"]["evidence"]) for c in serial["cases"]
               if c["known_deviation"] and c["verdict"] == "FAIL"}
    profile = tomllib.loads((ROOT / "fixtures/targets/mosquitto.toml").read_text())
    stale = [d for d in profile["deviations"] if not d.get("transport") and _ran(serial, d)
             and (d["statement"], d["evidence"]) not in failing]
    assert not stale, f"deviations that no longer fail: {stale}"


def _ran(doc: dict, deviation: dict) -> bool:
    """Did a case this deviation covers run (any verdict but UNSUPPORTED)?"""
    return any(deviation["statement"] in c["statements"] and deviation.get("case", "") in c["id"]
               and deviation.get("version", c["mqtt_version"]) == c["mqtt_version"] and c["verdict"] != "UNSUPPORTED"
               for c in doc["cases"])
