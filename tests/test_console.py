"""Terminal output: ``mqtt-conformance run`` prints a progress line and one summary in the suite's own
verdicts (no xdist start-up lines, no raw target dict, no transcripts, no pytest "N passed"); a plain
``pytest cases`` run ends with pytest's counts in the suite's verdicts. Real runs against the embedded
mosquitto (three small selections, one with two xdist workers).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto
from conformance.console import Progress, short, summary_lines

pytestmark = pytest.mark.xdist_group("console")
ROOT = Path(__file__).resolve().parents[1]
# Two cases mosquitto fails (known deviations in its profile) and a few quick ones.
SELECTION = "high_bit_set_is_refused or qos2_duplicate_before_pubrel or session_present"
NOISE = ("bringing up nodes", "[gw0]", "created:", "wire transcript", "{'3.1.1'", "Traceback")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.cli", "run", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def results(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "results.json").read_text(encoding="utf-8"))


def no_deviations_profile(tmp_path: Path) -> Path:
    """mosquitto's profile without its deviations, so that its FAILs fail the run and get listed."""
    text = (ROOT / "fixtures" / "targets" / "mosquitto.toml").read_text(encoding="utf-8")
    path = tmp_path / "mosquitto-strict.toml"
    path.write_text(text.split("[[deviations]]")[0], encoding="utf-8")
    return path


def check_quiet(output: str) -> None:
    for noise in NOISE:
        assert noise not in output, noise
    assert not re.search(r"^\d+ (passed|failed)|=====", output, re.M), output


def test_small_selection_runs_serially_with_one_summary(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    out = tmp_path / "r"
    proc = cli("-k", SELECTION, "--report-dir", str(out), "--profile", str(no_deviations_profile(tmp_path)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    check_quiet(proc.stdout + proc.stderr)
    doc = results(out)
    assert doc["options"]["workers"] == 0 and "running them serially" in proc.stderr
    counts = doc["summary"]
    assert re.search(rf"^\[\s*{len(doc['cases'])}/{len(doc['cases'])} 100%\] ", proc.stdout, re.M)
    assert f"  PASS {counts['PASS']} · FAIL {counts['FAIL']} · NON-STRICT" in proc.stdout
    failing = [c for c in doc["cases"] if c["verdict"] == "FAIL"]
    assert failing  # mosquitto's known deviations, not known to this profile
    for case in failing:  # one line each: verdict, case id, statements, message
        line = next(x for x in proc.stdout.splitlines() if case["id"] in x)
        assert line.lstrip().startswith("FAIL") and ",".join(case["statements"]) in line and len(line) < 300
    assert f"report:  {out / 'report.html'}" in proc.stdout and f"results: {out / 'results.json'}" in proc.stdout


def test_workers_start_quietly(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    proc = cli("-n", "2", "-k", SELECTION, "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the FAILs are the profile's known deviations
    check_quiet(proc.stdout + proc.stderr)
    doc = results(tmp_path / "r")
    known = sum(c["known_deviation"] for c in doc["cases"])
    assert known and f"({known} known deviation" in proc.stdout and doc["options"]["workers"] == 2


def test_plain_pytest_ends_with_the_suites_counts(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    proc = subprocess.run([sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "-k", SELECTION,
                           "--report-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    doc = results(tmp_path / "r")
    known = sum(c["known_deviation"] for c in doc["cases"])
    assert f"{doc['summary']['PASS']} passed" in last and f"{known} known deviations" in last, last
    assert "failed" not in last and "wire transcript" not in proc.stdout


def test_message_cut_at_a_word_boundary() -> None:
    text = "expected the broker to close the connection after the second CONNECT, but it sent " + "x " * 80
    cut = short(text, 60)
    assert len(cut) <= 60 and cut.endswith("…") and not cut[:-1].endswith(" ")
    assert short("first line\nsecond line") == "first line"


def test_eta_uses_the_previous_durations() -> None:
    progress = Progress({"slow": 10.0, "a": 1.0, "b": 1.0})
    progress.ids = ["slow", "a", "b"]
    progress.start -= 10.0  # the slow case took 10 s
    progress.add({"id": "slow", "verdict": "PASS"})
    assert progress.eta() == pytest.approx(2.0, rel=0.05)  # not 20 s, as counting cases would say
    assert "PASS 1" in progress.line() and "ETA" in progress.line()


def test_summary_of_an_interrupted_baseline_run() -> None:
    doc = {"target": {"name": "b"}, "duration_s": 3.0, "interrupted": True, "cases": [
        {"id": "m::t[5.0]", "verdict": "FAIL", "statements": ["MQTT-1"], "message": "no PUBACK",
         "known_deviation": False}],
        "baseline": {"file": "base.json", "new_failures_ids": ["m::t[5.0]"], "fixed_ids": [],
                     "now_unsupported_ids": [], "still_failing": 0}}
    text = "\n".join(summary_lines(doc, Path("out")))
    assert "INTERRUPTED after 1 case:" in text and "1 new failure(s)" in text
    assert re.search(r"NEW FAIL\s+m::t\[5.0\]  MQTT-1  no PUBACK", text)


def test_a_case_module_that_does_not_import_is_exit_2(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_broken.py").write_text("import no_such_module_for_this_test\n", encoding="utf-8")
    proc = cli("-n", "0", "--cases", str(cases), "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error collecting" in proc.stderr and "no_such_module_for_this_test" in proc.stderr
