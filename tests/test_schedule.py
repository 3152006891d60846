"""The parallel order of the cases: shares equal in count, balanced in expected duration."""

from __future__ import annotations

import json

from conformance.run.schedule import balanced_order, recorded_durations


def shares(order: list, workers: int) -> list[list]:
    """Cut as xdist's worksteal scheduler does: what is left, shared by the workers not yet served."""
    lanes, start = [], 0
    for i in range(workers):
        size = (len(order) - start) // (workers - i)
        lanes.append(order[start:start + size])
        start += size
    return lanes


def test_slow_cases_are_dealt_longest_first_to_the_least_loaded_share():
    durations = {f"slow{i}": float(d) for i, d in enumerate([8, 7, 6, 6, 4, 3, 3, 2])}
    durations.update({f"quick{i}": 0.05 for i in range(40)})
    order = balanced_order(sorted(durations), 4, durations.__getitem__)
    assert sorted(order) == sorted(durations)
    lanes = shares(order, 4)
    assert [len(lane) for lane in lanes] == [12, 12, 12, 12]
    loads = [sum(durations[name] for name in lane) for lane in lanes]
    assert max(loads) - min(loads) <= 2.0  # a round-robin deal of the slow ones would differ by 5 s
    for lane in lanes:  # longest first within each share: quick cases at the tail, for stealing
        assert [durations[n] for n in lane] == sorted((durations[n] for n in lane), reverse=True)


def test_short_lists_and_a_single_worker():
    assert balanced_order(["a", "b"], 4, {"a": 1.0, "b": 2.0}.__getitem__) == ["b", "a"]
    assert balanced_order([], 8, float) == []
    order = balanced_order(list("abcdefg"), 3, lambda x: 1.0)
    assert [len(lane) for lane in shares(order, 3)] == [2, 2, 3]


def test_recorded_durations_only_from_a_run_against_the_same_target(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"target": {"name": "mosquitto 2.0.11"},
                                "cases": [{"id": "cases/x.py::test_a[5.0]", "duration_s": 1.5}]}))
    assert recorded_durations(path, "mosquitto 2.0.11") == {"cases/x.py::test_a[5.0]": 1.5}
    assert recorded_durations(path, "rumqttd") == {}
    assert recorded_durations(tmp_path / "missing.json", "mosquitto 2.0.11") == {}
    path.write_text("{not json")
    assert recorded_durations(path, "mosquitto 2.0.11") == {}
