"""The order of the cases for a parallel run: each worker's share balanced by expected duration.

xdist's worksteal scheduler cuts the list into one contiguous share per worker, equal in count, and
lets an idle worker take the tail of a busy worker's share. So the order decides the balance: the
slow cases (a wait for a broker timer, a known deviation that waits out a timeout) are dealt out
longest first to the share with the least expected work, every share is topped up to its count with
quick cases the same way, and each share runs longest first, leaving quick cases at its tail for
stealing. Durations come from an earlier run's results where there is one, else from estimates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

TIMER_ESTIMATE = 4.0  # s: a case that waits for a Keep Alive, an expiry or a Will Delay
DEVIATION_ESTIMATE = 3.0  # s: a known deviation often waits out a response timeout
QUICK_ESTIMATE = 0.05  # s: everything else


def balanced_order(items: Sequence[T], workers: int, duration: Callable[[T], float]) -> list[T]:
    """``items`` reordered into ``workers`` contiguous shares, as many items each as xdist's worksteal
    scheduler hands out (the later shares one longer where the count does not divide), whose
    expected durations are as even as a greedy longest-first deal makes them."""
    if workers <= 1 or len(items) <= workers:
        return sorted(items, key=duration, reverse=True)
    counts, left = [], len(items)
    for i in range(workers):  # the scheduler's split: what is left, shared by the workers not yet served
        counts.append(left // (workers - i))
        left -= counts[-1]
    lanes: list[list[T]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in sorted(items, key=duration, reverse=True):
        open_lanes = [i for i in range(workers) if len(lanes[i]) < counts[i]]
        lane = min(open_lanes, key=lambda i: (loads[i], i))
        lanes[lane].append(item)
        loads[lane] += duration(item)
    return [item for lane in lanes for item in lane]  # each lane is already longest first


def recorded_durations(path: Path | None, target_name: str) -> dict[str, float]:
    """Case durations (by node id) of an earlier run against the same target; empty when there is no
    such run or the file cannot be read (the order is only an optimisation)."""
    if path is None or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("target", {}).get("name") != target_name:
            return {}
        return {case["id"]: float(case["duration_s"]) for case in doc.get("cases", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
