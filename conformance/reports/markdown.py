"""summary.md: a short Markdown digest sized for a CI job summary (e.g. $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .model import (
    NOT_COVERED,
    VERDICTS,
    Case,
    Run,
    coverage,
    fmt_duration,
    run_of,
    section_key,
    statement_rows,
    version_key,
)

MAX_LISTED = 40  # job summaries are capped in size; the HTML report has the rest
ACCEPTED = "🟡"  # failures that do not fail the run (known deviations, accepted by the baseline)
ICONS = {"PASS": "✅", "FAIL": "❌", "ERROR": "💥", "NON-STRICT": "⚠️", "INFORMATIONAL": "ℹ️", "UNSUPPORTED": "⏭️"}


def cell(text: object, limit: int = 200) -> str:
    """One table cell / list item: single line, no pipes, HTML neutralised, bounded length."""
    flat = " ".join(str(text or "").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return html.escape(flat, quote=False).replace("|", "\\|").replace("`", "'")


def render_markdown(results: dict[str, Any]) -> str:
    run = run_of(results)
    counts = run.counts
    bad = [c for c in run.cases if c.verdict in ("FAIL", "ERROR") and not c.known_deviation]
    icons = dict(ICONS)
    if run.exit_code == 0:  # every failure is accepted (profile or baseline): no red cross on a green run
        icons.update({"FAIL": ACCEPTED, "ERROR": ACCEPTED})
    lines = [
        f"## MQTT conformance: {cell(run.target_name)} — {headline(run, bad)}",
        "",
        *_interrupted(run),
        f"{cell(run.tool_name)} {cell(run.tool_version)} · started {cell(run.started_at or '?')} · "
        f"{fmt_duration(run.duration_s)} · {len(run.cases)} cases"
        + (f" · exit code {run.exit_code}" if run.exit_code is not None else ""),
        "",
        "| Verdict | Cases |",
        "|---|---:|",
        *(f"| {icons[v]} {v} | {counts[v]} |" for v in VERDICTS),
        f"| **Total** | **{len(run.cases)}** |",
        "",
    ]
    lines += _baseline(run)
    lines += _failures(bad, run)
    known = run.known_deviations
    lines.append(f"**Known deviations:** {len(known)} case(s) fail as the target profile says they do"
                 + (" (not counted as failures above)." if known else "."))
    lines.append("")
    lines += _coverage(run)
    lines.append("The full report with wire transcripts is in `report.html`.")
    return "\n".join(lines) + "\n"


def headline(run: Run, bad: list[Case]) -> str:
    """The state in a few words, agreeing with the exit code: never success for an interrupted run,
    never ❌ for a baseline run that exits 0."""
    code = f" · exit code {run.exit_code}" if run.exit_code is not None else ""
    if run.interrupted:
        return f"⛔ INTERRUPTED after {len(run.cases)} cases{code}"
    if run.baseline is not None:
        new = len(run.baseline.get("new_failures_ids") or ())
        lost = len(run.baseline.get("now_unsupported_ids") or ())
        if run.exit_code == 0 or (run.exit_code is None and not new and not lost):
            return "✅ no new failures against the baseline"
        parts = [f"{new} new failure(s)"] + ([f"{lost} now unsupported"] if lost else [])
        return f"❌ {', '.join(parts)} against the baseline"
    failed = run.exit_code != 0 if run.exit_code is not None else bool(bad)
    return "❌ failures" if failed else "✅ no failures"


def _interrupted(run: Run) -> list[str]:
    if not run.interrupted:
        return []
    return ["> **The run was interrupted** (Ctrl-C) before every selected case ran: the counts below cover "
            f"only the {len(run.cases)} cases that finished. It is not a conformance result.", ""]


def _baseline(run: Run) -> list[str]:
    block = run.baseline
    if block is None:
        return []
    out = [f"### Against the baseline `{cell(block.get('file') or '?', 120)}`", "",
           f"{len(block.get('new_failures_ids') or ())} new failure(s), "
           f"{len(block.get('now_unsupported_ids') or ())} now unsupported (passed in the baseline), "
           f"{len(block.get('fixed_ids') or ())} fixed, {block.get('still_failing', '?')} still failing "
           "(accepted by the baseline).", ""]
    for title, field_name in (("NEW failure", "new_failures_ids"), ("NOW UNSUPPORTED", "now_unsupported_ids"),
                              ("FIXED", "fixed_ids")):
        for case in run.baseline_cases(field_name)[:MAX_LISTED]:
            stmts = ", ".join(f"`{s}`" for s in case.statements) or "no statement"
            message = f" — {cell(case.message)}" if case.message else ""
            out.append(f"- **{title}** ({case.verdict}) [{case.version}] {stmts} `{cell(case.short_id, 120)}`"
                       f"{message}")
    return [*out, ""]


def _failures(bad: list[Case], run: Run) -> list[str]:
    if not bad:
        return []
    ordered = sorted(bad, key=lambda c: (c.verdict != "FAIL", version_key(c.version), section_key(c.chapter), c.id))
    out = ["### Failures and errors", ""]
    for case in ordered[:MAX_LISTED]:
        stmts = ", ".join(f"`{s}`" for s in case.statements) or "no statement"
        message = f" — {cell(case.message)}" if case.message else ""
        mark = run.baseline_mark(case)
        tag = f" **{mark}**" if mark else (" (accepted by the baseline)" if run.baseline is not None else "")
        out.append(f"- **{case.verdict}**{tag} [{case.version}] {stmts} `{cell(case.short_id, 120)}`{message}")
    if len(ordered) > MAX_LISTED:
        out.append(f"- … and {len(ordered) - MAX_LISTED} more (see report.html)")
    out.append("")
    return out


def _coverage(run: Run) -> list[str]:
    covs = coverage(statement_rows(run))
    if not covs:
        return []
    head = "| MQTT | In-scope statements | Covered | Coverage | " + " | ".join(VERDICTS) + " | Not covered |"
    out = ["### Statement coverage", "", head, "|---|---:|---:|---:|" + "---:|" * (len(VERDICTS) + 1)]
    for cov in covs:
        verdicts = " | ".join(str(cov.rolled[v]) for v in VERDICTS)
        out.append(f"| {cov.version} | {cov.in_scope} | {cov.covered} | {cov.percent:.0f}% | {verdicts} | "
                   f"{cov.rolled[NOT_COVERED]} |")
    out += ["", "Statement verdicts are rolled up over the cases citing them (worst wins).", ""]
    return out


def write_markdown(results: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "summary.md"
    path.write_text(render_markdown(results), encoding="utf-8")
    return path
