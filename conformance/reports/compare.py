"""Side-by-side statement matrix of several runs (brokers, versions of one broker, before/after)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .htmlkit import badge, checkboxes, esc, page, select, vkey
from .markdown import ICONS, cell
from .model import (
    NOT_COVERED,
    VERDICTS,
    Run,
    catalogue,
    chapter_title,
    fmt_duration,
    run_of,
    section_key,
    statement_rows,
    version_key,
)

MISSING = "—"  # the run has no case citing the statement


@dataclass
class _Row:
    version: str
    id: str
    chapter: str
    section: str
    summary: str
    url: str
    order: int
    cells: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return len(set(self.cells)) > 1


def _labels(runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Run]]:
    """Given label or the target name, made unique so that columns can be told apart."""
    seen: Counter[str] = Counter()
    out = []
    for label, results in runs:
        run = run_of(results)
        name = label or run.target_name
        seen[name] += 1
        out.append((name if seen[name] == 1 else f"{name} #{seen[name]}", run))
    return out


def _rows(runs: list[tuple[str, Run]]) -> list[_Row]:
    rows: dict[tuple[str, str], _Row] = {}
    per_run: list[dict[tuple[str, str], str]] = []
    for _, run in runs:
        verdicts = {}
        for srow in statement_rows(run, uncovered=False):
            key = (srow.version, srow.id)
            verdicts[key] = srow.verdict
            if key not in rows:
                ids = list(catalogue(srow.version))
                order = ids.index(srow.id) if srow.id in ids else len(ids)
                rows[key] = _Row(srow.version, srow.id, srow.chapter, srow.section, srow.summary, srow.url, order)
        per_run.append(verdicts)
    for key, row in rows.items():
        row.cells = [verdicts.get(key, MISSING) for verdicts in per_run]
    return sorted(rows.values(), key=lambda r: (version_key(r.version), section_key(r.chapter), r.order, r.id))


def render_matrix(runs: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
    """(self-contained HTML, Markdown) comparing the rolled-up statement verdicts of ``runs``."""
    labelled = _labels(runs)
    rows = _rows(labelled)
    return _html(labelled, rows), _markdown(labelled, rows)


# --- HTML -------------------------------------------------------------------------------------------

def _html(runs: list[tuple[str, Run]], rows: list[_Row]) -> str:
    differing = sum(r.differs for r in rows)
    run_list = "".join(
        f"<div><dt>{esc(label)}</dt><dd>{esc(run.target_name)} · {esc(run.tool_name)} {esc(run.tool_version)}"
        f" · {esc(run.started_at or 'undated')} · {len(run.cases)} cases, {esc(fmt_duration(run.duration_s))}</dd></div>"
        for label, run in runs
    )
    header = (f"<h1>MQTT conformance comparison</h1><div class=\"sub\">{len(runs)} runs · {len(rows)} statements · "
              f"{differing} differ</div><dl class=\"meta\">{run_list}</dl>")
    versions = sorted({r.version for r in rows}, key=version_key)
    chapters = {r.chapter: chapter_title(r.chapter, r.version) for r in rows}
    filters = (
        '<div id="filters">'
        '<label><input type="checkbox" id="f-diff"> <b>only differences</b></label>'
        + checkboxes("verdict", [(vkey(v), badge(v)) for v in (*VERDICTS, NOT_COVERED)], "Verdict")
        + checkboxes("version", [(v, esc(v)) for v in versions], "MQTT")
        + select("f-section", sorted(((c, f"{c} {t}".strip()) for c, t in chapters.items()),
                                     key=lambda i: section_key(i[0])), "Section")
        + '<label><input type="search" id="f-text" placeholder="search…" size="14"></label>'
        + '<button type="button" data-reset="1">reset</button><span id="shown"></span></div>'
    )
    heads = "".join(f'<th class="run">{esc(label)}</th>' for label, _ in runs)
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.version, row.chapter), []).append(row)
    bodies = []
    for (version, chapter), group in groups.items():
        title = f"MQTT {version} · {chapter} {chapter_title(chapter, version)}"
        lines = [f'<tr class="grp"><td colspan="{3 + len(runs)}">{esc(title)}</td></tr>']
        lines += [_html_row(r) for r in group]
        bodies.append(f'<tbody class="fg">{"".join(lines)}</tbody>')
    totals = "".join(f'<td class="cell"><div class="totals">{_totals(run)}</div></td>' for _, run in runs)
    table = (
        f'<table class="cmp"><thead><tr><th>Statement</th><th>Section</th><th>Summary</th>{heads}</tr></thead>'
        f'{"".join(bodies)}<tfoot><tr><td colspan="3">Totals (statements per rolled-up verdict)</td>{totals}'
        "</tr></tfoot></table>"
    )
    intro = ('<p class="muted">Cells are the worst verdict of the cases citing the statement in that run; '
             f"{esc(MISSING)} means no case of that run cites it. Rows where the runs differ are highlighted.</p>")
    body = f"{filters}<h2>Statement matrix</h2>{intro}{table}{_cluster_nodes(runs)}"
    return page("MQTT conformance comparison", header, body, "Generated by mqtt-conformance from results.json files.")


def _cluster_nodes(runs: list[tuple[str, Run]]) -> str:
    """Cluster runs: per cluster case, each run's verdict for every node combination it used."""
    from ..run.cluster import node_pair_matrix

    per_run = [node_pair_matrix([case.raw for case in run.cases])[1] for _, run in runs]
    keys = sorted({key for rows in per_run for key in rows})
    if not keys:
        return ""
    heads = "".join(f'<th class="run">{esc(label)}</th>' for label, _ in runs)
    lines = "".join(
        f'<tr><td class="mono">{esc(name)}</td><td>{esc(version)}</td>' + "".join(
            "<td>" + " ".join(badge(v, f"{label} {v}") for label, v in sorted(rows.get((name, version), {}).items()))
            + "</td>" for rows in per_run) + "</tr>"
        for name, version in keys
    )
    return ('<h2 id="cluster-nodes">Cluster cases per node pair</h2><table class="cmp"><thead><tr><th>Case</th>'
            f"<th>MQTT</th>{heads}</tr></thead><tbody>{lines}</tbody></table>")


def _html_row(row: _Row) -> str:
    ident = f'<a href="{esc(row.url)}">{esc(row.id)}</a>' if row.url else esc(row.id)
    cells = "".join(
        f'<td class="cell">{badge(v) if v != MISSING else esc(MISSING)}</td>' for v in row.cells
    )
    verdicts = " ".join(sorted({vkey(v if v != MISSING else NOT_COVERED) for v in row.cells}))
    return (
        f'<tr class="f{" differs" if row.differs else ""}" data-kind="statements" data-verdicts="{esc(verdicts)}" '
        f'data-version="{esc(row.version)}" data-section="{esc(row.chapter)}" data-differs="{int(row.differs)}">'
        f'<td class="id mono">{ident}</td><td class="muted nowrap">{esc(row.section)}</td>'
        f"<td>{esc(row.summary)}</td>{cells}</tr>"
    )


def _totals(run: Run) -> str:
    counts = Counter(r.verdict for r in statement_rows(run, uncovered=False))
    parts = [badge(v, f"{counts[v]} {v}") for v in VERDICTS if counts[v]]
    return "".join(parts) or '<span class="muted">no statements</span>'


# --- Markdown ---------------------------------------------------------------------------------------

def _md_cell(verdict: str) -> str:
    return MISSING if verdict == MISSING else f"{ICONS.get(verdict, '')} {verdict}".strip()


def _md_table(runs: list[tuple[str, Run]], rows: list[_Row]) -> list[str]:
    head = "| Statement | MQTT | " + " | ".join(cell(label, 60) for label, _ in runs) + " |"
    out = [head, "|---|---|" + "---|" * len(runs)]
    for row in rows:
        mark = " ⚠️" if row.differs else ""
        out.append(f"| `{row.id}`{mark} | {row.version} | " + " | ".join(_md_cell(v) for v in row.cells) + " |")
    return out


def _markdown(runs: list[tuple[str, Run]], rows: list[_Row]) -> str:
    differing = [r for r in rows if r.differs]
    lines = ["## MQTT conformance comparison", "",
             "| Run | Target | Started | Cases | " + " | ".join(VERDICTS) + " |",
             "|---|---|---|---:|" + "---:|" * len(VERDICTS)]
    for label, run in runs:
        counts = run.counts
        lines.append(f"| {cell(label, 60)} | {cell(run.target_name, 60)} | {cell(run.started_at or '?')} | "
                     f"{len(run.cases)} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |")
    totals = []
    for label, run in runs:
        rolled = Counter(r.verdict for r in statement_rows(run, uncovered=False))
        totals.append(f"{cell(label, 60)}: " + ", ".join(f"{rolled[v]} {v}" for v in VERDICTS if rolled[v]))
    lines += ["", "**Statements per rolled-up verdict** — " + "; ".join(totals), ""]
    lines += [f"### Statements where the runs differ ({len(differing)} of {len(rows)})", ""]
    lines += _md_table(runs, differing) if differing else ["All runs agree on every statement."]
    lines += ["", f"<details><summary>Full matrix ({len(rows)} statements)</summary>", "", *_md_table(runs, rows),
              "", "</details>", ""]
    return "\n".join(lines)
