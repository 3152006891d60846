"""Packet fuzzing rounds: hypothesis generates batches of inputs, ``packet_fuzz`` runs and judges them, and a
failing batch is shrunk to the one input (or the few) that fail."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hypothesis import given, seed

from .common import FuzzFailure, Problem
from .packet_fuzz import BatchResult, Naming, Plan, build_plans, run_batch
from .rounds import Runner, hypothesis_settings, same_failure
from .strategies import Input, batch_st


@dataclass
class _Failing:
    inputs: list[Input]
    plans: list[Plan]
    result: BatchResult
    problem: Problem

    def size(self) -> tuple[int, int]:
        return len(self.inputs), sum(len(p.data) for p in self.plans)


class PacketRunner(Runner):
    mode = "packet"
    finding_kind = "reaction"
    best: _Failing | None

    def round_size(self) -> int:
        return self.host.options.examples_per_round

    def explore(self, round_seed: int, examples: int) -> None:
        def test(batch: list[Input]) -> None:
            self.example(batch)

        given_batches = given(batch_st(self.ctx, self.host.options.batch_size))
        seed(round_seed)(hypothesis_settings(examples)(given_batches(test)))()

    def run_inputs(self, inputs: list[Input], tag: str) -> tuple[list[Plan], BatchResult]:
        self.host.guard.ensure_up(self.liveness)
        naming = Naming(f"{self.token}{self.round_index:x}{tag}n")
        plans = build_plans(inputs, self.ctx, naming)
        result = run_batch(plans, self.host.target, self.ctx, self.host.options.limits, self.liveness,
                           self.host.options.ignore)
        if any(p.rule.startswith("liveness") for p in result.problems):
            self.host.guard.suspect = True
        return plans, result

    def example(self, inputs: list[Input]) -> None:
        began = time.monotonic()
        if not self.may_run_example():
            return
        generating = self.target_rule is None
        self.examples_in_round += 1
        plans, result = self.run_inputs(inputs, f"e{self.examples_in_round:x}")
        if generating:
            self.stats.examples += 1
            self.stats.inputs += len(inputs)
            if self.host.options.record_inputs:
                self.host.recorded.append([p.data.hex() for p in plans])
        problem = self.pick(result.problems, inputs)
        if problem is None:
            return
        candidate = _Failing(inputs, plans, result, problem)
        if self.best is None or candidate.size() <= self.best.size():
            self.best = candidate
        if generating:
            self.start_shrinking(problem.rule, began)
        raise FuzzFailure(problem.rule)

    def pick(self, problems: list[Problem], inputs: list[Input]) -> Problem | None:
        if self.target_rule is not None:
            return next((p for p in problems if same_failure(p.rule, self.target_rule)), None)
        if problems and problems[0].rule.startswith("liveness"):
            known = any((self.version, inp.signature()) in self.host.known_culprits for inp in inputs)
            return None if known else problems[0]
        return next((p for p in problems if not self.host.is_known(self.version, p.rule)), None)

    def minimize(self) -> None:
        """Remove inputs one at a time (hypothesis keeps list prefixes; this finds the one input that fails)."""
        assert self.best is not None and self.target_rule is not None
        extra = time.monotonic() + max(5.0, self.host.options.shrink_time / 3)
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

    def retry(self) -> bool:
        assert self.best is not None
        return self._try(self.best.inputs)

    def _try(self, inputs: list[Input]) -> bool:
        self.examples_in_round += 1
        plans, result = self.run_inputs(inputs, f"m{self.examples_in_round:x}")
        problem = next((p for p in result.problems if same_failure(p.rule, self.target_rule or "")), None)
        if problem is None:
            return False
        self.best = _Failing(inputs, plans, result, problem)
        return True

    def report(self, shrunk: bool) -> None:
        best = self.best
        assert best is not None
        problem = best.problem
        labels = [inp.describe() for inp in best.inputs]
        self.record(
            problem, shrunk=shrunk, steps=[plan.to_step() for plan in best.plans],
            transcript=best.result.transcript(),
            description="; ".join(labels[:4]) + (f" (+{len(labels) - 4} more)" if len(labels) > 4 else ""),
            note=(f"at {problem.where}" if problem.where else "") + ("" if shrunk else
                                                                    "; the broker did not recover: not shrunk"),
            culprits={inp.signature() for inp in best.inputs},
        )


__all__ = ["PacketRunner"]
