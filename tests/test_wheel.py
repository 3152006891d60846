"""The wheel is complete: built from a copy of the checkout (as from a clean clone), installed into a
fresh venv (not editable), ``mqtt-conformance list`` and ``run -k connack`` work from an empty folder.

Fast: the venv gets the wheel with ``--no-deps`` and finds the dependencies through a .pth line naming
this interpreter's site-packages (the editable install there stays inactive: .pth files of a plain path
entry are not processed), so nothing is downloaded but the build backend. About 15 s in all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]
ANYWHERE = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", "*.egg-info", ".tox", ".hypothesis",
                                  ".pytest_cache")
AT_TOP = {"build", "dist", "reports"}  # outputs of earlier builds and runs (conformance/reports is code)


def not_shipped(folder: str, names: list[str]) -> set[str]:
    """What a clean clone lacks: copying only the rest makes the build independent of this checkout's state."""
    return set(ANYWHERE(folder, names)) | (AT_TOP & set(names) if Path(folder) == ROOT else set())

pytestmark = pytest.mark.xdist_group("wheel")


def run(cmd: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=not_shipped)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(source)], tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("mqtt_conformance-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp)
    Path(purelib.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                     "-q", str(wheel)], tmp)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_wheel_lists_and_runs_cases_from_an_empty_folder(tmp_path: Path) -> None:
    """One test, so that the wheel is built once (a module fixture is torn down whenever an xdist worker's
    queue runs dry)."""
    require_broker(Mosquitto)
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    where = run([str(venv / "bin" / "python"), "-c", "import conformance; print(conformance.__file__)"], empty)
    assert str(venv) in where.stdout, f"conformance imported from {where.stdout}{where.stderr}"

    listed = run([str(venv / "bin" / "mqtt-conformance"), "list"], empty)
    assert listed.returncode == 0, listed.stderr
    in_checkout = run([sys.executable, "-m", "conformance.cli", "list"], ROOT)
    assert len(listed.stdout.splitlines()) == len(in_checkout.stdout.splitlines()) > 200

    reports = tmp_path / "reports"
    ran = run([str(venv / "bin" / "mqtt-conformance"), "run", "-k", "connack", "-n", "2",
               "--report-dir", str(reports)], empty)
    assert ran.returncode == 0, ran.stderr[-3000:] + ran.stdout[-3000:]
    doc = json.loads((reports / "results.json").read_text())
    assert doc["target"]["name"].startswith("mosquitto"), "the bundled mosquitto profile was not found"
    assert (reports / "report.html").is_file(), "the report renderers are missing from the wheel"
    assert len(doc["cases"]) > 20
    assert not any(c["verdict"] == "ERROR" for c in doc["cases"])
    # the same case ids as a run from the checkout (baselines and durations of one apply to the other)
    assert all(c["id"].startswith("cases/test_") for c in doc["cases"]), doc["cases"][0]["id"]
    assert not any(empty.iterdir()), "list or run wrote into the working folder"


# -- ./quickstart run on a machine without mosquitto (hidden with QUICKSTART_MOSQUITTO, a fake installer) --
ONE_CASE = ["-k", "test_valid_connect_is_accepted", "-n", "0"]


@pytest.mark.xdist_group("quickstart")
@pytest.mark.parametrize(("installer", "said"), [
    ("install -m 755 /dev/null {bin}/mosquitto", "mosquitto installed; the run uses it"),
    ("false", "installing mosquitto failed"),
], ids=["install-works", "install-fails"])
def test_quickstart_installs_mosquitto_when_root(tmp_path: Path, installer: str, said: str) -> None:
    require_broker(Mosquitto)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("the install branch needs root and apt-get")
    env = {**os.environ, "QUICKSTART_MOSQUITTO": str(tmp_path / "mosquitto"),
           "QUICKSTART_INSTALL": installer.format(bin=tmp_path)}
    ran = subprocess.run([str(ROOT / "quickstart"), "run", *ONE_CASE, "--report-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "mosquitto is not installed: installing it with apt-get" in ran.stderr
    assert said in ran.stderr, ran.stderr[-2000:]


@pytest.mark.xdist_group("quickstart")
def test_quickstart_says_nothing_when_the_user_chose_the_broker(tmp_path: Path) -> None:
    require_broker(Mosquitto)
    env = {**os.environ, "QUICKSTART_MOSQUITTO": str(tmp_path / "mosquitto"), "QUICKSTART_INSTALL": "false"}
    ran = subprocess.run([str(ROOT / "quickstart"), "run", "--embedded", "mosquitto", *ONE_CASE, "--report-dir",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=120, env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "quickstart:" not in ran.stderr
