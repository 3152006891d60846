"""A fuzz campaign: per MQTT version, packet fuzzing then the stateful model, within a time budget.

Each part runs in *rounds*: one hypothesis run of ``examples_per_round`` examples with a seed derived from
``(seed, version, part, round)``, so that the same seed gives the same inputs whatever the machine's speed
(a faster machine only runs more rounds). The database is off; nothing depends on earlier runs.

When an oracle fails, hypothesis shrinks the example (at most ``shrink_time`` seconds; the time budget
governs generation only), a last pass removes inputs one by one, and the smallest failing example becomes a
``Finding``. A rule found once is not reported again by later rounds of the same version (``--ignore``
silences it from the start). If the broker stops answering, the campaign restarts it through ``restart``
when it was given one (the self-tests' proxies can), otherwise it reports what it has and stops.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.errors import HypothesisWarning

from .. import catalogue
from ..codec import Pingreq, Pingresp, Publish
from ..codec.version import Version
from ..net import BrokerUnreachable
from ..probe import Probe
from ..transcript import Transcript
from ..verdicts import BrokerViolation
from .common import (
    V50,
    BrokerDown,
    Finding,
    FuzzFailure,
    FuzzTarget,
    IgnoreList,
    Limits,
    Problem,
    statements_for,
)
from .packet_fuzz import BatchResult, LivenessChecker, Naming, Plan, build_plans, run_batch
from .strategies import FuzzContext, Input, batch_st

MODES = ("packet", "stateful")
_CAPS = {
    "topic_alias_maximum": "topic_alias_maximum", "maximum_qos": "maximum_qos",
    "retain_available": "retain_available", "maximum_packet_size": "maximum_packet_size",
    "receive_maximum": "receive_maximum", "wildcard_subscription_available": "wildcard_subscriptions",
    "subscription_identifier_available": "subscription_identifiers",
    "shared_subscription_available": "shared_subscriptions",
}


def derive_seed(base: int | None, *parts: object) -> int:
    text = "|".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _base36(value: int, width: int = 5) -> str:
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    value %= 36**width
    for _ in range(width):
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out


def prefix_for(seed_value: int | None, version: str) -> str:
    return f"mqttc-fuzz/{_base36(derive_seed(seed_value, 'prefix'))}/{version.replace('.', '')}"


def probe_caps(target: FuzzTarget, version: str, limits: Limits) -> dict[str, Any]:
    """What the broker's CONNACK says it can do (5.0); also proves a plain CONNECT is accepted."""
    probe = Probe(target.endpoint, version, Transcript(), client_id=f"fzcaps{version[0]}")
    probe.timing.response = probe.timing.connect = limits.liveness_timeout
    try:
        probe.connect()
    except BrokerViolation as exc:
        raise BrokerUnreachable(f"{target.url} did not accept a plain MQTT {version} CONNECT: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - BrokerGone and socket errors alike
        raise BrokerUnreachable(str(exc) if "connect" in str(exc) else f"cannot reach {target.url}: {exc}") \
            from None
    caps: dict[str, Any] = {}
    assert probe.connack is not None
    if version == V50:
        for prop, cap in _CAPS.items():
            if prop in probe.connack.properties:
                caps[cap] = probe.connack.properties.get(prop)
    probe.disconnect()
    return caps


def context_for(target: FuzzTarget, version: str, seed_value: int | None, limits: Limits) -> FuzzContext:
    key = f"caps-{version}"
    if key not in target.caps:
        target.caps[key] = probe_caps(target, version, limits)
    return FuzzContext.from_caps(version, prefix_for(seed_value, version), target.caps[key])


def sweep_retained(target: FuzzTarget, version: str, prefix: str, limits: Limits) -> int:
    """Clear every retained message below ``prefix`` (left behind by fuzz inputs); returns how many."""
    probe = Probe(target.endpoint, version, Transcript(), client_id=f"fzsweep{version[0]}")
    probe.timing.response = limits.liveness_timeout
    try:
        probe.connect()
        probe.subscribe(f"{prefix}/#", qos=0)
        probe.send(Pingreq())
        before, _ = probe.collect_until(Pingresp)
        topics = {p.topic for p in before if isinstance(p, Publish) and p.retain and p.payload}
        probe.unsubscribe(f"{prefix}/#")
        for topic in sorted(topics):
            probe.send(Publish(topic=topic, payload=b"", retain=True))
        probe.ping()
        probe.disconnect()
        return len(topics)
    except Exception:  # noqa: BLE001 - best effort: a broker that is gone has nothing to clean
        probe.close()
        return 0


class BrokerGuard:
    """Knows whether the broker answers; restarts it through ``restart`` or raises BrokerDown."""

    def __init__(self, target: FuzzTarget, limits: Limits, restart: Callable[[], None] | None) -> None:
        self.target, self.limits, self.restart = target, limits, restart
        self.suspect = False
        self.restarts = 0

    def ensure_up(self, liveness: LivenessChecker) -> None:
        if not self.suspect:
            return
        if self.restart is None:
            problem, _ = liveness.check()
            if problem is None:
                self.suspect = False
                return
            raise BrokerDown(f"the broker at {self.target.url} no longer answers ({problem.observed})")
        for _ in range(3):  # it failed its last liveness check: restart it straight away
            self.restart()
            self.restarts += 1
            problem, _ = liveness.check()
            if problem is None:
                self.suspect = False
                return
        raise BrokerDown(f"the broker at {self.target.url} did not come back after a restart")


@dataclass
class CampaignOptions:
    versions: tuple[str, ...] = (Version.V311, Version.V50)
    seed: int | None = 0
    time_budget: float = 60.0
    modes: tuple[str, ...] = MODES
    limits: Limits = field(default_factory=Limits)
    ignore: IgnoreList = field(default_factory=IgnoreList)
    shrink_time: float = 30.0
    restart: Callable[[], None] | None = None
    max_examples: int | None = None  # per (version, mode) slice; None: until the time budget is spent
    batch_size: int = 144
    examples_per_round: int = 200
    stateful_examples_per_round: int = 20
    stateful_steps: int = 30
    clients: int = 3
    log: Callable[[str], None] | None = None
    record_inputs: bool = False  # keep the bytes of every generated batch (determinism self-test)
    max_findings: int | None = None  # stop the campaign after this many findings


@dataclass
class SliceStats:
    version: str
    mode: str
    examples: int = 0
    inputs: int = 0
    seconds: float = 0.0
    findings: int = 0
    rounds: int = 0

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


class Campaign:
    def __init__(self, target: FuzzTarget, options: CampaignOptions) -> None:
        self.target = target
        self.options = options
        self.findings: list[Finding] = []
        self.stats: list[SliceStats] = []
        self.known: set[tuple[str, str]] = set()
        self.known_culprits: set[tuple[str, str]] = set()
        self.recorded: list[list[str]] = []
        self.aborted: str | None = None
        self.stopped = False  # max_findings reached
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.guard = BrokerGuard(target, options.limits, options.restart)

    def log(self, text: str) -> None:
        if self.options.log:
            self.options.log(text)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> Campaign:
        opts = self.options
        slices = [(v, m) for v in opts.versions for m in opts.modes]
        end = self.started + opts.time_budget
        for version in opts.versions:  # fail fast (exit 2) before any fuzzing if the broker is not there
            context_for(self.target, version, opts.seed, opts.limits)
        swept: set[str] = set()
        for i, (version, mode) in enumerate(slices):
            if self.stopped:
                break
            ctx = context_for(self.target, version, opts.seed, opts.limits)
            if version not in swept:
                sweep_retained(self.target, version, ctx.prefix, opts.limits)
                swept.add(version)
            now = time.monotonic()
            deadline = now + max(0.0, end - now) / (len(slices) - i)
            stats = SliceStats(version, mode)
            self.stats.append(stats)
            began = time.monotonic()
            try:
                if mode == "packet":
                    PacketRunner(self, ctx, deadline, stats).run()
                else:
                    from .stateful import StatefulRunner

                    StatefulRunner(self, ctx, deadline, stats).run()
            except BrokerDown as exc:
                self.aborted = str(exc)
                self.log(f"stopped: {exc}")
                stats.seconds = time.monotonic() - began
                break
            stats.seconds = time.monotonic() - began
            self.log(f"{mode} {version}: {stats.examples} examples, {stats.inputs} inputs in {stats.seconds:.1f} s "
                     f"({stats.rate:.0f}/s), {stats.findings} findings")
        if self.aborted is None:
            for version in swept:
                sweep_retained(self.target, version, prefix_for(opts.seed, version), opts.limits)
        return self

    # -- findings -------------------------------------------------------------------------------------
    def is_known(self, version: str, rule: str) -> bool:
        return (version, rule) in self.known

    def add_finding(self, finding: Finding, culprits: set[str] | None = None) -> bool:
        """Record a finding (False if the same one is already there). ``culprits``: signatures of the inputs
        of a minimal liveness finding, so that later batches holding one are not shrunk all over again."""
        if not finding.rule.startswith("liveness"):
            self.known.add((finding.version, finding.rule))
        elif culprits and len(culprits) == 1:
            self.known_culprits.add((finding.version, next(iter(culprits))))
        for existing in self.findings:
            if existing.version == finding.version and existing.rule == finding.rule and \
                    existing.description == finding.description:
                return False
        self.findings.append(finding)
        if self.options.max_findings is not None and len(self.findings) >= self.options.max_findings:
            self.stopped = True
        self.log(f"FINDING {finding.version} {finding.rule}: {finding.description} -> {finding.observed}")
        return True

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def results_document(self, report_files: dict[int, str] | None = None) -> dict[str, Any]:
        from ..run.records import document

        cases: list[dict[str, Any]] = []
        counters: dict[str, int] = {}
        for index, finding in enumerate(self.findings):
            counters[finding.kind] = counters.get(finding.kind, 0) + 1
            n = counters[finding.kind]
            first = finding.statements[0] if finding.statements else None
            statement = catalogue.get(first, finding.version) if first else None
            cases.append({
                "id": f"fuzz::{finding.kind}::{n}", "name": f"fuzz {finding.kind} {n}: {finding.rule}",
                "module": f"fuzz/{finding.mode}", "section": statement.chapter if statement else "",
                "mqtt_version": finding.version, "statements": finding.statements, "level": "MUST",
                "verdict": "FAIL", "known_deviation": False, "deviation": None,
                "duration_s": round(finding.found_at, 3), "message": finding.message,
                "description": finding.description, "expectation": finding.expected, "timer": False,
                "transcript": finding.transcript, "pcap": None, "rule": finding.rule,
                "reproducer": (report_files or {}).get(index),
            })
        for stats in self.stats:
            cases.append({
                "id": f"fuzz::{stats.mode}::{stats.version}", "name": f"fuzz {stats.mode} campaign",
                "module": f"fuzz/{stats.mode}", "section": "", "mqtt_version": stats.version, "statements": [],
                "level": "MAY", "verdict": "INFORMATIONAL", "known_deviation": False, "deviation": None,
                "duration_s": round(stats.seconds, 3),
                "message": (f"{stats.examples} examples, {stats.inputs} inputs in {stats.seconds:.1f} s "
                            f"({stats.rate:.0f} inputs/s), {stats.rounds} rounds, {stats.findings} findings"),
                "description": "Statistics of the fuzz campaign: what ran, how fast, what it found.",
                "expectation": "", "timer": False, "transcript": [], "pcap": None,
            })
        opts = self.options
        options = {"mqtt_version": "all" if len(opts.versions) > 1 else opts.versions[0], "strict": False,
                   "workers": 0, "baseline": None, "fuzz": {
                       "seed": opts.seed, "time_budget": opts.time_budget, "modes": list(opts.modes),
                       "ignore": opts.ignore.to_json(), "aborted": self.aborted,
                       "restarts": self.guard.restarts}}
        target = {"name": f"fuzzed broker {self.target.url}", "urls": {v: self.target.url for v in opts.versions},
                  "embedded": False, "profile": None}
        caps = {v: self.target.caps.get(f"caps-{v}", {}) for v in opts.versions}
        return document(target, self.started_wall, self.elapsed(), options, cases, caps, strict=False)

    def write_reports(self, report_dir: Path) -> dict[str, Any]:
        """Reproducers under ``report_dir/fuzz/``, then results.json and every report."""
        from ..reports import render_all
        from ..run.records import write_results
        from .reproducer import write

        files: dict[int, str] = {}
        counters: dict[str, int] = {}
        for index, finding in enumerate(self.findings):
            counters[finding.kind] = counters.get(finding.kind, 0) + 1
            name = f"{finding.kind}-{counters[finding.kind]}"
            path = write(finding, report_dir / "fuzz", name, seed=self.options.seed, target=self.target.url,
                         ignore=self.options.ignore)
            files[index] = str(path.relative_to(report_dir))
        doc = self.results_document(files)
        try:
            render_all(doc, report_dir)
        except Exception as exc:  # noqa: BLE001 - a report bug must not lose results.json
            self.log(f"rendering reports failed: {exc!r}")
        write_results(report_dir / "results.json", doc)
        return doc


# -- packet fuzzing ----------------------------------------------------------------------------------------
@dataclass
class _Failing:
    inputs: list[Input]
    plans: list[Plan]
    result: BatchResult
    problem: Problem

    def size(self) -> tuple[int, int]:
        return len(self.inputs), sum(len(p.data) for p in self.plans)


def matches(rule: str, target_rule: str) -> bool:
    if target_rule.startswith("liveness"):
        return rule.startswith("liveness")
    return rule == target_rule


def hypothesis_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples, database=None, deadline=None, phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, report_multiple_bugs=False,
    )


class PacketRunner:
    def __init__(self, campaign: Campaign, ctx: FuzzContext, deadline: float, stats: SliceStats) -> None:
        self.c = campaign
        self.ctx = ctx
        self.version = ctx.version
        self.deadline = deadline
        self.stats = stats
        opts = campaign.options
        self.token = f"fz{_base36(derive_seed(opts.seed, 'token'), 4)}{ctx.version[0]}p"
        self.liveness = LivenessChecker(campaign.target, ctx, opts.limits, self.token)
        self.best: _Failing | None = None
        self.target_rule: str | None = None
        self.shrink_deadline = 0.0
        self.found_at = 0.0
        self.examples_in_round = 0

    def budget_left(self) -> bool:
        limit = self.c.options.max_examples
        return time.monotonic() < self.deadline and not self.c.stopped and \
            (limit is None or self.stats.examples < limit)

    def run(self) -> None:
        round_index = 0
        while self.budget_left():
            self.round(round_index)
            round_index += 1
            self.stats.rounds = round_index

    def round(self, round_index: int) -> None:
        opts = self.c.options
        self.best, self.target_rule, self.examples_in_round = None, None, 0
        self.round_index = round_index
        per_round = opts.examples_per_round
        if opts.max_examples is not None:
            per_round = max(1, min(per_round, opts.max_examples - self.stats.examples))

        def test(batch: list[Input]) -> None:
            self.example(batch)

        run = seed(derive_seed(opts.seed, self.version, "packet", round_index))(
            hypothesis_settings(per_round)(given(batch_st(self.ctx, opts.batch_size))(test)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HypothesisWarning)  # e.g. the repr of a 256 KiB payload
                run()
        except BrokerDown:
            if self.best is not None:
                self.report(shrunk=False)
            raise
        except Exception:  # noqa: BLE001, S110 - our FuzzFailure (or hypothesis' Flaky): recorded in self.best
            pass
        if self.best is not None:
            self.minimize()
            if self._try(self.best.inputs):  # confirmed once more: a fluke (a loaded machine) is not a finding
                self.report(shrunk=True)
            else:
                self.c.log(f"{self.version} packet: {self.target_rule} did not fail again; not reported")
                self.best = None

    def run_inputs(self, inputs: list[Input], tag: str) -> tuple[list[Plan], BatchResult]:
        self.c.guard.ensure_up(self.liveness)
        naming = Naming(f"{self.token}{self.round_index:x}{tag}n")
        plans = build_plans(inputs, self.ctx, naming)
        result = run_batch(plans, self.c.target, self.ctx, self.c.options.limits, self.liveness, self.c.options.ignore,
                           naming)
        if any(p.rule.startswith("liveness") for p in result.problems):
            self.c.guard.suspect = True
        return plans, result

    def example(self, inputs: list[Input]) -> None:
        generating = self.target_rule is None
        now = time.monotonic()
        if generating and not self.budget_left():
            return
        if not generating and now >= self.shrink_deadline:
            return
        self.examples_in_round += 1
        plans, result = self.run_inputs(inputs, f"e{self.examples_in_round:x}")
        if generating:
            self.stats.examples += 1
            self.stats.inputs += len(inputs)
            if self.c.options.record_inputs:
                self.c.recorded.append([p.data.hex() for p in plans])
        problem = self.pick(result.problems, inputs)
        if problem is None:
            return
        candidate = _Failing(inputs, plans, result, problem)
        if self.best is None or candidate.size() <= self.best.size():
            self.best = candidate
        if generating:
            self.target_rule = problem.rule
            self.found_at = self.c.elapsed()
            self.shrink_deadline = now + self.c.options.shrink_time
            self.c.log(f"{self.version} packet: {problem.rule} after {self.stats.examples} examples; shrinking")
        raise FuzzFailure(problem.rule)

    def pick(self, problems: list[Problem], inputs: list[Input]) -> Problem | None:
        if self.target_rule is not None:
            return next((p for p in problems if matches(p.rule, self.target_rule)), None)
        if problems and problems[0].rule.startswith("liveness"):
            known = any((self.version, inp.signature()) in self.c.known_culprits for inp in inputs)
            return None if known else problems[0]
        return next((p for p in problems if not self.c.is_known(self.version, p.rule)), None)

    def minimize(self) -> None:
        """Remove inputs one at a time (hypothesis keeps list prefixes; this finds the one input that fails)."""
        assert self.best is not None and self.target_rule is not None
        extra = time.monotonic() + max(5.0, self.c.options.shrink_time / 3)
        deadline = max(self.shrink_deadline, extra)
        inputs = list(self.best.inputs)
        for candidate in [[inp] for inp in inputs] if len(inputs) > 1 else []:
            if time.monotonic() > deadline:
                return
            if self._try(candidate):
                return
        i = 0
        while len(self.best.inputs) > 1 and i < len(self.best.inputs) and time.monotonic() < deadline:
            trial = self.best.inputs[:i] + self.best.inputs[i + 1:]
            if not self._try(trial):
                i += 1

    def _try(self, inputs: list[Input]) -> bool:
        self.examples_in_round += 1
        plans, result = self.run_inputs(inputs, f"m{self.examples_in_round:x}")
        problem = next((p for p in result.problems if matches(p.rule, self.target_rule or "")), None)
        if problem is None:
            return False
        self.best = _Failing(inputs, plans, result, problem)
        return True

    def report(self, shrunk: bool) -> None:
        best = self.best
        assert best is not None
        problem = best.problem
        kind = "liveness" if problem.rule.startswith("liveness") else "reaction"
        labels = [inp.describe() for inp in best.inputs]
        finding = Finding(
            kind=kind, mode="packet", version=self.version, rule=problem.rule,
            statements=statements_for(problem.rule, self.version), expected=problem.expected,
            observed=problem.observed, steps=[plan.to_step() for plan in best.plans],
            transcript=best.result.transcript(),
            description=("; ".join(labels[:4]) + (f" (+{len(labels) - 4} more)" if len(labels) > 4 else "")),
            found_at=self.found_at, examples_run=self.stats.examples, shrunk=shrunk,
            note=(f"at {problem.where}" if problem.where else "") + ("" if shrunk else
                                                                    "; the broker did not recover: not shrunk"),
        )
        if self.c.add_finding(finding, {inp.signature() for inp in best.inputs}):
            self.stats.findings += 1
        self.best = None


def run_campaign(target: FuzzTarget, options: CampaignOptions) -> Campaign:
    return Campaign(target, options).run()


__all__ = [
    "MODES", "Campaign", "CampaignOptions", "PacketRunner", "SliceStats", "context_for",
    "derive_seed", "prefix_for", "probe_caps", "run_campaign", "sweep_retained",
]

