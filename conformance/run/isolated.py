"""Cases run again in a pytest process of their own: serially, without reports, against a target resolved
already. The target (credentials included) goes in a file only this user can read, in a private
temporary directory that goes when the run is over: never on a command line or in the environment.

Used to re-run the cases a broker crash concerns (supervisor.reconcile) and to run cases against a
config variant of the broker (variants). Such a run, given ``--mqtt-target-file``, re-runs nothing in turn.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .target import Target, write_target


def run_alone(nodeids: list[str], target: Target, args: list[str], cwd: Path, timeout: float) -> list[dict[str, Any]]:
    """The records of ``nodeids`` run against ``target`` with the plugin options ``args``; none when the
    run was cut at ``timeout`` seconds or wrote no results."""
    with tempfile.TemporaryDirectory(prefix="mqttc-alone-") as folder:
        cmd = [sys.executable, "-m", "pytest", *nodeids, "-n", "0", "-p", "no:cacheprovider", "-q",
               "--no-reports", "--report-dir", folder, "--mqtt-target-file", str(write_target(target, Path(folder))),
               *args]
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(cmd, cwd=cwd, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        try:
            doc = json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
    return list(doc.get("cases", []))
