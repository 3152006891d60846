"""One option table (conformance/run/options.py) for the command and the plugin; the resolved target handed
on as data (in-process, workerinput, a private file), never as options, the password never in argv or the
environment; the case record type (conformance/run/records.py). No broker, no network."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance.brokers import REGISTRY
from conformance.run import isolated
from conformance.run.context import Handoff, RunState
from conformance.run.options import OPTIONS, Options, add_options
from conformance.run.profile import Identity, load_profile
from conformance.run.records import CaseRecord, deviation_fields
from conformance.run.target import Target, read_target, write_target

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-Pa55word"


def plugin_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_options(parser.add_argument, plugin=True)
    return parser


def a_target() -> Target:
    profile = load_profile(ROOT / "fixtures" / "targets" / "mosquitto.toml")
    return Target("mosquitto", {"3.1.1": "mqtt://127.0.0.1:1", "5.0": "mqtt://127.0.0.1:1"}, profile, True,
                  credentials=Identity("user", SECRET), unsupported_versions={"5.0": "refused"})


def test_the_command_and_the_plugin_take_the_same_options() -> None:
    run = cli.build_parser()
    command = run.parse_args(["run", "--broker", "mqtt://h:1", "--strict", "--statement", "MQTT-3.1.2-24",
                              "--mqtt-version", "5.0", "--capability", "maximum_qos=1", "--case-deadline", "9"])
    plugin = plugin_parser().parse_args(["--broker", "mqtt://h:1", "--mqtt-strict", "--mqtt-statement",
                                         "MQTT-3.1.2-24", "--mqtt-version", "5.0", "--capability", "maximum_qos=1",
                                         "--case-deadline", "9"])
    assert Options.of(command) == Options.of(plugin)
    assert Options.of(command).mqtt_strict and Options.of(command).case_deadline == 9.0


def test_every_option_is_declared_for_each_front_end(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    for option in OPTIONS:
        flag = option.flag if option.cli == "same" else option.cli
        if flag is not None and option.help != argparse.SUPPRESS:
            assert flag in help_text, flag
    assert all(name in help_text.replace("\n", " ") for name in REGISTRY)  # --embedded lists the brokers


def test_a_bad_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.build_parser().parse_args(["run", "--mqtt-version", "4"])
    assert stop.value.code == 2 and "invalid choice: '4'" in capsys.readouterr().err


def test_plugin_args_round_trip_and_never_carry_the_target() -> None:
    options = Options(mqtt_version="5.0", mqtt_strict=True, mqtt_statement=["MQTT-3.1.2-24"], case_deadline=7.5,
                      report_dir="out", password=SECRET)
    dests = ("mqtt_version", "mqtt_strict", "mqtt_statement", "case_deadline", "report_dir", "baseline")
    args = options.plugin_args(dests)
    parsed = Options.of(plugin_parser().parse_args(args))
    assert all(getattr(parsed, d) == getattr(options, d) for d in dests)
    assert SECRET not in " ".join(args)
    with pytest.raises(ValueError):
        options.plugin_args(("password",))


def test_the_resolved_target_travels_as_plain_data_without_loading_the_profile(monkeypatch) -> None:
    target = a_target()
    data = target.to_data()
    assert_builtin(data)  # what execnet can carry to an xdist worker
    monkeypatch.setattr("conformance.run.profile.load_profile", lambda *a: pytest.fail("profile loaded again"))
    again = Target.from_data(data)
    assert again == target
    assert SECRET not in str(target.to_json())  # what results.json shows


def assert_builtin(value: Any) -> None:
    assert type(value) in (dict, list, str, int, float, bool, type(None)), type(value)
    for item in (list(value.items()) if isinstance(value, dict) else value if isinstance(value, list) else []):
        for part in item if isinstance(item, tuple) else (item,):
            assert_builtin(part)


def test_the_target_file_is_private(tmp_path: Path) -> None:
    path = write_target(a_target(), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_target(str(path)).credentials.password == SECRET


def test_a_run_of_its_own_gets_the_target_in_a_private_file_not_in_argv_or_the_environment(monkeypatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        path = Path(cmd[cmd.index("--mqtt-target-file") + 1])
        seen.update(cmd=cmd, env=kwargs.get("env"), mode=stat.S_IMODE(path.stat().st_mode),
                    folder=stat.S_IMODE(path.parent.stat().st_mode), target=read_target(str(path)))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert isolated.run_alone(["cases/x.py::test_y[5.0]"], a_target(), ["--mqtt-version", "5.0"], ROOT, 5.0) == []
    assert SECRET not in " ".join(seen["cmd"]) and seen["env"] is None and SECRET not in str(os.environ)
    assert (seen["mode"], seen["folder"]) == (0o600, 0o700)
    assert seen["target"].credentials.password == SECRET


def test_the_command_hands_its_target_to_pytest_in_process(monkeypatch, tmp_path: Path) -> None:
    target = a_target()
    monkeypatch.setattr(RunState, "ensure_target", lambda self: setattr(self, "target", target) or target)
    seen: dict[str, Any] = {}

    def fake_main(args: list[str], plugins: list[Any]) -> int:
        seen.update(args=args, handed=[p.state for p in plugins if isinstance(p, Handoff)], env=dict(os.environ))
        return 0

    monkeypatch.setattr(pytest, "main", fake_main)
    code = cli.main(["run", "-n", "0", "--report-dir", str(tmp_path), "--password", SECRET, "--strict", "3.8"])
    assert code == 0
    (state,) = seen["handed"]
    assert state.target is target and state.options.password == SECRET
    assert SECRET not in " ".join(seen["args"]) and SECRET not in str(seen["env"])
    assert "--broker" not in seen["args"] and "--profile" not in seen["args"]
    assert {"--mqtt-strict", "--mqtt-section", "3.8"} <= set(seen["args"])


def test_case_records_keep_the_keys_of_results_json_in_order() -> None:
    record = CaseRecord(id="i", name="n", module="m", section="3.1", mqtt_version="5.0", statements=["S"],
                        level="MUST", verdict="FAIL", duration_s=0.5, **deviation_fields(None))
    assert list(record.to_dict()) == [
        "id", "name", "module", "section", "mqtt_version", "statements", "level", "verdict", "known_deviation",
        "deviation", "duration_s", "started", "worker", "message", "precondition", "nodes", "description",
        "expectation", "timer", "transcript", "pcap", "crash", "variant"]
    fuzz = CaseRecord(id="f", name="n", module="fuzz/packet", section="", mqtt_version="5.0", statements=[],
                      level="MUST", verdict="FAIL", duration_s=1.0, extra={"rule": "r", "reproducer": None})
    keys = list(fuzz.to_dict(run=False))
    assert keys[-2:] == ["rule", "reproducer"] and "started" not in keys and "crash" not in keys
    deviation = a_target().profile.deviations[0]
    assert deviation_fields(deviation) == {"known_deviation": True, "deviation": {
        "statement": deviation.statement, "reason": deviation.reason, "evidence": deviation.evidence}}
