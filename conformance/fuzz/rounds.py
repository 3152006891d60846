"""What packet and stateful fuzzing share: the options of a campaign, a slice's statistics, the guard that
knows whether the broker still answers, and ``Runner``, the rounds of hypothesis within a slice's budget.

A slice (one MQTT version, one mode) runs in *rounds*: one hypothesis run of a fixed number of examples,
seeded from ``(seed, version, mode, round)``, so that the same seed gives the same inputs whatever the
machine's speed (a faster machine only runs more rounds). The database is off; nothing depends on earlier
runs. When an oracle fails, hypothesis shrinks the example (at most ``shrink_time`` seconds; the time budget
governs generation only), the runner's own pass removes parts one by one, and the smallest failing example
is run once more before it becomes a ``Finding``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.errors import HypothesisWarning

from ..codec.version import Version
from .common import BrokerDown, Finding, FuzzTarget, IgnoreList, Limits, Problem, statements_for
from .context import derive_seed, token_for
from .packet_fuzz import LivenessChecker
from .strategies import FuzzContext

MODES = ("packet", "stateful")


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


class Host(Protocol):
    """What a runner needs of its campaign (``campaign.Campaign``)."""

    target: FuzzTarget
    options: CampaignOptions
    guard: BrokerGuard
    stopped: bool
    recorded: list[list[str]]
    known_culprits: set[tuple[str, str]]

    def log(self, text: str) -> None: ...

    def elapsed(self) -> float: ...

    def is_known(self, version: str, rule: str) -> bool: ...

    def add_finding(self, finding: Finding, culprits: set[str] | None = None) -> bool: ...


def same_failure(rule: str, target_rule: str) -> bool:
    """Whether ``rule`` is the failure being shrunk (any liveness failure stands for another)."""
    if target_rule.startswith("liveness"):
        return rule.startswith("liveness")
    return rule == target_rule


def hypothesis_settings(max_examples: int, **extra: Any) -> settings:
    return settings(
        max_examples=max_examples, database=None, deadline=None, phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, report_multiple_bugs=False, **extra,
    )


class Runner:
    """Rounds of one slice within its time budget; a subclass explores (one hypothesis run), minimises,
    runs its smallest failure again (``retry``) and reports it."""

    mode = ""  # packet | stateful
    finding_kind = ""  # what a failure that is not a liveness failure is called
    best: Any  # the smallest failure of this round (None while there is none)

    def __init__(self, host: Host, ctx: FuzzContext, deadline: float, stats: SliceStats) -> None:
        self.host = host
        self.ctx = ctx
        self.version = ctx.version
        self.deadline = deadline
        self.stats = stats
        self.token = token_for(host.options.seed, ctx.version, self.mode)
        self.liveness = LivenessChecker(host.target, ctx, host.options.limits, self.token)
        self.best = None
        self.target_rule: str | None = None  # the rule being shrunk; None while generating
        self.shrink_deadline = 0.0
        self.found_at = 0.0
        self.examples_in_round = 0
        self.round_index = 0

    def budget_left(self) -> bool:
        limit = self.host.options.max_examples
        return time.monotonic() < self.deadline and not self.host.stopped and \
            (limit is None or self.stats.examples < limit)

    def may_run_example(self) -> bool:
        """While generating, the slice's budget decides; while shrinking, the shrink deadline."""
        if self.target_rule is None:
            return self.budget_left()
        return time.monotonic() < self.shrink_deadline

    def run(self) -> None:
        while self.budget_left():
            self.play_round()
            self.round_index += 1
            self.stats.rounds = self.round_index

    def play_round(self) -> None:
        opts = self.host.options
        self.best, self.target_rule, self.examples_in_round = None, None, 0
        round_seed = derive_seed(opts.seed, self.version, self.mode, self.round_index)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HypothesisWarning)  # e.g. the repr of a 256 KiB payload
                self.explore(round_seed, self.examples_this_round())
        except BrokerDown:
            if self.best is not None:
                self.report(shrunk=False)
            raise
        except Exception:  # noqa: BLE001, S110 - our FuzzFailure (or hypothesis' Flaky): recorded in self.best
            pass
        if self.best is not None:
            self.minimize()
            if self.retry():  # it fails again: a fluke (a loaded machine) is not a finding
                self.report(shrunk=True)
            else:
                self.host.log(f"{self.version} {self.mode}: {self.target_rule} did not fail again; not reported")
                self.best = None

    def examples_this_round(self) -> int:
        opts = self.host.options
        per_round = self.round_size()
        if opts.max_examples is not None:
            per_round = max(1, min(per_round, opts.max_examples - self.stats.examples))
        return per_round

    def start_shrinking(self, rule: str, began: float) -> None:
        """The first failure of a round (its example began at ``began``): from now on only it counts."""
        self.target_rule = rule
        self.found_at = self.host.elapsed()
        self.shrink_deadline = began + self.host.options.shrink_time
        self.host.log(f"{self.version} {self.mode}: {rule} after {self.stats.examples} examples; shrinking")

    def record(self, problem: Problem, *, shrunk: bool, steps: list[dict[str, Any]],
               transcript: list[dict[str, Any]], description: str, note: str,
               culprits: set[str] | None = None) -> None:
        """Hand the round's failure to the campaign as a finding."""
        kind = "liveness" if problem.rule.startswith("liveness") else self.finding_kind
        finding = Finding(
            kind=kind, mode=self.mode, version=self.version, rule=problem.rule,
            statements=statements_for(problem.rule, self.version), expected=problem.expected,
            observed=problem.observed, steps=steps, transcript=transcript, description=description,
            found_at=self.found_at, examples_run=self.stats.examples, shrunk=shrunk, note=note,
        )
        if self.host.add_finding(finding, culprits):
            self.stats.findings += 1
        self.best = None

    # -- what each mode does its own way ------------------------------------------------------------------
    def round_size(self) -> int:
        """Examples in one round (``max_examples`` may cut the last one short)."""
        raise NotImplementedError

    def explore(self, round_seed: int, examples: int) -> None:
        """One hypothesis run of ``examples`` examples; a failure is left in ``best``."""
        raise NotImplementedError

    def minimize(self) -> None:
        raise NotImplementedError

    def retry(self) -> bool:
        """Run ``best`` once more; True (``best`` updated) when the same rule fails again."""
        raise NotImplementedError

    def report(self, shrunk: bool) -> None:
        raise NotImplementedError


__all__ = ["MODES", "BrokerGuard", "CampaignOptions", "Host", "Runner", "SliceStats", "hypothesis_settings",
           "same_failure"]
