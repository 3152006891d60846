"""Config variants (conformance/run/variants.py): one run against mosquitto with a declared "limited" variant
(mosquitto-limited: max_qos 1, retain_available false) also judges the capability-off cases, 5.0
MQTT-3.2.2-12 and MQTT-3.2.2-13, which the main config leaves UNSUPPORTED. Wall time about 20 s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto, MosquittoLimited

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "fixtures" / "targets"

pytestmark = pytest.mark.xdist_group("variants")


def write_profile(folder: Path) -> Path:
    path = folder / "with-variants.toml"
    path.write_text(f'extends = "{TARGETS / "mosquitto.toml"}"\n\n[[variants]]\nname = "limited"\n'
                    f'embedded = "mosquitto-limited"\nprofile = "{TARGETS / "mosquitto-limited.toml"}"\n')
    return path


def test_limited_variant_judges_the_capability_off_cases_in_the_same_run(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    require_broker(MosquittoLimited)
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--profile", str(write_profile(tmp_path)), "-n", "2",
           "--report-dir", str(tmp_path / "out"), "--mqtt-version", "5.0", "-k", "connack"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    main = {c["statements"][0]: c["verdict"] for c in doc["cases"] if c["variant"] is None}
    limited = {s: c["verdict"] for c in doc["cases"] if c["variant"] == "limited" for s in c["statements"]}
    for statement in ("MQTT-3.2.2-12", "MQTT-3.2.2-13"):
        assert main[statement] == "UNSUPPORTED"
        assert limited[statement] == "PASS"
    ids = [c["id"] for c in doc["cases"]]
    assert len(ids) == len(set(ids)) and all(i.endswith("@limited") for c in doc["cases"] if c["variant"]
                                             for i in [c["id"]])


def test_a_variant_naming_no_broker_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[variants]]\nname = "x"\n')
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--profile", str(path),
                           "--report-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "embedded or command" in proc.stderr and "Traceback" not in proc.stderr
