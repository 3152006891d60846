"""report.html and the compare matrix in a real headless browser (Debian's chromium): the pages' own
script runs without external resources (it fills in the "shown" counter that the filters maintain),
and a screenshot is taken (left in reports/screenshots/ for a person to look at)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.reports import render_all, render_matrix

SAMPLE = Path(__file__).parent / "data" / "reports" / "sample-results.json"
SHOTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"
# Flags for a closed network: no background requests, no component updates, a throw-away profile.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install it (.ci/install-brokers chromium)")
        pytest.skip("chromium is not installed (.ci/install-brokers chromium)")
    return path


def browse(page: Path, profile: Path, *extra: str) -> str:
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def check_page(page: Path, tmp_path: Path, expected_shown: str) -> None:
    dom = browse(page, tmp_path / "profile", "--dump-dom")
    shown = re.search(r'id="shown">([^<]*)<', dom)
    assert shown and re.search(expected_shown, shown.group(1)), shown.group(1) if shown else dom[:500]
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{page.stem}.png"
    shot.unlink(missing_ok=True)
    browse(page, tmp_path / "profile", "--window-size=1400,1000", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # not a blank page


def test_report_html_runs_its_script_in_a_browser(tmp_path: Path) -> None:
    results = json.loads(SAMPLE.read_text(encoding="utf-8"))
    render_all(results, tmp_path)
    total = len(results["cases"])
    check_page(tmp_path / "report.html", tmp_path, rf"^{total} of {total} cases · \d+ of \d+ statements shown$")


def test_matrix_html_runs_its_script_in_a_browser(tmp_path: Path) -> None:
    base = json.loads(SAMPLE.read_text(encoding="utf-8"))
    other = copy.deepcopy(base)
    other["target"]["name"] = "another broker"
    html, _ = render_matrix([("", base), ("", other), ("third", copy.deepcopy(base))])
    page = tmp_path / "matrix.html"
    page.write_text(html, encoding="utf-8")
    check_page(page, tmp_path, r"^(\d+) of \1 statements shown$")
