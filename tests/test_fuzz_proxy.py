"""The fault-injecting proxy of the fuzz self-tests, in front of a real mosquitto: it forwards, and its
faults do what they say (drop, replace, delay, close, kill until reset, stall until reset)."""

from __future__ import annotations

import time
import uuid

import pytest
from faulty_proxy import (
    B2C,
    C2B,
    CLOSE,
    DROP,
    KILL,
    STALL,
    Delay,
    FaultyProxy,
    Replace,
    non_minimal_remaining_length,
)

from conformance import (
    BrokerViolation,
    Connack,
    Pingreq,
    Pingresp,
    Probe,
    Publish,
    Raw,
    Suback,
    Subscribe,
    Subscription,
)
from conformance.net import parse_url
from conformance.probe import Timing
from conformance.transcript import Transcript


def _probe(url: str, version: str = "5.0") -> Probe:
    probe = Probe(parse_url(url), version, Transcript(), client_id=f"proxy{uuid.uuid4().hex[:8]}",
                  timing=Timing(response=1.0, connect=2.0))
    return probe


@pytest.fixture
def proxy(mosquitto):  # noqa: ANN001, ANN201
    with FaultyProxy(mosquitto.url("5.0")) as proxy:
        yield proxy


@pytest.mark.parametrize("version", ["3.1.1", "5.0"])
def test_forwards_both_ways_and_sees_packets(proxy, version):
    seen = []
    proxy.set_fault(lambda frame: seen.append((frame.direction, frame.name, frame.conn.level)))
    probe = _probe(proxy.url, version).connect()
    topic = f"proxy/{uuid.uuid4().hex[:8]}"
    probe.subscribe(topic, qos=1)
    probe.publish(topic, b"through", qos=1)
    probe.receive(payload=b"through")
    probe.ping()  # the PUBACK has passed the proxy before the PINGREQ did
    probe.disconnect()
    level = 5 if version == "5.0" else 4
    assert (C2B, "CONNECT", level) in seen and (B2C, "CONNACK", level) in seen
    assert (B2C, "PUBLISH", level) in seen and (C2B, "PUBACK", level) in seen


def test_drop_replace_and_delay(proxy):
    def fault(frame):  # noqa: ANN001, ANN202
        if frame.direction == C2B and frame.name == "PINGREQ":
            frame.conn.state["pings"] = frame.conn.state.get("pings", 0) + 1
            return DROP if frame.conn.state["pings"] == 1 else Delay(0.2)
        if frame.direction == B2C and frame.name == "SUBACK":
            return Replace(frame.raw[:-1] + b"\x80")  # the broker's grant becomes a refusal
        return None

    proxy.set_fault(fault)
    probe = _probe(proxy.url).connect()
    with pytest.raises(BrokerViolation):
        probe.ping(timeout=0.3)  # dropped
    started = time.monotonic()
    probe.ping(timeout=2)  # delayed
    assert time.monotonic() - started >= 0.19
    assert probe.subscribe(f"proxy/{uuid.uuid4().hex[:8]}", qos=1).reason_codes == (0x80,)
    assert [entry[3] for entry in proxy.log] == ["drop", "delay", "replace"]


def test_close_kill_and_reset(proxy):
    proxy.set_fault(lambda frame: CLOSE if frame.name == "PUBLISH" else None)
    probe = _probe(proxy.url).connect()
    probe.send(Publish(topic="proxy/x", payload=b"x"))
    probe.expect_closed(timeout=2)
    assert _probe(proxy.url).connect().connack is not None  # CLOSE ends one connection only

    proxy.set_fault(lambda frame: KILL if frame.direction == C2B and non_minimal_remaining_length(frame.raw) else None)
    bystander = _probe(proxy.url).connect()
    victim = _probe(proxy.url).connect()
    victim.send(Raw(b"\xc0\x80\x00", "PINGREQ, Remaining Length 0 in two bytes"))
    victim.expect_closed(timeout=2)
    bystander.expect_closed(timeout=2)
    late = _probe(proxy.url)
    late.send(late.connect_packet())
    late.expect_closed(timeout=2)  # dead: new connections are closed at once
    proxy.reset()
    assert _probe(proxy.url).connect().connack.reason_code == 0


def test_stall_until_reset(proxy):
    proxy.set_fault(lambda frame: STALL if frame.direction == C2B and frame.name == "SUBSCRIBE" else None)
    probe = _probe(proxy.url).connect()
    probe.send(Pingreq())
    probe.expect(Pingresp)
    probe.send(Subscribe(packet_id=1, subscriptions=(Subscription("proxy/s", 0),)))
    with pytest.raises(BrokerViolation):
        probe.expect(Suback, timeout=0.3)
    fresh = _probe(proxy.url)
    fresh.send(fresh.connect_packet())
    with pytest.raises(BrokerViolation):
        fresh.expect(Connack, timeout=0.3)  # hung: nothing is forwarded, new connections included
    proxy.reset()
    proxy.set_fault(None)
    assert _probe(proxy.url).connect().connack.reason_code == 0
