"""Every report rendered from one ``results.json`` dict (see docs/results-schema.md).

``render_all`` writes report.html, summary.md, junit.xml, allure-results/ and pcap/*.pcap. Optional
fields may be missing; unknown statement IDs and verdicts are shown rather than rejected.

Side effect: ``render_all`` sets each case's ``pcap`` field to the capture it wrote (a path relative
to ``report_dir``, or None when the case sent nothing), so the caller can re-save results.json with
the paths filled in. Nothing under ``report_dir`` is deleted; files of the same run are overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .allure import write_allure
from .baseline import BaselineComparison, compare_to_baseline, make_baseline
from .compare import render_matrix
from .html import render_html, write_html
from .junit import render_junit, write_junit
from .markdown import render_markdown, write_markdown
from .pcap import write_pcaps


def render_all(results: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write every report into ``report_dir`` (created if needed); returns the files written."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    written = write_pcaps(results, report_dir)  # first: the other reports link or attach the captures
    written += [write_html(results, report_dir), write_markdown(results, report_dir),
                write_junit(results, report_dir)]
    written += write_allure(results, report_dir)
    return written


__all__ = [
    "BaselineComparison", "compare_to_baseline", "make_baseline", "render_all", "render_html", "render_junit",
    "render_markdown", "render_matrix", "write_allure", "write_html", "write_junit", "write_markdown",
    "write_pcaps",
]
