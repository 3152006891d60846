"""Real-broker differential: the whole suite against every other real broker installed here (rumqttd,
amqtt, aedes, ejabberd, RabbitMQ; mosquitto has tests/test_suite_mosquitto.py), each with its checked-in
profile. Every run must complete without ERROR, and every FAIL must be a known, evidenced deviation of
that broker's profile, or not come again when tools/differential.py re-runs it in isolation (the
nondeterministic faults: rumqttd's and RabbitMQ's connection drops, amqtt's retained leak). The table and
the comparison matrix land in reports/differential/ (.ci/run prints the table)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_broker

from conformance.brokers import REGISTRY, Mosquitto

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from differential import BROKERS  # noqa: E402 - tools/ is no package

OTHERS = [name for name in BROKERS if name != Mosquitto.name]


def test_every_real_broker_fails_only_on_its_known_deviations():
    for name in OTHERS:
        require_broker(REGISTRY[name])
    out = ROOT / "reports" / "differential"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "differential.py"), "--out", str(out),
                           "--brokers", *OTHERS, "-n", "8"], capture_output=True, text=True, timeout=2400, cwd=ROOT)
    summaries = json.loads((out / "summary.json").read_text())
    assert [s["broker"] for s in summaries] == OTHERS, proc.stdout[-3000:]
    for summary in summaries:
        assert summary["results"], f"{summary['broker']}: the run did not complete: {summary.get('error')}"
        assert summary["counts"].get("ERROR", 0) == 0, f"{summary['broker']}: ERROR verdicts\n{proc.stdout[-3000:]}"
        assert summary["known_deviations"] > 0, f"{summary['broker']}: no known deviation showed"
        for case in json.loads((out / summary["broker"] / "results.json").read_text())["cases"]:
            if case["known_deviation"]:
                assert (ROOT / case["deviation"]["evidence"]).is_file(), case["id"]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (out / "matrix.html").is_file() and (out / "matrix.md").is_file()
