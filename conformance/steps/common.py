"""Reusable steps of cases: several packets that many cases need in the same shape.

Steps assert only what they need to proceed; the case asserts what its statement says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..codec import Disconnect, MalformedPacket, Packet, Properties, Publish, Subscription
from ..judge import Reaction
from ..probe import Probe
from ..transcript import describe
from ..verdicts import BrokerViolation

MakeProbe = Callable[..., Probe]

# A session that outlives its connection: 3.1.1 needs Clean Session 0, 5.0 also a Session Expiry > 0.
PERSISTENT: dict[str, Any] = {"clean_start": False, "session_expiry": 300}


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


# -- the two barriers ------------------------------------------------------------------------------------
# To prove that nothing arrived on one connection: ``probe.expect_nothing()`` (the PINGREQ barrier,
# ``Probe.barrier``). To collect what one client's publications brought another: ``delivered`` (the
# sentinel barrier). Never a sleep.
SENTINEL = b"--sentinel--"
SENTINEL_LIMIT = 30.0  # the longest the sentinel is awaited while other messages keep coming


def delivered(sender: Probe, receiver: Probe, topic: str, *, wide: bool = False) -> list[Publish]:
    """The sentinel barrier: ``sender`` publishes a QoS 1 sentinel on ``topic`` after the messages under
    test, and ``receiver`` (subscribed to ``topic`` at QoS 1 or 2) collects until it arrives. A broker
    forwards one sender's messages in order, so what came before the sentinel is all ``receiver`` gets of
    what ``sender`` published before it. See ``until_sentinel``."""
    sender.publish(topic, SENTINEL, qos=1)
    return until_sentinel(receiver, topic, wide=wide)


def until_sentinel(receiver: Probe, topic: str, *, payload: bytes = SENTINEL, wide: bool = False,
                   limit: float = SENTINEL_LIMIT) -> list[Publish]:
    """The receiving side of the sentinel barrier (for a sentinel the case publishes itself, or one
    ``delivered`` already took on another receiver): the PUBLISHes ``receiver`` gets before the PUBLISH
    on ``topic`` with ``payload``, which is taken and left out. Each is acknowledged as it arrives, so
    that a server keeping few messages in flight is not stalled by the barrier itself. Each packet must
    come within the response timeout, all of them within ``limit``; another packet than a PUBLISH, or a
    close, is a violation. ``wide``: the subscription also catches other cases' traffic ('#'), so a
    malformed packet is passed over (judging it is the business of the case that provoked it)."""
    deadline = time.monotonic() + limit
    got: list[Publish] = []
    while (remaining := deadline - time.monotonic()) > 0:
        packet = receiver.next(min(receiver.timing.response, remaining), strict=not wide)
        if packet is None:
            why = "the broker closed the connection" if receiver.closed else "it did not arrive in time"
            raise BrokerViolation(f"{receiver.name}: expected the sentinel PUBLISH on {topic!r}, {why}; "
                                  f"received before it: {shown(got)}")
        if isinstance(packet, MalformedPacket):
            continue
        if not isinstance(packet, Publish):
            raise BrokerViolation(f"{receiver.name}: unexpected {describe(packet, receiver.level)} while "
                                  f"waiting for the sentinel on {topic!r}")
        receiver.ack(packet)
        if packet.topic == topic and packet.payload == payload:
            return got
        got.append(packet)
    raise BrokerViolation(f"{receiver.name}: no sentinel on {topic!r} within {limit:.0f} s; received "
                          f"{len(got)} other messages")


def until_barrier(probe: Probe, timeout: float | None = None, *, wide: bool = False) -> list[Publish]:
    """The PUBLISHes ``probe`` receives before the PINGREQ barrier (``Probe.barrier``), acknowledged;
    another packet is a violation. ``wide``: as for ``until_sentinel``."""
    before = probe.barrier(timeout, strict=not wide)
    for packet in before:
        if not isinstance(packet, Publish):
            raise BrokerViolation(f"unexpected {describe(packet, probe.level)} before the PINGRESP barrier")
        probe.ack(packet)
    return [p for p in before if isinstance(p, Publish)]


def shown(packets: Iterable[Publish]) -> str:
    items = [f"{p.topic!r} {p.payload!r} qos={p.qos} retain={int(p.retain)}" for p in packets]
    return "[" + ", ".join(items) + "]" if items else "nothing"


# -- the reaction to a bad packet, for conformance.judge ---------------------------------------------------
def first_answer(probe: Probe, *, pass_over: tuple[type[Packet], ...] = (), ack: bool = False,
                 timeout: float | None = None) -> Reaction:
    """The broker's answer to the packet just sent: its first packet not of a ``pass_over`` type (those
    stay in the reaction), or the close, or nothing within the timeout; no barrier. ``ack`` instead:
    PUBLISHes (routed or retained messages) are acknowledged and left out, each starting a new wait.
    After a DISCONNECT it also takes what follows up to the close, with ``Probe.reaction``'s default
    barrier; a further packet ends the wait (nothing may follow a DISCONNECT)."""
    while True:
        seen = probe.reaction(timeout, barrier=False, stop=lambda seen: not isinstance(seen.packets[-1], pass_over))
        last = seen.packets[-1] if seen.packets else None
        if not (ack and isinstance(last, Publish)):
            break
        probe.ack(last)
    if isinstance(last, Disconnect):
        rest = probe.reaction(stop=lambda after: True)
        seen = replace(rest, packets=seen.packets + rest.packets)
    return seen


def props(**values: Any) -> Properties:
    return Properties(**values)
