"""Issue 16: no credential byte leaks into any report file, even when a case sends only part of the password
(the CONNECT whose last field is cut short, a CONNECT written a few bytes at a time).

A real mosquitto with a password file, a password of distinct bytes, one run of the cases that send the
target's credentials; then every file of the report dir (binary ones too) is searched for every 4-byte run
of the password, raw and hex.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto
from conformance.codec.version import Version
from conformance.secrets import mask_bytes, mask_text

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("secrets")
USER = "mqttc-secret-user"
PASSWORD = "Qz7#Kp2@Lw9!Xv4$Rj6%"  # every byte distinct: any 4-byte run of it is a leak
SELECTION = "last-field-cut or however_it_is_cut or test_3_01_credentials or clean_start"


class PasswordMosquitto(Mosquitto):
    """The embedded mosquitto with a password file that knows only USER (anonymous still allowed)."""

    name = "mosquitto-secret"

    def security_config(self) -> list[str]:
        passwd = self.workdir / "secret-passwd"
        passwd.touch()
        passwd.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), USER, PASSWORD], check=True, capture_output=True)
        return [f"password_file {passwd}", *(["user root"] if os.geteuid() == 0 else [])]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_broker(Mosquitto)
    out = tmp_path_factory.mktemp("secrets")
    env = {**os.environ, "MQTT_CONFORMANCE_PASSWORD": PASSWORD}
    with PasswordMosquitto() as broker:
        proc = subprocess.run(
            [sys.executable, "-m", "conformance.cli", "run", "--broker", broker.url(Version.V50), "--username", USER,
             "-k", SELECTION, "-n", "0", "--report-dir", str(out)],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert not _leaks(proc.stdout.encode() + proc.stderr.encode()), "password on the terminal"
    return out


def _runs(secret: bytes, size: int = 4) -> list[bytes]:
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


def _leaks(data: bytes) -> list[bytes]:
    secret = PASSWORD.encode()
    needles = _runs(secret) + [r.hex().encode() for r in _runs(secret)] + [r.hex(" ").encode() for r in _runs(secret)]
    return [n for n in needles if n in data]


def test_the_truncated_password_case_ran(run_dir: Path) -> None:
    import json

    doc = json.loads((run_dir / "results.json").read_text())
    names = {c["id"] for c in doc["cases"]}
    assert any("last-field-cut" in n for n in names) and any("however_it_is_cut" in n for n in names)
    sent = [e for c in doc["cases"] for e in c["transcript"] if e["dir"] == "out" and "CONNECT" in e["summary"]]
    assert any("*" * len(PASSWORD) in e["summary"] for e in sent)  # the decoded password, masked


def test_no_four_byte_run_of_the_password_in_any_report_file(run_dir: Path) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 10  # results.json, report.html, summary.md, junit.xml, pcaps, Allure results
    leaks = {str(p.relative_to(run_dir)): _leaks(p.read_bytes()) for p in files}
    assert not {name: found for name, found in leaks.items() if found}


def test_masking_keeps_lengths_and_masks_any_run_of_three() -> None:
    secret = PASSWORD.encode()
    data = b"\x10\x20" + secret[:-3] + b"tail"
    masked = mask_bytes(data, [secret])
    assert len(masked) == len(data) and masked.endswith(b"tail") and masked[:2] == b"\x10\x20"
    assert not _leaks(masked) and set(masked[2:-4]) == {ord("*")}
    assert mask_bytes(b"ab" + secret[:2] + b"cd", [secret]) == b"ab" + secret[:2] + b"cd"  # 2 bytes: chance
    assert not _leaks(mask_text(f"replace password={secret[2:10].hex()} or {PASSWORD[1:9]}", [secret]).encode())
