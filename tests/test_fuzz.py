"""The fuzzer: its grammar and model without a broker, and a seeded campaign against a real mosquitto that
must find nothing beyond mosquitto's known deviations (real brokers only, no mocks)."""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.codec import Parser, Publish
from conformance.codec.version import VERSIONS, Version
from conformance.errors import ConfigError
from conformance.fuzz.campaign import Campaign, CampaignOptions
from conformance.fuzz.common import IgnoreList, check_rules_against_catalogue, is_loopback, resolve_target
from conformance.fuzz.model import BrokerModel, compare, topic_matches
from conformance.fuzz.strategies import ANSWER, CLOSED, GENES, FuzzContext, Valid, build_input, input_st

# mosquitto 2.0.11's known deviations (see fixtures/targets/mosquitto.toml and the cases' evidence), by rule:
MOSQUITTO_KNOWN = [
    "malformed/flags/PINGREQ", "malformed/flags/PUBACK", "malformed/flags/PUBREC", "malformed/flags/PUBCOMP",
    "malformed/trailing-bytes/PINGREQ",
    "malformed/connect/protocol-level",  # 0x84 (and 0x83): its bridge extension accepts them
    "5.0:malformed/remaining-length/non-minimal", "5.0:malformed/connect/non-minimal",
    "5.0:malformed/connect/property/value",  # Authentication Data without Authentication Method accepted
    "5.0:model/subscription-replacement",  # re-subscribing keeps the old No Local / Retain As Published
    "3.1.1:model/overlap-qos",  # one copy at the QoS of the last matching subscription
]
CONTEXTS = [FuzzContext.from_caps(v, "mqttc-fuzz/t", {"topic_alias_maximum": 10, "receive_maximum": 20})
            for v in VERSIONS]


def test_every_rule_cites_statements_of_the_catalogue():
    assert check_rules_against_catalogue() == []


@pytest.mark.parametrize("ctx", CONTEXTS, ids=["3.1.1", "5.0"])
def test_zero_genes_are_the_plainest_packet(ctx):
    inp = build_input(ctx, bytes(GENES))
    assert isinstance(inp.packet, Publish) and inp.packet.topic == "mqttc-fuzz/t/a" and inp.packet.qos == 0
    assert isinstance(inp.mutation, Valid) and inp.expect(ctx).kind == ANSWER


@pytest.mark.parametrize("ctx", CONTEXTS, ids=["3.1.1", "5.0"])
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_input_encodes_and_says_what_the_spec_requires(ctx, data):
    inp = data.draw(input_st(ctx))
    raw = inp.encode(ctx.level)
    expect = inp.expect(ctx)
    assert raw and expect.kind in ("answer", "closed", "tolerate", "connect")
    if expect.kind == ANSWER and inp.phase == "session":  # what we call well-formed, the codec decodes
        items = Parser(ctx.level).feed(raw)
        assert items and all(not isinstance(p, Exception) for _, p in items), (inp.describe(), items)
    if expect.kind == CLOSED:
        assert expect.rule.startswith("malformed/"), expect


# rules whose breach the codec's strict decoder detects by itself: inputs judged under them must not decode
DECODER_CHECKS = ("malformed/flags/", "malformed/publish-qos3", "malformed/utf8", "malformed/null-char",
                  "malformed/topic-wildcard", "malformed/packet-id-zero", "malformed/remaining-length/",
                  "malformed/trailing-bytes/", "malformed/property/unknown", "malformed/property/misplaced",
                  "malformed/property/duplicate", "malformed/property/non-minimal", "malformed/property/length",
                  "malformed/reserved-type", "malformed/connect/reserved-flag", "malformed/connect/length",
                  "malformed/connect/utf8", "malformed/connect/null-char", "malformed/connect/non-minimal",
                  "malformed/connect/flags", "malformed/connect/property/unknown",
                  "malformed/connect/property/misplaced", "malformed/connect/property/duplicate",
                  "malformed/connect/property/length")


@pytest.mark.parametrize("ctx", CONTEXTS, ids=["3.1.1", "5.0"])
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(genes=st.binary(min_size=GENES, max_size=GENES))
def test_inputs_called_malformed_are_malformed_to_the_codec_too(ctx, genes):
    """A cross-check of the oracles: where the strict decoder knows the rule, it must reject the bytes."""
    inp = build_input(ctx, genes)
    expect = inp.expect(ctx)
    if expect.kind != CLOSED or not expect.rule.startswith(DECODER_CHECKS):
        return
    items = Parser(ctx.level).feed(inp.encode(ctx.level))
    assert any(isinstance(p, Exception) for _, p in items), (inp.describe(), expect.rule, items)


@settings(max_examples=100, deadline=None)
@given(genes=st.binary(min_size=GENES, max_size=GENES))
def test_building_is_pure(genes):
    for ctx in CONTEXTS:
        first, second = build_input(ctx, genes), build_input(ctx, genes)
        assert first == second and first.encode(ctx.level) == second.encode(ctx.level)


def test_topic_matching():
    assert topic_matches("a/+/c", "a/b/c") and topic_matches("a/#", "a") and topic_matches("#", "a/b")
    assert topic_matches("+/+", "/x") and not topic_matches("+", "a/b") and not topic_matches("a/+", "a")
    assert not topic_matches("#", "$SYS/x") and topic_matches("$SYS/#", "$SYS/x")


def _pub(topic: str, payload: bytes, qos: int, retain: bool = False) -> Publish:
    return Publish(topic=topic, payload=payload, qos=qos, retain=retain, packet_id=1 if qos else None)


def test_model_overlap_queue_and_retained():
    model = BrokerModel(Version.V311, ["a", "b"])
    assert model.connect("a", clean=False, persistent=True) == (False, [])
    model.subscribe("a", [("t/#", 2, False, False, 0), ("t/x", 0, False, False, 0)], [2, 0])
    live = model.publish("b", "t/x", b"m1", 1, retain=True)["a"]
    assert compare([live], [_pub("t/x", b"m1", 1)]) == []  # one copy at the highest QoS
    assert compare([live], [_pub("t/x", b"m1", 1), _pub("t/x", b"m1", 0)]) == []  # or one per filter
    assert [p.rule for p in compare([live], [_pub("t/x", b"m1", 0)])] == ["model/overlap-qos"]
    assert [p.rule for p in compare([live], [_pub("t/x", b"m1", 1, retain=True)])] == ["model/retain-flag"]
    model.disconnect("a")
    model.publish("b", "t/y", b"m2", 2, retain=False)
    model.publish("b", "t/y", b"m3", 0, retain=False)
    present, queued = model.connect("a", clean=False, persistent=True)
    assert present and [q.message.payload for q in queued] == [b"m2", b"m3"]
    assert [p.rule for p in compare(queued, [])] == ["model/missing-queued"]  # QoS 0 one is optional
    assert compare(queued, [_pub("t/y", b"m2", 2)]) == []
    retained = model.subscribe("a", [("t/x", 1, False, False, 0)], [1])
    assert compare(retained, [_pub("t/x", b"m1", 1, retain=True)]) == []
    assert model.connect("b", clean=True, persistent=False) == (False, [])


def test_ignore_patterns():
    ignore = IgnoreList(["malformed/flags/*", "3.1.1:model/overlap-qos"])
    assert ignore("malformed/flags/PINGREQ", "5.0") and ignore("model/overlap-qos", "3.1.1")
    assert not ignore("model/overlap-qos", "5.0") and not ignore("malformed/utf8", "3.1.1")
    with pytest.raises(ConfigError):
        IgnoreList(["4.0:model/x"])


def test_only_loopback_targets_without_allow_remote():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("192.0.2.1")
    with pytest.raises(ConfigError, match="--allow-remote"):
        resolve_target("mqtt://192.0.2.1:1883", allow_remote=False)
    assert resolve_target("mqtt://192.0.2.1:1883", allow_remote=True).endpoint.port == 1883


def test_cli_refuses_a_remote_target_before_sending_anything(capsys):
    assert main(["fuzz", "--broker", "mqtt://192.0.2.1:1883", "--time-budget", "1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["replay", __file__, "--broker", "mqtt://192.0.2.1:1883"]) == 2


def test_cli_reports_an_unreachable_broker_with_exit_2(capsys, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["fuzz", "--broker", f"mqtt://127.0.0.1:{port}", "--time-budget", "5",
                 "--report-dir", str(tmp_path)]) == 2
    assert "cannot" in capsys.readouterr().err


def test_same_seed_same_inputs(mosquitto):
    target = resolve_target(mosquitto.url("5.0"), False)

    def inputs(seed: int) -> list[list[str]]:
        options = CampaignOptions(versions=("3.1.1", "5.0"), seed=seed, time_budget=60, modes=("packet",),
                                  max_examples=6, ignore=IgnoreList(MOSQUITTO_KNOWN), record_inputs=True)
        campaign = Campaign(resolve_target(target.url, False), options).run()
        assert campaign.findings == []
        return campaign.recorded

    first = inputs(5)
    assert len(first) == 12 and first == inputs(5)
    assert inputs(6) != first


def test_seeded_campaign_against_mosquitto_finds_nothing(mosquitto, tmp_path, capsys):
    """Both versions, packet fuzzing and the stateful model, a fixed seed, a 16 s budget."""
    args = ["fuzz", "--broker", mosquitto.url("5.0"), "--seed", "20261125", "--time-budget", "16",
            "--report-dir", str(tmp_path), "--quiet"]
    for rule in MOSQUITTO_KNOWN:
        args += ["--ignore", rule]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    results = json.loads((tmp_path / "results.json").read_text())
    stats = {(c["id"], c["verdict"]) for c in results["cases"]}
    assert stats == {(f"fuzz::{mode}::{version}", "INFORMATIONAL") for mode in ("packet", "stateful")
                     for version in ("3.1.1", "5.0")}
    assert results["exit_code"] == 0 and results["options"]["fuzz"]["seed"] == 20261125
    assert (tmp_path / "report.html").is_file() and not (tmp_path / "fuzz").exists()
    assert "0 finding(s)" in out


def test_a_stateful_reproducer_replays(mosquitto, tmp_path):
    """Written by hand: mosquitto keeps No Local when an identical filter is subscribed again without it
    (a real deviation of MQTT-3.8.4-3, found by the stateful fuzzer), so the publisher misses its message."""
    doc = {
        "format": "mqtt-conformance-fuzz", "format_version": 1, "mqtt_version": "5.0", "mode": "stateful",
        "kind": "model", "rule": "model/subscription-replacement", "statements": ["MQTT-3.8.4-3"],
        "expected": "", "observed": "", "ignore": [], "seed": 1, "steps": [
            {"action": "connect", "client": "c", "clean": True, "persistent": False},
            {"action": "subscribe", "client": "c", "subscriptions": [["a", 1, True, False, 0]]},
            {"action": "subscribe", "client": "c", "subscriptions": [["a", 1, False, False, 0]]},
            {"action": "publish", "client": "c", "topic": "a", "qos": 1, "retain": False, "empty": False},
        ]}
    path = tmp_path / "model-1.json"
    path.write_text(json.dumps(doc))
    assert main(["replay", str(path), "--broker", mosquitto.url("5.0")]) == 1
    assert main(["replay", str(path), "--broker", mosquitto.url("5.0"), "--ignore", "model/*"]) == 0
