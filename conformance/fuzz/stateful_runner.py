"""Stateful fuzzing rounds: hypothesis drives ``BrokerMachine``, each example with a fresh ``ModelDriver``;
a failing run of actions is shrunk by hypothesis, then by dropping actions one at a time."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from hypothesis import seed
from hypothesis.stateful import run_state_machine_as_test

from .common import BrokerDown, Problem
from .rounds import Runner, hypothesis_settings, same_failure
from .stateful import BrokerMachine, ModelDriver, StepFailed, as_liveness

Failure = tuple[list[dict[str, Any]], Problem, list[dict[str, Any]]]  # actions, problem, transcript


class StatefulRunner(Runner):
    """Rounds of the state machine within the slice's time budget; shrinks and reports findings."""

    mode = "stateful"
    finding_kind = "model"
    best: Failure | None

    def round_size(self) -> int:
        return self.host.options.stateful_examples_per_round

    def explore(self, round_seed: int, examples: int) -> None:
        class Machine(BrokerMachine):
            pass

        Machine.factory = staticmethod(self.make_driver)
        Machine.on_failure = staticmethod(self.on_failure)
        config = hypothesis_settings(examples, stateful_step_count=self.host.options.stateful_steps)
        run_state_machine_as_test(seed(round_seed)(Machine), settings=config)

    def driver(self, tag: str) -> ModelDriver:
        opts = self.host.options
        return ModelDriver(self.host.target, self.version, f"{self.ctx.prefix}/m{tag}", f"{self.token}{tag}",
                           opts.limits, opts.ignore, opts.clients)

    def make_driver(self) -> ModelDriver | None:
        if not self.may_run_example():
            return None
        generating = self.target_rule is None
        self.host.guard.ensure_up(self.liveness)
        self.examples_in_round += 1
        if generating:
            self.stats.examples += 1
        driver = self.driver(f"{self.round_index:x}e{self.examples_in_round:x}")
        driver.counter = self.stats if generating else None
        return driver

    def classify(self, problem: Problem) -> Problem:
        """A lost connection or message may be a dead broker: then it is a liveness problem."""
        live = as_liveness(problem, self.liveness)
        if live is None:
            return problem
        self.host.guard.suspect = True
        return live

    def on_failure(self, driver: ModelDriver, problem: Problem) -> bool:
        """Record a failing example; False when it is not the failure being shrunk (or a known one)."""
        problem = self.classify(problem)
        if self.target_rule is not None and not same_failure(problem.rule, self.target_rule):
            return False
        if self.target_rule is None and not problem.rule.startswith("liveness") and \
                self.host.is_known(self.version, problem.rule):
            return False
        candidate = (list(driver.actions), problem, driver.transcript.to_json())
        if self.best is None or len(candidate[0]) <= len(self.best[0]):
            self.best = candidate
        if self.target_rule is None:
            self.start_shrinking(problem.rule, time.monotonic())
        return True

    def minimize(self) -> None:
        """Drop actions one at a time (replayed with fresh clients) while the same rule still fails."""
        assert self.best is not None and self.target_rule is not None
        deadline = max(self.shrink_deadline, time.monotonic() + max(10.0, self.host.options.shrink_time / 2))
        i = len(self.best[0]) - 2  # the last action is where it fails: keep it
        with contextlib.suppress(BrokerDown):  # what is shrunk so far is still run again, then reported
            while i >= 0 and time.monotonic() < deadline:
                actions = self.best[0]
                result = self._replay(actions[:i] + actions[i + 1:])
                if result is not None:
                    self.best = result
                i -= 1

    def retry(self) -> bool:
        assert self.best is not None
        confirmed = self._replay(self.best[0])
        if confirmed is None:
            return False
        self.best = confirmed
        return True

    def _replay(self, actions: list[dict[str, Any]]) -> Failure | None:
        self.host.guard.ensure_up(self.liveness)
        self.examples_in_round += 1
        driver = self.driver(f"{self.round_index:x}m{self.examples_in_round:x}")
        try:
            for action in actions:
                driver.do(action)
        except StepFailed as exc:
            problem = self.classify(exc.problem)
            if same_failure(problem.rule, self.target_rule or ""):
                return list(driver.actions), problem, driver.transcript.to_json()
            return None
        finally:
            driver.close()
        return None

    def report(self, shrunk: bool) -> None:
        assert self.best is not None
        actions, problem, transcript = self.best
        self.record(
            problem, shrunk=shrunk, steps=actions, transcript=transcript,
            description=f"{len(actions)} steps; fails at {problem.where or 'the last step'}",
            note="" if shrunk else "the broker did not recover: not shrunk",
        )


__all__ = ["StatefulRunner"]
