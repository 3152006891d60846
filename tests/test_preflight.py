"""Issues 16 and 17: bad inputs are answered before any case, in seconds, with exit 2 and one line saying
why; a version the target refuses turns its cases UNSUPPORTED and does not fail the run.

Real brokers only: the session mosquitto (tests/conftest.py), a 3.1.1-only broker made of a FaultyProxy over
it, a real HTTP server and a listening socket that never answers. Wall time about 15 s.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from faulty_proxy import FaultyProxy, only_v311

from conformance.catalogue import VERSIONS, get
from conformance.errors import ConfigError
from conformance.net import parse_url
from conformance.run.preflight import Answer, PreflightError, check_baseline, judge
from conformance.run.selection import in_section

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("preflight")
FAST = 5.0  # every bad input is answered within this many seconds


def run(*args: str, timeout: float = 120, password: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_CONFORMANCE_")}
    if password is not None:
        env["MQTT_CONFORMANCE_PASSWORD"] = password
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)
    return proc, time.monotonic() - start


def assert_refused(proc: subprocess.CompletedProcess, seconds: float, *words: str) -> str:
    """Exit 2, fast, one error line that contains ``words``; returns that line."""
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert seconds < FAST, f"took {seconds:.1f} s"
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# -- the target does not let us test ------------------------------------------------------------------------
def test_wrong_password_exits_2_with_the_reason_and_the_fix(mosquitto, tmp_path: Path) -> None:
    proc, seconds = run("run", "--broker", mosquitto.url("3.1.1"), "--username", "mqttc-valid",
                        "--report-dir", str(tmp_path), password="not-the-password")
    assert_refused(proc, seconds, "refused the credentials", "mqttc-valid", "MQTT_CONFORMANCE_PASSWORD")
    assert not (tmp_path / "results.json").exists()


def test_wrong_password_on_the_plain_pytest_path(mosquitto, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_CONFORMANCE_")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "cases/test_3_02_connack.py", "-p", "no:cacheprovider",
                           "--broker", mosquitto.url("3.1.1"), "--username", "mqttc-valid", "--password", "nope",
                           "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=env)
    # pytest's own start-up (every plugin) comes on top; on a loaded machine it alone can take seconds
    assert proc.returncode == 2 and time.monotonic() - start < 3 * FAST, proc.stdout[-1500:]
    assert "refused the credentials" in proc.stdout + proc.stderr


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"mqtt://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_http_server_exits_2_with_what_came_back(http_server: str, tmp_path: Path) -> None:
    proc, seconds = run("run", "--broker", http_server, "--report-dir", str(tmp_path))
    assert_refused(proc, seconds, "not a CONNACK", "HTML")


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A socket that listens (the kernel completes the TCP handshake) and never reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"mqtt://127.0.0.1:{sock.getsockname()[1]}"


def test_a_silent_port_exits_2_in_seconds(silent_port: str, tmp_path: Path) -> None:
    proc, seconds = run("run", "--broker", silent_port, "--report-dir", str(tmp_path))
    assert_refused(proc, seconds, "no CONNACK within", "MQTT listener")


# -- bad input of the user -----------------------------------------------------------------------------------
BAD_PROFILES = {
    "response_timeout": ('[limits]\nresponse_timeout = "three"\n', "number of seconds"),
    "shared_subscriptions": ('[capabilities]\nshared_subscriptions = "no"\n', "true or false"),
    "maximum_qos": ("[capabilities]\nmaximum_qos = 7\n", "from 0 to 2"),
    "evidence": ('[[deviations]]\nstatement = "MQTT-3.1.2-24"\nreason = "r"\nevidence = "no/such/file.txt"\n',
                 "no/such/file.txt"),
    "speling": ("speling = 1\n", "unknown key"),
    "versions": ('versions = "5.0"\n', "list"),
    "identities": ("[identities.valid]\nusername = 5\n", "string"),
    "brokers": ('[brokers]\n"5.0" = 1883\n', "string"),
    "insecure": ('[tls]\ninsecure = "no"\n', "true or false"),
}


@pytest.mark.parametrize("key", list(BAD_PROFILES))
def test_a_bad_profile_value_exits_2_naming_file_and_key(key: str, tmp_path: Path) -> None:
    text, problem = BAD_PROFILES[key]
    profile = tmp_path / "bad.toml"
    profile.write_text('name = "bad"\n' + text)
    proc, seconds = run("run", "--profile", str(profile), "--report-dir", str(tmp_path / "out"))
    assert_refused(proc, seconds, str(profile), key, problem)


def test_a_capability_option_of_the_wrong_type_exits_2(tmp_path: Path) -> None:
    proc, seconds = run("run", "--capability", "shared_subscriptions=no", "--report-dir", str(tmp_path))
    assert_refused(proc, seconds, "shared_subscriptions", "true or false")


@pytest.mark.parametrize("url", ["mqtt//x", "mqtt:/x", "ftp://x", "mqtt://x:99999"])
def test_a_malformed_url_exits_2(url: str, tmp_path: Path) -> None:
    proc, seconds = run("run", "--broker", url, "--report-dir", str(tmp_path))
    assert_refused(proc, seconds, repr(url))
    with pytest.raises(ConfigError):
        parse_url(url)


@pytest.mark.parametrize("content", ["not json at all", "[1, 2]", '{"kind": "other"}'])
def test_a_baseline_that_is_not_one_exits_2_before_the_run(content: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    proc, seconds = run("run", "--baseline", str(baseline), "--report-dir", str(tmp_path / "out"))
    assert_refused(proc, seconds, str(baseline))
    assert not (tmp_path / "out").exists()  # refused before any case ran
    with pytest.raises(ConfigError):
        check_baseline(str(baseline))


# -- a version the target refuses ----------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "answer", "dropped"), [
    ("5.0", Answer("connack", 1, 2), True),  # a 3.1.1 CONNACK to a 5.0 CONNECT
    ("5.0", Answer("connack", 0x84, 3), True),
    ("3.1.1", Answer("connack", 1, 2), True),
    ("5.0", Answer("connack", 0, 3), False),
])
def test_judging_a_version(version: str, answer: Answer, dropped: bool) -> None:
    assert (judge(version, answer, "broker h:1", None) is not None) == dropped


@pytest.mark.parametrize(("version", "code"), [("3.1.1", 4), ("3.1.1", 5), ("5.0", 0x86), ("5.0", 0x87),
                                               ("5.0", 0x89)])
def test_judging_a_refusal_stops_the_run(version: str, code: int) -> None:
    with pytest.raises(PreflightError):
        judge(version, Answer("connack", code, 3 if version == "5.0" else 2), "broker h:1", "u")


def test_a_311_only_broker_makes_every_50_case_unsupported(mosquitto, tmp_path: Path) -> None:
    with FaultyProxy(mosquitto.url("3.1.1"), only_v311) as proxy:
        proc, seconds = run("run", "--broker", proxy.url, "--profile", "fixtures/targets/mosquitto.toml",
                            "-k", "connack or subscribe", "-n", "2", "--report-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    notes = [line for line in proc.stderr.splitlines() if "UNSUPPORTED" in line]
    assert len(notes) == 1 and "5.0" in notes[0] and "3.1.1 CONNACK" in notes[0]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert "3.1.1 CONNACK" in doc["target"]["unsupported_versions"]["5.0"]
    verdicts = Counter((c["mqtt_version"], c["verdict"]) for c in doc["cases"])
    v5 = {verdict: n for (version, verdict), n in verdicts.items() if version == "5.0"}
    assert v5.keys() == {"UNSUPPORTED"} and v5["UNSUPPORTED"] > 30
    assert verdicts[("3.1.1", "PASS")] > 30
    assert all("3.1.1 CONNACK" in c["message"] for c in doc["cases"] if c["mqtt_version"] == "5.0")


@pytest.mark.parametrize("path", ["cli", "pytest"])
def test_the_run_says_where_it_sends_traffic(mosquitto, tmp_path: Path, path: str) -> None:
    url = mosquitto.url("3.1.1")
    if path == "cli":
        proc, _ = run("run", "--broker", url, "-k", "connack", "-n", "0", "--report-dir", str(tmp_path))
    else:
        proc = subprocess.run([sys.executable, "-m", "pytest", "cases/test_3_02_connack.py", "-p", "no:cacheprovider",
                               "--broker", url, "--report-dir", str(tmp_path)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
    endpoint = parse_url(url)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mqtt-conformance: testing")]
    assert len(lines) == 1, proc.stderr
    assert f"MQTT 3.1.1 {endpoint.host}:{endpoint.port}" in lines[0] and f"MQTT 5.0 {endpoint.host}" in lines[0]


# -- selection by statement and section ----------------------------------------------------------------------
def test_list_by_statement_and_section() -> None:
    proc, _ = run("list", "--statement", "MQTT-3.1.2-24")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines and all("MQTT-3.1.2-24" in line for line in lines)
    proc, _ = run("list", "--section", "3.8")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) > 5
    for line in lines:  # each listed case cites a statement of section 3.8 for some version
        ids = [w for w in line.split() if w.startswith("MQTT-")]
        assert any(in_section(s.section, "3.8") for v in VERSIONS for i in ids if (s := get(i, v))), line


@pytest.mark.parametrize("selection", [["MQTT-3.1.3-1"], ["MQTT-9.9.9-9"], ["9.9"], ["--section", "9.9"]])
def test_a_selection_without_cases_exits_2_before_any_broker(selection: list[str], tmp_path: Path) -> None:
    proc, seconds = run("run", *selection, "--report-dir", str(tmp_path))
    assert_refused(proc, seconds)
    assert "mqtt-conformance: testing" not in proc.stderr  # refused before a broker was started


def test_pytest_selects_by_statement_and_section() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "cases", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--mqtt-statement", "MQTT-3.1.2-24", "--mqtt-section", "3.10"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 0 and ids
    assert any("test_3_10_unsubscribe" in i for i in ids) and any("keep_alive" in i for i in ids)
    assert not any("test_3_08_subscribe" in i for i in ids)


def test_run_by_section_runs_only_that_section(mosquitto, tmp_path: Path) -> None:
    proc, _ = run("run", "3.12", "--broker", mosquitto.url("3.1.1"), "-n", "0", "--report-dir", str(tmp_path))
    assert proc.returncode in (0, 1), proc.stderr[-1500:]
    doc = json.loads((tmp_path / "results.json").read_text())
    sections = {c["section"] for c in doc["cases"]}
    assert doc["cases"] and all(any(s.startswith("MQTT-3.12") for s in c["statements"]) for c in doc["cases"]), sections
