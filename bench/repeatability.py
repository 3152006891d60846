"""Repeatability: run the whole suite N times against one local mosquitto, serial and parallel, and
list every case whose verdict changed between runs (each one is a bug to fix, not to retry).

    python bench/repeatability.py --runs 10            # 10 parallel runs + 1 serial
    python bench/repeatability.py --runs 3 --serial 0  # 3 parallel runs only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]




def run(workers: str, out: Path) -> dict[tuple[str, str], str]:
    """One run; ``out`` is shared by the parallel runs, so that from the second on the cases are ordered
    by the durations the previous run recorded there, as a user's repeated runs are."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--embedded", "mosquitto", "--report-dir", str(out),
           "-n", workers]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode not in (0, 1):
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads((out / "results.json").read_text())
    return {(c["id"], c["mqtt_version"]): c["verdict"] for c in doc["cases"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="parallel runs (default 10)")
    parser.add_argument("--serial", type=int, default=1, help="serial runs (default 1)")
    args = parser.parse_args()
    seen: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    plan = [("auto", f"parallel {i + 1}") for i in range(args.runs)] + [("0", f"serial {i + 1}")
                                                                           for i in range(args.serial)]
    with tempfile.TemporaryDirectory(prefix="repeatability-") as work:
        for workers, label in plan:
            started = time.monotonic()
            verdicts = run(workers, Path(work) / workers)
            print(f"{label}: {len(verdicts)} cases in {time.monotonic() - started:.1f} s", flush=True)
            for key, verdict in verdicts.items():
                seen[key][verdict].append(label)
    unstable = {key: dict(v) for key, v in seen.items() if len(v) > 1}
    print(f"\n{len(seen)} cases, {len(plan)} runs: {len(unstable)} changed verdict")
    for (case_id, version), verdicts in sorted(unstable.items()):
        print(f"  [{version}] {case_id}: " + "; ".join(f"{v} in {', '.join(r)}" for v, r in verdicts.items()))
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())
