"""What ``mqtt-conformance run`` prints: a progress line, then one summary in the suite's own verdicts.

The CLI registers ``Console``, which mutes pytest's terminal reporter (its options, -x or -v, keep
working): no xdist start-up lines, no raw target dict, no wire transcripts (they are in the reports) and
no pytest "N passed" that counts NON-STRICT and INFORMATIONAL as passed. What pytest would still have
to say (a case module that does not import, ``pytest.exit``, an internal error) is printed here, and
when pytest stops for a reason none of these hooks saw, the tail of its muted output.

For a plain ``pytest cases`` run, ``teststatus`` gives pytest's own counts the suite's verdicts, so the
final "... in 25s" line agrees with results.json.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import pytest
from _pytest._io import TerminalWriter

from .run.records import SUMMARY
from .run.schedule import QUICK_ESTIMATE, TIMER_ESTIMATE

ORDER = ("PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "UNSUPPORTED", "ERROR")
BAD = ("FAIL", "ERROR")
# pytest's category (the word of its final line), short letter and verbose word, per verdict.
STATUS = {
    "FAIL": ("failed", "F", "FAIL"), "ERROR": ("error", "E", "ERROR"),
    "NON-STRICT": ("non-strict", "N", "NON-STRICT"), "INFORMATIONAL": ("informational", "i", "INFORMATIONAL"),
    "UNSUPPORTED": ("unsupported", "u", "UNSUPPORTED"), "PASS": ("passed", ".", "PASS"),
    "KNOWN": ("known deviations", "x", "KNOWN DEVIATION"),
}
VERDICT_KEY = "mqttc_verdict"  # user property set by the plugin on the report that carries the verdict
MESSAGE_WIDTH = 110


def teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """pytest_report_teststatus: the suite's verdict for the report that decided it, else pytest's own."""
    for key, value in getattr(report, "user_properties", ()):
        if key == VERDICT_KEY and value in STATUS:
            return STATUS[value]
    return None


def short(text: str, width: int = MESSAGE_WIDTH) -> str:
    """The first line of ``text``, cut at a word boundary so that it fits ``width``."""
    line = " ".join(str(text or "").strip().splitlines()[0].split()) if str(text or "").strip() else ""
    if len(line) <= width:
        return line
    cut = line[: width - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > width // 2 else line[: width - 1]) + "…"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


def mute(config: pytest.Config) -> io.StringIO:
    """Send pytest's terminal reporter into a buffer: kept (xdist and -v/-x need it), not shown."""
    buffer = io.StringIO()
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter._tw = TerminalWriter(buffer)  # noqa: SLF001 - pytest has no public way to redirect it
    return buffer


class Progress:
    """done/total, the verdicts so far and an ETA. The ETA weighs each case by its expected duration
    (the previous run's, else an estimate), so the slow timer cases that run first do not inflate it."""

    def __init__(self, expected: dict[str, float] | None = None) -> None:
        self.expected = dict(expected or {})
        self.ids: list[str] = []
        self.done: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.known = 0
        self.start = time.monotonic()

    def weight(self, nodeid: str) -> float:
        return self.expected.get(nodeid, QUICK_ESTIMATE)

    def add(self, record: dict[str, Any]) -> None:
        self.done.add(str(record.get("id")))
        self.counts[str(record.get("verdict"))] += 1
        self.known += bool(record.get("known_deviation"))

    def eta(self) -> float | None:
        """None until it means something: without earlier durations, the slow cases that run first
        would make an estimate from the first few cases wildly pessimistic."""
        if not self.done or not self.ids:
            return None
        informed = sum(i in self.expected for i in self.ids) >= 0.8 * len(self.ids)
        if not informed and len(self.done) < 0.1 * len(self.ids):
            return None
        done_w = sum(self.weight(i) for i in self.done)
        left_w = sum(self.weight(i) for i in self.ids if i not in self.done)
        return (time.monotonic() - self.start) * left_w / done_w if done_w > 0 else None

    def line(self) -> str:
        total = len(self.ids) or len(self.done)
        n = len(self.done)
        percent = f"{100 * n / total:3.0f}%" if total else "  ?%"
        counts = " ".join(f"{v} {self.counts[v]}" for v in ORDER if self.counts[v])
        eta = self.eta()
        elapsed = fmt_seconds(time.monotonic() - self.start)
        tail = f"{elapsed}, ETA {fmt_seconds(eta)}" if eta is not None and n < total else elapsed
        return f"[{n:>{len(str(total))}}/{total} {percent}] {counts or 'starting'} · {tail}"


class Console:
    """pytest plugin object of the CLI's terminal output (controller only)."""

    def __init__(self, stream: TextIO | None = None, expected: dict[str, float] | None = None,
                 interval: float = 2.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.progress = Progress(expected)
        self.interval = interval if not self.tty else 0.1
        self._last = 0.0
        self._drawn = False
        self.stopped: str | None = None  # why pytest stopped early (pytest.exit, Ctrl-C)
        self.problems: list[str] = []
        self.muted = io.StringIO()

    # -- output ------------------------------------------------------------------------------------
    def write(self, text: str = "") -> None:
        if self._drawn:  # end the progress line before other output
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def error(self, text: str) -> None:
        """What went wrong goes to stderr, as the CLI's own errors do."""
        if self._drawn:
            self.write()
        print(text, file=sys.stderr, flush=True)

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r" + self.progress.line().ljust(79))
            self._drawn = True
        else:
            self.stream.write(self.progress.line() + "\n")
        self.stream.flush()

    # -- hooks ---------------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        self.muted = mute(config)

    def muted_tail(self, lines: int = 30) -> str:
        return "\n".join(self.muted.getvalue().rstrip().splitlines()[-lines:])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.ids = [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.progress.ids:  # every worker collects the same cases
            self.progress.ids = list(ids)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.problems.append(f"cannot collect {report.nodeid or 'the cases'}:\n{report.longreprtext}")
            self.error(f"mqtt-conformance: error collecting {report.nodeid}:\n{report.longreprtext}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for key, value in report.user_properties:
            if key == "mqttc_record":
                self.progress.add(json.loads(str(value)))
                self.draw(force=len(self.progress.done) == len(self.progress.ids))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        value = excinfo.value
        self.stopped = str(getattr(value, "msg", "") or "") if isinstance(value, pytest.exit.Exception) else ""
        if isinstance(value, pytest.exit.Exception) and self.stopped:
            self.error(f"mqtt-conformance: {self.stopped}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.error(f"mqtt-conformance: internal error (a harness bug):\n{excrepr}")

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        summary = config.stash.get(SUMMARY, None)
        if self._drawn:
            self.write()
        if summary is not None:
            doc, report_dir, _ = summary
            for line in summary_lines(doc, Path(report_dir), bool(config.getoption("no_reports"))):
                self.write(line)
        elif not self.problems and self.stopped is None and self.muted_tail():
            self.error(self.muted_tail())  # no case ran and no hook said why: pytest's own words


def summary_lines(doc: dict[str, Any], report_dir: Path, no_reports: bool = False) -> list[str]:
    """The end-of-run summary in the suite's own verdicts (as results.json counts them)."""
    cases = doc.get("cases") or []
    counts = Counter(str(c.get("verdict")) for c in cases)
    known = [c for c in cases if c.get("known_deviation")]
    target = (doc.get("target") or {}).get("name") or "?"
    head = (f"mqtt-conformance: {target} · {plural(len(cases), 'case')} in "
            f"{fmt_seconds(float(doc.get('duration_s') or 0))}")
    lines = ["", head, "  " + " · ".join(f"{v} {counts[v]}" for v in ORDER)
             + f"  ({len(known)} known deviation{'s' if len(known) != 1 else ''}, listed in the profile)"]
    if doc.get("interrupted"):
        lines.append(f"  INTERRUPTED after {plural(len(cases), 'case')}: the reports cover only those; exit code 2")
    lines += _baseline_lines(doc)
    lines += _bad_lines(doc)
    if not no_reports:
        lines.append(f"report:  {report_dir / 'report.html'}")
    lines.append(f"results: {report_dir / 'results.json'}")
    return lines


def _baseline_lines(doc: dict[str, Any]) -> list[str]:
    block = doc.get("baseline")
    if not isinstance(block, dict):
        return []
    new, lost = block.get("new_failures_ids") or [], block.get("now_unsupported_ids") or []
    fixed = block.get("fixed_ids") or []
    lines = [f"  baseline {block.get('file')}: {len(new)} new failure(s), {len(lost)} now unsupported, "
             f"{len(fixed)} fixed, {block.get('still_failing', '?')} still failing (accepted)"]
    by_id = {c.get("id"): c for c in doc.get("cases") or []}
    for case_id in lost:
        case = by_id.get(case_id, {})
        lines.append(f"  NOW UNSUPPORTED {case_id}  {short(case.get('message', ''), 80)}")
    lines += [f"  FIXED {case_id}" for case_id in fixed]
    return lines


def _bad_lines(doc: dict[str, Any]) -> list[str]:
    """One line per FAIL/ERROR that is not a known deviation (accepted or NEW with a baseline)."""
    block = doc.get("baseline") if isinstance(doc.get("baseline"), dict) else None
    new = set((block or {}).get("new_failures_ids") or ())
    strict = bool((doc.get("options") or {}).get("strict"))
    bad = set(BAD) | ({"NON-STRICT"} if strict else set())
    cases = [c for c in doc.get("cases") or []
             if (c.get("verdict") in bad and not c.get("known_deviation")) or c.get("id") in new]
    if not cases:
        return []
    lines = [f"{'Failures' if block is None else 'Failures (NEW = not in the baseline)'}:"]
    for case in sorted(cases, key=lambda c: (c.get("verdict") != "FAIL", str(c.get("id")))):
        mark = ("NEW " if case.get("id") in new else "accepted ") if block is not None else ""
        statements = ",".join(case.get("statements") or ()) or "-"
        lines.append(f"  {mark}{case.get('verdict'):<5} {case.get('id')}  {statements}  "
                     f"{short(case.get('message', ''))}")
    return lines


class SelectionCount:
    """A collection-only pass: how many cases a selection holds and how long they would take serially."""

    def __init__(self, history: dict[str, float]) -> None:
        self.history = history
        self.count = 0
        self.seconds = 0.0
        self.errors = 0

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        mute(config)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.errors += bool(report.failed)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.count = len(session.items)
        for item in session.items:
            spec = getattr(getattr(item, "function", None), "mqtt_case", None)
            guess = TIMER_ESTIMATE if spec is not None and spec.timer else QUICK_ESTIMATE
            self.seconds += self.history.get(item.nodeid, guess)


SERIAL_BUDGET = 4.0  # s: what starting the xdist workers costs (measured: docs/measurements.md)
SELECTING = ("-k", "-m", "--mqtt-statement", "--mqtt-section", "--lf", "--deselect")


def is_selection(pytest_args: list[str], cases_dir: str) -> bool:
    """Whether the arguments narrow the suite (else it is the whole suite: no collection pass needed)."""
    extra_paths = [a for a in pytest_args if not a.startswith("-") and a != cases_dir and "::" in a]
    return bool(extra_paths) or any(a.split("=")[0] in SELECTING for a in pytest_args)


def serial_is_faster(pytest_args: list[str], history: dict[str, float]) -> tuple[bool, SelectionCount]:
    """Collect the selection only (no case runs) and tell whether running it serially beats starting workers."""
    counter = SelectionCount(history)
    pytest.main([*pytest_args, "--collect-only"], plugins=[counter])
    return counter.errors == 0 and counter.seconds <= SERIAL_BUDGET, counter
