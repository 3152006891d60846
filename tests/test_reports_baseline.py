"""Baseline: accept today's failures, exit 1 only on new ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.reports import compare_to_baseline, make_baseline
from conformance.reports.baseline import normalize_case_id

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).parent / "data" / "reports" / "sample-results.json"


@pytest.fixture()
def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def _case(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in results["cases"] if c.get("name") == name)


def test_make_baseline_records_bad_cases(sample: dict[str, Any]) -> None:
    baseline = make_baseline(sample)
    assert baseline["target"] == "mosquitto 2.0.18" and baseline["date"] == "2026-11-25T04:10:00+00:00"
    verdicts = sorted(c["verdict"] for c in baseline["cases"])
    assert verdicts == ["ERROR", "FAIL", "FAIL", "FAIL", "NON-STRICT"]
    entry = next(c for c in baseline["cases"] if c["id"].endswith("test_qos1_forwarded_at_granted_qos[5.0]"))
    assert entry["mqtt_version"] == "5.0" and entry["statements"] == ["MQTT-3.3.4-1"] and "QoS 0" in entry["message"]
    json.dumps(baseline)  # stored as JSON


def test_same_results_exit_zero(sample: dict[str, Any]) -> None:
    result = compare_to_baseline(sample, make_baseline(sample))
    assert result.exit_code == 0
    assert not result.new_failures and not result.fixed and len(result.still_failing) == 5
    assert "0 new failure(s), 5 still failing, 0 fixed" in result.describe()


def test_new_failure_exit_one(sample: dict[str, Any]) -> None:
    baseline = make_baseline(sample)
    later = copy.deepcopy(sample)
    case = _case(later, "test_connack_first")
    case.update(verdict="FAIL", message="CONNACK arrived after a PUBLISH")
    result = compare_to_baseline(later, baseline)
    assert result.exit_code == 1
    assert [c.case for c in result.new_failures] == ["cases/test_3_2_connack.py::test_connack_first[3.1.1]"]
    text = result.describe()
    assert "NEW FAILURE" in text and "test_connack_first[3.1.1]" in text and "MQTT-3.2.0-1" in text
    assert "CONNACK arrived after a PUBLISH" in text


def test_worse_verdict_is_new(sample: dict[str, Any]) -> None:
    baseline = make_baseline(sample)
    later = copy.deepcopy(sample)
    _case(later, "test_reason_string_fits")["verdict"] = "FAIL"  # was NON-STRICT
    result = compare_to_baseline(later, baseline)
    assert result.exit_code == 1
    assert result.new_failures[0].previous == "NON-STRICT" and result.new_failures[0].verdict == "FAIL"


def test_fixed_case_is_an_improvement(sample: dict[str, Any]) -> None:
    baseline = make_baseline(sample)
    later = copy.deepcopy(sample)
    _case(later, "test_qos1_forwarded_at_granted_qos").update(verdict="PASS", message="")
    later["cases"] = [c for c in later["cases"] if c.get("name") != "test_second_connect_closes"]
    result = compare_to_baseline(later, baseline)
    assert result.exit_code == 0
    assert [(c.case, c.previous, c.verdict) for c in result.fixed] == [
        ("cases/test_3_3_publish.py::test_qos1_forwarded_at_granted_qos[5.0]", "FAIL", "PASS")]
    assert [c.verdict for c in result.not_run] == ["NOT RUN"]  # absent is not "fixed"
    text = result.describe()
    assert "1 fixed" in text and "FIXED: [5.0] cases/test_3_3_publish.py::test_qos1_forwarded_at_granted_qos" in text


def test_worker_parts_do_not_matter(sample: dict[str, Any]) -> None:
    baseline = make_baseline(sample)
    later = copy.deepcopy(sample)
    for case in later["cases"]:
        case["id"] = case["id"].replace("[5.0]", "[5.0-gw1]")
    assert compare_to_baseline(later, baseline).exit_code == 0


@pytest.mark.parametrize(("raw", "expected"), [
    ("m.py::t[5.0]", "m.py::t[5.0]"),
    ("[gw2] m.py::t[5.0]", "m.py::t[5.0]"),
    ("m.py::t[gw0-5.0]", "m.py::t[5.0]"),
    ("m.py::t[gw3]", "m.py::t"),
    ("m.py::t[5.0]@gw1", "m.py::t[5.0]"),
])
def test_normalize_case_id(raw: str, expected: str) -> None:
    assert normalize_case_id(raw) == expected
