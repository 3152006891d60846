"""Managed brokers that recover: crash detection, restart on the same ports, and crash attribution.

The process that started the broker runs a ``Supervisor`` thread: it polls the broker process, records
each exit (wall time, exit status, last log lines) in a small JSON state file and starts the broker
again on the same ports. The file's path travels to xdist workers in the environment (``ENV``), so
that a worker can wait for a restart instead of declaring the broker gone. At the end of the run the
controller charges each crash to the case that caused it (``reconcile``): the cases in flight when
the broker died are re-run alone, one by one, against the restarted broker; the one that crashes it
again is FAIL with the crash as evidence, the others get their re-run verdict.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..brokers.base import EmbeddedBroker

ENV = "MQTT_CONFORMANCE_SUPERVISOR"  # path of the state file of the broker this run manages
POLL = 0.02  # seconds between two looks at the broker process
MAX_RESTARTS = 20  # a broker that crashes more often than this is left dead (the rest turns ERROR)
LOG_LINES = 30
LOOKBACK = 1.0  # failures this long before the exit was seen are suspects too (rumqttd exits 0.5 s late)
GRACE = 0.05  # a case that ended this long before the crash was seen (POLL, scheduling) may have caused it
RESTART_WAIT = 40.0  # how long a worker waits for a restart before it gives the broker up
RERUN_BUDGET = 240.0  # total seconds the re-runs of one run may take
REJUDGED = "; re-judged at the end of the run: "  # joins a worker's crash note to the case's own message


class Supervisor:
    """Watches one managed broker and restarts it after each crash (bounded attempts)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker
        self.path = Path(tempfile.mkstemp(prefix="mqttc-supervisor-", suffix=".json")[1])
        self.state: dict[str, Any] = {"up": True, "gave_up": False, "ports": sorted(set(broker.ports.values())),
                                      "crashes": []}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="mqttc-supervisor", daemon=True)
        self._log_start = 0  # where the current instance's log lines begin

    def start(self) -> Supervisor:
        self._write()
        os.environ[ENV] = str(self.path)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the broker is stopped, so that the stop is not taken for a crash)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if os.environ.get(ENV) == str(self.path):
            del os.environ[ENV]
        self.path.unlink(missing_ok=True)

    def _watch(self) -> None:
        while not self._stop.wait(POLL):
            process = self.broker.process
            if process is None or process.poll() is None:
                continue
            if self._stop.is_set():
                return
            self._on_crash(process.returncode)
            if self.state["gave_up"]:
                return

    def _on_crash(self, exit_code: int | None) -> None:
        crash = {"detected": time.time(), "exit_code": exit_code, "log_tail": self._log_tail(), "restarted": None}
        with self._lock:
            self.state["up"] = False
            self.state["crashes"].append(crash)
            self._write()
        if len(self.state["crashes"]) > MAX_RESTARTS:
            self._give_up(f"crashed more than {MAX_RESTARTS} times")
            return
        try:
            self._log_start = self.broker.log_path.stat().st_size
            self.broker.relaunch()
        except Exception as exc:  # noqa: BLE001 - a broker that cannot come back leaves the rest ERROR
            self._give_up(f"could not be restarted: {exc}")
            return
        with self._lock:
            crash["restarted"] = time.time()
            self.state["up"] = True
            self._write()

    def _give_up(self, why: str) -> None:
        with self._lock:
            self.state.update(up=False, gave_up=True, why=why)
            self._write()

    def _log_tail(self) -> list[str]:
        try:
            with open(self.broker.log_path, "rb") as log:
                log.seek(self._log_start)
                text = log.read().decode(errors="replace")
            return text.strip().splitlines()[-LOG_LINES:]
        except OSError:
            return []

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)


# -- worker side --------------------------------------------------------------------------------------
def read_state(ports: list[int] | None = None) -> dict[str, Any] | None:
    """The supervisor's state, if this process's run manages its broker (and, given ``ports``, the
    state is about a broker on those ports: a stale variable from another run is ignored)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if ports is not None and not set(ports) & set(state.get("ports", [])):
        return None
    return state


def wait_until_up(ports: list[int], timeout: float = RESTART_WAIT) -> dict[str, Any] | None:
    """Block (bounded) while the managed broker is being restarted; the last state read, or None."""
    deadline = time.monotonic() + timeout
    state = read_state(ports)
    while state is not None and not state["up"] and not state["gave_up"] and time.monotonic() < deadline:
        time.sleep(POLL)  # polling a restart in progress, not a proof of absence
        state = read_state(ports)
    return state


def crash_since(ports: list[int], since: float, timeout: float) -> dict[str, Any] | None:
    """The first crash detected after wall time ``since``, waiting up to ``timeout`` for the supervisor
    to notice one (it polls every POLL seconds); None if there is none."""
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(ports)
        if state is None:
            return None
        found = next((c for c in state["crashes"] if c["detected"] >= since), None)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(POLL)  # bounded wait for the supervisor's next look


SIGNS = ("panic", "fatal", "error", "abort", "segmentation", "crash", "exception", "traceback")


def describe(crash: dict[str, Any]) -> str:
    """One line: the exit status and the log lines that say why (else the last ones)."""
    lines = crash.get("log_tail", [])
    telling = [line.strip() for line in lines if any(sign in line.lower() for sign in SIGNS)]
    tail = " | ".join(telling[:3] or lines[-3:]) or "(empty log)"
    return f"the broker process died (exit status {crash.get('exit_code')}); last log lines: {tail}"


# -- controller side: attribution -----------------------------------------------------------------------
def suspects_of(crash: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, list[dict]]:
    """The cases a crash may concern, by how: ``inflight`` (running when the exit was seen), ``earlier``
    (failed within LOOKBACK before it: a broker may stop serving a while before its process exits),
    ``victims`` (failed while it was being restarted)."""
    detected = crash["detected"]
    restarted = crash["restarted"] or float("inf")
    found: dict[str, list[dict]] = {"inflight": [], "earlier": [], "victims": []}
    for rec in records:
        start, end = rec["started"], rec["started"] + rec["duration_s"]
        failed = rec["verdict"] != "PASS"
        if start <= detected and end >= detected - GRACE:
            found["inflight"].append(rec)
        elif failed and detected - LOOKBACK <= end < detected - GRACE:
            found["earlier"].append(rec)
        elif failed and detected < start <= restarted:
            found["victims"].append(rec)
    found["earlier"].sort(key=lambda rec: rec["started"])  # the first sign of trouble first
    return found


Rerun = Callable[[str], "dict[str, Any] | None"]  # node id -> the record of its run alone


def reconcile(records: list[dict[str, Any]], crashes: list[dict[str, Any]], rerun: Rerun,
              healthy: Callable[[], bool], ports: list[int]) -> list[dict[str, Any]]:
    """Charge each crash to the case that caused it; give the cases it disturbed a fair verdict."""
    by_id = {rec["id"]: rec for rec in records}
    deadline = time.monotonic() + RERUN_BUDGET
    for crash in crashes:
        found = suspects_of(crash, [r for r in by_id.values() if not r.get("crash")])
        candidates = found["inflight"] + found["earlier"]
        ids = [rec["id"] for rec in candidates]
        if len(candidates) == 1 and candidates[0]["verdict"] != "PASS":
            by_id[ids[0]] = _charge(candidates[0], crash, ids, rerun=False)
            candidates = found["inflight"] = found["earlier"] = []
        # Re-run every failure the crash may have caused (a dying broker can close connections before
        # it exits); a case in flight that passed only until the killer is found: its pass stands.
        must = found["earlier"] + [r for r in found["inflight"] if r["verdict"] != "PASS"] + found["victims"]
        maybe = [r for r in found["inflight"] if r["verdict"] == "PASS"]
        killer = False
        for rec in must + maybe:
            optional = rec in maybe
            if optional and (killer or time.monotonic() > deadline):
                continue
            if time.monotonic() > deadline:
                by_id[rec["id"]] = _unresolved(rec, crash, ids)
                continue
            by_id[rec["id"]] = _rerun_one(rec, crash, ids, rerun, healthy, ports)
            killer = killer or bool(by_id[rec["id"]].get("crash"))
    return [by_id[rec["id"]] for rec in records]


def _rerun_one(rec: dict[str, Any], crash: dict[str, Any], ids: list[str], rerun: Rerun,
               healthy: Callable[[], bool], ports: list[int]) -> dict[str, Any]:
    wait_until_up(ports)
    began = time.time()
    again = rerun(rec["id"])
    # A CONNECT answered with CONNACK after the re-run is the barrier: a broker still up answers it;
    # one that the case is killing does not, and the supervisor then records the exit.
    second = crash_since(ports, began, 0.0)
    if second is None and not healthy():
        second = crash_since(ports, began, RESTART_WAIT)
    if second is not None:
        return _charge(_as_first(again, rec), second, ids, rerun=True)
    if again is None:
        return _unresolved(rec, crash, ids)
    again = _as_first(again, rec)
    again["message"] = f"{again['message']} (re-run alone after a broker crash during the run; " \
                       f"its first run: {rec['verdict']})".strip()
    return again


def _as_first(again: dict[str, Any] | None, first: dict[str, Any]) -> dict[str, Any]:
    """The re-run's record in the first run's place on the run's timeline."""
    if again is None:
        return first
    return {**again, "started": first["started"], "worker": first["worker"]}


def _charge(rec: dict[str, Any], crash: dict[str, Any], ids: list[str], rerun: bool) -> dict[str, Any]:
    rec = dict(rec)
    rec["verdict"] = "FAIL"
    saw = rec["message"].split(REJUDGED, 1)[-1] or "nothing amiss"
    rec["message"] = f"BROKER CRASH: {describe(crash)}; the case saw: {saw}"
    rec["crash"] = {"exit_code": crash["exit_code"], "log_tail": crash["log_tail"], "suspects": ids, "rerun": rerun}
    return rec


def _unresolved(rec: dict[str, Any], crash: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    rec = dict(rec)
    rec["verdict"] = "ERROR"
    rec["message"] = (f"in flight when {describe(crash)}; not re-run (re-run budget of {RERUN_BUDGET:.0f} s "
                      "spent, or the re-run produced no result)")
    return rec

