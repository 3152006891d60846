"""The pytest plugin (entry point ``pytest11``): options, fixtures, verdicts and results.json.

The controlling process resolves the target (starting the embedded broker if no ``--broker`` is
given) and hands it to xdist workers; every worker turns each case's outcome into a graded verdict
and a record, and the controller writes the records into one results.json and renders the reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import catalogue
from .case import CaseSpec
from .catalogue import VERSIONS
from .hygiene import clean_up, find_leftovers
from .probe import Probe, Timing
from .profile import Identity, load_profile
from .results import Judgement, broker_alive, document, judge, section_of, write_results
from .runstate import Options, RunState, credentials, load_options_profile, tls_options
from .schedule import DEVIATION_ESTIMATE, QUICK_ESTIMATE, TIMER_ESTIMATE, balanced_order, recorded_durations
from .target import Target, probe_capabilities
from .transcript import Transcript
from .transport import BrokerUnreachable, ConfigError, parse_url
from .verdicts import BrokerGone, Unsupported, Verdict

STATE = pytest.StashKey["RunState"]()
WORKER = pytest.StashKey["WorkerState"]()
RECORDS = pytest.StashKey[list]()
CTX = pytest.StashKey["CaseContext"]()
JUDGED = pytest.StashKey[dict]()
DURATIONS = pytest.StashKey[dict]()


# -- options ---------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mqtt-conformance", "MQTT broker conformance")
    add = group.addoption
    add("--broker", action="append", default=[], metavar="URL",
        help="broker under test: mqtt://, mqtts://, ws:// or wss:// URL; VERSION=URL for one version only "
             "(repeatable). Without it, an embedded broker is started on a free loopback port.")
    add("--profile", metavar="FILE", help="target profile (TOML): credentials, capabilities, limits, deviations")
    add("--mqtt-version", default="all", metavar="3.1.1|5.0|all", help="protocol version(s) to test (default all)")
    add("--report-dir", default="reports", metavar="DIR", help="where results.json and reports go (default reports)")
    add("--mqtt-strict", action="store_true", help="NON-STRICT verdicts (SHOULD-level) count as failures")
    add("--baseline", metavar="FILE", help="known failures: only a failure not in FILE fails the run")
    add("--username", help="user name (or MQTT_CONFORMANCE_USERNAME, or the profile)")
    add("--password", help="password (or MQTT_CONFORMANCE_PASSWORD, or the profile); never written anywhere")
    add("--ca-file", help="CA certificates to verify the broker's TLS certificate")
    add("--cert-file", help="client certificate (PEM) for TLS")
    add("--key-file", help="client private key (PEM) for TLS")
    add("--insecure", action="store_true", help="do not verify the broker's TLS certificate (not recommended)")
    add("--embedded", metavar="NAME", help="embedded broker to start when no --broker is given (default: "
                                           "mosquitto if installed, else rumqttd)")
    add("--capability", action="append", default=[], metavar="NAME=VALUE",
        help="override a capability of the target (repeatable), e.g. shared_subscriptions=false")
    add("--response-timeout", type=float, metavar="SECONDS", help="how long a reply may take (default 3)")
    add("--embedded-started", action="store_true", help=argparse.SUPPRESS)  # set by mqtt-conformance run
    add("--no-reports", action="store_true", help="write results.json only, no rendered reports")


def _options(config: pytest.Config) -> Options:
    get = config.getoption
    return Options(
        brokers=list(get("broker") or []), profile=get("profile"), mqtt_version=get("mqtt_version"),
        username=get("username"), password=get("password"), ca_file=get("ca_file"), cert_file=get("cert_file"),
        key_file=get("key_file"), insecure=get("insecure"), embedded=get("embedded"),
        response_timeout=get("response_timeout"), capabilities=list(get("capability") or []),
        started_by_cli=bool(get("embedded_started")),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mqtt_case: an MQTT conformance case (added by @conformance.case)")
    options = _options(config)
    try:
        options.selected_versions()
        load_options_profile(options)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RECORDS] = []
    if not hasattr(config, "workerinput"):
        config.stash[STATE] = RunState(options)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.stop()


def _controller_target(config: pytest.Config) -> Target:
    try:
        return config.stash[STATE].ensure_target()
    except BrokerUnreachable as exc:
        pytest.exit(str(exc), returncode=2)
    except ConfigError as exc:
        pytest.exit(f"configuration error: {exc}", returncode=2)
    raise AssertionError("unreachable")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: resolve the target once and hand it to each worker, with the case durations
    of the previous run against it (read once here, not in every worker)."""
    if _wants_target(node.config):
        target = _controller_target(node.config)
        node.workerinput["mqttc_target"] = json.dumps(target.to_json())
        if DURATIONS not in node.config.stash:
            report_dir = Path(node.config.getoption("report_dir"))
            node.config.stash[DURATIONS] = recorded_durations(report_dir / "results.json", target.name)
        node.workerinput["mqttc_durations"] = node.config.stash[DURATIONS]


def _wants_target(config: pytest.Config) -> bool:
    if config.getoption("broker") or config.getoption("profile") or config.getoption("embedded"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if "cases" in path.parts:
            return True
    return False


# -- collection --------------------------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    spec: CaseSpec | None = getattr(metafunc.function, "mqtt_case", None)
    if spec is None:
        return
    selected = _options(metafunc.config).selected_versions()
    versions = [v for v in spec.versions if v in selected]
    if "mqtt_version" not in metafunc.fixturenames:
        metafunc.fixturenames.append("mqtt_version")
    metafunc.parametrize("mqtt_version", versions, ids=versions, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, dropped = [], []
    for item in items:
        spec = _spec(item)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if spec is not None and params.get("mqtt_version") not in catalogue.VERSIONS:
            dropped.append(item)  # no statement for a selected version (an empty parameter set)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    has_cases = any(_spec(item) for item in keep)
    if workers > 1 and has_cases:
        items[:] = balanced_order(keep, workers, _expected_duration(config, keep))
    else:
        items[:] = keep
    if STATE in config.stash and has_cases and not config.getoption("collectonly"):
        _worker_state(config)  # resolve the target (and fail fast if unreachable) before any case runs


def _known_deviations(config: pytest.Config, items: list[pytest.Item]) -> set[str]:
    """Node ids of the cases the target's profile lists as known deviations (an xdist worker knows the
    target at collection; every worker computes the same set, so they all order the cases alike)."""
    target = _worker_state(config).target
    known = set()
    for item in items:
        spec = _spec(item)
        version = getattr(getattr(item, "callspec", None), "params", {}).get("mqtt_version")
        if spec is not None and version in spec.statements and _deviation_of(target, item, spec, version):
            known.add(item.nodeid)
    return known


def _expected_duration(config: pytest.Config, items: list[pytest.Item]) -> Callable[[pytest.Item], float]:
    """How long each case should take: as long as it took in the previous run against this target (the
    results.json being replaced, read by the controller), else an estimate from what it waits for.
    Every worker gets the same values, so they all order the cases alike."""
    workerinput = getattr(config, "workerinput", {})
    if "mqttc_target" not in workerinput:
        return lambda item: QUICK_ESTIMATE
    history: dict[str, float] = workerinput.get("mqttc_durations", {})
    known = _known_deviations(config, items)

    def duration(item: pytest.Item) -> float:
        if item.nodeid in history:
            return history[item.nodeid]
        spec = _spec(item)
        if spec is not None and spec.timer:
            return TIMER_ESTIMATE
        return DEVIATION_ESTIMATE if item.nodeid in known else QUICK_ESTIMATE

    return duration


def _spec(item: pytest.Item) -> CaseSpec | None:
    return getattr(getattr(item, "function", None), "mqtt_case", None)


# -- fixtures ----------------------------------------------------------------------------------------
class WorkerState:
    """What one process (xdist worker or plain pytest) knows about the target during the run."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.capabilities: dict[str, dict[str, Any]] = {}
        self.dead: str | None = None  # why the broker is considered gone

    def caps(self, version: str) -> dict[str, Any]:
        if version not in self.capabilities:
            try:
                self.capabilities[version] = probe_capabilities(self.target, version)
            except BrokerUnreachable as exc:
                raise BrokerGone(str(exc)) from None
        return self.capabilities[version]

    def alive(self, version: str) -> bool:
        endpoint = self.target.endpoint(version)
        return broker_alive(endpoint.host, endpoint.port)


def _worker_state(config: pytest.Config) -> WorkerState:
    if WORKER not in config.stash:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and "mqttc_target" in workerinput:
            options = _options(config)
            data = json.loads(workerinput["mqttc_target"])
            profile = load_profile(data["profile"]) if data.get("profile") else load_options_profile(options)
            if options.response_timeout:
                profile.limits["response_timeout"] = options.response_timeout
            target = Target.from_json(data, profile, tls_options(options, profile), credentials(options, profile))
        else:
            target = _controller_target(config)
        config.stash[WORKER] = WorkerState(target)
    return config.stash[WORKER]


@pytest.fixture(scope="session")
def mqtt_run(pytestconfig: pytest.Config) -> WorkerState:
    return _worker_state(pytestconfig)


@pytest.fixture(scope="session")
def target(mqtt_run: WorkerState) -> Target:
    """The broker under test: URLs per version, profile, credentials."""
    return mqtt_run.target


@pytest.fixture
def mqtt_version(request: pytest.FixtureRequest) -> str:
    """The MQTT version this run of the case speaks ("3.1.1" or "5.0")."""
    if not hasattr(request, "param"):
        raise pytest.UsageError(f"{request.node.nodeid} uses mqtt_version but is not a @case")
    return request.param


class CaseContext:
    """Per case: one transcript, unique client IDs and topics, and every probe (closed at the end)."""

    def __init__(self, state: WorkerState, version: str, spec: CaseSpec | None) -> None:
        self.state = state
        self.target = state.target
        self.version = version
        self.spec = spec
        self.transcript = Transcript()
        self.base = f"mqttc{uuid.uuid4().hex[:10]}"  # alphanumeric: every broker must accept it
        self.topic_prefix = f"mqttc/{self.base}"
        self.probes: list[Probe] = []
        self._ids = 0
        limits = self.target.profile.limits
        self.timing = Timing(response=limits["response_timeout"], connect=limits["connect_timeout"],
                             late=limits["event_late_window"])

    def client_id(self) -> str:
        self._ids += 1
        return f"{self.base}c{self._ids}"  # at most 23 characters

    def make_probe(self, client_id: str | None = None, *, version: str | None = None,
                   identity: Identity | None = None, name: str | None = None, url: str | None = None) -> Probe:
        """An unconnected probe; ``url`` reaches the broker another way (e.g. its WebSocket listener)."""
        version = version or self.version
        creds = identity if identity is not None else self.target.credentials
        endpoint = parse_url(url) if url else self.target.endpoint(version)
        probe = Probe(
            endpoint, version, self.transcript, name=name or f"c{len(self.probes) + 1}",
            client_id=client_id if client_id is not None else self.client_id(), timing=self.timing,
            tls=self.target.tls, username=creds.username, password=creds.password,
        )
        self.probes.append(probe)
        return probe

    def close_all(self) -> None:
        for probe in self.probes:
            try:
                probe.disconnect() if probe.closed is None and probe.connack is not None else probe.close()
            except Exception:  # noqa: BLE001 - teardown of a connection the broker may have broken
                probe.close()

    def clean_up(self) -> None:
        """Clear the retained messages and sessions this case left in the broker (see hygiene)."""
        if not self.state.dead:
            leftovers = find_leftovers(self.probes, self.transcript, self.base, self.topic_prefix)
            if leftovers:
                clean_up(leftovers, self.base)


@pytest.fixture
def case_context(request: pytest.FixtureRequest, mqtt_run: WorkerState, mqtt_version: str):  # noqa: ANN201
    if mqtt_run.dead:
        raise BrokerGone(f"broker is gone ({mqtt_run.dead}); case not run")
    if mqtt_version not in mqtt_run.target.urls:
        raise Unsupported(f"the target does not speak MQTT {mqtt_version}")
    spec = _spec(request.node)
    ctx = CaseContext(mqtt_run, mqtt_version, spec)
    request.node.stash[CTX] = ctx
    if spec is not None and spec.requires:
        caps = mqtt_run.caps(mqtt_version)
        for need in spec.requires:
            require(caps, need)
    yield ctx
    ctx.close_all()
    ctx.clean_up()


def require(caps: dict[str, Any], need: str) -> None:
    """Raise Unsupported unless capability ``need`` is on (``qos1``/``qos2`` check Maximum QoS)."""
    if need in ("qos1", "qos2"):
        if caps.get("maximum_qos", 2) < int(need[-1]):
            raise Unsupported(f"the target's Maximum QoS is {caps.get('maximum_qos')}")
        return
    if need not in caps:
        raise pytest.UsageError(f"unknown capability {need!r}")
    if not caps[need]:
        raise Unsupported(f"the target does not support {need.replace('_', ' ')}")


@pytest.fixture
def capabilities(mqtt_run: WorkerState, mqtt_version: str) -> dict[str, Any]:
    """What the target supports for this version (CONNACK-advertised, then the profile's overrides)."""
    return mqtt_run.caps(mqtt_version)


@pytest.fixture
def make_probe(case_context: CaseContext):  # noqa: ANN201
    """Factory of unconnected probes sharing the case's transcript: ``make_probe(client_id=None, version=None)``."""
    return case_context.make_probe


@pytest.fixture
def probe(case_context: CaseContext) -> Probe:
    """A probe already connected (clean start) with a unique client ID."""
    return case_context.make_probe().connect()


@pytest.fixture
def client_id(case_context: CaseContext) -> str:
    """A client identifier unique to this case."""
    return case_context.client_id()


@pytest.fixture
def topic_prefix(case_context: CaseContext) -> str:
    """A topic root unique to this case (no other case publishes or subscribes below it)."""
    return case_context.topic_prefix


# -- verdicts ----------------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    report: pytest.TestReport = yield
    spec = _spec(item)
    if spec is None or getattr(getattr(item, "callspec", None), "params", {}).get("mqtt_version") not in VERSIONS:
        return report
    version = item.callspec.params["mqtt_version"]
    judged = item.stash.setdefault(JUDGED, {"judgement": None, "duration": 0.0, "start": call.start})
    judged["duration"] += report.duration
    if call.when in ("setup", "call") and (call.excinfo is not None or call.when == "call"):
        judgement = _with_reservations(item, judge(call.excinfo, spec))
        judgement = _recheck_broker(item, version, judgement)
        judged["judgement"] = judgement
        _shape_report(item, report, judgement, spec, version)
    elif call.when == "teardown":
        if call.excinfo is not None and (judged["judgement"] is None or judged["judgement"].verdict == Verdict.PASS):
            judged["judgement"] = Judgement(Verdict.ERROR, f"teardown: {call.excinfo.value}")
        record = _record(item, spec, version, judged)
        report.user_properties.append(("mqttc_record", json.dumps(record)))
    return report


def _with_reservations(item: pytest.Item, judgement: Judgement) -> Judgement:
    """A case that passed with reservations recorded on the way is NON-STRICT."""
    ctx: CaseContext | None = item.stash.get(CTX, None)
    if judgement.verdict != Verdict.PASS or ctx is None or not ctx.transcript.reservations:
        return judgement
    return Judgement(Verdict.NON_STRICT, "; ".join(ctx.transcript.reservations))


def _recheck_broker(item: pytest.Item, version: str, judgement: Judgement) -> Judgement:
    """A failure while the broker is gone is not the broker's verdict: ERROR, and the rest fast."""
    if judgement.verdict not in (Verdict.FAIL, Verdict.ERROR, Verdict.NON_STRICT):
        return judgement
    state = item.config.stash.get(WORKER, None)
    if state is None or state.dead or version not in state.target.urls:
        return judgement
    if not state.alive(version):
        state.dead = f"no longer accepts connections after {item.name}"
        return Judgement(Verdict.ERROR, f"broker stopped accepting connections: {judgement.message}")
    return judgement


def _deviation(item: pytest.Item, spec: CaseSpec, version: str):  # noqa: ANN202
    state = item.config.stash.get(WORKER, None)
    return None if state is None else _deviation_of(state.target, item, spec, version)


def _deviation_of(target: Target, item: pytest.Item, spec: CaseSpec, version: str):  # noqa: ANN202
    """The target profile's known deviation for this case run (over the target's transport), if any."""
    scheme = target.endpoint(version).scheme if version in target.urls else "mqtt"
    return target.profile.deviation_for(list(spec.statements[version]), version, item.name, scheme)


def _shape_report(item: pytest.Item, report: pytest.TestReport, judgement: Judgement, spec: CaseSpec,
                  version: str) -> None:
    """Map the verdict onto pytest's outcome, so that pytest's own exit code and summary agree."""
    verdict, message = judgement.verdict, judgement.message
    strict = item.config.getoption("mqtt_strict")
    ctx: CaseContext | None = item.stash.get(CTX, None)
    ids = ", ".join(spec.statements[version])
    if verdict == Verdict.PASS:
        return
    if verdict in (Verdict.INFORMATIONAL,) or (verdict == Verdict.NON_STRICT and not strict):
        report.outcome = "passed"
        report.longrepr = None
        report.sections.append(("mqtt-conformance", f"{verdict}: {message}"))
        return
    if verdict == Verdict.UNSUPPORTED:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"UNSUPPORTED: {message}")
        return
    deviation = _deviation(item, spec, version) if verdict in (Verdict.FAIL, Verdict.NON_STRICT) else None
    if deviation is not None:
        report.outcome = "skipped"
        report.wasxfail = f"known deviation {deviation.statement}: {deviation.reason}"
        return
    report.outcome = "failed"
    if verdict != Verdict.ERROR or "harness error" not in message:
        transcript = ctx.transcript.text() if ctx else ""
        report.longrepr = f"{verdict} [{ids}] {message}\n\nwire transcript:\n{transcript}"


def _record(item: pytest.Item, spec: CaseSpec, version: str, judged: dict[str, Any]) -> dict[str, Any]:
    judgement: Judgement = judged["judgement"] or Judgement(Verdict.ERROR, "case did not run")
    deviation = None
    if judgement.verdict in (Verdict.FAIL, Verdict.NON_STRICT):
        deviation = _deviation(item, spec, version)
    ctx: CaseContext | None = item.stash.get(CTX, None)
    doc = (getattr(item.function, "__doc__", None) or "").strip()
    return {
        "id": item.nodeid,
        "name": item.originalname if isinstance(item, pytest.Function) else item.name,
        "module": item.nodeid.split("::")[0],
        "section": section_of(spec, version),
        "mqtt_version": version,
        "statements": list(spec.statements[version]),
        "level": spec.level,
        "verdict": judgement.verdict.value,
        "known_deviation": deviation is not None,
        "deviation": (
            {"statement": deviation.statement, "reason": deviation.reason, "evidence": deviation.evidence}
            if deviation else None
        ),
        "duration_s": round(judged["duration"], 4),
        "started": round(judged["start"], 4),  # epoch seconds: with "worker", a timeline of the run
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "message": judgement.message,
        "description": doc,
        "expectation": spec.expectation or (doc.splitlines()[0] if doc else ""),
        "timer": spec.timer,
        "transcript": ctx.transcript.to_json() if ctx else [],
        "pcap": None,
    }


# -- results -------------------------------------------------------------------------------------------
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[RECORDS] = []
    session.config._mqttc_started = time.time()  # type: ignore[attr-defined]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for key, value in report.user_properties:
        if key == "mqttc_record":
            _CURRENT_RECORDS.append(json.loads(value))


_CURRENT_RECORDS: list[dict[str, Any]] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not _CURRENT_RECORDS:
        return
    state: RunState = config.stash[STATE]
    records = list(_CURRENT_RECORDS)
    _CURRENT_RECORDS.clear()
    target_json: dict[str, Any] = state.target.to_json() if state.target else {"name": "unknown", "urls": {}}
    if state.target is not None:
        target_json["name"] = state.target.name
    caps = _final_capabilities(config, state)
    started = getattr(config, "_mqttc_started", time.time())
    strict = bool(config.getoption("mqtt_strict"))
    options = {
        "mqtt_version": config.getoption("mqtt_version"), "strict": strict,
        "workers": getattr(config.option, "numprocesses", None) or 0, "baseline": config.getoption("baseline"),
    }
    doc = document(target_json, started, time.time() - started, options, records, caps, strict)
    report_dir = Path(config.getoption("report_dir"))
    baseline_text = _apply_baseline(config, doc)
    if not config.getoption("no_reports"):
        _render(doc, report_dir)
    write_results(report_dir / "results.json", doc)
    config._mqttc_summary = (doc, report_dir, baseline_text)  # type: ignore[attr-defined]
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = doc["exit_code"]


def _final_capabilities(config: pytest.Config, state: RunState) -> dict[str, Any]:
    worker = config.stash.get(WORKER, None)
    if worker is not None and worker.capabilities:
        return worker.capabilities
    caps: dict[str, Any] = {}
    if state.target is None:
        return caps
    for version in state.target.versions:
        # The broker may be gone by now; capabilities are informative only.
        with contextlib.suppress(Exception):
            caps[version] = probe_capabilities(state.target, version, timeout=1.0)
    return caps


def _apply_baseline(config: pytest.Config, doc: dict[str, Any]) -> str:
    path = config.getoption("baseline")
    if not path:
        return ""
    from .reports.baseline import compare_to_baseline

    try:
        baseline = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"baseline {path}: {exc}") from None
    comparison = compare_to_baseline(doc, baseline)
    doc["baseline"] = {"file": path, "new_failures": len(comparison.new_failures),
                       "fixed": len(comparison.fixed), "exit_code": comparison.exit_code}
    doc["exit_code"] = comparison.exit_code
    return comparison.describe()


def _render(doc: dict[str, Any], report_dir: Path) -> None:
    try:
        from .reports import render_all
    except ImportError:
        return
    try:
        render_all(doc, report_dir)
    except Exception as exc:  # noqa: BLE001 - a report bug must not lose results.json
        print(f"mqtt-conformance: rendering reports failed: {exc!r}", file=sys.stderr)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    summary = getattr(config, "_mqttc_summary", None)
    if summary is None:
        return
    doc, report_dir, baseline_text = summary
    counts = ", ".join(f"{n} {v}" for v, n in doc["summary"].items() if n)
    deviations = sum(1 for c in doc["cases"] if c["known_deviation"])
    terminalreporter.section("mqtt-conformance")
    terminalreporter.write_line(f"target: {doc['target']['name']} {doc['target'].get('urls', {})}")
    terminalreporter.write_line(f"verdicts: {counts}" + (f" ({deviations} known deviations)" if deviations else ""))
    if baseline_text:
        terminalreporter.write_line(baseline_text)
    terminalreporter.write_line(f"results: {report_dir / 'results.json'}")
