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

from . import __version__, catalogue
from .codec.errors import HarnessError
from .fuzz import cli as fuzz_cli
from .results import ResultsFileError, load_results
from .runstate import PROJECT_ROOT, Options, RunState
from .transport import BrokerUnreachable, ConfigError

CASES_DIR = PROJECT_ROOT / "cases"


class UsageFailure(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", action="append", default=[], metavar="URL",
                   help="mqtt://host:port (also mqtts://, ws://, wss://); VERSION=URL for one version only. "
                        "Default: start an embedded broker on a free loopback port")
    p.add_argument("--profile", metavar="FILE", help="target profile (TOML), e.g. fixtures/targets/mosquitto.toml")
    p.add_argument("--embedded", metavar="NAME", help="embedded broker to start: mosquitto, rumqttd, amqtt, aedes, "
                                                      "ejabberd, rabbitmq (default: mosquitto if installed)")
    p.add_argument("--username")
    p.add_argument("--password", help="prefer MQTT_CONFORMANCE_PASSWORD; never written to any report")
    p.add_argument("--ca-file")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--insecure", action="store_true", help="skip TLS certificate verification (not recommended)")
    p.add_argument("--mqtt-version", default="all", choices=["3.1.1", "5.0", "all"])
    p.add_argument("--capability", action="append", default=[], metavar="NAME=VALUE",
                   help="override a capability of the target (repeatable), e.g. shared_subscriptions=false")


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
    run.add_argument("--cases", default=str(CASES_DIR), metavar="DIR", help="where the cases are")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")

    lst = sub.add_parser("list", help="list the cases and the statements they cite")
    lst.add_argument("--mqtt-version", default="all", choices=["3.1.1", "5.0", "all"])
    lst.add_argument("--cases", default=str(CASES_DIR), metavar="DIR")

    cov = sub.add_parser("coverage", help="in-scope statements covered per section, and why the rest are not")
    cov.add_argument("--mqtt-version", default="all", choices=["3.1.1", "5.0", "all"])
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
        capabilities=args.capability,
    )
    if args.baseline and not Path(args.baseline).is_file():
        raise UsageFailure(f"baseline {args.baseline} does not exist")
    if not Path(args.cases).is_dir():
        raise UsageFailure(f"cases folder {args.cases} does not exist")
    state = RunState(options)
    try:
        target = state.ensure_target()  # starts the embedded broker and checks reachability first
        print(f"mqtt-conformance {__version__}: testing {target.name} "
              f"({', '.join(f'{v} {u}' for v, u in target.urls.items())})", file=sys.stderr)
        pytest_args = [args.cases, "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest",
                       "-q",
                       "-W", "ignore::pytest.PytestAssertRewriteWarning", "--report-dir", args.report_dir,
                       "--mqtt-version", args.mqtt_version, "-rfE"]
        for version, url in target.urls.items():
            pytest_args += ["--broker", f"{version}={url}"]
        if target.profile.path:
            pytest_args += ["--profile", target.profile.path]
        if state.broker is not None:
            pytest_args.append("--embedded-started")
        for name, value in target.profile.capabilities.items():
            if value is not None:
                pytest_args += ["--capability", f"{name}={json.dumps(value)}"]
        for flag, value in (("--username", args.username), ("--ca-file", args.ca_file),
                            ("--cert-file", args.cert_file), ("--key-file", args.key_file),
                            ("--baseline", args.baseline), ("--response-timeout", args.response_timeout),
                            ("-k", args.keyword)):
            if value is not None:
                pytest_args += [flag, str(value)]
        if args.insecure:
            pytest_args.append("--insecure")
        if args.strict:
            pytest_args.append("--mqtt-strict")
        # Credentials reach the workers through the environment, never on a command line.
        if target.credentials.username and not args.username:
            pytest_args += ["--username", target.credentials.username]
        if target.credentials.password:
            os.environ["MQTT_CONFORMANCE_PASSWORD"] = target.credentials.password
        workers = default_workers() if args.workers == "auto" else args.workers
        if str(workers) not in ("0", "no"):
            # Cases mostly wait on the network, so more workers than CPUs pays; worksteal keeps the
            # timer cases that the plugin puts at the head of each worker's share from queueing.
            pytest_args += ["-n", str(workers), "--dist", "worksteal"]
        pytest_args += args.pytest_args
        import pytest

        code = pytest.main(pytest_args)
    finally:
        state.stop()
    return {0: 0, 1: 1}.get(int(code), 2)  # 2: interrupted, collection or usage error, no case selected


def default_workers() -> int:
    """Measured with bench/suite_speed.py and bench/repeatability.py on 2 CPUs (see README): 10, 12 or
    16 workers finish sooner, but starting them loads the CPUs while the first timer cases run, and a
    Will then and again comes late enough to change a verdict (NON-STRICT instead of PASS); 8 workers
    kept every verdict. Cases mostly wait on the broker, so the bound is start-up cost, not the CPUs."""
    return min(8, 4 * (os.cpu_count() or 1))


def cmd_list(args: argparse.Namespace) -> int:
    from .coverage import discover_cases

    for info in discover_cases(Path(args.cases)):
        ids = {v: ids for v, ids in info.spec.statements.items() if v in _versions(args.mqtt_version)}
        if not ids:
            continue
        cited = "  ".join(f"[{v}] {' '.join(s)}" for v, s in ids.items())
        print(f"{info.module}::{info.name}  {info.spec.level}  {cited}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from .coverage import discover_cases, format_coverage, run_coverage, static_coverage

    results = _load_results(args.results) if args.results else None
    cases = None if results else discover_cases(Path(args.cases))
    for version in _versions(args.mqtt_version):
        cov = run_coverage(results, version) if results else static_coverage(cases or [], version)
        print(format_coverage(cov))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reports import render_all
    from .results import write_results

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
