"""The probe against a real mosquitto: expectations, bounded waits, barriers, transcripts."""

from __future__ import annotations

import time
import uuid

import pytest

from conformance import BrokerGone, BrokerViolation, Connack, Probe, Publish, Suback, craft
from conformance.net import parse_url
from conformance.transcript import Transcript


@pytest.fixture(params=["3.1.1", "5.0"])
def make(request, mosquitto):  # noqa: ANN001, ANN201
    transcript = Transcript()
    probes: list[Probe] = []

    def factory(**kwargs) -> Probe:  # noqa: ANN003
        probe = Probe(parse_url(mosquitto.url(request.param)), request.param, transcript,
                      client_id=f"selftest{uuid.uuid4().hex[:8]}", **kwargs)
        probes.append(probe)
        return probe

    factory.transcript = transcript  # type: ignore[attr-defined]
    yield factory
    for probe in probes:
        probe.close()


def test_expect_reports_expected_and_actual(make):
    probe = make()
    probe.send(probe.connect_packet())
    with pytest.raises(BrokerViolation) as err:
        probe.expect(Suback)
    assert "expected SUBACK" in str(err.value) and "got CONNACK" in str(err.value)


def test_expect_checks_fields_partially(make):
    probe = make()
    probe.send(probe.connect_packet())
    with pytest.raises(BrokerViolation, match=r"session_present=False \(expected True\)"):
        probe.expect(Connack, reason_code=0, session_present=True)


def test_expect_is_bounded(make):
    probe = make().connect()
    started = time.monotonic()
    with pytest.raises(BrokerViolation, match="nothing arrived within 0.2 s"):
        probe.expect(Publish, timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_expect_closed_sees_the_broker_close(make):
    probe = make().connect()
    probe.send(craft(Publish("selftest/q3", b"x", qos=1, packet_id=1), qos_bits=3))
    closed = probe.expect_closed(timeout=2)
    assert closed.elapsed < 2


def test_expect_closed_fails_when_connection_stays_open(make):
    probe = make().connect()
    with pytest.raises(BrokerViolation, match="kept the connection open"):
        probe.expect_closed(timeout=0.2)


def test_expect_nothing_uses_a_ping_barrier(make):
    probe = make().connect()
    probe.expect_nothing()
    topic = f"selftest/{uuid.uuid4().hex}"
    probe.subscribe(topic)
    probe.send(Publish(topic, b"echo"))
    with pytest.raises(BrokerViolation, match="expected nothing before the PINGRESP barrier, got PUBLISH"):
        probe.expect_nothing()
    kinds = [e.summary().split()[0] for e in make.transcript.events if e.dir in ("in", "out")]
    assert "PINGREQ" in kinds and "PINGRESP" in kinds


def test_barrier_returns_what_came_before_the_pingresp(make):
    probe = make().connect()
    topic = f"selftest/{uuid.uuid4().hex}"
    probe.subscribe(topic)
    for n in range(3):
        probe.send(Publish(topic, str(n).encode()))
    assert [p.payload for p in probe.barrier()] == [b"0", b"1", b"2"]
    assert probe.barrier() == [] and not probe.inbox


def test_read_is_bounded_and_restart_clock_counts_from_now(make):
    probe = make().connect()
    started = time.monotonic()
    assert probe.read(started + 0.2) is False and not probe.inbox  # nothing due: timed out
    assert time.monotonic() - started < 1.0
    probe.restart_clock()
    probe.send(craft(Publish("selftest/q3", b"x", qos=1, packet_id=1), qos_bits=3))
    assert probe.expect_closed().elapsed < 1.0


def test_collect_until_keeps_order(make):
    probe = make().connect()
    topic = f"selftest/{uuid.uuid4().hex}"
    probe.subscribe(topic, qos=1)
    for n in range(3):
        probe.send(Publish(topic, str(n).encode()))
    before, marker = probe.collect_until(Publish, payload=b"2")
    assert [p.payload for p in before] == [b"0", b"1"] and marker.payload == b"2"


def test_transcript_masks_the_password(make):
    probe = make(username="alice", password="s3cret-pw")
    probe.send(probe.connect_packet())
    probe.next()
    text = make.transcript.text() + repr(make.transcript.to_json())
    assert "s3cret-pw" not in text and b"s3cret-pw".hex() not in text


def test_unreachable_broker_is_broker_gone_not_fail():
    probe = Probe(parse_url("mqtt://127.0.0.1:1"), "5.0", Transcript())
    with pytest.raises(BrokerGone):
        probe.connect()
