"""Self-tests of conformance.reports on a realistic sample run (tests/data/reports/sample-results.json).

Regenerate the sample after changing ``build_sample``: ``python tests/test_reports.py``.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance.codec import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)
from conformance.codec.version import Version
from conformance.reports import render_all, render_html, render_junit, render_markdown
from conformance.reports.transcript import packet_fields
from conformance.transcript import BROKER, HARNESS

SAMPLE = Path(__file__).parent / "data" / "reports" / "sample-results.json"


# --- the sample run -----------------------------------------------------------------------------

def wire(t: float, probe: str, direction: str, packet: Packet, version: str, summary: str,
         decoded: bool = True) -> dict[str, Any]:
    """A transcript entry whose hex is what the codec encodes (so it is valid MQTT)."""
    data = encode(packet, version)
    fields = packet_fields({"dir": direction, "hex": data.hex()}, version)[0] if decoded else None
    return {"t": t, "probe": probe, "dir": direction, "hex": data.hex(), "summary": summary, "packet": fields}


def case(case_id: str, section: str, version: str, statements: list[str], level: str, verdict: str,
         transcript: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    module, name = case_id.split("::")
    out = {
        "id": f"{case_id}[{version}]", "name": name, "module": module, "section": section, "mqtt_version": version,
        "statements": statements, "level": level, "verdict": verdict, "known_deviation": False,
        "deviation": None, "duration_s": 0.012, "message": "", "description": "", "expectation": "",
        "transcript": transcript, "pcap": None,
    }
    out.update(extra)
    return out


def _connect_pair(version: str, probe: str, client_id: str, t0: float = 0.0, **connect: Any) -> list[dict[str, Any]]:
    return [
        wire(t0 + 0.0001, probe, "out", Connect(client_id=client_id, **connect), version,
             f"CONNECT client_id={client_id!r} clean_start=1 keep_alive=60"),
        wire(t0 + 0.0009, probe, "in", Connack(), version, "CONNACK session_present=0 reason=0x00 Success"),
    ]


def build_sample() -> dict[str, Any]:
    v3, v5 = Version.V311, Version.V50
    cases = [
        case("cases/test_3_2_connack.py::test_connack_first", "3.2", v3, ["MQTT-3.2.0-1"], "MUST", "PASS",
             _connect_pair(v3, "c1", "conf-c1"),
             description="The first packet the broker sends on a new connection is CONNACK.",
             expectation="CONNACK with return code 0 before anything else"),
        case("cases/test_3_2_connack.py::test_session_present_clean_start", "3.2", v5, ["MQTT-3.2.2-2"], "MUST",
             "PASS", [
                 wire(0.0001, "c1", "out", Connect(client_id="conf-c1", properties=Properties(
                     session_expiry_interval=30, user_property=[("suite", "mqtt-conformance")])), v5,
                     "CONNECT client_id='conf-c1' clean_start=1 session_expiry_interval=30"),
                 # packet left null on purpose: the report decodes the hex itself
                 wire(0.0011, "c1", "in", Connack(properties=Properties(
                     topic_alias_maximum=10, receive_maximum=100, assigned_client_identifier="auto-1")), v5,
                     "CONNACK session_present=0 reason=0x00 Success", decoded=False),
                 {"t": 0.0013, "probe": "c1", "dir": "note", "hex": "", "summary": "session present flag is 0",
                  "packet": None},
             ],
             description="Session Present is 0 when Clean Start is 1.",
             expectation="CONNACK reason 0 with Session Present 0"),
        case("cases/test_3_3_publish.py::test_qos1_forwarded_at_granted_qos", "3.3", v5, ["MQTT-3.3.4-1"], "MUST",
             "FAIL", [
                 *_connect_pair(v5, "sub", "conf-sub"),
                 wire(0.0020, "sub", "out", Subscribe(packet_id=1, subscriptions=(Subscription("conf/t/1", qos=1),)),
                      v5, "SUBSCRIBE id=1 'conf/t/1' qos=1"),
                 wire(0.0025, "sub", "in", Suback(packet_id=1, reason_codes=(1,)), v5, "SUBACK id=1 [0x01]"),
                 *_connect_pair(v5, "pub", "conf-pub", t0=0.003),
                 wire(0.0050, "pub", "out", Publish(topic="conf/t/1", payload=b"hello", qos=1, packet_id=7), v5,
                      "PUBLISH 'conf/t/1' qos=1 id=7 payload=b'hello'"),
                 wire(0.0056, "pub", "in", Puback(packet_id=7), v5, "PUBACK id=7"),
                 wire(0.0061, "sub", "in", Publish(topic="conf/t/1", payload=b"hello", qos=0), v5,
                      "PUBLISH 'conf/t/1' qos=0 payload=b'hello'"),
                 wire(0.0070, "sub", "out", Disconnect(), v5, "DISCONNECT reason=0x00"),
                 {"t": 0.0071, "probe": "sub", "dir": "close", "hex": "", "summary": "closed by harness",
                  "packet": None, "closed_by": HARNESS},
             ],
             message="expected the PUBLISH at QoS 1 (granted 1, published 1), got QoS 0",
             description="A QoS 1 message reaches a QoS 1 subscriber at QoS 1.",
             expectation="subscriber receives PUBLISH qos=1 and must PUBACK it", duration_s=0.031),
        case("cases/test_3_3_publish.py::test_retained_stored_with_qos", "3.3", v3, ["MQTT-3.3.1-5"], "MUST",
             "FAIL", _connect_pair(v3, "c1", "conf-ret"), known_deviation=True,
             deviation={"statement": "MQTT-3.3.1-5", "reason": "retained QoS is downgraded to the subscription QoS",
                        "evidence": "https://example.invalid/issues/1"},
             message="retained message came back at QoS 0, stored at QoS 1",
             description="A retained message keeps the QoS it was published with."),
        case("cases/test_3_3_publish.py::test_wildcard_topic_name_rejected", "3.3", v3, ["MQTT-3.3.2-2"], "MUST",
             "FAIL", [
                 *_connect_pair(v3, "c1", "conf-wild"),
                 wire(0.002, "c1", "out", Publish(topic="a/+/b", payload=b"<x>"), v3,
                      "PUBLISH 'a/+/b' qos=0 payload=b'<x>'", decoded=False),
             ],
             message='broker forwarded the PUBLISH; <script>alert("x")</script> & \'quotes\' must stay text',
             description="A PUBLISH whose topic holds a wildcard is a protocol violation: <b>not bold</b>."),
        case("cases/test_3_1_connect.py::test_reserved_flag_closes", "3.1", v3, ["MQTT-3.1.2-3"], "MUST", "PASS", [
            {"t": 0.0001, "probe": "c1", "dir": "out", "hex": "101000044d5154540403003c0004636f6e66",
             "summary": "CONNECT (crafted) connect_flags=0x03 reserved bit set", "packet": None},
            {"t": 0.0102, "probe": "c1", "dir": "close", "hex": "", "summary": "closed by broker", "packet": None,
             "closed_by": BROKER},
        ], description="The broker closes the connection when the CONNECT reserved flag is 1."),
        case("cases/test_3_1_connect.py::test_username_password_accepted", "3.1", v5, ["MQTT-3.1.3-5"], "MUST",
             "PASS", _connect_pair(v5, "c1", "conf-auth", username="user", password=b"***"),
             description="A CONNECT with user name and password is accepted (password masked in reports)."),
        case("cases/test_3_14_disconnect.py::test_reason_string_fits", "3.14", v5, ["MQTT-3.14.2-3"], "SHOULD",
             "NON-STRICT", _connect_pair(v5, "c1", "conf-rs"),
             message="Reason String sent although it exceeded Maximum Packet Size; permitted but discouraged"),
        case("cases/test_4_8_shared.py::test_shared_distribution", "4.8", v5, ["MQTT-4.8.2-3"], "MAY",
             "INFORMATIONAL", _connect_pair(v5, "m1", "conf-s1"),
             message="messages distributed round-robin across 2 members"),
        case("cases/test_4_8_shared.py::test_shared_subscription_basic", "4.8", v5, ["MQTT-4.8.2-1"], "MUST",
             "UNSUPPORTED", [], message="target profile: shared_subscription_available = false"),
        case("cases/test_3_1_connect.py::test_second_connect_closes", "3.1", v5, ["MQTT-3.1.0-2", "MQTT-3.1.4-1"],
             "MUST", "ERROR", [
                 {"t": 0.0, "probe": "c1", "dir": "note", "hex": "", "summary": "connecting to 127.0.0.1:40001",
                  "packet": None},
             ], message="HarnessError: probe c1 timed out after 5.0 s waiting for CONNACK"),
    ]
    # Optional fields absent altogether, statement unknown to the catalogue.
    cases.append({"id": "cases/test_9_future.py::test_future_statement[5.0]", "mqtt_version": "5.0",
                  "statements": ["MQTT-9.9.9-9"], "verdict": "PASS", "duration_s": 0.001})
    summary = {v: sum(c["verdict"] == v for c in cases)
               for v in ("PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "UNSUPPORTED", "ERROR")}
    return {
        "schema": 1,
        "tool": {"name": "mqtt-conformance", "version": "0.1.0"},
        "target": {
            "name": "mosquitto 2.0.18", "urls": {v3: "mqtt://127.0.0.1:40001", v5: "mqtt://127.0.0.1:40001"},
            "embedded": True, "profile": "fixtures/targets/mosquitto.toml",
            "capabilities": {v5: {"maximum_qos": 2, "retain_available": True, "shared_subscription_available": False}},
        },
        "started_at": "2026-11-25T04:10:00+00:00",
        "duration_s": 12.34,
        "options": {"mqtt_version": "all", "strict": False, "workers": 2, "baseline": None},
        "summary": summary,
        "exit_code": 1,
        "cases": cases,
    }


@pytest.fixture()
def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture()
def rendered(sample: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], Path, list[Path]]:
    return sample, tmp_path, render_all(sample, tmp_path)


# --- tests --------------------------------------------------------------------------------------

def test_sample_file_is_current(sample: dict[str, Any]) -> None:
    assert sample == json.loads(json.dumps(build_sample())), "run: python tests/test_reports.py"


def test_sample_covers_every_verdict_and_version(sample: dict[str, Any]) -> None:
    assert {c["verdict"] for c in sample["cases"]} == {
        "PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "UNSUPPORTED", "ERROR"}
    assert {c["mqtt_version"] for c in sample["cases"]} == {"3.1.1", "5.0"}
    assert any(c.get("known_deviation") for c in sample["cases"])


def test_render_all_writes_every_report(rendered: tuple[dict[str, Any], Path, list[Path]]) -> None:
    results, out, written = rendered
    for name in ("report.html", "summary.md", "junit.xml", "allure-results/environment.properties"):
        assert (out / name).is_file(), name
        assert out / name in written
    assert all(p.is_file() for p in written)
    with_wire = [c for c in results["cases"] if any(e.get("hex") for e in c.get("transcript") or [])]
    assert len(list((out / "pcap").glob("*.pcap"))) == len(with_wire) == 9
    for c in results["cases"]:  # render_all filled in the pcap paths, relative to the report dir
        if c in with_wire:
            assert c["pcap"].startswith("pcap/") and (out / c["pcap"]).is_file()
        else:
            assert c.get("pcap") is None
    assert len(list((out / "allure-results").glob("*-result.json"))) == len(results["cases"])


def test_no_password_written(rendered: tuple[dict[str, Any], Path, list[Path]]) -> None:
    _, out, written = rendered
    for path in written:
        data = path.read_bytes()
        assert b"secret" not in data
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "&quot;***&quot;" in html  # the masked password is shown as masked


@pytest.mark.parametrize("results", [
    {},
    {"cases": []},
    {"cases": [{"id": "x"}]},
    {"cases": [{"id": "a::b[5.0]", "verdict": "WEIRD", "transcript": None, "pcap": None, "statements": None}]},
    {"cases": [{"id": "a::b", "mqtt_version": "5.0", "verdict": "FAIL", "statements": ["MQTT-0.0-0"],
                "transcript": [{"dir": "out", "hex": "zz"}, {"dir": "in", "hex": "ff"}, {"dir": "close"}, {}]}]},
    {"started_at": "not a date", "duration_s": None, "target": None, "tool": None, "cases": "nonsense"},
])
def test_render_all_tolerates_sparse_results(results: dict[str, Any], tmp_path: Path) -> None:
    written = render_all(copy.deepcopy(results), tmp_path)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "junit.xml").is_file()
    assert all(p.is_file() for p in written)
    ET.parse(tmp_path / "junit.xml")


# --- HTML ---------------------------------------------------------------------------------------

def test_html_is_self_contained(sample: dict[str, Any]) -> None:
    html = render_html(sample)
    assert not re.search(r"<script[^>]+src=", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"""src=["']?(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    for url in re.findall(r"""href=["']([^"']+)""", html):
        assert url.startswith(("#", "pcap/", "https://docs.oasis-open.org/mqtt/")), url


def test_html_escapes_everything(sample: dict[str, Any]) -> None:
    html = render_html(sample)
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;" in html
    assert "<b>not bold</b>" not in html and "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert html.count("<script>") == 1  # only the report's own inline script


def test_html_content(sample: dict[str, Any]) -> None:
    html = render_html(sample)
    assert "mosquitto 2.0.18" in html and "0.1.0" in html and "2026-11-25T04:10:00+00:00" in html
    assert "<svg" in html and 'id="filters"' in html
    for sid in ("MQTT-3.2.2-2", "MQTT-3.3.4-1", "MQTT-9.9.9-9", "MQTT-3.3.1-5"):
        assert sid in html
    assert 'data-verdict="NOT-COVERED"' in html  # in-scope statements nobody tests
    assert "known deviation" in html and "retained QoS is downgraded" in html
    assert "topic_alias_maximum" in html  # fields decoded from the hex when the probe gave none
    assert "not decodable as MQTT 3.1.1" in html  # the crafted CONNECT
    assert "→ broker" in html and "← broker" in html and "✕ closed" in html
    assert "0000  10 " in html  # hex dump
    assert html.count('class="case f ') == len(sample["cases"])


def test_html_failures_first(sample: dict[str, Any]) -> None:
    html = render_html(sample)
    first = html.index("<h2>Failures and errors")
    assert first < html.index("Compliance matrix") < html.index("<svg")  # not below the charts
    card = re.search(r'<details class="case f (v-[A-Z-]+)"', html[first:])
    assert card and card.group(1) == "v-FAIL"


def test_html_statement_links_resolve(sample: dict[str, Any]) -> None:
    html = render_html(sample)
    targets = set(re.findall(r'href="#([^"]+)"', html))
    assert any(t.startswith("stmt-5.0-MQTT-") for t in targets)
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert targets <= ids, targets - ids


def test_html_whole_expectation_and_recorded_extras(sample: dict[str, Any]) -> None:
    results = copy.deepcopy(sample)
    case = results["cases"][0]
    case["description"] = "The server answers a CONNECT with\na CONNACK first. More detail follows."
    case["expectation"] = "The server answers a CONNECT with"  # what the docstring's first line gave
    case["precondition"] = {"step": "QoS 2 publish: PUBREC", "statement": "MQTT-4.3.3-8", "message": "no PUBREC"}
    case["crash"] = {"exit_code": -11, "log_tail": ["segfault in loop"], "suspects": ["cases/x.py::t[5.0]"],
                     "rerun": True}
    results["target"]["unsupported_versions"] = {"3.1.1": "CONNACK return code 0x01"}
    html = render_html(results)
    assert "The server answers a CONNECT with a CONNACK first.</dd>" in html
    assert "QoS 2 publish: PUBREC" in html and 'href="#stmt-' in html and "segfault in loop" in html
    assert "cases/x.py::t[5.0]" in html and "-11" in html
    assert "MQTT 3.1.1: CONNACK return code 0x01" in html


def test_v311_packets_have_no_v5_fields() -> None:
    suback = {"dir": "in", "hex": encode(Suback(packet_id=3, reason_codes=(1,)), Version.V311).hex()}
    fields, _ = packet_fields(suback, Version.V311)
    assert fields == {"type": "SUBACK", "packet_id": 3, "return_codes": [1]}
    connect = {"dir": "out", "packet": {"type": "CONNECT", "clean_start": True, "properties": {}, "client_id": "c"}}
    assert packet_fields(connect, Version.V311)[0] == {"type": "CONNECT", "clean_session": True, "client_id": "c"}
    assert "properties" in packet_fields(connect, Version.V50)[0]


def test_interrupted_run_in_every_report(sample: dict[str, Any], tmp_path: Path) -> None:
    results = copy.deepcopy(sample)
    results.update(interrupted=True, exit_code=2)
    for case in results["cases"]:
        if case["verdict"] in ("FAIL", "ERROR"):
            case["known_deviation"] = True  # nothing failed: the summary must still not say success
    render_all(results, tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "INTERRUPTED" in summary.splitlines()[0] and "no failures" not in summary
    assert "Interrupted run." in (tmp_path / "report.html").read_text(encoding="utf-8")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.find(".//testcase[@name='run interrupted']/error") is not None and int(root.get("errors")) >= 1
    env = (tmp_path / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    assert "interrupted=true" in env


def test_allure_real_start_times_and_lanes(sample: dict[str, Any], tmp_path: Path) -> None:
    results = copy.deepcopy(sample)
    for i, case in enumerate(results["cases"]):
        case.update(started=1_800_000_000.0 + i % 2, worker=f"gw{i % 2}")
    render_all(results, tmp_path)
    out = _allure_results(tmp_path)
    first = out[results["cases"][0]["id"]]
    assert first["start"] == 1_800_000_000_000 and ("thread", "gw0") in [(x["name"], x["value"]) for x in
                                                                          first["labels"]]
    second = out[results["cases"][1]["id"]]
    assert second["start"] == 1_800_000_001_000  # parallel lanes, not laid end to end
    renamed = copy.deepcopy(results)
    renamed["cases"][0]["statements"] = ["MQTT-1.5.4-1"]
    render_all(renamed, tmp_path / "renamed")
    again = _allure_results(tmp_path / "renamed")[results["cases"][0]["id"]]
    assert (again["historyId"], again["testCaseId"], again["name"]) == (
        first["historyId"], first["testCaseId"], first["name"])


# --- Markdown -----------------------------------------------------------------------------------

def test_markdown_summary(sample: dict[str, Any]) -> None:
    md = render_markdown(sample)
    assert "| ✅ PASS | 5 |" in md and "| ❌ FAIL | 3 |" in md and "| 💥 ERROR | 1 |" in md
    assert "`MQTT-3.3.4-1`" in md and "got QoS 0" in md
    assert "`MQTT-3.1.0-2`, `MQTT-3.1.4-1`" in md and "timed out" in md
    assert "MQTT-3.3.1-5" not in md.split("### Statement coverage")[0].split("Known deviations")[0]
    assert "**Known deviations:** 1 case(s)" in md
    # covered = cited by a case that executed: 5.0's ERROR and UNSUPPORTED cases cover nothing
    assert re.search(r"\| 3\.1\.1 \| \d+ \| 4 \| \d+% \|", md) and re.search(r"\| 5\.0 \| \d+ \| 5 \| \d+% \|", md)
    assert "<script>" not in md


# --- JUnit --------------------------------------------------------------------------------------

def test_junit(sample: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(sample))
    cases = root.findall(".//testcase")
    assert len(cases) == len(sample["cases"]) == int(root.get("tests"))
    assert {s.get("name") for s in root.findall("testsuite")} == {"MQTT 3.1.1", "MQTT 5.0"}
    by_name = {c.get("name"): c for c in cases}
    fail = by_name["test_qos1_forwarded_at_granted_qos[5.0]"]
    assert fail.get("classname") == "mqtt5_0.cases.test_3_3_publish"
    assert "got QoS 0" in fail.find("failure").get("message")
    assert "PUBLISH 'conf/t/1'" in fail.find("failure").text  # the transcript goes along
    kd = by_name["test_retained_stored_with_qos[3.1.1]"]
    assert kd.find("failure") is None
    assert kd.find("skipped").get("message").startswith("known deviation: retained QoS")
    err = by_name["test_second_connect_closes[5.0]"]
    assert err.find("error") is not None
    unsupported = by_name["test_shared_subscription_basic[5.0]"]
    assert unsupported.find("skipped") is not None
    non_strict = by_name["test_reason_string_fits[5.0]"]
    assert non_strict.find("failure") is None and "NON-STRICT" in non_strict.find("system-out").text
    props = {p.get("name"): p.get("value") for p in err.find("properties")}
    assert props["statements"] == "MQTT-3.1.0-2 MQTT-3.1.4-1" and props["verdict"] == "ERROR"
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("2", "1", "2")


# --- Allure -------------------------------------------------------------------------------------

def _allure_results(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (out / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["fullName"]] = data
    return found


def test_allure(rendered: tuple[dict[str, Any], Path, list[Path]]) -> None:
    _, out, _ = rendered
    results = _allure_results(out)
    fail = results["cases/test_3_3_publish.py::test_qos1_forwarded_at_granted_qos[5.0]"]
    labels = [(lab["name"], lab["value"]) for lab in fail["labels"]]
    assert ("epic", "MQTT 5.0") in labels and ("feature", "3.3 PUBLISH") in labels
    assert ("story", "MQTT-3.3.4-1") in labels and ("severity", "critical") in labels
    assert fail["status"] == "failed" and "got QoS 0" in fail["statusDetails"]["message"]
    assert fail["links"][0]["url"].startswith("https://docs.oasis-open.org/mqtt/mqtt/v5.0/")
    kinds = {a["type"] for a in fail["attachments"]}
    assert kinds == {"text/plain", "application/vnd.tcpdump.pcap"}
    for att in fail["attachments"]:
        assert (out / "allure-results" / att["source"]).is_file()
        assert re.fullmatch(r"[0-9a-f-]{36}-attachment\.(txt|pcap)", att["source"])
    two = results["cases/test_3_1_connect.py::test_second_connect_closes[5.0]"]
    assert [v for n, v in ((lab["name"], lab["value"]) for lab in two["labels"]) if n == "story"] == [
        "MQTT-3.1.0-2", "MQTT-3.1.4-1"]
    assert two["status"] == "broken"
    statuses = {name.split("::")[1]: r["status"] for name, r in results.items()}
    assert statuses["test_shared_subscription_basic[5.0]"] == "skipped"
    assert statuses["test_reason_string_fits[5.0]"] == "broken"  # NON-STRICT is not green
    non_strict = results["cases/test_3_14_disconnect.py::test_reason_string_fits[5.0]"]
    assert non_strict["statusDetails"]["message"].startswith("NON-STRICT")
    assert fail["name"] == "test_qos1_forwarded_at_granted_qos[5.0]"  # no statements: stable when they change
    assert fail["steps"][-1]["status"] == "failed" and len(fail["steps"]) == 1 + len(
        next(c for c in rendered[0]["cases"] if c["id"].endswith("test_qos1_forwarded_at_granted_qos[5.0]"))
        ["transcript"])
    assert ("thread", "gw0") in labels or any(n == "thread" for n, _ in labels)
    assert {"name": "verdict", "value": "NON-STRICT"} in non_strict["parameters"]
    assert ("severity", "normal") in [(lab["name"], lab["value"]) for lab in non_strict["labels"]]
    kd = results["cases/test_3_3_publish.py::test_retained_stored_with_qos[3.1.1]"]
    assert kd["statusDetails"]["known"] is True and kd["statusDetails"]["message"].startswith("known deviation")
    env = (out / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    assert "target=mosquitto 2.0.18" in env and "tool.version=0.1.0" in env and "mqtt.versions=3.1.1, 5.0" in env


def test_allure_is_stable_across_renders(sample: dict[str, Any], tmp_path: Path) -> None:
    render_all(copy.deepcopy(sample), tmp_path)
    first = sorted(p.name for p in (tmp_path / "allure-results").iterdir())
    render_all(copy.deepcopy(sample), tmp_path)
    assert sorted(p.name for p in (tmp_path / "allure-results").iterdir()) == first


# --- pcap ---------------------------------------------------------------------------------------

def _tshark(path: Path, *args: str) -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", str(path), *args], capture_output=True, text=True, timeout=60,
                          check=True)
    return [line for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pcap_decodes_as_mqtt(rendered: tuple[dict[str, Any], Path, list[Path]]) -> None:
    results, out, _ = rendered
    checked = 0
    for c in results["cases"]:
        if not c.get("pcap"):
            continue
        path = out / c["pcap"]
        wire_entries = [e for e in c["transcript"] if e.get("dir") in ("in", "out") and e.get("hex")]
        types = _tshark(path, "-Y", "mqtt", "-T", "fields", "-e", "mqtt.msgtype")
        # one MQTT message per transcript packet (the crafted CONNECT is still recognised as CONNECT)
        assert sum(len(t.split(",")) for t in types) == len(wire_entries), c["id"]
        assert _tshark(path, "-Y", "tcp.analysis.flags && !tcp.analysis.window_update") == [], c["id"]
        checked += 1
    assert checked == 9


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pcap_streams_and_fields(rendered: tuple[dict[str, Any], Path, list[Path]]) -> None:
    results, out, _ = rendered
    c = next(c for c in results["cases"] if c["name"] == "test_qos1_forwarded_at_granted_qos")
    path = out / c["pcap"]
    streams = _tshark(path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields", "-e", "tcp.srcport")
    assert len(streams) == len(set(streams)) == 2  # one stream per probe (sub, pub)
    topics = _tshark(path, "-Y", "mqtt.msgtype==3", "-T", "fields", "-e", "mqtt.topic", "-e", "mqtt.qos")
    assert topics == ["conf/t/1\t1", "conf/t/1\t0"]
    fins = _tshark(path, "-Y", "tcp.flags.fin==1", "-T", "fields", "-e", "tcp.srcport")
    assert fins and fins[0] == streams[0]  # "closed by harness": the client port sends the first FIN
    first = _tshark(path, "-c", "1", "-T", "fields", "-e", "frame.time_epoch")[0]
    assert abs(float(first) - 1795579800.0) < 1  # run start 2026-11-25T04:10:00Z + transcript t
    props = _tshark(out / next(x for x in results["cases"] if x["name"] == "test_session_present_clean_start")["pcap"],
                    "-Y", "mqtt.msgtype==2", "-T", "fields", "-e", "mqtt.property_id")
    assert props and props[0]  # decoded as MQTT 5.0 (properties dissected)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pcap_large_packet_is_segmented(tmp_path: Path) -> None:
    v5 = Version.V50
    big = Publish(topic="conf/big", payload=bytes(range(256)) * 20, qos=0)
    results = {"started_at": "2026-11-25T04:10:00+00:00", "cases": [{
        "id": "cases/t.py::test_big[5.0]", "mqtt_version": v5, "verdict": "PASS",
        "transcript": [*_connect_pair(v5, "c1", "big"), wire(0.002, "c1", "out", big, v5, "PUBLISH big"),
                       {"t": 0.003, "probe": "c1", "dir": "close", "summary": "closed by broker",
                        "closed_by": BROKER}],
    }]}
    render_all(results, tmp_path)
    path = tmp_path / results["cases"][0]["pcap"]
    assert len(_tshark(path, "-Y", "tcp.len > 0")) == 2 + 4  # CONNECT, CONNACK, 5120+ bytes in 4 segments
    lengths = _tshark(path, "-Y", "mqtt.msgtype==3", "-T", "fields", "-e", "mqtt.len")
    assert lengths == [str(len(encode(big, v5)) - 3)]  # reassembled into one PUBLISH
    fins = _tshark(path, "-Y", "tcp.flags.fin==1", "-T", "fields", "-e", "tcp.srcport")
    assert fins[0] == "1883"  # "closed by broker"


if __name__ == "__main__":
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    SAMPLE.write_text(json.dumps(build_sample(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {SAMPLE}")
