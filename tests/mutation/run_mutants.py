"""Mutation run: does the conformance suite catch brokers that break one rule each?

For every mutant (tests/mutation/mutants.py) a fresh mosquitto is started on a free loopback port with
the mutant's fault-injecting proxy in front of it, and ``mqtt-conformance run`` is pointed at the proxy,
restricted to the case modules (and ``-k`` expression, and versions) the mutant declares. The same
selections also run through a pass-through proxy (the baseline). A mutant is KILLED when a case whose
baseline verdict is PASS, NON-STRICT or INFORMATIONAL is FAIL or ERROR under the mutant; known
mosquitto deviations (FAIL on the baseline) never count.

    python tests/mutation/run_mutants.py                 # all mutants; exit 1 below a 100 % score
    python tests/mutation/run_mutants.py --only 'will-*' --jobs 3 --markdown docs-table.md

Prints a table (mutant, statements, killing cases, seconds), the mutation score, the "questioned
cases" (baseline cases that killed no mutant) and writes a JSON summary (default
reports/mutation/mutation.json).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "mutation"  # noqa: A001
    import mutation  # noqa: F401

from conformance.brokers.mosquitto import Mosquitto  # noqa: E402

from .mutants import MUTANTS, Mutant  # noqa: E402
from .proxy import Fault, MutantProxy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"
PROFILE = ROOT / "fixtures" / "targets" / "mosquitto.toml"
GOOD = {"PASS", "NON-STRICT", "INFORMATIONAL"}
BAD = {"FAIL", "ERROR"}
VERSIONS = ("3.1.1", "5.0")


def _and(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return " and ".join(f"({p})" for p in kept) if kept else None


@dataclass(frozen=True)
class Selection:
    """Which cases one run executes: modules (file stems under cases/), each with an optional pytest
    -k sub-expression (None: the whole module)."""

    modules: tuple[tuple[str, str | None], ...]

    def keyword(self) -> str | None:
        """The -k expression. (Versions are chosen with -k "[5.0]", not with --mqtt-version: the plugin
        does not survive the empty parameter set of a one-version case of the other version.)"""
        if all(expr is None for _, expr in self.modules):
            return None
        return " or ".join(m if expr is None else f"({m} and {expr})" for m, expr in self.modules)

    @property
    def module_names(self) -> tuple[str, ...]:
        return tuple(sorted({m for m, _ in self.modules}))


@dataclass
class RunOutcome:
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # case id -> record
    seconds: float = 0.0
    returncode: int | None = None
    problem: str = ""  # why no results, if none
    proxy_errors: list[str] = field(default_factory=list)
    connections: int = 0


@dataclass
class MutantResult:
    mutant: Mutant
    status: str  # KILLED | SURVIVED | NO-CASES | BROKEN
    killed_by: list[str]
    seconds: float
    note: str = ""
    ran: int = 0

    def to_json(self) -> dict[str, Any]:
        m = self.mutant
        return {"name": m.name, "statements": m.statements, "versions": list(m.versions),
                "description": m.description, "modules": list(m.modules), "keyword": m.keyword,
                "status": self.status, "killed_by": self.killed_by, "cases_run": self.ran,
                "seconds": round(self.seconds, 2), "note": self.note}


def available_modules() -> set[str]:
    return {p.stem for p in CASES.glob("test_*.py")}


def selection_of(mutant: Mutant) -> Selection | None:
    """The mutant's modules (those that exist), narrowed by its -k and, if it has one, its version."""
    present = available_modules()
    only = f"[{mutant.versions[0]}]" if len(mutant.versions) == 1 else None
    expr = _and(only, mutant.keyword)
    mods = tuple((m, expr) for m in mutant.modules if m in present)
    return Selection(mods) if mods else None


def cli_command(url: str, selection: Selection, report_dir: Path, workers: str) -> list[str]:
    ignores = [f"--ignore={p}" for p in sorted(CASES.glob("test_*.py")) if p.stem not in selection.module_names]
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--broker", url, "--profile", str(PROFILE),
           "--report-dir", str(report_dir), "-n", workers]
    keyword = selection.keyword()
    if keyword:
        cmd += ["-k", keyword]
    return [*cmd, "--", *ignores, "-p", "no:hypothesispytest", "--no-reports"]


def run_selection(selection: Selection, fault: Fault, versions: tuple[str, ...], workdir: Path, workers: str,
                  timeout: float) -> RunOutcome:
    """mosquitto + proxy(fault) + ``mqtt-conformance run`` on ``selection``; the verdicts per case."""
    outcome = RunOutcome()
    report_dir = workdir / "report"
    started = time.monotonic()
    with Mosquitto() as broker, MutantProxy((broker.host, broker.ports["5.0"]), fault, versions) as proxy:
        cmd = cli_command(proxy.url, selection, report_dir, workers)
        (workdir / "command.txt").write_text(" ".join(cmd) + "\n")
        with open(workdir / "output.txt", "wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            try:
                outcome.returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                outcome.problem = f"timed out after {timeout:.0f} s"
        outcome.proxy_errors = list(proxy.errors)
        outcome.connections = proxy.connections
    outcome.seconds = time.monotonic() - started
    results = report_dir / "results.json"
    if results.is_file() and not outcome.problem:
        doc = json.loads(results.read_text(encoding="utf-8"))
        outcome.cases = {c["id"]: c for c in doc["cases"]}
    elif not outcome.problem:
        tail = (workdir / "output.txt").read_text(errors="replace").strip().splitlines()[-3:]
        outcome.problem = f"no results (exit {outcome.returncode}): {' | '.join(tail)}"
    return outcome


def baseline_selection(mutants: list[Mutant]) -> Selection:
    """The union of the mutants' selections: a module runs whole if any mutant wants it whole."""
    wanted: dict[str, set[str | None]] = {}
    for mutant in mutants:
        sel = selection_of(mutant)
        for module, expr in sel.modules if sel else ():
            wanted.setdefault(module, set()).add(expr)
    return Selection(tuple(
        (module, None if None in exprs else " or ".join(sorted(exprs)))  # type: ignore[arg-type]
        for module, exprs in sorted(wanted.items())
    ))


def split(selection: Selection, parts: int) -> list[Selection]:
    """Cut a selection into ``parts`` selections of whole modules (round robin)."""
    parts = max(1, min(parts, len(selection.modules)))
    return [Selection(selection.modules[i::parts]) for i in range(parts)]


@dataclass
class Summary:
    results: list[MutantResult]
    baseline: dict[str, dict[str, Any]]
    questioned: list[str]
    failing_on_baseline: list[str]
    seconds: float
    baseline_problems: list[str]

    @property
    def killed(self) -> int:
        return sum(r.status == "KILLED" for r in self.results)

    @property
    def score(self) -> float:
        return self.killed / len(self.results) if self.results else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4), "killed": self.killed, "total": len(self.results),
            "seconds": round(self.seconds, 1),
            "mutants": [r.to_json() for r in self.results],
            "baseline": {"cases": len(self.baseline),
                         "verdicts": {v: sum(c["verdict"] == v for c in self.baseline.values())
                                      for v in sorted({c["verdict"] for c in self.baseline.values()})},
                         "problems": self.baseline_problems},
            "questioned_cases": self.questioned,
            "failing_on_baseline": self.failing_on_baseline,
        }


def kills(outcome: RunOutcome, baseline: dict[str, dict[str, Any]], failure_pattern: str | None = None) -> list[str]:
    """Cases that the mutant turned from a good verdict to a bad one, or, with ``failure_pattern``, from a
    baseline failure of another kind to a failure matching the pattern (the fault, not the deviation)."""
    killed = []
    for case_id, record in sorted(outcome.cases.items()):
        base = baseline.get(case_id)
        if base is None or record["verdict"] not in BAD:
            continue
        if base["verdict"] in GOOD or _new_failure_kind(record, base, failure_pattern):
            killed.append(case_id)
    return killed


def _new_failure_kind(record: dict[str, Any], base: dict[str, Any], pattern: str | None) -> bool:
    if pattern is None or base["verdict"] not in BAD:
        return False
    return bool(re.search(pattern, record.get("message", ""))) and not re.search(pattern, base.get("message", ""))


def run(mutants: list[Mutant] | None = None, *, jobs: int = 4, workers: str = "2", timeout: float = 180.0,
        workdir: Path | None = None, baseline_parts: int = 3, log=print) -> Summary:  # noqa: ANN001 - callable
    """Run the baseline and every mutant; return the summary (also usable from tests)."""
    mutants = list(MUTANTS if mutants is None else mutants)
    root = Path(tempfile.mkdtemp(prefix="mqttc-mutation-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    lock = threading.Lock()

    base_sels = split(baseline_selection(mutants), baseline_parts)
    baseline: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    outcomes: dict[str, list[RunOutcome]] = {m.name: [] for m in mutants}

    def guarded(sel: Selection, fault: Fault, versions: tuple[str, ...], where: Path) -> RunOutcome:
        try:
            return run_selection(sel, fault, versions, _fresh(where), workers, timeout)
        except Exception as exc:  # noqa: BLE001 - one broken run (broker start, ...) must not end the others
            return RunOutcome(problem=f"run failed: {type(exc).__name__}: {exc}")

    def base_job(i: int, sel: Selection) -> None:
        out = guarded(sel, Fault(), VERSIONS, root / f"baseline-{i}")
        with lock:
            baseline.update(out.cases)
            if out.problem:
                problems.append(f"baseline {sel.module_names}: {out.problem}")
        log(f"  baseline part {i} ({len(sel.modules)} modules): {len(out.cases)} cases, {out.seconds:.1f} s")

    def mutant_job(mutant: Mutant, sel: Selection) -> None:
        out = guarded(sel, mutant.fault(), mutant.versions, root / mutant.name)
        with lock:
            outcomes[mutant.name].append(out)

    tasks: list[tuple] = [(base_job, i, sel) for i, sel in enumerate(base_sels)]
    tasks += [(mutant_job, m, sel) for m in mutants if (sel := selection_of(m)) is not None]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(task[0], *task[1:]) for task in tasks]
        for future in futures:
            future.result()

    results = []
    for mutant in mutants:
        runs = outcomes[mutant.name]
        seconds = sum(o.seconds for o in runs)
        ran = sum(len(o.cases) for o in runs)
        killed_by = sorted({case for o in runs for case in kills(o, baseline, mutant.failure_pattern)})
        notes = [o.problem for o in runs if o.problem] + [f"proxy hook error: {e.strip().splitlines()[-1]}"
                                                          for o in runs for e in o.proxy_errors[:1]]
        if not runs:
            status, notes = "NO-CASES", [f"none of {', '.join(mutant.modules)} exists yet"]
        elif killed_by:
            status = "KILLED"
        elif any(o.problem for o in runs) or not ran:
            status = "BROKEN"
        else:
            status = "SURVIVED"
        results.append(MutantResult(mutant, status, killed_by, seconds, "; ".join(notes), ran))

    killers = {case for r in results for case in r.killed_by}
    questioned = sorted(c for c, rec in baseline.items() if rec["verdict"] in GOOD and c not in killers)
    failing = sorted(c for c, rec in baseline.items() if rec["verdict"] in BAD)
    if workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return Summary(results, baseline, questioned, failing, time.monotonic() - started, problems)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def short_case(case_id: str) -> str:
    return case_id.split("/")[-1].replace(".py::", "::")


def grouped(case_ids: list[str], limit: int = 3, code: str = "") -> str:
    """Killing cases by function, their parameter ids (versions, variants) in brackets."""
    groups: dict[str, list[str]] = {}
    for case_id in case_ids:
        name, _, param = short_case(case_id).partition("[")
        groups.setdefault(name, []).append(param.rstrip("]"))
    def params_text(params: list[str]) -> str:
        return ", ".join(params[:3]) + (f", +{len(params) - 3}" if len(params) > 3 else "")

    shown = [f"{code}{name}{code} [{params_text(params)}]" if any(params) else f"{code}{name}{code}"
             for name, params in groups.items()]
    return ", ".join(shown[:limit]) + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")


def table(summary: Summary) -> str:
    rows = [("mutant", "versions", "statements", "status", "killed by", "s")]
    for r in summary.results:
        shown = grouped(r.killed_by, limit=2)
        if r.note and r.status != "KILLED":
            shown = (shown + " " if shown else "") + f"[{r.note[:100]}]"
        ids = " ".join(sorted({i for ids in r.mutant.statements.values() for i in ids}))
        rows.append((r.mutant.name, "/".join(r.mutant.versions), ids, r.status, shown or "-", f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5].rjust(5))
        if n == 0:
            lines.append("-" * len(lines[0]))
    lines.append("")
    lines.append(f"mutation score: {summary.killed}/{len(summary.results)} = {summary.score:.0%} "
                 f"(wall {summary.seconds:.0f} s; baseline {len(summary.baseline)} cases)")
    return "\n".join(lines)


def markdown(summary: Summary) -> str:
    lines = ["| mutant | versions | statements | killed by | s |", "|---|---|---|---|---|"]
    for r in summary.results:
        ids = "; ".join(f"{v}: {' '.join(ids)}" for v, ids in r.mutant.statements.items())
        killers = grouped(r.killed_by, limit=3, code="`")
        if r.status != "KILLED":
            killers = f"**{r.status}** {r.note}"
        lines.append(f"| `{r.mutant.name}` | {'/'.join(r.mutant.versions)} | {ids} | {killers} | {r.seconds:.1f} |")
    lines.append("")
    lines.append(f"Mutation score: **{summary.killed}/{len(summary.results)} = {summary.score:.0%}**, "
                 f"wall time {summary.seconds:.0f} s.")
    return "\n".join(lines) + "\n"


def report(summary: Summary, log=print) -> None:  # noqa: ANN001 - callable
    log(table(summary))
    for problem in summary.baseline_problems:
        log(f"baseline problem: {problem}")
    log(f"\nquestioned cases (PASS on the baseline, killed no mutant): {len(summary.questioned)}")
    for case in summary.questioned:
        log(f"  {short_case(case)}")
    if summary.failing_on_baseline:
        log(f"\ncases failing on the unmutated mosquitto (cannot kill): {len(summary.failing_on_baseline)}")
        for case in summary.failing_on_baseline:
            log(f"  {short_case(case)}")


def select(patterns: list[str]) -> list[Mutant]:
    if not patterns:
        return list(MUTANTS)
    chosen = [m for m in MUTANTS if any(fnmatch.fnmatch(m.name, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no mutant matches {patterns}; known: {', '.join(m.name for m in MUTANTS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="GLOB", help="mutants to run (repeatable)")
    parser.add_argument("--jobs", type=int, default=4, help="runs in parallel (default 4; most of a run is waiting)")
    parser.add_argument("-n", dest="workers", default="2", help="xdist workers per run (default 2)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--json", default=str(ROOT / "reports" / "mutation" / "mutation.json"), metavar="FILE")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--keep", metavar="DIR", help="keep every run's output and results.json here")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:42} {'/'.join(m.versions):10} {m.statement_text()}\n{'':42} {m.description}")
        return 0
    if not Mosquitto.available():
        print("mosquitto is not installed", file=sys.stderr)
        return 2
    mutants = select(args.only)
    print(f"{len(mutants)} mutants, {args.jobs} in parallel, -n {args.workers}")
    summary = run(mutants, jobs=args.jobs, workers=args.workers, timeout=args.timeout,
                  workdir=Path(args.keep) if args.keep else None)
    report(summary)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"\nJSON summary: {path}")
    if args.markdown:
        Path(args.markdown).write_text(markdown(summary), encoding="utf-8")
    return 0 if summary.score >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
