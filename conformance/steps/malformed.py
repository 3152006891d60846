"""Steps for malformed packets and protocol errors: bad values to force into a field, and the judge
of the broker's reaction.

The judge, ``expect_rejected``, holds the broker to what both versions require of a server that
receives a broken packet, and to what 5.0 adds about the reason code:

- the connection MUST close (3.1.1 4.8.0-1 and the statement of each rule, 5.0 4.13.1-1): if it
  stays open, ``NotDetected``, graded by conformance/grading.py (FAIL, or NON-STRICT for a 5.0 error
  only 4.13.1-1 names);
- nothing may answer the broken packet first (a PUBACK, a SUBACK, a PINGRESP ...): FAIL, the broker
  processed it;
- 3.1.1 has no error packets: a CONNACK for a broken CONNECT is a FAIL (3.1.4-1: close *without*
  CONNACK);
- 5.0: before closing the server SHOULD send a DISCONNECT (for a broken CONNECT it MAY send a CONNACK
  instead) carrying the reason code the spec gives for the error, 0x81 Malformed Packet or 0x82
  Protocol Error unless a more specific one applies. A silent close meets every numbered statement:
  PASS. A code the spec does not give for this error is NON-STRICT (the close was right, the
  explanation wrong). A CONNACK that accepts the broken CONNECT is a FAIL, and so is a DISCONNECT
  before any successful CONNACK (3.14.0-1 forbids it). Whatever error packet comes, the close must
  follow (4.13.2-1).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..codec import (
    Connack,
    Disconnect,
    MalformedPacket,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    raw_string,
    reason_name,
)
from ..codec.utf8 import SURROGATES
from ..codec.wire import encode_varint
from ..grading import NotDetected, wrong_code
from ..probe import Closed, Probe, Sendable
from ..transcript import describe
from ..verdicts import BrokerViolation, Unsupported

MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
TOPIC_NAME_INVALID = 0x90

SURROGATE = SURROGATES["surrogate-d800"]
NULL = b"\x00"
BOM = "\ufeff"  # encoded EF BB BF
CLOSE_GRACE = 0.5  # how long a close may lag behind the broker's answer to a PINGREQ sent after the bad packet


def string_with(bad: bytes, text: str) -> bytes:
    """A length-prefixed string: ``text`` with the bytes ``bad`` in its middle (not at an edge, where a
    lenient decoder might trim them)."""
    half = len(text) // 2
    return raw_string(text[:half].encode() + bad + text[half:].encode())


def property_bytes(*items: tuple[int, bytes], length: int | None = None, length_bytes: bytes | None = None
                   ) -> bytes:
    """A property block written byte by byte: (identifier, value bytes) pairs, each identifier a
    minimal Variable Byte Integer; ``length`` / ``length_bytes`` force the Property Length."""
    body = b"".join(encode_varint(ident) + value for ident, value in items)
    if length_bytes is None:
        length_bytes = encode_varint(len(body) if length is None else length)
    return length_bytes + body


def raw_properties(*items: tuple[int, bytes]) -> Properties:
    """Properties sent verbatim: (identifier, value bytes) pairs, duplicates and unknown ids kept."""
    return Properties.of(list(items))


def _codes_text(codes: Iterable[int]) -> str:
    return " or ".join(f"0x{c:02X} ({reason_name(c, 'DISCONNECT', 5)})" for c in sorted(codes))


def _judge(probe: Probe, expected: set[int], connecting: bool, timeout: float | None) -> tuple[Closed, str]:
    """Wait for the close; raise BrokerViolation for what breaks a MUST; return the close and, if the
    reason code was not one the spec gives, the NON-STRICT complaint."""
    wait = probe.timing.response if timeout is None else timeout
    deadline = time.monotonic() + wait
    # On an accepted connection a PINGREQ follows the broken packet: a broker that answers it has read
    # past the broken packet without closing, so the wait can end a short grace later. (Before CONNACK a
    # PINGREQ would be an error of its own, so none is sent there.)
    barrier = not connecting and probe.connack is not None and probe.closed is None
    if barrier:
        probe.send(Pingreq(), note="barrier: a broker that closes does not answer this")
    answers: list[Packet] = []
    pingresps = 0
    while True:
        item = probe.next(max(0.0, deadline - time.monotonic()), strict=False)
        if item is None:
            break
        if isinstance(item, MalformedPacket):
            raise BrokerViolation(f"the broker answered with a malformed packet: {item}")
        if barrier and isinstance(item, Pingresp):
            pingresps += 1
            deadline = min(deadline, time.monotonic() + CLOSE_GRACE)
            if pingresps == 1:
                continue  # the barrier's answer; a second PINGRESP answered the broken packet itself
        answers.append(item)
    seen = ", ".join(describe(p, probe.level) for p in answers)
    accepted = connecting and any(isinstance(p, Connack) and p.reason_code < 0x80 for p in answers)
    if probe.closed is None and accepted:
        raise NotDetected(f"the broker accepted the broken CONNECT ({seen}) and kept the connection open")
    if probe.closed is None:
        raise NotDetected(
            "the broker kept the connection open after the broken packet"
            + (f"; it sent {seen}" if seen else "")
            + ("; it answered a PINGREQ sent after it" if pingresps else f" (no close within {wait:.1f} s)")
        )
    closed = probe.closed
    if not answers:
        return closed, ""

    first, rest = answers[0], answers[1:]
    if not probe.v5:
        if connecting and isinstance(first, Connack):
            raise BrokerViolation(f"the broker sent {seen} before closing; a CONNECT that does not conform "
                                  "must be refused by closing the connection without a CONNACK")
        raise BrokerViolation(f"the broker answered the broken packet with {seen} before closing")
    if rest:
        after_disconnect = isinstance(first, Disconnect) and " (MQTT-3.14.4-1: nothing may follow a DISCONNECT)"
        raise BrokerViolation(f"the broker sent {seen} before closing; at most one "
                              f"{'CONNACK' if connecting else 'DISCONNECT'} may come first{after_disconnect or ''}")
    if connecting and isinstance(first, Disconnect):
        raise BrokerViolation(f"the broker sent {seen} without a successful CONNACK first; a server sends "
                              "DISCONNECT only after accepting the connection (MQTT-3.14.0-1)")
    if connecting and isinstance(first, Connack):
        if first.reason_code < 0x80:
            raise BrokerViolation(f"the broker accepted the broken CONNECT ({seen}), then closed")
    elif not isinstance(first, Disconnect):
        raise BrokerViolation(f"the broker answered the broken packet with {seen} before closing")
    closed = Closed(closed.elapsed, first if isinstance(first, Disconnect) else None, closed.reset)
    if first.reason_code in expected:
        return closed, ""
    return closed, (f"the broker closed the connection (required) after {seen}; the spec gives "
                    f"{_codes_text(expected)} for this error")


def expect_rejected(probe: Probe, *codes: int, connecting: bool = False, timeout: float | None = None) -> Closed:
    """The broker must close the connection because of the packet just sent. ``codes`` are the reason
    codes the spec gives for the error (5.0; default 0x81 Malformed Packet); ``connecting`` says the
    error is in (or before) the CONNECT, so no connection was accepted yet."""
    closed, complaint = _judge(probe, set(codes) or {MALFORMED}, connecting, timeout)
    if complaint:
        raise wrong_code(complaint)
    return closed


@contextmanager
def rejected(probe: Probe, *codes: int, connecting: bool = False) -> Iterator[Closed]:
    """``expect_rejected`` for a case with more to check after the close (a Will, a subscriber that must
    get nothing): a wrong reason code is reported only once the block's own checks have passed."""
    closed, complaint = _judge(probe, set(codes) or {MALFORMED}, connecting, None)
    yield closed
    if complaint:
        raise wrong_code(complaint)


def reject(probe: Probe, item: Sendable, *codes: int, connecting: bool = False) -> Closed:
    """Send ``item`` (packet, crafted packet or bytes) and judge the broker's reaction with
    ``expect_rejected``."""
    probe.send(item)
    return expect_rejected(probe, *codes, connecting=connecting)


# -- getting a connection to the point where a given acknowledgement is due -----------------------------
_ACK_QOS = {Puback: 1, Pubrec: 2, Pubrel: 2, Pubcomp: 2}


def ack_due(probe: Probe, topic: str, kind: type[Packet], capabilities: dict[str, Any]) -> int:
    """Bring the connected ``probe`` to the point where it owes the broker a ``kind`` (Puback, Pubrec,
    Pubrel or Pubcomp) and return that packet identifier, so that a broken acknowledgement is judged in
    a flow where a good one would be expected. UNSUPPORTED if the target's Maximum QoS is too low."""
    qos = _ACK_QOS[kind]
    if capabilities.get("maximum_qos", 2) < qos:
        raise Unsupported(f"a {kind.__name__.upper()} needs QoS {qos}; the target's Maximum QoS is "
                          f"{capabilities.get('maximum_qos')}")
    if kind is Pubrel:  # our QoS 2 PUBLISH; the broker's PUBREC makes our PUBREL due
        packet_id = probe.packet_id()
        probe.send(Publish(topic=topic, payload=b"due", qos=2, packet_id=packet_id))
        probe.expect(Pubrec, packet_id=packet_id)
        return packet_id
    probe.subscribe(topic, qos=qos)
    probe.publish(topic, b"due", qos=qos)
    delivery = probe.wait_for(Publish, topic=topic)
    if delivery.qos != qos or delivery.packet_id is None:
        raise BrokerViolation(f"subscribed and published at QoS {qos}, the delivery came at QoS {delivery.qos}")
    if kind is Pubcomp:
        probe.send(Pubrec(packet_id=delivery.packet_id))
        probe.wait_for(Pubrel, packet_id=delivery.packet_id)
    return delivery.packet_id
