"""Benchmark: the whole suite, both versions, against a local mosquitto.

Prints wall time, cases per second, the slowest cases and the share of case time spent in cases that
wait for a broker timer (Keep Alive, expiry, Will Delay). Compares worker counts when asked:

    python bench/suite_speed.py                 # default worker count of `mqtt-conformance run`
    python bench/suite_speed.py -n 0 -n 2 -n 4  # several settings, one after the other
    python bench/suite_speed.py --runs 5        # runs per setting (the report is of the last)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.brokers.mosquitto import Mosquitto  # noqa: E402
from conformance.codec.version import Version  # noqa: E402


def run_once(url: str, workers: str | None, out: Path) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--broker", url, "--profile",
           str(ROOT / "fixtures/targets/mosquitto.toml"), "--report-dir", str(out)]
    if workers is not None:
        cmd += ["-n", workers]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads((out / "results.json").read_text())


def report(label: str, wall: float, doc: dict) -> None:
    cases = doc["cases"]
    total = sum(c["duration_s"] for c in cases)
    timer = sum(c["duration_s"] for c in cases if c.get("timer"))
    print(f"\n== workers {label}: {len(cases)} cases in {wall:.1f} s wall "
          f"({len(cases) / wall:.1f} cases/s, {wall / len(cases) * 1000:.0f} ms per case)")
    print(f"   case time {total:.1f} s, of which timer cases {timer:.1f} s ({timer / total:.0%})")
    print(f"   verdicts: {', '.join(f'{n} {v}' for v, n in doc['summary'].items() if n)}")
    busy: dict[str, float] = {}
    for c in cases:
        busy[c.get("worker", "main")] = busy.get(c.get("worker", "main"), 0.0) + c["duration_s"]
    print("   busy time per worker: " + ", ".join(f"{w} {t:.1f} s" for w, t in sorted(busy.items())))
    print("   slowest cases:")
    for c in sorted(cases, key=lambda c: -c["duration_s"])[:10]:
        print(f"   {c['duration_s']:6.2f} s  {c['verdict']:<13} {c['id'].split('/')[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", dest="workers", action="append", help="worker count(s) to measure")
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count (default 3): the first is "
                        "ordered by estimates, the next ones by the durations the previous run recorded")
    args = parser.parse_args()
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as work:
        for workers in args.workers or [None]:
            out = Path(work) / (workers or "default")
            walls = []
            for _ in range(args.runs):
                wall, doc = run_once(broker.url(Version.V50), workers, out)
                walls.append(wall)
            report(workers or "default", wall, doc)
            print("   wall per run: " + ", ".join(f"{w:.1f} s" for w in walls) + " (the first without history)")


if __name__ == "__main__":
    main()
