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
from .codec.version import Version
from .console import Console, expected_durations, is_selection, serial_is_faster
from .errors import ConfigError
from .fuzz import cli as fuzz_cli
from .net import BrokerUnreachable
from .resources import CASES_DIR
from .run.cluster import export_nodes
from .run.context import Options, RunState
from .run.preflight import check_baseline
from .run.records import ResultsFileError, load_results
from .run.selection import (
    check_known,
    describe,
    normalize_statement,
    selection_flags,
    selects,
    split_arguments,
)


class UsageFailure(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", action="append", default=[], metavar="URL",
                   help="mqtt://host:port (also mqtts://, ws://, wss://); VERSION=URL for one version only. "
                        "Default: start an embedded broker on a free loopback port")
    p.add_argument("--profile", metavar="FILE", help="target profile (TOML), e.g. fixtures/targets/mosquitto.toml")
    p.add_argument("--embedded", metavar="NAME", help="embedded broker to start: mosquitto, rumqttd, amqtt, aedes, "
                                                      "ejabberd, rabbitmq (default: mosquitto if installed)")
    p.add_argument("--broker-command", metavar="CMD",
                   help='start your own broker, e.g. "./mybroker --port {port}": the harness picks a free loopback '
                        "port, waits until it listens, restarts it after a crash and stops it at the end")
    p.add_argument("--username")
    p.add_argument("--password", help="prefer MQTT_CONFORMANCE_PASSWORD; never written to any report")
    p.add_argument("--ca-file")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--insecure", action="store_true", help="skip TLS certificate verification (not recommended)")
    p.add_argument("--mqtt-version", default="all", choices=[Version.V311, Version.V50, "all"])
    p.add_argument("--capability", action="append", default=[], metavar="NAME=VALUE",
                   help="override a capability of the target (repeatable), e.g. shared_subscriptions=false")


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--statement", action="append", default=[], metavar="ID",
                   help="only the cases citing this statement, e.g. MQTT-3.1.2-24 (repeatable)")
    p.add_argument("--section", action="append", default=[], metavar="N.N",
                   help="only the cases citing a statement of this spec section, e.g. 3.8 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mqtt-conformance", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"mqtt-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance cases against a broker and write reports")
    _add_target_options(run)
    run.add_argument("--report-dir", default="reports", metavar="DIR")
    run.add_argument("-n", dest="workers", default="auto", metavar="N|auto",
                     help="parallel workers (default auto: 4 per CPU, at most 8, the most that kept every verdict; "
                          "0 = serial)")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="only cases matching this pytest -k expression")
    run.add_argument("--strict", action="store_true", help="NON-STRICT verdicts fail the run")
    run.add_argument("--baseline", metavar="FILE", help="only failures not in this baseline fail the run")
    run.add_argument("--response-timeout", type=float, metavar="SECONDS")
    run.add_argument("--case-deadline", type=float, metavar="SECONDS",
                     help="hard bound of one case; a stuck case is FAIL (or ERROR) with what it awaited "
                          "(default: 4 x its longest wait, from the profile's limits)")
    run.add_argument("--cases", default=str(CASES_DIR), metavar="DIR", help="where the cases are")
    _add_selection_options(run)
    run.add_argument("pytest_args", nargs="*", metavar="SELECTION",
                     help="statement IDs (MQTT-3.1.2-24) and spec sections (3.8, 3.1.2) to run only their cases; "
                          "anything else (after --) goes to pytest")

    lst = sub.add_parser("list", help="list the cases and the statements they cite")
    lst.add_argument("--mqtt-version", default="all", choices=[Version.V311, Version.V50, "all"])
    lst.add_argument("--cases", default=str(CASES_DIR), metavar="DIR")
    _add_selection_options(lst)

    cov = sub.add_parser("coverage", help="in-scope statements covered per section, and why the rest are not")
    cov.add_argument("--mqtt-version", default="all", choices=[Version.V311, Version.V50, "all"])
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
    options = Options(
        brokers=args.broker, profile=args.profile, mqtt_version=args.mqtt_version, username=args.username,
        password=args.password, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file,
        insecure=args.insecure, embedded=args.embedded, response_timeout=args.response_timeout,
        broker_command=getattr(args, "broker_command", None),
        capabilities=args.capability,
    )
    check_baseline(args.baseline)  # before the run: the plugin reads it only at the end
    statements, sections, args.pytest_args = split_arguments(args.pytest_args)  # `run MQTT-3.1.2-24`, `run 3.8`
    statements += [normalize_statement(s) for s in args.statement]
    sections += args.section
    problem = check_known(statements, sections, _versions(args.mqtt_version))
    if problem:
        raise UsageFailure(problem)
    if (statements or sections) and not _cited(args.cases, statements, sections, _versions(args.mqtt_version)):
        raise UsageFailure(f"no case cites {describe(statements, sections)} "
                           f"(MQTT {' or '.join(_versions(args.mqtt_version))}); "
                           "see `mqtt-conformance list`")
    if args.case_deadline is not None and args.case_deadline <= 0:
        raise UsageFailure(f"--case-deadline must be a number of seconds above 0, not {args.case_deadline:g}")
    if not Path(args.cases).is_dir():
        raise UsageFailure(f"cases folder {args.cases} does not exist")
    state = RunState(options)
    try:
        # starts the embedded broker, checks reachability and runs the pre-flight (which prints the
        # addresses the run talks to, and the versions it drops)
        target = state.ensure_target()
        pytest_args = [args.cases, "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest",
                       "-q",
                       "-W", "ignore::pytest.PytestAssertRewriteWarning", "--report-dir", args.report_dir,
                       "--mqtt-version", args.mqtt_version, "-rfE",
                       # case ids "cases/test_...::..." wherever the cases are (a checkout, an installed wheel)
                       "--rootdir", str(Path(args.cases).resolve().parent)]
        for version, url in state.requested_urls.items():  # the plugin's pre-flight drops the same versions
            pytest_args += ["--broker", f"{version}={url}"]
        if target.profile.path:
            pytest_args += ["--profile", target.profile.path]
        if state.broker is not None:
            pytest_args.append("--embedded-started")
            export_nodes(target)  # a managed cluster's node URLs and controls (see cluster.py)
        for name, value in target.profile.capabilities.items():
            if value is not None:
                pytest_args += ["--capability", f"{name}={json.dumps(value)}"]
        for flag, value in (("--username", args.username), ("--ca-file", args.ca_file),
                            ("--cert-file", args.cert_file), ("--key-file", args.key_file),
                            ("--baseline", args.baseline), ("--response-timeout", args.response_timeout),
                            ("--case-deadline", args.case_deadline),
                            ("-k", args.keyword)):
            if value is not None:
                pytest_args += [flag, str(value)]
        if args.insecure:
            pytest_args.append("--insecure")
        if args.strict:
            pytest_args.append("--mqtt-strict")
        pytest_args += selection_flags(statements, sections)
        # Credentials reach the workers through the environment, never on a command line.
        if target.credentials.username and not args.username:
            pytest_args += ["--username", target.credentials.username]
        if target.credentials.password:
            os.environ["MQTT_CONFORMANCE_PASSWORD"] = target.credentials.password
        history = expected_durations(Path(args.report_dir) / "results.json", target.name)
        selected = [*pytest_args, *args.pytest_args]
        workers = auto_workers(selected, args.cases, history) if args.workers == "auto" else args.workers
        if str(workers) not in ("0", "no"):
            # Cases mostly wait on the network, so more workers than CPUs pays; worksteal keeps the
            # timer cases that the plugin puts at the head of each worker's share from queueing.
            pytest_args += ["-n", str(workers), "--dist", "worksteal"]
        pytest_args += args.pytest_args
        import pytest

        console = Console(expected=history)
        code = pytest.main(pytest_args, plugins=[console])
        if console.problems:  # a case module that does not import is not the broker's failure (xdist says 1)
            code = 2
    finally:
        state.stop()
    return {0: 0, 1: 1}.get(int(code), 2)  # 2: interrupted, collection or usage error, no case selected


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

    statements = [normalize_statement(s) for s in args.statement]
    problem = check_known(statements, args.section, _versions(args.mqtt_version))
    if problem:
        raise UsageFailure(problem)
    shown = 0
    for info in discover_cases(Path(args.cases)):
        ids = {v: ids for v, ids in info.spec.statements.items() if v in _versions(args.mqtt_version)
               and selects(info.spec, v, statements, args.section)}
        if not ids:
            continue
        cited = "  ".join(f"[{v}] {' '.join(s)}" for v, s in ids.items())
        print(f"{info.module}::{info.name}  {info.spec.level}  {cited}")
        shown += 1
    if not shown and (statements or args.section):
        raise UsageFailure(f"no case cites {describe(statements, args.section)}")
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
