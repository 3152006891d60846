"""Steps for MQTT 5.0-only cases: PUBLISH properties, Topic Alias, Message Expiry, flow control and
Maximum Packet Size.

Like ``conformance.steps.common``, a step asserts only what it needs to proceed; the case judges its statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..codec import Disconnect, Packet, Pingresp, Properties, Puback, Publish, Pubrec, encode
from ..codec.errors import HarnessError
from ..codec.reason_codes import reason_name
from ..codec.version import Version
from ..grading import NotDetected, wrong_code
from ..judge import CLOSED, VIOLATION, Expected, classify
from ..probe import Probe
from ..transcript import IN, NOTE
from ..verdicts import BrokerViolation
from .common import first_answer

# Application-message properties a server forwards to subscribers, with values that a careless
# implementation would alter: non-ASCII text, binary with NUL and 0xFF bytes, repeated and empty
# User Property names, and an order that sorting would change.
RESPONSE_TOPIC_SUFFIX = "réponse/ответ/応答"
CORRELATION_DATA = b"\x00\x01corr\xff\xfe\x00"
CONTENT_TYPE = "application/vnd.mqttc+json; charset=utf-8; note=\"ü\""
USER_PROPERTIES = [("z-key", "1"), ("a-key", "2"), ("z-key", "0"), ("m-key", ""), ("", "empty name"),
                   ("ключ", "значение"), ("a-key", "2")]


def codes_text(codes: Iterable[int], packet: str = "DISCONNECT") -> str:
    return ", ".join(f"0x{c:02X} {reason_name(c, packet, 5)}" for c in sorted(codes))


# -- refusing a violating client ---------------------------------------------------------------------
@dataclass
class Refusal:
    """How the server answered a packet that it has to treat as an error."""

    closed: bool
    disconnect: Disconnect | None = None
    answers: list[Packet] = field(default_factory=list)  # packets before the close (or the acceptance)

    @property
    def code(self) -> int | None:
        return None if self.disconnect is None else self.disconnect.reason_code


def refusal(probe: Probe, *, accepted_by: Iterable[type[Packet]] = (Puback, Pubrec),
            allow: tuple[type[Packet], ...] = (), timeout: float | None = None) -> Refusal:
    """Read what follows a violating packet: the connection closing (after a DISCONNECT, or silently),
    or a packet of ``accepted_by`` showing the server took the violating packet as valid (send the
    violating PUBLISH at QoS 1 so that acceptance is a PUBACK, not a wait). ``allow``: packets that
    may come first (acknowledgements of earlier packets). What breaks a rule of its own (a malformed
    packet, a DISCONNECT not followed by the close, another packet) is a violation (conformance.judge)."""
    accepted = tuple(accepted_by)
    seen = first_answer(probe, pass_over=allow, timeout=timeout)
    judgement = classify(seen, Expected(allow=allow))
    last = seen.packets[-1] if seen.packets else None
    if judgement.outcome == VIOLATION:
        raise BrokerViolation(judgement.message)
    if isinstance(last, Packet) and not isinstance(last, (*accepted, *allow, Disconnect)):
        raise BrokerViolation(f"expected the connection to be closed, got {last.name}")
    answers = [p for p in seen.packets if isinstance(p, Packet) and not isinstance(p, Disconnect)]
    return Refusal(judgement.outcome == CLOSED, judgement.disconnect, answers)


def judge_refusal(result: Refusal, codes: set[int], what: str) -> None:
    """Grade a refusal: the connection must close (``NotDetected`` otherwise, graded by
    conformance/grading.py from the statements the case cites), and a DISCONNECT sent first should carry
    one of ``codes`` (4.13.1: a SHOULD; another code is NON-STRICT)."""
    expected = codes_text(codes)
    if not result.closed:
        seen = ", ".join(_show(p) for p in result.answers) or "nothing"
        raise NotDetected(f"{what}: the server kept the connection open (answered {seen}); expected a close "
                          f"({expected})")
    if result.disconnect is not None and result.code not in codes:
        raise wrong_code(f"{what}: the server closed the connection, but its DISCONNECT carried "
                         f"{codes_text([result.code or 0])} instead of {expected}")


def _show(packet: Packet) -> str:
    code = getattr(packet, "reason_code", None)
    return f"{packet.name}" + (f" 0x{code:02X}" if code else "")


def _quota_violation(in_flight: list[Publish], receive_maximum: int) -> BrokerViolation:
    shown = ", ".join(f"{p.payload[:12]!r} (id {p.packet_id})" for p in in_flight)
    return BrokerViolation(f"the server had {len(in_flight)} QoS>0 PUBLISHes unacknowledged ({shown}) with the "
                           f"client's Receive Maximum at {receive_maximum}")


def take_until_barrier(probe: Probe, in_flight: list[Publish], receive_maximum: int) -> list[Packet]:
    """Read up to a PINGREQ barrier (``Probe.barrier``): each QoS>0 PUBLISH joins ``in_flight`` (not
    acknowledged), which must never exceed ``receive_maximum``. Returns the other packets read."""
    others: list[Packet] = []
    for packet in probe.barrier():
        if isinstance(packet, Publish) and packet.qos > 0:
            in_flight.append(packet)
            if len(in_flight) > receive_maximum:
                raise _quota_violation(in_flight, receive_maximum)
        else:
            others.append(packet)
    return others


def receive_within_quota(probe: Probe, total: int, receive_maximum: int,
                         in_flight: list[Publish] | None = None) -> list[Publish]:
    """Receive ``total`` QoS 1 PUBLISHes while acknowledging them one at a time, oldest first, and check
    that the unacknowledged ones never exceed ``receive_maximum``. The server may keep fewer in flight
    (even one at a time), but with nothing in flight it must send the next one. ``in_flight``: PUBLISHes
    already received and not acknowledged. Returns every PUBLISH received, in order."""
    in_flight = list(in_flight or [])
    received = list(in_flight)
    while len(received) < total or in_flight:
        if not in_flight:
            first = probe.expect(Publish)  # nothing in flight and messages pending: one must come
            in_flight.append(first)
            received.append(first)
        count = len(in_flight)
        take_until_barrier(probe, in_flight, receive_maximum)
        received += in_flight[count:]
        probe.send(Puback(packet_id=in_flight.pop(0).packet_id or 0))
    return received


# -- server -> client Topic Aliases -------------------------------------------------------------------
class AliasResolver:
    """The client side of the server's Topic Alias mappings on one Network Connection.

    ``resolve`` returns the topic a PUBLISH from the server stands for and checks every rule a sender
    of aliases must keep: alias 1..``maximum`` (none at all when ``maximum`` is 0), and a zero-length
    Topic Name only with an alias mapped earlier on this connection."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.mapping: dict[int, str] = {}
        self.used: list[int] = []

    def new_connection(self, maximum: int | None = None) -> None:
        self.mapping.clear()
        if maximum is not None:
            self.maximum = maximum

    def resolve(self, publish: Publish) -> str:
        alias = publish.properties.get("topic_alias")
        if alias is None:
            if not publish.topic:
                raise BrokerViolation("the server sent a PUBLISH with an empty Topic Name and no Topic Alias")
            return publish.topic
        self.used.append(alias)
        if self.maximum == 0:
            raise BrokerViolation(f"the server sent Topic Alias {alias} to a client that accepts no Topic Aliases")
        if alias == 0:
            raise BrokerViolation("the server sent Topic Alias 0")
        if alias > self.maximum:
            raise BrokerViolation(f"the server sent Topic Alias {alias}, above the client's maximum {self.maximum}")
        if publish.topic:
            self.mapping[alias] = publish.topic
            return publish.topic
        if alias not in self.mapping:
            raise BrokerViolation(
                f"the server sent Topic Alias {alias} with an empty Topic Name before mapping it on this connection"
            )
        return self.mapping[alias]


# -- sizes ---------------------------------------------------------------------------------------------
def received_sizes(probe: Probe) -> list[tuple[int, Packet | None]]:
    """(size in bytes, packet) of everything ``probe`` received, from the wire transcript."""
    return [(len(e.data), e.packet if isinstance(e.packet, Packet) else None)
            for e in probe.transcript.events if e.probe == probe.name and e.dir == IN]


def assert_within(probe: Probe, limit: int) -> None:
    """Every packet the probe received is at most ``limit`` bytes."""
    for size, packet in received_sizes(probe):
        if size > limit:
            name = packet.name if packet is not None else "a packet"
            raise BrokerViolation(f"the server sent {name} of {size} bytes to a client whose Maximum Packet "
                                  f"Size is {limit}")


def sized_publish(topic: str, size: int, *, qos: int = 0, packet_id: int | None = None,
                  properties: Properties | None = None, fill: bytes = b"x") -> Publish:
    """A PUBLISH whose encoded size (fixed header included) is exactly ``size`` bytes."""
    base = Publish(topic=topic, payload=b"", qos=qos, packet_id=packet_id, properties=properties or Properties())
    payload_len = size - len(encode(base, Version.V50))
    for _ in range(4):  # a longer payload can lengthen the Remaining Length field itself
        if payload_len < 0:
            break
        candidate = Publish(topic=topic, payload=(fill * (payload_len + 1))[:payload_len], qos=qos,
                            packet_id=packet_id, properties=base.properties)
        actual = len(encode(candidate, Version.V50))
        if actual == size:
            return candidate
        payload_len -= actual - size
    raise HarnessError(f"cannot build a PUBLISH of exactly {size} bytes on topic {topic!r}")


# -- time ---------------------------------------------------------------------------------------------
def idle(probe: Probe, seconds: float, why: str) -> None:
    """Let ``seconds`` pass for a broker timer while keeping ``probe``'s connection busy-free: anything
    but a PINGRESP arriving meanwhile is unexpected. The wait is recorded in the transcript."""
    probe.transcript.add(probe.name, NOTE, note=f"waiting {seconds:.2f} s: {why}")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        packet = probe.next(timeout=remaining)
        if packet is None:
            if probe.closed is not None:
                raise BrokerViolation(f"the broker closed the connection while we waited ({why})")
            continue
        if not isinstance(packet, Pingresp):
            raise BrokerViolation(f"unexpected {getattr(packet, 'name', packet)} while waiting ({why})")


def start_of_a_second(probe: Probe, offset: float = 0.02) -> None:
    """Wait (on ``probe``'s connection) until just after the wall clock turns to a new second.

    Message expiry is counted in whole seconds, and a server may keep time at that resolution: then a
    message published at a random point in a second expires up to 1 s later than its interval says,
    by chance. Publishing right after a second begins shows such a coarse timer every time instead."""
    fraction = time.time() % 1.0
    wait = (offset - fraction) % 1.0
    if wait > 0:
        idle(probe, wait, "until the wall clock starts a new second")


def props(**values: Any) -> Properties:
    return Properties(**values)
