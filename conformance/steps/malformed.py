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

The reaction is classified by conformance.judge (shared with the other judges and the fuzzer); this
module collects it and maps the outcome to a verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..codec import Packet, Properties, Puback, Pubcomp, Publish, Pubrec, Pubrel, raw_string
from ..codec.utf8 import SURROGATES
from ..codec.wire import encode_varint
from ..grading import NotDetected, wrong_code
from ..judge import ACCEPTED, FORBIDDEN, OPTIONAL, REFUSED, VIOLATION, Expected, classify, sealed
from ..probe import Closed, Probe, Sendable
from ..verdicts import BrokerViolation, Unsupported

MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
MALFORMED_OR_PROTOCOL = frozenset({MALFORMED, PROTOCOL_ERROR})  # the two general 5.0 error codes
TOPIC_NAME_INVALID = 0x90

SURROGATE = SURROGATES["surrogate-d800"]
NULL = b"\x00"
BOM = "\ufeff"  # encoded EF BB BF


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


def _judge(probe: Probe, codes: set[int], connecting: bool, timeout: float | None) -> tuple[Closed, str]:
    """Wait for the close and judge it (conformance.judge); raise BrokerViolation for what breaks a MUST
    and NotDetected for a connection kept; return the close and, if the reason code was not one the spec
    gives, the NON-STRICT complaint."""
    # 3.1.1 has no error packets: a broken CONNECT is refused by closing without a CONNACK (3.1.4-1).
    expected = Expected(frozenset(codes), connecting=connecting, connack=OPTIONAL if probe.v5 else FORBIDDEN)
    # On an accepted connection a PINGREQ follows the broken packet: a broker that answers it has read
    # past the broken packet without closing, so the wait can end a short grace later. (Before CONNACK a
    # PINGREQ would be an error of its own, so none is sent there.)
    barrier = not connecting and probe.connack is not None
    probe.awaiting = "the broker to close the connection"
    judgement = classify(probe.reaction(timeout, barrier=barrier, stop=lambda seen: sealed(seen, expected)),
                         expected)
    if judgement.outcome in (ACCEPTED, REFUSED):
        raise NotDetected(judgement.message)
    if judgement.outcome == VIOLATION or probe.closed is None:
        raise BrokerViolation(judgement.message)
    closed = Closed(probe.closed.elapsed, judgement.disconnect, probe.closed.reset)
    return closed, "" if judgement.code_ok else judgement.message


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
_ACK_QOS: dict[type[Packet], int] = {Puback: 1, Pubrec: 2, Pubrel: 2, Pubcomp: 2}


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
