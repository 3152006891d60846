"""Config variants of a managed broker: one run also covers the statements about a capability that is off.

A profile may declare other configurations of its broker::

    [[variants]]
    name = "limited"
    embedded = "mosquitto-limited"       # a registered embedded broker, or: command = "./mybroker -c x {port}"
    profile = "mosquitto-limited.toml"   # optional, relative to this profile: its capabilities and deviations
    capabilities = { maximum_qos = 1 }   # optional overrides

After the main run, the cases that came out UNSUPPORTED (a capability the main config has on, or lacks)
run again, alone in one serial pytest subprocess, against each variant started on free loopback ports;
the records a variant judges (any verdict but UNSUPPORTED) join the run's results.json with ``variant``
set and ``id`` suffixed ``@<variant>`` (so that every id stays unique).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..brokers.base import EmbeddedBroker
from .supervisor import RERUN_ENV

RUN_TIMEOUT = 600.0  # one variant's re-run of every UNSUPPORTED case


def candidates(records: list[dict[str, Any]], refused: dict[str, str]) -> list[str]:
    """Node ids worth re-running against a variant: UNSUPPORTED, and not because the version is refused."""
    return [rec["id"] for rec in records if rec["verdict"] == "UNSUPPORTED" and rec["mqtt_version"] not in refused]


def start_variant(variant: dict[str, Any], versions: tuple[str, ...]) -> EmbeddedBroker:
    if "command" in variant:
        from ..brokers.command import CommandBroker

        return CommandBroker(variant["command"], 10.0, versions).start()
    from .context import start_embedded

    return start_embedded(variant["embedded"])


def variant_profile(variant: dict[str, Any], main_profile: str | None) -> str | None:
    if "profile" not in variant:
        return main_profile
    base = Path(main_profile).parent if main_profile else Path.cwd()
    return str(base / variant["profile"])


def run_variant(variant: dict[str, Any], nodeids: list[str], args: list[str], cwd: Path,
                main_profile: str | None, versions: tuple[str, ...],
                env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run ``nodeids`` against one variant; the records it judged, marked with the variant."""
    broker = start_variant(variant, versions)
    try:
        with tempfile.TemporaryDirectory(prefix="mqttc-variant-") as out:
            cmd = [sys.executable, "-m", "pytest", *nodeids, "-n", "0", "-p", "no:cacheprovider", "-q",
                   "--no-reports", "--report-dir", out, "--embedded-started", *args]
            for version in broker.versions:
                cmd += ["--broker", f"{version}={broker.url(version)}"]
            profile = variant_profile(variant, main_profile)
            if profile:
                cmd += ["--profile", profile]
            for name, value in variant.get("capabilities", {}).items():
                cmd += ["--capability", f"{name}={json.dumps(value)}"]
            env = dict(os.environ, **(env or {}), **{RERUN_ENV: "1"})
            # cut at RUN_TIMEOUT: pytest then wrote no results.json, and nothing of this variant joins
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(cmd, cwd=cwd, env=env, timeout=RUN_TIMEOUT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
            results = Path(out) / "results.json"
            doc = json.loads(results.read_text()) if results.is_file() else {"cases": []}
    finally:
        broker.stop()
    name = variant["name"]
    return [{**rec, "id": f"{rec['id']}@{name}", "variant": name, "crash": rec.get("crash")}
            for rec in doc["cases"] if rec["verdict"] != "UNSUPPORTED"]
