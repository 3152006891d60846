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
from .console import VERDICT_KEY, summary_lines, teststatus
from .errors import ConfigError
from .net import BrokerUnreachable, parse_url
from .probe import Probe, Timing
from .reports.model import whole_expectation
from .run import supervisor
from .run.cluster import cluster, cluster_exclusive, nodes_used  # noqa: F401 - fixtures of the cluster cases
from .run.context import Options, RunState, credentials, load_options_profile, tls_options
from .run.deadline import CaseDeadlines, broker_answers, case_budget
from .run.deadline import override as deadline_verdict
from .run.hygiene import clean_up, find_leftovers
from .run.preflight import check_baseline
from .run.profile import Identity, load_profile
from .run.records import Judgement, broker_alive, document, judge, section_of, write_results
from .run.schedule import (
    DEVIATION_ESTIMATE,
    QUICK_ESTIMATE,
    TIMER_ESTIMATE,
    balanced_order,
    recorded_durations,
)
from .run.selection import check_known, describe, normalize_statement, selects
from .run.target import Target, probe_capabilities
from .transcript import Transcript
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
    add("--broker-command", metavar="CMD", help="start your own broker with this command line, which must listen "
                                                "on {port} (a free loopback port); supervised and restarted")
    add("--no-reports", action="store_true", help="write results.json only, no rendered reports")
    add("--case-deadline", type=float, metavar="SECONDS",
        help="hard bound of one case (default: 4 x its longest wait, from the profile's limits)")
    add("--mqtt-statement", action="append", default=[], metavar="ID",
        help="only the cases that cite this statement, e.g. MQTT-3.1.2-24 (repeatable)")
    add("--mqtt-section", action="append", default=[], metavar="N.N",
        help="only the cases citing a statement of this spec section, e.g. 3.8 or 3.1.2 (repeatable)")


def _options(config: pytest.Config) -> Options:
    get = config.getoption
    return Options(
        brokers=list(get("broker") or []), profile=get("profile"), mqtt_version=get("mqtt_version"),
        username=get("username"), password=get("password"), ca_file=get("ca_file"), cert_file=get("cert_file"),
        key_file=get("key_file"), insecure=get("insecure"), embedded=get("embedded"),
        response_timeout=get("response_timeout"), capabilities=list(get("capability") or []),
        started_by_cli=bool(get("embedded_started")), broker_command=get("broker_command"),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mqtt_case: an MQTT conformance case (added by @conformance.case)")
    options = _options(config)
    try:
        options.selected_versions()
        load_options_profile(options)
        check_baseline(config.getoption("baseline"))
        problem = check_known([normalize_statement(s) for s in config.getoption("mqtt_statement")],
                              config.getoption("mqtt_section"), options.selected_versions())
        if problem:
            raise ConfigError(problem)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RECORDS] = []
    if not hasattr(config, "workerinput"):
        config.stash[STATE] = RunState(options)
    if config.getoption("case_deadline") is not None and config.getoption("case_deadline") <= 0:
        raise pytest.UsageError("--case-deadline must be a number of seconds above 0")
    if not config.getoption("usepdb"):  # a debugger session must not be cut short
        config.pluginmanager.register(CaseDeadlines(_case_budget, _case_probes), "mqttc-case-deadline")


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


def _case_budget(item: pytest.Item) -> float | None:
    """The hard deadline of a case (None: not a case, no watchdog)."""
    spec = _spec(item)
    if spec is None:
        return None
    try:
        limits = _worker_state(item.config).target.profile.limits
    except Exception:  # noqa: BLE001 - no target yet: the case's setup will say why; bound it anyway
        limits = load_options_profile(_options(item.config)).limits
    return case_budget(limits, spec.timer, item.config.getoption("case_deadline"))


def _case_probes(item: pytest.Item) -> list[Probe]:
    ctx: CaseContext | None = item.stash.get(CTX, None)
    return list(ctx.probes) if ctx is not None else []


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
        # the managed broker's supervisor state (the worker process may predate the variable)
        node.workerinput["mqttc_supervisor"] = os.environ.get(supervisor.ENV, "")


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
        elif spec is not None and not _selected(config, spec, params["mqtt_version"]):
            dropped.append(item)  # not what --mqtt-statement / --mqtt-section asked for
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    _check_selection(config, keep)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    has_cases = any(_spec(item) for item in keep)
    if workers > 1 and has_cases:
        items[:] = balanced_order(keep, workers, _expected_duration(config, keep))
    else:
        items[:] = keep
    if STATE in config.stash and has_cases and not config.getoption("collectonly"):
        _worker_state(config)  # resolve the target (and fail fast if unreachable) before any case runs


def _selected(config: pytest.Config, spec: CaseSpec, version: str) -> bool:
    statements = [normalize_statement(s) for s in config.getoption("mqtt_statement")]
    return selects(spec, version, statements, config.getoption("mqtt_section"))


def _check_selection(config: pytest.Config, keep: list[pytest.Item]) -> None:
    """A --mqtt-statement or --mqtt-section that selects no case is a usage error (exit 2), not an empty run.
    (An xdist worker only deselects: the CLI checks the selection before it starts them.)"""
    wanted = describe(config.getoption("mqtt_statement"), config.getoption("mqtt_section"))
    if wanted and not any(_spec(item) for item in keep) and not hasattr(config, "workerinput"):
        versions = _options(config).selected_versions()
        pytest.exit(f"mqtt-conformance: no case cites {wanted} (MQTT {' or '.join(versions)}); "
                    "see `mqtt-conformance list`", returncode=2)


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
            if workerinput.get("mqttc_supervisor"):
                os.environ[supervisor.ENV] = workerinput["mqttc_supervisor"]
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
    _await_restart(mqtt_run)
    if mqtt_run.dead:
        raise BrokerGone(f"broker is gone ({mqtt_run.dead}); case not run")
    if mqtt_version not in mqtt_run.target.urls:
        why = mqtt_run.target.unsupported_versions.get(mqtt_version, "no URL for it")
        raise Unsupported(f"the target does not speak MQTT {mqtt_version}: {why}")
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
        judgement = _with_reservations(item, judge(call.excinfo, spec, version))
        judgement = deadline_verdict(item, judgement)
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


def _ports(target: Target) -> list[int]:
    return sorted({target.endpoint(v).port for v in target.urls})


def _await_restart(state: WorkerState) -> None:
    """A case of a managed broker that is being restarted waits for it (bounded), instead of ERROR."""
    if state.dead:
        return
    current = supervisor.wait_until_up(_ports(state.target))
    if current is not None and current["gave_up"]:
        state.dead = f"the managed broker {current.get('why', 'is gone')}"


def _managed_crash(item: pytest.Item, state: WorkerState, version: str) -> str | None:
    """For a broker this run manages: whether it crashed during this case (then waits for its restart).
    None for a broker the harness did not start, or one that did not crash."""
    ports = _ports(state.target)
    if supervisor.read_state(ports) is None:
        return None
    started = item.stash.get(JUDGED, {}).get("start", time.time())
    # a dead process is seen by the supervisor within POLL; the grace covers a broker that closes first
    crash = supervisor.crash_since(ports, started, 0.0 if state.alive(version) else 2.0)
    if crash is None:
        return None
    _await_restart(state)
    return f"broker crashed during this case: {supervisor.describe(crash)}"


def _recheck_broker(item: pytest.Item, version: str, judgement: Judgement) -> Judgement:
    """A failure while the broker is gone is not the broker's verdict: ERROR, and the rest fast."""
    if judgement.verdict not in (Verdict.FAIL, Verdict.ERROR, Verdict.NON_STRICT):
        return judgement
    state = item.config.stash.get(WORKER, None)
    if state is None or state.dead or version not in state.target.urls:
        return judgement
    crashed = _managed_crash(item, state, version)
    if crashed is not None:
        return Judgement(Verdict.ERROR, f"{crashed}{supervisor.REJUDGED}{judgement.message}")
    if not state.alive(version):
        state.dead = f"no longer accepts connections after {item.name}"
        return Judgement(Verdict.ERROR, f"broker stopped accepting connections: {judgement.message}")
    if not broker_answers(state.target, version):  # hung: every later case would only time out
        state.dead = f"accepts connections but no longer answers a CONNECT, after {item.name}"
        return Judgement(Verdict.ERROR, f"broker stopped answering (no CONNACK to a fresh CONNECT): {judgement.message}")
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
    report.user_properties.append((VERDICT_KEY, verdict.value))  # pytest's counts in the suite's verdicts
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
        report.user_properties[-1] = (VERDICT_KEY, "KNOWN")
        return
    report.outcome = "failed"
    if verdict != Verdict.ERROR or "harness error" not in message:
        # The transcripts are in the reports; the terminal gets them only when asked for (-v).
        if ctx and item.config.getoption("verbose") > 0:
            report.longrepr = f"{verdict} [{ids}] {message}\n\nwire transcript:\n{ctx.transcript.text()}"
        else:
            report.longrepr = f"{verdict} [{ids}] {message}\n(wire transcript: report.html, results.json; or -v)"


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
        "precondition": judgement.precondition,  # a failed setup step (see setup_steps)
        "nodes": nodes_used(item),  # cluster cases: the nodes their clients ran on (see cluster)
        "description": doc,
        "expectation": spec.expectation or whole_expectation(doc.splitlines()[0] if doc else "", doc),
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
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if hasattr(config, "workerinput") or not (_CURRENT_RECORDS or interrupted):
        return
    state: RunState = config.stash[STATE]
    if not _CURRENT_RECORDS and state.target is None:
        return  # interrupted before any case was even set up (or not a conformance run)
    records = _attribute_crashes(config, state, list(_CURRENT_RECORDS))
    records += _variant_records(config, state, records)
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
    doc = document(target_json, started, time.time() - started, options, records, caps, strict, interrupted)
    report_dir = Path(config.getoption("report_dir"))
    baseline_text = _apply_baseline(config, doc)
    if interrupted:
        doc["exit_code"] = 2  # a baseline must not turn a partial run into a success
    if not config.getoption("no_reports"):
        _render(doc, report_dir)
    write_results(report_dir / "results.json", doc)
    config._mqttc_summary = (doc, report_dir, baseline_text)  # type: ignore[attr-defined]
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = doc["exit_code"]


def _attribute_crashes(config: pytest.Config, state: RunState, records: list[dict[str, Any]]) -> list[dict]:
    """Charge each crash of the managed broker to the case that caused it (see supervisor.reconcile)."""
    for rec in records:
        rec.setdefault("crash", None)
        rec.setdefault("variant", None)
    target = state.target
    if target is None or os.environ.get(supervisor.RERUN_ENV):
        return records
    current = supervisor.read_state(_ports(target))
    if not current or not current["crashes"]:
        return records
    args, env = _rerun_args(config, target)
    budget = 4 * case_budget(target.profile.limits, True, config.getoption("case_deadline")) + 30

    def rerun(nodeid: str) -> dict[str, Any] | None:
        return supervisor.rerun_case(nodeid, args, config.rootpath, budget, env)

    def healthy() -> bool:
        return all(_answers_connack(target, v) for v in target.urls)

    result = supervisor.reconcile(records, current["crashes"], rerun, healthy, _ports(target))
    for rec in result:
        if rec.get("crash"):
            _mark_deviation(target, rec)
    return result


def _rerun_args(config: pytest.Config, target: Target) -> tuple[list[str], dict[str, str]]:
    """The options of this run that a re-run of one case needs: the same target, profile and limits."""
    args, env = _common_args(config)
    args.append("--embedded-started")
    for version, url in target.urls.items():
        args += ["--broker", f"{version}={url}"]
    if target.profile.path:
        args += ["--profile", target.profile.path]
    for text in config.getoption("capability") or []:
        args += ["--capability", text]
    return args, env


def _common_args(config: pytest.Config) -> tuple[list[str], dict[str, str]]:
    """The options of this run that do not name the target: version, credentials, TLS, limits."""
    get = config.getoption
    args = ["--rootdir", str(config.rootpath), "--mqtt-version", get("mqtt_version")]
    for flag, value in (("--username", get("username")), ("--ca-file", get("ca_file")),
                        ("--cert-file", get("cert_file")), ("--key-file", get("key_file")),
                        ("--response-timeout", get("response_timeout")), ("--case-deadline", get("case_deadline"))):
        if value is not None:
            args += [flag, str(value)]
    args += [flag for flag, on in (("--insecure", get("insecure")), ("--mqtt-strict", get("mqtt_strict"))) if on]
    env = {"MQTT_CONFORMANCE_PASSWORD": get("password")} if get("password") else {}
    return args, env


def _variant_records(config: pytest.Config, state: RunState, records: list[dict[str, Any]]) -> list[dict]:
    """The UNSUPPORTED cases re-run against each config variant the profile declares (see variants)."""
    target = state.target
    if target is None or not target.profile.variants or os.environ.get(supervisor.RERUN_ENV):
        return []
    from .run import variants

    nodeids = variants.candidates(records, target.unsupported_versions)
    args, env = _common_args(config)
    added: list[dict[str, Any]] = []
    for variant in target.profile.variants if nodeids else []:
        try:
            added += variants.run_variant(variant, nodeids, args, config.rootpath, target.profile.path,
                                          tuple(target.urls), env)
        except Exception as exc:  # noqa: BLE001 - a variant that cannot start must not lose the main run
            print(f"mqtt-conformance: variant {variant['name']} not run: {exc}", file=sys.stderr)
    return added


def _answers_connack(target: Target, version: str) -> bool:
    """A CONNECT answered by a CONNACK: the barrier that shows the broker survived a re-run."""
    limits = target.profile.limits
    probe = Probe(target.endpoint(version), version, Transcript(), name="health", client_id="",
                  timing=Timing(response=limits["connect_timeout"], connect=limits["connect_timeout"]),
                  tls=target.tls, username=target.credentials.username, password=target.credentials.password)
    try:
        probe.connect(expect_code=None)
        return True
    except Exception:  # noqa: BLE001 - no CONNACK, whatever the way: not healthy
        return False
    finally:
        probe.close()


def _mark_deviation(target: Target, rec: dict[str, Any]) -> None:
    """A case graded FAIL for a crash is a known deviation if the profile lists it."""
    name = rec["id"].split("::")[-1]
    dev = target.profile.deviation_for(rec["statements"], rec["mqtt_version"], name)
    rec["known_deviation"] = dev is not None
    rec["deviation"] = {"statement": dev.statement, "reason": dev.reason, "evidence": dev.evidence} if dev else None


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
                       "fixed": len(comparison.fixed), "now_unsupported": len(comparison.now_unsupported),
                       "still_failing": len(comparison.still_failing), "exit_code": comparison.exit_code,
                       **comparison.ids()}
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
    doc, report_dir, _ = summary
    terminalreporter.section("mqtt-conformance")
    for line in summary_lines(doc, report_dir, bool(config.getoption("no_reports")))[1:]:
        terminalreporter.write_line(line)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """pytest's "N passed, M failed" line in the suite's verdicts (NON-STRICT is not "passed")."""
    return teststatus(report)
