"""A real run against a doctored baseline: summary.md, report.html and junit.xml mark NEW failures,
FIXED ones and PASS -> UNSUPPORTED (a capability turned off), results.json lists their ids, and an
exit-0 baseline run shows no ❌.

Three serial runs of a small selection of mosquitto cases (shared subscriptions plus two known
deviations).
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto
from conformance.reports import make_baseline

pytestmark = pytest.mark.xdist_group("reports-baseline-run")
ROOT = Path(__file__).resolve().parents[1]
SELECTION = "test_4_08_shared or high_bit_set_is_refused or qos2_duplicate_before_pubrel"
TURNED_OFF = "shared_subscriptions=false"


def run(report_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.cli", "run", "-n", "0", "-k", SELECTION,
                           "--report-dir", str(report_dir), *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def results(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_broker(Mosquitto)
    report_dir = tmp_path_factory.mktemp("first")
    proc = run(report_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return report_dir


def test_same_run_exits_zero_without_a_red_cross(first: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(make_baseline(results(first))), encoding="utf-8")
    proc = run(tmp_path / "again", "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "again" / "summary.md").read_text(encoding="utf-8")
    assert "✅ no new failures against the baseline" in summary.splitlines()[0]
    assert "❌" not in summary
    block = results(tmp_path / "again")["baseline"]
    assert block["new_failures_ids"] == block["fixed_ids"] == block["now_unsupported_ids"] == []


def test_new_fixed_and_now_unsupported_are_marked(first: Path, tmp_path: Path) -> None:
    doc = results(first)
    baseline = make_baseline(doc)
    dropped = baseline["cases"].pop(0)  # a failure the baseline no longer accepts: NEW
    passing = next(c for c in doc["cases"] if c["verdict"] == "PASS" and "test_4_08_shared" not in c["id"])
    baseline["cases"].append({"id": passing["id"], "mqtt_version": passing["mqtt_version"], "verdict": "FAIL"})
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline), encoding="utf-8")
    out = tmp_path / "later"
    proc = run(out, "--baseline", str(path), "--capability", TURNED_OFF)
    assert proc.returncode == 1, proc.stdout + proc.stderr

    block = results(out)["baseline"]
    lost = block["now_unsupported_ids"]
    # (a case that checks the refusal of shared subscriptions runs now, and fails: mosquitto has them)
    assert dropped["id"] in block["new_failures_ids"] and block["fixed_ids"] == [passing["id"]]
    was_passing = {c["id"] for c in doc["cases"] if c["verdict"] == "PASS" and "test_4_08_shared" in c["id"]}
    assert lost and set(lost) == was_passing

    summary = (out / "summary.md").read_text(encoding="utf-8")
    new, gone = len(block["new_failures_ids"]), len(lost)
    assert f"❌ {new} new failure(s), {gone} now unsupported" in summary.splitlines()[0]
    for mark, case_id in [("NEW failure", dropped["id"]), ("FIXED", passing["id"]), ("NOW UNSUPPORTED", lost[0])]:
        line = next(x for x in summary.splitlines() if x.startswith(f"- **{mark}**") and case_id.split("::")[1] in x)
        assert line

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Against the baseline" in html and '<span class="tag mark">NOW UNSUPPORTED</span>' in html
    assert '<span class="tag mark">NEW</span>' in html and '<span class="tag mark">FIXED</span>' in html

    junit = ET.parse(out / "junit.xml").getroot()
    marks = {tc.get("name"): tc.find("properties/property[@name='baseline']").get("value")
             for tc in junit.iter("testcase")}
    assert marks[lost[0].split("::")[1]] == "NOW UNSUPPORTED" and marks[dropped["id"].split("::")[1]] == "NEW"
    # accepted failures are skipped: what fails the run, and only that, is a <failure> or <error>
    kinds = [f.get("type") for f in [*junit.iter("failure"), *junit.iter("error")]]
    assert len(kinds) == new + gone and kinds.count("NOW-UNSUPPORTED") == gone
    assert "NOW UNSUPPORTED" in proc.stdout and "NEW " in proc.stdout
