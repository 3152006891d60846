"""Compare matrix over three runs of the sample."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.reports import render_matrix

SAMPLE = Path(__file__).parent / "data" / "reports" / "sample-results.json"


@pytest.fixture()
def runs() -> list[tuple[str, dict[str, Any]]]:
    base = json.loads(SAMPLE.read_text(encoding="utf-8"))
    second = copy.deepcopy(base)
    second["target"]["name"] = "emqx 5.8"
    for case in second["cases"]:
        if case.get("name") == "test_qos1_forwarded_at_granted_qos":
            case["verdict"] = "PASS"
    third = copy.deepcopy(base)
    third["target"]["name"] = "hivemq-ce 2024.3"
    third["cases"] = [c for c in third["cases"] if c.get("mqtt_version") == "5.0"]  # a 5.0-only run
    return [("", base), ("", second), ("hive", third)]


def test_compare_html(runs: list[tuple[str, dict[str, Any]]]) -> None:
    html, _ = render_matrix(runs)
    heads = re.findall(r'<th class="run">([^<]*)</th>', html)
    assert heads == ["mosquitto 2.0.18", "emqx 5.8", "hive"]
    rows = re.findall(r'<tr class="f[^"]*"[^>]*data-differs="(\d)"', html)
    assert len(rows) == 13  # statements cited by any run (uncovered ones are not compared)
    differing = re.findall(r'<tr class="f differs"[^>]*>\s*<td class="id mono"><a [^>]*>([^<]+)</a>', html)
    # 3.3.4-1 changed in the second run; every 3.1.1 statement is missing from the 5.0-only run
    assert "MQTT-3.3.4-1" in differing and "MQTT-3.2.0-1" in differing and "MQTT-3.2.2-2" not in differing
    assert 'id="f-diff"' in html and "only differences" in html
    assert "<tfoot>" in html and "Totals" in html
    assert not re.search(r"<script[^>]+src=|<link\b", html)


def test_compare_markdown(runs: list[tuple[str, dict[str, Any]]]) -> None:
    _, md = render_matrix(runs)
    assert "| Statement | MQTT | mosquitto 2.0.18 | emqx 5.8 | hive |" in md
    line = next(li for li in md.splitlines() if li.startswith("| `MQTT-3.3.4-1`"))
    assert "❌ FAIL" in line and "✅ PASS" in line and "⚠️" in line
    assert "### Statements where the runs differ (" in md and "<details>" in md


def test_duplicate_labels_are_told_apart(runs: list[tuple[str, dict[str, Any]]]) -> None:
    html, _ = render_matrix([runs[0], copy.deepcopy(runs[0])])
    assert re.findall(r'<th class="run">([^<]*)</th>', html) == ["mosquitto 2.0.18", "mosquitto 2.0.18 #2"]
    assert 'class="f differs"' not in html
