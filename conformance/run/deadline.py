"""A hard deadline per case: whatever the broker does, no case runs longer than its bound.

Every Probe wait is bounded, but a case can loop over bounded waits, or wait on a timer the broker
announced (a Server Keep Alive of 65535 s). The watchdog is a SIGALRM timer (``setitimer``), armed
around each phase of a case (setup, call, teardown) in the process's main thread; when it fires, the
exception raised into whatever blocks (mostly a socket read) says what the case was waiting for:

- FAIL when a Probe was waiting for the broker: the broker never sent what the case awaited;
- ERROR when no Probe wait was on the stack: the harness itself was stuck.

The exception (``DeadlineExceeded``) is a BaseException, so that a case's ``except BrokerViolation`` or
``except Exception`` cannot turn it into a grade and keep waiting; the alarm also fires again every
second until the phase ends. The deadline's verdict is the case's (``override``). After teardown every
probe of the case is closed, so that the next case starts clean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest

from ..transcript import NOTE
from ..verdicts import Verdict
from .records import Grade

FACTOR = 4.0  # a case may take this many times the longest single wait it legitimately has
TEARDOWN_BUDGET = 10.0  # closing probes and tidying up after a case that used up its own budget
REFIRE = 1.0  # seconds between alarms once the deadline has passed
WAITS = ("expect", "collect_until", "expect_closed", "expect_nothing", "reaction", "barrier")  # Probe methods that set .awaiting


class DeadlineExceeded(BaseException):
    """The case's hard deadline passed (its verdict is ``Watchdog.fired``)."""


def case_budget(limits: dict[str, float], timer: bool, override: float | None = None) -> float:
    """Seconds a case may run: ``override`` (option) or the profile's ``case_deadline`` when set (> 0),
    else FACTOR x its longest single wait: a reply plus the late window of an event (8 s by default),
    for a timer case also the timer's late window (18 s)."""
    for explicit in (override, limits.get("case_deadline")):
        if explicit:
            return float(explicit)
    longest = limits["response_timeout"] + limits["event_late_window"]
    if timer:
        longest += limits["timer_late_window"]
    return FACTOR * longest


def _frames(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def awaited(frame: FrameType | None) -> tuple[Any, str] | None:
    """(probe, what it waits for) for the Probe wait on the stack at ``frame``, else None."""
    from ..probe import Probe

    probe_frames = [f for f in _frames(frame) if isinstance(f.f_locals.get("self"), Probe)]
    if not probe_frames:
        return None
    waiting = next((f for f in probe_frames if f.f_code.co_name in WAITS), None)
    if waiting is not None:
        probe = waiting.f_locals["self"]
        return probe, f"{probe.awaiting} (in {waiting.f_code.co_name})"
    outer = probe_frames[-1]  # the Probe method the case called (next, disconnect, ...)
    return outer.f_locals["self"], f"any packet or the close (in {outer.f_code.co_name})"


def _where(frame: FrameType | None) -> str:
    if frame is None:
        return "unknown code"
    return f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"


@dataclass
class Fired:
    verdict: Verdict
    message: str
    phase: str


class Watchdog:
    """One case's deadline across its phases."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.fired: Fired | None = None
        self._phase = ""
        self._previous: Any = None

    def remaining(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def arm(self, phase: str) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # signals reach only the main thread: no watchdog (waits stay bounded one by one)
        seconds = self.remaining() if phase != "teardown" else max(self.remaining(), TEARDOWN_BUDGET)
        self._phase = phase
        self._previous = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01), REFIRE)
        return True

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.fired is None:
            self.fired = self._describe(frame)
        raise DeadlineExceeded(self.fired.message)

    def _describe(self, frame: FrameType | None) -> Fired:
        head = f"case deadline of {self.budget:.3g} s reached during {self._phase}"
        found = awaited(frame)
        if found is None:
            return Fired(Verdict.ERROR, f"{head}, outside any wait for the broker, in {_where(frame)}", self._phase)
        probe, what = found
        probe.transcript.add(probe.name, NOTE, note=f"case deadline reached while waiting for {what}")
        return Fired(Verdict.FAIL, f"{head}: {probe.name} was still waiting for {what}", self._phase)


WATCHDOG = pytest.StashKey[Watchdog]()


class CaseDeadlines:
    """pytest hooks (registered by the plugin): arm the watchdog around each phase of a case.

    ``budget_of(item)`` gives the case's budget (None: not a case, no watchdog); ``probes_of(item)``
    the probes to close after teardown."""

    def __init__(self, budget_of: Callable[[pytest.Item], float | None],
                 probes_of: Callable[[pytest.Item], list[Any]]) -> None:
        self.budget_of = budget_of
        self.probes_of = probes_of

    @contextlib.contextmanager
    def _guard(self, item: pytest.Item, phase: str) -> Iterator[None]:
        dog = item.stash.get(WATCHDOG, None)
        if dog is None and phase == "setup":
            budget = self.budget_of(item)
            if budget is not None:
                dog = item.stash[WATCHDOG] = Watchdog(budget)
        armed = dog if dog is not None and dog.arm(phase) else None
        try:
            yield
        finally:
            if armed is not None:
                armed.disarm()
            if phase == "teardown":
                for probe in self.probes_of(item):
                    probe.close()  # idempotent; after a deadline, teardown may not have reached it

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):  # noqa: ANN201
        with self._guard(item, "setup"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):  # noqa: ANN201
        with self._guard(item, "call"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):  # noqa: ANN201
        with self._guard(item, "teardown"):
            return (yield)


def override(item: pytest.Item, judgement: Grade) -> Grade:
    """The case's verdict: the deadline's, once it fired (whatever the case made of the exception)."""
    dog = item.stash.get(WATCHDOG, None)
    if dog is None or dog.fired is None or dog.fired.phase == "teardown":
        return judgement
    return dataclasses.replace(judgement, verdict=dog.fired.verdict, message=dog.fired.message)

