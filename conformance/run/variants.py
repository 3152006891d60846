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

import dataclasses
from pathlib import Path
from typing import Any

from ..brokers.base import EmbeddedBroker
from .context import build_target, check_target, load_options_profile, start_embedded
from .isolated import run_alone
from .options import Options
from .target import Target

RUN_TIMEOUT = 600.0  # one variant's re-run of every UNSUPPORTED case


def candidates(records: list[dict[str, Any]], refused: dict[str, str]) -> list[str]:
    """Node ids worth re-running against a variant: UNSUPPORTED, and not because the version is refused."""
    return [rec["id"] for rec in records if rec["verdict"] == "UNSUPPORTED" and rec["mqtt_version"] not in refused]


def start_variant(variant: dict[str, Any], versions: tuple[str, ...]) -> EmbeddedBroker:
    if "command" in variant:
        from ..brokers.command import CommandBroker

        return CommandBroker(variant["command"], 10.0, versions).start()
    return start_embedded(variant["embedded"])


def variant_profile(variant: dict[str, Any], main_profile: str | None) -> str | None:
    if "profile" not in variant:
        return main_profile
    base = Path(main_profile).parent if main_profile else Path.cwd()
    return str(base / variant["profile"])


def variant_target(variant: dict[str, Any], broker: EmbeddedBroker, options: Options, main_profile: str | None) -> Target:
    """The variant's broker as a target: its profile (or the main one) with the variant's capabilities, the
    run's identity and TLS options; checked like any target (reachable, pre-flight), quietly."""
    options = dataclasses.replace(options, broker=[], profile=None, capability=[], embedded=None, broker_command=None)
    profile = load_options_profile(options, variant_profile(variant, main_profile))
    profile.capabilities.update(variant.get("capabilities", {}))
    target = build_target(options, profile, {v: broker.url(v) for v in broker.versions}, None, embedded=True)
    check_target(target, options.selected_versions(), quiet=True)
    return target


def run_variant(variant: dict[str, Any], nodeids: list[str], options: Options, main: Target, args: list[str],
                cwd: Path) -> list[dict[str, Any]]:
    """Run ``nodeids`` against one variant of the ``main`` target's broker; the records it judged, marked
    with the variant."""
    broker = start_variant(variant, tuple(main.urls))
    try:
        target = variant_target(variant, broker, options, main.profile.path)
        records = run_alone(nodeids, target, args, cwd, RUN_TIMEOUT)  # cut at RUN_TIMEOUT: nothing joins
    finally:
        broker.stop()
    name = variant["name"]
    return [{**rec, "id": f"{rec['id']}@{name}", "variant": name, "crash": rec.get("crash")}
            for rec in records if rec["verdict"] != "UNSUPPORTED"]
