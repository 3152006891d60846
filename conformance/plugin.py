"""The pytest plugin (entry point ``pytest11``): options, fixtures, verdicts and results.json.

The controlling process resolves the target (starting the embedded broker if no ``--broker`` is
given) and hands it to xdist workers; every worker turns each case's outcome into a graded verdict
and a record, and the controller writes the records into one results.json and renders the reports.
"""

from __future__ import annotations

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
from .console import VERDICT_KEY, summary_lines, teststatus
from .errors import ConfigError
from .net import BrokerUnreachable, parse_url
from .probe import Probe, Timing
from .reports.model import whole_expectation
from .run import supervisor
from .run.cluster import cluster, cluster_exclusive, nodes_used  # noqa: F401 - fixtures of the cluster cases
from .run.context import Handoff, RunState, load_options_profile
from .run.deadline import CaseDeadlines, case_budget
from .run.deadline import override as deadline_verdict
from .run.hygiene import clean_up, find_leftovers
from .run.isolated import run_alone
from .run.liveness import accepts_connect, answers_connect, broker_alive
from .run.options import Options, add_options
from .run.preflight import check_baseline
from .run.profile import Identity
from .run.records import (
    SUMMARY,
    CaseRecord,
    Grade,
    deviation_fields,
    document,
    grade,
    section_of,
    write_results,
)
from .run.schedule import (
    DEVIATION_ESTIMATE,
    QUICK_ESTIMATE,
    TIMER_ESTIMATE,
    balanced_order,
    recorded_durations,
)
from .run.selection import check_known, describe, normalize_statement, selects
from .run.target import Target, probe_capabilities, read_target
from .transcript import Transcript
from .verdicts import BrokerGone, Unsupported, Verdict

OPTIONS = pytest.StashKey[Options]()
STATE = pytest.StashKey["RunState"]()
WORKER = pytest.StashKey["WorkerState"]()
CTX = pytest.StashKey["CaseContext"]()
JUDGED = pytest.StashKey[dict]()
DURATIONS = pytest.StashKey[dict]()
STARTED = pytest.StashKey[float]()


# -- options ---------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser.getgroup("mqtt-conformance", "MQTT broker conformance").addoption, plugin=True)


def _options(config: pytest.Config) -> Options:
    if OPTIONS not in config.stash:
        config.stash[OPTIONS] = Options.of(config.option)
    return config.stash[OPTIONS]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mqtt_case: an MQTT conformance case (added by @conformance.case)")
    options = _options(config)
    try:
        check_baseline(options.baseline)
        problem = check_known([normalize_statement(s) for s in options.mqtt_statement], options.mqtt_section,
                              options.selected_versions())
        if problem:
            raise ConfigError(problem)
        if options.case_deadline is not None and options.case_deadline <= 0:
            raise ConfigError("--case-deadline must be a number of seconds above 0")
        if not hasattr(config, "workerinput"):
            config.stash[STATE] = _controller_state(config, options)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not config.getoption("usepdb"):  # a debugger session must not be cut short
        config.pluginmanager.register(CaseDeadlines(_case_budget, _case_probes), "mqttc-case-deadline")


def _controller_state(config: pytest.Config, options: Options) -> RunState:
    """The run state of this session: the one ``mqtt-conformance run`` resolved and hands over, or the target
    a harness process wrote for a run of its own (see run/isolated.py), or else one resolved here, whose
    broker this session then stops at its end."""
    handed = next((p.state for p in config.pluginmanager.get_plugins() if isinstance(p, Handoff)), None)
    if handed is not None:
        return handed
    if options.target_file:
        return RunState(options, read_target(options.target_file))
    state = RunState(options)
    config.add_cleanup(state.stop)
    return state


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
    options = _options(item.config)
    try:
        limits = _worker_state(item.config).target.profile.limits
    except Exception:  # noqa: BLE001 - no target (yet): the case's setup will say why; bound it anyway
        state = item.config.stash.get(STATE, None)  # a worker given no target was given no profile either
        limits = (state.profile if state is not None else load_options_profile(options)).limits
    return case_budget(limits, spec.timer, options.case_deadline)


def _case_probes(item: pytest.Item) -> list[Probe]:
    ctx: CaseContext | None = item.stash.get(CTX, None)
    return list(ctx.probes) if ctx is not None else []


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: resolve the target once and hand it to each worker, with the case durations
    of the previous run against it (read once here, not in every worker)."""
    if _wants_target(node.config):
        target = _controller_target(node.config)
        node.workerinput["mqttc_target"] = target.to_data()  # the workers load and resolve nothing again
        if DURATIONS not in node.config.stash:
            report_dir = Path(_options(node.config).report_dir)
            node.config.stash[DURATIONS] = recorded_durations(report_dir / "results.json", target.name)
        node.workerinput["mqttc_durations"] = node.config.stash[DURATIONS]
        # the managed broker's supervisor state (the worker process may predate the variable)
        node.workerinput["mqttc_supervisor"] = os.environ.get(supervisor.ENV, "")


def _wants_target(config: pytest.Config) -> bool:
    """Whether this session tests a broker (the plugin is loaded in every pytest session, the harness's
    own tests too: those must not start an embedded broker)."""
    options = _options(config)
    state = config.stash.get(STATE, None)
    if (state is not None and state.target is not None) or options.broker or options.profile or \
            options.embedded or options.broker_command:
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
        spec, version = _spec(item), _version(item)
        if spec is not None and version is None:
            dropped.append(item)  # no statement for a selected version (an empty parameter set)
        elif spec is not None and version is not None and not _selected(config, spec, version):
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
    options = _options(config)
    return selects(spec, version, [normalize_statement(s) for s in options.mqtt_statement], options.mqtt_section)


def _check_selection(config: pytest.Config, keep: list[pytest.Item]) -> None:
    """A --mqtt-statement or --mqtt-section that selects no case is a usage error (exit 2), not an empty run.
    (An xdist worker only deselects: the CLI checks the selection before it starts them.)"""
    options = _options(config)
    wanted = describe(options.mqtt_statement, options.mqtt_section)
    if wanted and not any(_spec(item) for item in keep) and not hasattr(config, "workerinput"):
        versions = options.selected_versions()
        pytest.exit(f"mqtt-conformance: no case cites {wanted} (MQTT {' or '.join(versions)}); "
                    "see `mqtt-conformance list`", returncode=2)


def _known_deviations(config: pytest.Config, items: list[pytest.Item]) -> set[str]:
    """Node ids of the cases the target's profile lists as known deviations (an xdist worker knows the
    target at collection; every worker computes the same set, so they all order the cases alike)."""
    target = _worker_state(config).target
    known = set()
    for item in items:
        spec = _spec(item)
        version = _version(item)
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


def _version(item: pytest.Item) -> str | None:
    """The MQTT version a case's run speaks (None: not a case's run, or an empty parameter set)."""
    version = getattr(getattr(item, "callspec", None), "params", {}).get("mqtt_version")
    return version if version in catalogue.VERSIONS else None


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
        workerinput = getattr(config, "workerinput", {})
        if "mqttc_target" in workerinput:
            if workerinput.get("mqttc_supervisor"):
                os.environ[supervisor.ENV] = workerinput["mqttc_supervisor"]
            target = Target.from_data(workerinput["mqttc_target"])
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
    spec, version = _spec(item), _version(item)
    if spec is None or version is None:
        return report
    judged = item.stash.setdefault(JUDGED, {"judgement": None, "duration": 0.0, "start": call.start})
    judged["duration"] += report.duration
    if call.when in ("setup", "call") and (call.excinfo is not None or call.when == "call"):
        judgement = _with_reservations(item, grade(call.excinfo, spec, version))
        judgement = deadline_verdict(item, judgement)
        judgement = _recheck_broker(item, version, judgement)
        judged["judgement"] = judgement
        _shape_report(item, report, judgement, spec, version)
    elif call.when == "teardown":
        if call.excinfo is not None and (judged["judgement"] is None or judged["judgement"].verdict == Verdict.PASS):
            judged["judgement"] = Grade(Verdict.ERROR, f"teardown: {call.excinfo.value}")
        record = _record(item, spec, version, judged)
        report.user_properties.append(("mqttc_record", json.dumps(record.to_dict())))
    return report


def _with_reservations(item: pytest.Item, judgement: Grade) -> Grade:
    """A case that passed with reservations recorded on the way is NON-STRICT."""
    ctx: CaseContext | None = item.stash.get(CTX, None)
    if judgement.verdict != Verdict.PASS or ctx is None or not ctx.transcript.reservations:
        return judgement
    return Grade(Verdict.NON_STRICT, "; ".join(ctx.transcript.reservations))


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


def _recheck_broker(item: pytest.Item, version: str, judgement: Grade) -> Grade:
    """A failure while the broker is gone is not the broker's verdict: ERROR, and the rest fast."""
    if judgement.verdict not in (Verdict.FAIL, Verdict.ERROR, Verdict.NON_STRICT):
        return judgement
    state = item.config.stash.get(WORKER, None)
    if state is None or state.dead or version not in state.target.urls:
        return judgement
    crashed = _managed_crash(item, state, version)
    if crashed is not None:
        return Grade(Verdict.ERROR, f"{crashed}{supervisor.REJUDGED}{judgement.message}")
    if not state.alive(version):
        state.dead = f"no longer accepts connections after {item.name}"
        return Grade(Verdict.ERROR, f"broker stopped accepting connections: {judgement.message}")
    if not answers_connect(state.target, version):  # hung: every later case would only time out
        state.dead = f"accepts connections but no longer answers a CONNECT, after {item.name}"
        return Grade(Verdict.ERROR, f"broker stopped answering (no CONNACK to a fresh CONNECT): {judgement.message}")
    return judgement


def _deviation(item: pytest.Item, spec: CaseSpec, version: str):  # noqa: ANN202
    state = item.config.stash.get(WORKER, None)
    return None if state is None else _deviation_of(state.target, item, spec, version)


def _deviation_of(target: Target, item: pytest.Item, spec: CaseSpec, version: str):  # noqa: ANN202
    """The target profile's known deviation for this case run (over the target's transport), if any."""
    scheme = target.endpoint(version).scheme if version in target.urls else "mqtt"
    return target.profile.deviation_for(list(spec.statements[version]), version, item.name, scheme)


def _shape_report(item: pytest.Item, report: pytest.TestReport, judgement: Grade, spec: CaseSpec,
                  version: str) -> None:
    """Map the verdict onto pytest's outcome, so that pytest's own exit code and summary agree."""
    verdict, message = judgement.verdict, judgement.message
    strict = _options(item.config).mqtt_strict
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


def _record(item: pytest.Item, spec: CaseSpec, version: str, judged: dict[str, Any]) -> CaseRecord:
    judgement: Grade = judged["judgement"] or Grade(Verdict.ERROR, "case did not run")
    deviation = None
    if judgement.verdict in (Verdict.FAIL, Verdict.NON_STRICT):
        deviation = _deviation(item, spec, version)
    ctx: CaseContext | None = item.stash.get(CTX, None)
    doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
    return CaseRecord(
        id=item.nodeid, name=item.originalname if isinstance(item, pytest.Function) else item.name,
        module=item.nodeid.split("::")[0], section=section_of(spec, version), mqtt_version=version,
        statements=list(spec.statements[version]), level=spec.level, verdict=judgement.verdict.value,
        **deviation_fields(deviation), duration_s=round(judged["duration"], 4), started=round(judged["start"], 4),
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"), message=judgement.message,
        precondition=judgement.precondition, nodes=nodes_used(item), description=doc,
        expectation=spec.expectation or whole_expectation(doc.splitlines()[0] if doc else "", doc),
        timer=spec.timer, transcript=ctx.transcript.to_json() if ctx else [],
    )


# -- results -------------------------------------------------------------------------------------------
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[STARTED] = time.time()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for key, value in report.user_properties:
        if key == "mqttc_record":
            _CURRENT_RECORDS.append(json.loads(str(value)))


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
    caps = _final_capabilities(config, state)
    started = config.stash.get(STARTED, time.time())
    options = _options(config)
    shown = {"mqtt_version": options.mqtt_version, "strict": options.mqtt_strict,
             "workers": getattr(config.option, "numprocesses", None) or 0, "baseline": options.baseline}
    doc = document(target_json, started, time.time() - started, shown, records, caps, options.mqtt_strict, interrupted)
    report_dir = Path(options.report_dir)
    baseline_text = _apply_baseline(options.baseline, doc)
    if interrupted:
        doc["exit_code"] = 2  # a baseline must not turn a partial run into a success
    if not options.no_reports:
        _render(doc, report_dir)
    write_results(report_dir / "results.json", doc)
    config.stash[SUMMARY] = (doc, report_dir, baseline_text)
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = doc["exit_code"]


def _attribute_crashes(config: pytest.Config, state: RunState, records: list[dict[str, Any]]) -> list[dict]:
    """Charge each crash of the managed broker to the case that caused it (see supervisor.reconcile)."""
    target = state.target
    if target is None or state.options.target_file:  # a run of its own (run/isolated.py) re-runs nothing
        return records
    current = supervisor.read_state(_ports(target))
    if not current or not current["crashes"]:
        return records
    args = _isolated_args(config)
    budget = 4 * case_budget(target.profile.limits, True, _options(config).case_deadline) + 30

    def rerun(nodeid: str) -> dict[str, Any] | None:
        again = run_alone([nodeid], target, args, config.rootpath, budget)
        return next((rec for rec in again if rec["id"] == nodeid), None)

    def healthy() -> bool:
        return all(accepts_connect(target, v) for v in target.urls)

    result = supervisor.reconcile(records, current["crashes"], rerun, healthy, _ports(target))
    for rec in result:
        if rec.get("crash"):
            _mark_deviation(target, rec)
    return result


def _isolated_args(config: pytest.Config) -> list[str]:
    """The options of this run that a run of some of its cases on their own needs besides the target."""
    return ["--rootdir", str(config.rootpath),
            *_options(config).plugin_args(("mqtt_version", "case_deadline", "mqtt_strict"))]


def _variant_records(config: pytest.Config, state: RunState, records: list[dict[str, Any]]) -> list[dict]:
    """The UNSUPPORTED cases re-run against each config variant the profile declares (see variants)."""
    target = state.target
    if target is None or not target.profile.variants or state.options.target_file:
        return []
    from .run import variants

    nodeids = variants.candidates(records, target.unsupported_versions)
    added: list[dict[str, Any]] = []
    for variant in target.profile.variants if nodeids else []:
        try:
            added += variants.run_variant(variant, nodeids, state.options, target, _isolated_args(config),
                                          config.rootpath)
        except Exception as exc:  # noqa: BLE001 - a variant that cannot start must not lose the main run
            print(f"mqtt-conformance: variant {variant['name']} not run: {exc}", file=sys.stderr)
    return added


def _mark_deviation(target: Target, rec: dict[str, Any]) -> None:
    """A case graded FAIL for a crash is a known deviation if the profile lists it."""
    name = rec["id"].split("::")[-1]
    rec.update(deviation_fields(target.profile.deviation_for(rec["statements"], rec["mqtt_version"], name)))


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


def _apply_baseline(path: str | None, doc: dict[str, Any]) -> str:
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
    summary = config.stash.get(SUMMARY, None)
    if summary is None:
        return
    doc, report_dir, _ = summary
    terminalreporter.section("mqtt-conformance")
    for line in summary_lines(doc, report_dir, _options(config).no_reports)[1:]:
        terminalreporter.write_line(line)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """pytest's "N passed, M failed" line in the suite's verdicts (NON-STRICT is not "passed")."""
    return teststatus(report)
