"""Reusable steps of cases: several packets that many cases need in the same shape.

Steps assert only what they need to proceed; the case asserts what its statement says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..codec import Packet, Properties, Publish, Subscription
from ..probe import Probe
from ..transcript import describe
from ..verdicts import BrokerViolation

MakeProbe = Callable[..., Probe]

# A session that outlives its connection: 3.1.1 needs Clean Session 0, 5.0 also a Session Expiry > 0.
PERSISTENT = {"clean_start": False, "session_expiry": 300}


def leave_session(make_probe: MakeProbe, client_id: str, *filters: str, qos: int = 1) -> None:
    """Connect with a persistent session, subscribe to ``filters`` (if any), disconnect normally."""
    with make_probe(client_id).connect(**PERSISTENT) as first:
        if filters:
            first.subscribe(*filters, qos=qos)


def subscriber(make_probe: MakeProbe, *filters: str | Subscription, qos: int = 0, **connect: Any) -> Probe:
    """A connected probe subscribed to ``filters``."""
    probe = make_probe().connect(**connect)
    probe.subscribe(*filters, qos=qos)
    return probe


def publisher(make_probe: MakeProbe, **connect: Any) -> Probe:
    return make_probe().connect(**connect)


SENTINEL = b"--sentinel--"


def received_before_sentinel(sender: Probe, receiver: Probe, topic: str) -> list[Packet]:
    """Ordered barrier between two clients: ``sender`` publishes a QoS 1 marker on ``topic``, which
    ``receiver`` subscribes to (QoS 1 or more). The broker forwards one publisher's messages in order,
    so what ``receiver`` got before the marker is all it gets of what ``sender`` published before.
    Returns those packets in order; each PUBLISH is acknowledged as it arrives, so that a broker that
    keeps few messages in flight is not stalled by the barrier itself."""
    sender.publish(topic, SENTINEL, qos=1)
    before: list[Packet] = []
    while True:
        packet = receiver.next()
        if packet is None:
            why = "the connection closed" if receiver.closed else "it did not arrive in time"
            raise BrokerViolation(f"sentinel PUBLISH on {topic!r} expected, {why}; received before: "
                                  f"{[describe(p, receiver.level) for p in before]}")
        if isinstance(packet, Publish):
            receiver.ack(packet)
            if packet.topic == topic and packet.payload == SENTINEL:
                return before
        before.append(packet)


def props(**values: Any) -> Properties:
    return Properties(**values)
