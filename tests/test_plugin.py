"""The pytest plugin end to end against a real mosquitto: verdicts, results.json, deviations, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CASES = '''
from conformance import Connack, NonStrict, Informational, Unsupported, case, SHOULD

@case("MQTT-3.1.4-4", v5="MQTT-3.1.4-5")
def test_pass(probe):
    """Accepted."""
    probe.ping()

@case("MQTT-3.2.2-1", v5="MQTT-3.2.2-2")
def test_fail(make_probe):
    """Expects the impossible."""
    p = make_probe()
    p.send(p.connect_packet())
    p.expect(Connack, session_present=True)

@case("MQTT-3.3.5-1", level=SHOULD)
def test_should(probe):
    assert False, "late"

@case(v5="MQTT-3.3.2-4")
def test_grades(probe):
    raise Informational("noted")

@case("MQTT-3.8.3-2", requires=["wildcard_subscriptions"])
def test_unsupported(probe):
    pass
'''


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "--report-dir", "out", "--no-reports", *args)
    path = pytester.path / "out" / "results.json"
    return result, (json.loads(path.read_text()) if path.exists() else {})


def test_verdicts_and_results_json(pytester, mosquitto):
    pytester.makepyfile(test_cases=CASES)
    pytester.makefile(".toml", profile='[capabilities]\nwildcard_subscriptions = false\n')
    result, doc = run(pytester, "--broker", mosquitto.url("5.0"), "--profile", "profile.toml")
    verdicts = {(c["name"], c["mqtt_version"]): c["verdict"] for c in doc["cases"]}
    assert verdicts == {
        ("test_pass", "3.1.1"): "PASS", ("test_pass", "5.0"): "PASS",
        ("test_fail", "3.1.1"): "FAIL", ("test_fail", "5.0"): "FAIL",
        ("test_should", "3.1.1"): "NON-STRICT", ("test_grades", "5.0"): "INFORMATIONAL",
        ("test_unsupported", "3.1.1"): "UNSUPPORTED",
    }
    assert result.ret == 1
    fail = next(c for c in doc["cases"] if c["name"] == "test_fail")
    assert "session_present=False (expected True)" in fail["message"]
    assert fail["transcript"] and fail["statements"] in (["MQTT-3.2.2-1"], ["MQTT-3.2.2-2"])
    for key in ("schema", "tool", "target", "started_at", "duration_s", "summary"):
        assert key in doc
    assert doc["summary"]["FAIL"] == 2


def test_known_deviation_does_not_fail_the_run(pytester, mosquitto):
    pytester.makepyfile(test_cases=CASES)
    pytester.makefile(".toml", profile=textwrap.dedent('''
        [[deviations]]
        statement = "MQTT-3.2.2-1"
        version = "3.1.1"
        reason = "self-test"
        [[deviations]]
        statement = "MQTT-3.2.2-2"
        version = "5.0"
        reason = "self-test"
    '''))
    result, doc = run(pytester, "--broker", mosquitto.url("5.0"), "--profile", "profile.toml", "-k", "fail")
    assert result.ret == 0
    assert all(c["verdict"] == "FAIL" and c["known_deviation"] for c in doc["cases"])


def test_mqtt_version_selects_one_version(pytester, mosquitto):
    pytester.makepyfile(test_cases=CASES)
    result, doc = run(pytester, "--broker", mosquitto.url("5.0"), "--mqtt-version", "5.0")
    assert {c["mqtt_version"] for c in doc["cases"]} == {"5.0"}
    assert sorted(c["name"] for c in doc["cases"]) == ["test_fail", "test_grades", "test_pass"]
    assert "INTERNALERROR" not in result.stdout.str()


def test_unknown_statement_fails_collection(pytester, mosquitto):
    pytester.makepyfile(test_bad='from conformance import case\n\n@case("MQTT-9.9.9-9")\ndef test_x(probe):\n    pass\n')
    result, _ = run(pytester, "--broker", mosquitto.url("5.0"))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*cites MQTT-9.9.9-9, which is not an MQTT 3.1.1 statement*"])


def test_unreachable_broker_exits_2_fast(pytester):
    pytester.makepyfile(test_cases=CASES)
    started = time.monotonic()
    result, _ = run(pytester, "--broker", "mqtt://127.0.0.1:1")
    assert result.ret == 2 and time.monotonic() - started < 15
    result.stdout.fnmatch_lines(["*broker unreachable*"])


def test_broker_dying_mid_run_turns_the_rest_into_error(pytester):
    from conformance.brokers.mosquitto import Mosquitto

    broker = Mosquitto().start()
    pytester.makepyfile(test_cases=f'''
import os, signal
from conformance import case

@case("MQTT-3.1.4-4")
def test_a_kill(probe):
    os.killpg({broker.process.pid}, signal.SIGKILL)
    probe.ping()

@case("MQTT-3.12.4-1")
def test_b_after(probe):
    probe.ping()

@case("MQTT-3.12.4-1")
def test_c_after(probe):
    probe.ping()
''')
    try:
        started = time.monotonic()
        result, doc = run(pytester, "--broker", broker.url("3.1.1"), "-p", "no:randomly")
        assert time.monotonic() - started < 15
    finally:
        broker.stop()
    assert [c["verdict"] for c in sorted(doc["cases"], key=lambda c: c["name"])] == ["ERROR", "ERROR", "ERROR"]
    assert result.ret == 1


def test_cli_exit_codes(tmp_path):
    cli = [sys.executable, "-m", "conformance.cli"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    unreachable = subprocess.run([*cli, "run", "--broker", "mqtt://127.0.0.1:1"], capture_output=True, text=True,
                                 env=env, timeout=30)
    assert unreachable.returncode == 2
    assert unreachable.stderr.strip().splitlines()[-1].startswith("mqtt-conformance: error: broker unreachable")
    assert "Traceback" not in unreachable.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = [")
    invalid = subprocess.run([*cli, "run", "--profile", str(bad)], capture_output=True, text=True, env=env, timeout=30)
    assert invalid.returncode == 2 and "not valid TOML" in invalid.stderr and "Traceback" not in invalid.stderr
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text('brokr = "mqtt://x"')
    wrong = subprocess.run([*cli, "run", "--profile", str(unknown_key)], capture_output=True, text=True, env=env,
                           timeout=30)
    assert wrong.returncode == 2 and "unknown key(s) brokr" in wrong.stderr
    usage = subprocess.run([*cli, "run", "--mqtt-version", "4"], capture_output=True, text=True, env=env, timeout=30)
    assert usage.returncode == 2


def test_ctrl_c_stops_the_embedded_broker(tmp_path):
    """SIGINT during a run: the embedded broker the CLI started does not outlive it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "-n", "0", "--report-dir",
                             str(tmp_path), "-k", "keep_alive or pinging"], stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stderr.readline()  # "testing mosquitto ... (3.1.1 mqtt://127.0.0.1:PORT ...)"
    port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(",)"))
    time.sleep(1.0)  # let the run get under way; this is a test of the harness, not a conformance wait
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_reservation_grades_a_passing_case_non_strict_and_never_hides_a_fail(pytester, mosquitto):
    pytester.makepyfile(test_reserve='''
from conformance import case

@case("MQTT-3.1.4-4")
def test_late_but_passing(probe):
    probe.transcript.reserve(probe.name, "came late")
    probe.ping()

@case("MQTT-3.2.2-1")
def test_late_then_failing(probe):
    probe.transcript.reserve(probe.name, "came late")
    assert False, "wrong"
''')
    _, doc = run(pytester, "--broker", mosquitto.url("5.0"))
    by_name = {c["name"]: c for c in doc["cases"]}
    late = by_name["test_late_but_passing"]
    assert (late["verdict"], late["message"]) == ("NON-STRICT", "came late")
    assert any("NON-STRICT: came late" in e["summary"] for e in late["transcript"])
    assert by_name["test_late_then_failing"]["verdict"] == "FAIL"
