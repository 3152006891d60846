"""Steps for PUBLISH and delivery cases: persistent subscribers that leave messages unacknowledged,
resumed sessions, pipelined publishing, reason-code and overlapping-delivery checks.

Steps assert only what they need to proceed; the case asserts what its statement says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..codec import (
    HarnessError,
    Packet,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscription,
)
from ..codec.reason_codes import ALLOWED_50, REASON_50
from ..probe import Probe
from ..setup_steps import ANSWER_STEPS, SESSION_RESUMED, PreconditionFailed
from ..transcript import IN, NOTE
from ..verdicts import BrokerViolation
from .common import PERSISTENT, MakeProbe, delivered, until_barrier


def note(probe: Probe, text: str) -> None:
    """Write an observation into the case's transcript (shown in every report)."""
    probe.transcript.add(probe.name, NOTE, note=text)


# -- persistent sessions and redelivery ----------------------------------------------------------
def persistent_subscriber(make_probe: MakeProbe, client_id: str, *filters: str | Subscription,
                          qos: int = 1) -> Probe:
    """A probe connected with a session that outlives the connection, subscribed to ``filters``."""
    probe = make_probe(client_id).connect(**PERSISTENT)
    probe.subscribe(*filters, qos=qos)
    return probe


def resume(make_probe: MakeProbe, client_id: str) -> Probe:
    """Reconnect ``client_id`` to its stored session (Clean Session / Clean Start 0). The server must
    have kept the session, or nothing about resending can be judged."""
    probe = make_probe(client_id).connect(**PERSISTENT)
    assert probe.connack is not None
    if not probe.connack.session_present:
        raise PreconditionFailed("reconnected with Clean Session/Clean Start 0 to a session stored a moment "
                                 "before, but CONNACK says Session Present 0: the server dropped the session",
                                 [SESSION_RESUMED])
    return probe


def take_unacked(probe: Probe, count: int, **fields: object) -> list[Publish]:
    """The next ``count`` packets must be PUBLISHes matching ``fields``; none is acknowledged."""
    return [probe.expect(Publish, **fields) for _ in range(count)]  # type: ignore[arg-type]


def take_available(probe: Probe, **fields: object) -> list[Publish]:
    """At least one PUBLISH matching ``fields``, then every PUBLISH that arrives before a PINGREQ
    barrier (``Probe.barrier``); none is acknowledged. A server may hold messages back until earlier
    ones are acknowledged, so this is what it has in flight now."""
    got = [probe.expect(Publish, **fields)]  # type: ignore[arg-type]
    for packet in probe.barrier():
        if not isinstance(packet, Publish):
            raise BrokerViolation(f"unexpected {packet.name} while receiving publications")
        got.append(packet)
    return got


class OpenFlows:
    """Receive QoS 1 and 2 deliveries keeping as many flows open as the server allows, to see which
    packet identifiers it uses while others are still in use.

    Each round takes what has arrived (up to a PINGREQ barrier) and answers: PUBACK for QoS 1, PUBREC
    for QoS 2. PUBRELs are held (their identifiers stay in use) and answered with PUBCOMP only when a
    round brings no new PUBLISH, since a server may wait for a free slot. ``reused`` lists the PUBLISHes
    that arrived with an identifier still in use; ``trace`` every packet received, in order.
    """

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.in_use: dict[int, str] = {}  # packet id -> "publish" | "pubrec" | "pubrel"
        self.trace: list[Packet] = []
        self.reused: list[Publish] = []
        self.received: list[Publish] = []

    def receive(self, count: int) -> list[Publish]:
        """Receive ``count`` more PUBLISHes; return them."""
        start = len(self.received)
        while len(self.received) - start < count:
            batch = self._batch(count - (len(self.received) - start))
            new = [p for p in batch if isinstance(p, Publish)]
            for packet in batch:
                self._track(packet)
            for publish in new:
                packet_id = publish.packet_id or 0
                if publish.qos == 1:
                    self.probe.send(Puback(packet_id=packet_id))
                    self.in_use.pop(packet_id, None)
                elif publish.qos == 2:
                    self.probe.send(Pubrec(packet_id=packet_id))
                    self.in_use[packet_id] = "pubrec"
            if not new:
                self._release()
        return self.received[start:]

    def settle(self) -> None:
        """Wait for the PUBREL of every QoS 2 flow we answered with PUBREC; hold them."""
        while any(stage == "pubrec" for stage in self.in_use.values()):
            packet = self.probe.next()
            if packet is None:
                waiting = sorted(i for i, s in self.in_use.items() if s == "pubrec")
                raise BrokerViolation(f"no PUBREL for packet identifiers {waiting}")
            if isinstance(packet, Publish):
                raise BrokerViolation(f"unexpected PUBLISH while waiting for PUBRELs: {packet}")
            self._track(packet)

    def finish(self) -> None:
        """Complete every open flow."""
        self.settle()
        self._release()
        self.probe.expect_nothing()

    def _batch(self, missing: int) -> list[Packet]:
        batch = self.probe.barrier()
        if batch:
            return batch
        if self._release():
            return []
        first = self.probe.next()
        if first is None:
            why = "the broker closed the connection" if self.probe.closed else "none arrived"
            raise BrokerViolation(f"{missing} more publications expected; {why}")
        return [first, *self.probe.barrier()]

    def _track(self, packet: Packet) -> None:
        self.trace.append(packet)
        if isinstance(packet, Publish):
            self.received.append(packet)
            if packet.qos:
                if packet.packet_id in self.in_use:
                    self.reused.append(packet)
                self.in_use[packet.packet_id or 0] = "publish"
        elif isinstance(packet, Pubrel):
            self.in_use[packet.packet_id] = "pubrel"
        else:
            raise BrokerViolation(f"unexpected {packet.name} while receiving publications")

    def _release(self) -> bool:
        held = [i for i, stage in self.in_use.items() if stage == "pubrel"]
        for packet_id in held:
            self.probe.send(Pubcomp(packet_id=packet_id))
            del self.in_use[packet_id]
        return bool(held)


# -- sentinels ------------------------------------------------------------------------------------
def received_around_sentinel(sender: Probe, receiver: Probe, topic: str) -> list[Publish]:
    """The sentinel barrier (``steps.common.delivered``) for messages whose order relative to the
    sentinel the spec does not fix (retained messages sent because of a new subscription may trail a
    later publication): the PUBLISHes before the sentinel, plus those on other topics than ``topic``
    that arrive before a PINGREQ barrier after it; all acknowledged."""
    got = delivered(sender, receiver, topic)
    return got + [p for p in until_barrier(receiver) if p.topic != topic]


# -- publishing ------------------------------------------------------------------------------------
def publish_pipelined(probe: Probe, messages: Sequence[tuple[str, bytes, int]]) -> dict[int, Packet]:
    """Send every (topic, payload, qos) back to back without waiting for acknowledgements (within the
    server's Receive Maximum in 5.0), completing each QoS flow as its acknowledgement arrives (PUBREL in
    PUBREC order, as a client must). Returns the final acknowledgement (PUBACK, PUBCOMP, or an error
    PUBREC) per packet identifier."""
    window = 65535
    if probe.v5 and probe.connack is not None:
        window = probe.connack.properties.get("receive_maximum", 65535)
    pending: dict[int, int] = {}
    done: dict[int, Packet] = {}
    for topic, payload, qos in messages:
        while qos and len(pending) >= window:
            _complete_one(probe, pending, done)
        packet_id = probe.packet_id() if qos else None
        probe.send(Publish(topic=topic, payload=payload, qos=qos, packet_id=packet_id))
        if packet_id is not None:
            pending[packet_id] = qos
    while pending:
        _complete_one(probe, pending, done)
    return done


def _complete_one(probe: Probe, pending: dict[int, int], done: dict[int, Packet]) -> None:
    """Handle the publisher's next packet: an acknowledgement of one of ``pending``."""
    packet = probe.next()
    if packet is None:
        why = "the broker closed the connection" if probe.closed else "nothing more arrived"
        answer = ANSWER_STEPS["PUBREC" if 2 in pending.values() else "PUBACK"]  # the flows the case relies on
        raise PreconditionFailed(f"{len(pending)} publications still unacknowledged; {why}", [answer])
    if isinstance(packet, Puback | Pubcomp) and packet.packet_id in pending:
        del pending[packet.packet_id]
        done[packet.packet_id] = packet
    elif isinstance(packet, Pubrec) and pending.get(packet.packet_id) == 2:
        if packet.reason_code >= 0x80:
            del pending[packet.packet_id]
            done[packet.packet_id] = packet
        else:
            probe.send(Pubrel(packet_id=packet.packet_id))
    else:
        raise BrokerViolation(f"unexpected {packet.name} while publishing: {packet}")


def collect_publishes(probe: Probe, count: int, ack: bool = True) -> list[Publish]:
    """The next ``count`` PUBLISHes (any other packet is a failure), acknowledged unless ``ack`` is off."""
    got = []
    for _ in range(count):
        publish = probe.expect(Publish)
        if ack:
            probe.ack(publish)
        got.append(publish)
    return got


# -- acknowledgements ----------------------------------------------------------------------------
def defined_reason(packet: Packet) -> None:
    """A 5.0 acknowledgement must carry a Reason Code its packet type defines."""
    allowed = ALLOWED_50[packet.name]
    code = packet.reason_code  # type: ignore[attr-defined]
    if code not in allowed:
        shown = ", ".join(f"0x{c:02X}" for c in sorted(allowed))
        raise BrokerViolation(f"{packet.name} carries Reason Code 0x{code:02X} "
                              f"({REASON_50.get(code, 'undefined')}); {packet.name} defines only {shown}")


def wire_bytes(probe: Probe, packet: Packet) -> bytes:
    """The bytes ``probe`` received for ``packet``, from the transcript."""
    for event in reversed(probe.transcript.events):
        if event.dir == IN and event.packet is packet:
            return event.data
    raise HarnessError(f"{packet.name} is not in the transcript of {probe.name}")


def wire_size(probe: Probe, packet: Packet) -> int:
    """How many bytes ``packet`` took on the wire."""
    return len(wire_bytes(probe, packet))


# -- overlapping subscriptions ----------------------------------------------------------------------
@dataclass(frozen=True)
class Sub:
    """One matching subscription of a client: its filter, granted QoS and Subscription Identifier."""

    topic_filter: str
    granted: int
    identifier: int | None = None


def subscription_ids(publish: Publish) -> list[int]:
    return sorted(publish.properties.all("subscription_identifier"))


def explain_copies(copies: Sequence[Publish], subs: Sequence[Sub], publish_qos: int,
                   with_ids: bool) -> list[tuple[Publish, tuple[Sub, ...]]] | None:
    """Try to read the copies a client got of one message as the spec allows them: each copy stands for
    a non-empty group of the matching subscriptions, every subscription in exactly one group; a copy's
    QoS is the publication's QoS capped by the highest granted QoS of its group; with ``with_ids`` it
    carries exactly the Subscription Identifiers of its group. Returns the grouping, or None."""
    if not copies or len(copies) > len(subs):
        return None
    for assignment in itertools.product(range(len(copies)), repeat=len(subs)):
        groups: list[list[Sub]] = [[] for _ in copies]
        for sub, index in zip(subs, assignment, strict=True):
            groups[index].append(sub)
        if any(not group for group in groups):
            continue
        if all(_fits(copy, group, publish_qos, with_ids) for copy, group in zip(copies, groups, strict=True)):
            return [(copy, tuple(group)) for copy, group in zip(copies, groups, strict=True)]
    return None


def _fits(copy: Publish, group: Iterable[Sub], publish_qos: int, with_ids: bool) -> bool:
    group = list(group)
    if copy.qos != min(publish_qos, max(s.granted for s in group)):
        return False
    if with_ids:
        return subscription_ids(copy) == sorted(s.identifier for s in group if s.identifier is not None)
    return True


def describe_copies(copies: Sequence[Publish]) -> str:
    return "; ".join(f"QoS {p.qos}" + (f" ids {subscription_ids(p)}" if subscription_ids(p) else "")
                     for p in copies) or "no copy"
