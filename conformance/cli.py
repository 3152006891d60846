"""``mqtt-conformance``: a thin command line over the pytest plugin and the report renderers.

Exit codes: 0 no FAIL/ERROR (or, with --baseline, no new failure); 1 the broker failed a case;
2 usage or configuration error, or the broker is unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import catalogue
from .about import __version__
from .codec.errors import HarnessError
from .console import Console, is_selection, serial_is_faster
from .errors import ConfigError
from .fuzz import cli as fuzz_cli
from .net import BrokerUnreachable
from .resources import CASES_DIR
from .run.context import Handoff, RunState
from .run.options import Options, add_options
from .run.preflight import check_baseline
from .run.records import ResultsFileError, load_results
from .run.schedule import recorded_durations
from .run.selection import check_known, describe, normalize_statement, selects, split_arguments


class UsageFailure(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


SELECTION = ("mqtt_version", "mqtt_statement", "mqtt_section")  # the options `list` shares with `run`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mqtt-conformance", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"mqtt-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance cases against a broker and write reports")
    add_options(run.add_argument, plugin=False)
    run.add_argument("-n", dest="workers", default="auto", metavar="N|auto",
                     help="parallel workers (default auto: 4 per CPU, at most 8, the most that kept every verdict; "
                          "0 = serial)")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="only cases matching this pytest -k expression")
    run.add_argument("--cases", default=str(CASES_DIR), metavar="DIR", help="where the cases are")
    run.add_argument("pytest_args", nargs="*", metavar="SELECTION",
                     help="statement IDs (MQTT-3.1.2-24) and spec sections (3.8, 3.1.2) to run only their cases; "
                          "anything else (after --) goes to pytest")

    lst = sub.add_parser("list", help="list the cases and the statements they cite")
    add_options(lst.add_argument, plugin=False, dests=SELECTION)
    lst.add_argument("--cases", default=str(CASES_DIR), metavar="DIR")

    cov = sub.add_parser("coverage", help="in-scope statements covered per section, and why the rest are not")
    add_options(cov.add_argument, plugin=False, dests=("mqtt_version",))
    cov.add_argument("--results", metavar="FILE", help="count executed cases of this results.json instead")
    cov.add_argument("--cases", default=str(CASES_DIR), metavar="DIR")

    rep = sub.add_parser("report", help="render every report again from a results.json")
    rep.add_argument("results", metavar="RESULTS_JSON")
    rep.add_argument("--report-dir", metavar="DIR", help="default: the results file's folder")

    cmp_ = sub.add_parser("compare", help="matrix of statements x runs (HTML file, Markdown on stdout)")
    cmp_.add_argument("runs", nargs="+", metavar="DIR_OR_RESULTS", help="report dirs or results.json files; "
                                                                          "LABEL=PATH to name a column")
    cmp_.add_argument("--output", default="matrix.html", metavar="FILE")

    base = sub.add_parser("baseline", help="record a run's failures as the known baseline")
    base.add_argument("run", metavar="DIR_OR_RESULTS")
    base.add_argument("--output", required=True, metavar="FILE")
    fuzz_cli.add_parsers(sub)
    return parser


def _versions(value: str) -> tuple[str, ...]:
    return catalogue.VERSIONS if value == "all" else (value,)


def _load_results(path_text: str) -> dict[str, Any]:
    try:
        return load_results(path_text)
    except ResultsFileError as exc:
        raise UsageFailure(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    statements, sections, args.pytest_args = split_arguments(args.pytest_args)  # `run MQTT-3.1.2-24`, `run 3.8`
    options = Options.of(args)
    options.mqtt_statement = statements + [normalize_statement(s) for s in options.mqtt_statement]
    options.mqtt_section = sections + options.mqtt_section
    _check_request(options, args.cases)
    state = RunState(options)
    try:
        # starts the embedded broker, checks reachability and runs the pre-flight (which prints the
        # addresses the run talks to, and the versions it drops)
        state.ensure_target()
        code = _run_pytest(state, args)
    finally:
        state.stop()
    return {0: 0, 1: 1}.get(int(code), 2)  # 2: interrupted, collection or usage error, no case selected


def _check_request(options: Options, cases_dir: str) -> None:
    """What can be checked before a broker starts or a worker is spawned."""
    check_baseline(options.baseline)  # the plugin reads it only at the end of the run
    versions = options.selected_versions()
    statements, sections = options.mqtt_statement, options.mqtt_section
    problem = check_known(statements, sections, versions)
    if problem:
        raise UsageFailure(problem)
    if (statements or sections) and not _cited(cases_dir, statements, sections, versions):
        raise UsageFailure(f"no case cites {describe(statements, sections)} (MQTT {' or '.join(versions)}); "
                           "see `mqtt-conformance list`")
    if options.case_deadline is not None and options.case_deadline <= 0:
        raise UsageFailure(f"--case-deadline must be a number of seconds above 0, not {options.case_deadline:g}")
    if not Path(cases_dir).is_dir():
        raise UsageFailure(f"cases folder {cases_dir} does not exist")


def _run_pytest(state: RunState, args: argparse.Namespace) -> int:
    """The pytest session of the run, in this process: it gets the resolved target from ``state`` (never
    again as options), the rest of the options as the plugin's."""
    target = state.ensure_target()
    pytest_args = [args.cases, "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-q",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning", "-rfE",
                   # case ids "cases/test_...::..." wherever the cases are (a checkout, an installed wheel)
                   "--rootdir", str(Path(args.cases).resolve().parent),
                   *state.options.plugin_args(("report_dir", "mqtt_version", "baseline", "case_deadline",
                                               "mqtt_strict", "mqtt_statement", "mqtt_section"))]
    if args.keyword is not None:
        pytest_args += ["-k", args.keyword]
    history = recorded_durations(Path(state.options.report_dir) / "results.json", target.name)
    selected = [*pytest_args, *args.pytest_args]
    workers = auto_workers(selected, args.cases, history) if args.workers == "auto" else args.workers
    if str(workers) not in ("0", "no"):
        # Cases mostly wait on the network, so more workers than CPUs pays; worksteal keeps the
        # timer cases that the plugin puts at the head of each worker's share from queueing.
        pytest_args += ["-n", str(workers), "--dist", "worksteal"]
    import pytest

    console = Console(expected=history)
    code = pytest.main([*pytest_args, *args.pytest_args], plugins=[console, Handoff(state)])
    if console.problems:  # a case module that does not import is not the broker's failure (xdist says 1)
        return 2
    return int(code)


def _cited(cases_dir: str, statements: list[str], sections: list[str], versions: tuple[str, ...]) -> bool:
    """Whether any case selects: checked before a broker starts or a worker is spawned."""
    from .reports.coverage import discover_cases

    return any(selects(info.spec, v, statements, sections) for info in discover_cases(Path(cases_dir))
               for v in versions if v in info.spec.statements)


def auto_workers(pytest_args: list[str], cases_dir: str, history: dict[str, float]) -> int:
    """The default worker count, or 0 (serial) for a selection that runs faster than 8 workers start."""
    if not is_selection(pytest_args, cases_dir):
        return default_workers()
    serial, counted = serial_is_faster(pytest_args, history)
    if serial:
        print(f"mqtt-conformance: {counted.count} cases selected (about {counted.seconds:.1f} s): running them "
              "serially, without starting workers", file=sys.stderr)
        return 0
    return default_workers()


def default_workers() -> int:
    """Measured with bench/suite_speed.py and bench/repeatability.py on 2 CPUs (see README): 10, 12 or
    16 workers finish sooner, but starting them loads the CPUs while the first timer cases run, and a
    Will then and again comes late enough to change a verdict (NON-STRICT instead of PASS); 8 workers
    kept every verdict. Cases mostly wait on the broker, so the bound is start-up cost, not the CPUs."""
    return min(8, 4 * (os.cpu_count() or 1))


def cmd_list(args: argparse.Namespace) -> int:
    from .reports.coverage import discover_cases

    statements = [normalize_statement(s) for s in args.mqtt_statement]
    problem = check_known(statements, args.mqtt_section, _versions(args.mqtt_version))
    if problem:
        raise UsageFailure(problem)
    shown = 0
    for info in discover_cases(Path(args.cases)):
        ids = {v: ids for v, ids in info.spec.statements.items() if v in _versions(args.mqtt_version)
               and selects(info.spec, v, statements, args.mqtt_section)}
        if not ids:
            continue
        cited = "  ".join(f"[{v}] {' '.join(s)}" for v, s in ids.items())
        print(f"{info.module}::{info.name}  {info.spec.level}  {cited}")
        shown += 1
    if not shown and (statements or args.mqtt_section):
        raise UsageFailure(f"no case cites {describe(statements, args.mqtt_section)}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from .reports.coverage import discover_cases, format_coverage, run_coverage, static_coverage

    results = _load_results(args.results) if args.results else None
    cases = None if results else discover_cases(Path(args.cases))
    for version in _versions(args.mqtt_version):
        cov = run_coverage(results, version) if results else static_coverage(cases or [], version)
        print(format_coverage(cov))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reports import render_all
    from .run.records import write_results

    results = _load_results(args.results)
    folder = Path(args.report_dir) if args.report_dir else Path(args.results).resolve().parent
    if Path(args.results).is_dir() and not args.report_dir:
        folder = Path(args.results)
    render_all(results, folder)
    write_results(folder / "results.json", results)
    print(f"reports written to {folder}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .reports.compare import render_matrix

    runs = []
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).exists():
            label, path = "", item
        results = _load_results(path)
        runs.append((label or results.get("target", {}).get("name") or path, results))
    html, markdown = render_matrix(runs)
    Path(args.output).write_text(html, encoding="utf-8")
    print(markdown)
    print(f"\nmatrix written to {args.output}", file=sys.stderr)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from .reports.baseline import make_baseline

    baseline = make_baseline(_load_results(args.run))
    Path(args.output).write_text(json.dumps(baseline, indent=1), encoding="utf-8")
    print(f"baseline with {len(baseline.get('failures', baseline.get('cases', [])))} known failures written to "
          f"{args.output}")
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "coverage": cmd_coverage, "report": cmd_report,
            "compare": cmd_compare, "baseline": cmd_baseline, **fuzz_cli.COMMANDS}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageFailure, ConfigError, BrokerUnreachable, HarnessError) as exc:
        print(f"mqtt-conformance: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mqtt-conformance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
