"""The mutant brokers: each breaks exactly one normative statement of MQTT 3.1.1 and/or 5.0.

A mutant is a ``Fault`` (tests/mutation/proxy.py) registered with ``@mutant``: its name, the statement
IDs it violates per version (the versions it is active for), a short description, and the case modules
(optionally narrowed by a pytest ``-k`` expression) whose cases should notice it. The hooks see parsed
packets per direction and drop, alter (re-encode), inject, delay or close.

Faults stay as close to one broken rule as a proxy allows: when a broker-side rule cannot be broken
from outside the broker (a retained message that is not cleared, a Keep Alive that is not enforced),
the client's packet is rewritten so that the real broker never learns what it would have acted on.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass, replace

from conformance.codec import (
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    Packet,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from conformance.codec.decode import decode_packet
from conformance.codec.wire import V50, V311

from .proxy import BROKER, DROP, Conn, Fault, Result


@dataclass(frozen=True)
class Mutant:
    name: str
    statements: dict[str, tuple[str, ...]]  # version -> statement IDs the fault violates
    description: str
    fault: type[Fault]
    modules: tuple[str, ...]  # case modules (file stems under cases/) whose cases should kill it
    keyword: str | None = None  # optional pytest -k expression narrowing those modules
    # A case the unmutated broker already FAILs (a known deviation, e.g. a late close) still kills the
    # mutant when its failure message now matches this pattern (e.g. "not disconnected" instead of late).
    failure_pattern: str | None = None

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(self.statements)

    def statement_text(self) -> str:
        return "; ".join(f"{v}: {' '.join(ids)}" for v, ids in self.statements.items())


MUTANTS: list[Mutant] = []


def mutant(name: str, description: str, modules: tuple[str, ...] | str, *, v311: tuple[str, ...] = (),
           v5: tuple[str, ...] = (), keyword: str | None = None,
           failure_pattern: str | None = None):  # noqa: ANN201 - class decorator
    def register(cls: type[Fault]) -> type[Fault]:
        statements = {v: tuple(ids) for v, ids in (("3.1.1", v311), ("5.0", v5)) if ids}
        mods = (modules,) if isinstance(modules, str) else tuple(modules)
        if any(m.name == name for m in MUTANTS):
            raise ValueError(f"duplicate mutant {name}")
        MUTANTS.append(Mutant(name, statements, description, cls, mods, keyword, failure_pattern))
        cls.mutant_name = name  # type: ignore[attr-defined]
        return cls

    return register


def by_name(name: str) -> Mutant:
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(name)


# -- helpers ------------------------------------------------------------------------------------------
def without(props: Properties, *names: str) -> Properties:
    return Properties.of((k, v) for k, v in props if k not in names)


def with_prop(props: Properties, name: str, value: object) -> Properties:
    return Properties.of([*without(props, name), (name, value)])


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching (no shared-subscription prefix), including the '$' rule of 4.7.2."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def filters_of(conn: Conn) -> set[str]:
    return conn.state.setdefault("filters", set())


def track_subscriptions(conn: Conn, packet: Packet | MalformedPacket) -> None:
    if isinstance(packet, Subscribe):
        filters_of(conn).update(s.topic_filter for s in packet.subscriptions)
    elif isinstance(packet, Unsubscribe):
        filters_of(conn).difference_update(packet.topic_filters)


class HoldOne:
    """Holds back one packet of a direction and lets the next one overtake it (reordering)."""

    def __init__(self, conn: Conn, fault: Fault, to_client: bool, flush_after: float = 0.3) -> None:
        self.conn, self.fault, self.to_client, self.flush_after = conn, fault, to_client, flush_after
        self.held: bytes | None = None

    def hold(self, raw: bytes) -> None:
        with self.fault.lock:
            self.held = raw
        self.conn.later(self.flush_after, self.flush)

    def take(self) -> bytes | None:
        with self.fault.lock:
            held, self.held = self.held, None
        return held

    def flush(self) -> None:
        held = self.take()
        if held is not None:
            (self.conn.to_client if self.to_client else self.conn.to_broker)(held)


# == CONNECT / CONNACK / sessions ===========================================================================
@mutant("connack-session-present-flipped", "CONNACK of an accepted connection carries the wrong Session Present",
        "test_3_02_connack", v311=("MQTT-3.2.2-1", "MQTT-3.2.2-2"), v5=("MQTT-3.2.2-2", "MQTT-3.2.2-3"))
class SessionPresentFlipped(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Connack) and packet.reason_code == 0:
            return replace(packet, session_present=not packet.session_present)


@mutant("clean-start-ignored", "Clean Session / Clean Start 1 resumes the stored session instead of discarding it",
        ("test_3_02_connack", "test_4_01_session"), v311=("MQTT-3.1.2-6",), v5=("MQTT-3.1.2-4",))
class CleanStartIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.clean_start and packet.client_id:
            return replace(packet, clean_start=False)


@mutant("session-not-resumed", "Clean Session / Clean Start 0 never resumes the stored session",
        ("test_3_02_connack", "test_4_01_session"), v311=("MQTT-3.1.2-4",), v5=("MQTT-3.1.2-5",))
class SessionNotResumed(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and not packet.clean_start:
            return replace(packet, clean_start=True)


@mutant("unsupported-protocol-level-accepted", "a CONNECT with an unsupported protocol level is accepted",
        "test_3_02_connack", v311=("MQTT-3.1.2-2",), v5=("MQTT-3.1.2-2",))
class ProtocolLevelAccepted(Fault):
    """The level byte is rewritten to one the broker supports (5 if the rest parses as 5.0, else 4)."""

    def c2b(self, conn, packet, raw):
        if conn.packets_seen["c2b"] != 1 or raw[0] >> 4 != 1 or not isinstance(packet, MalformedPacket):
            return None
        offset = _level_offset(raw)
        if offset is None or raw[offset] in (3, 4, 5):
            return None
        for level in (V50, V311):
            patched = raw[:offset] + bytes([level]) + raw[offset + 1:]
            try:
                connect = decode_packet(patched, level)
            except MalformedPacket:
                continue
            conn.level, conn.connect = level, connect  # type: ignore[assignment]
            return patched
        return None


def _level_offset(raw: bytes) -> int | None:
    i = 1
    while i < len(raw) and raw[i] & 0x80:
        i += 1
    i += 1
    if i + 2 > len(raw):
        return None
    name_length = int.from_bytes(raw[i:i + 2], "big")
    offset = i + 2 + name_length
    return offset if offset < len(raw) else None


REFUSAL_SWAP_311 = {1: 2, 2: 3}  # 0x01 unacceptable protocol level, 0x02 identifier rejected
REFUSAL_SWAP_5 = {0x84: 0x85, 0x85: 0x84}  # unsupported protocol version, client identifier not valid


@mutant("connack-refusal-code-changed", "a refused CONNECT gets the wrong refusal code (0x01 <-> 0x02; 0x84 <-> 0x85)",
        "test_3_02_connack", v311=("MQTT-3.1.2-2", "MQTT-3.1.3-8"), v5=("MQTT-3.1.2-2",))
class RefusalCodeChanged(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Connack) and packet.reason_code:
            table = REFUSAL_SWAP_5 if conn.level == V50 else REFUSAL_SWAP_311
            if packet.reason_code in table:
                return replace(packet, reason_code=table[packet.reason_code])


@mutant("assigned-client-id-dropped", "CONNACK for an empty Client Identifier carries no Assigned Client Identifier",
        ("test_3_02_connack", "test_3_01_connect"), v5=("MQTT-3.2.2-16",),
        keyword="not keep_alive and not silent_client and not pinging")
class AssignedClientIdDropped(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Connack) and "assigned_client_identifier" in packet.properties:
            return replace(packet, properties=without(packet.properties, "assigned_client_identifier"))


@mutant("response-information-unsolicited", "CONNACK carries Response Information the client did not request",
        "test_3_01_connect", v5=("MQTT-3.1.2-28",), keyword="response_information")
class ResponseInformationUnsolicited(Fault):
    def b2c(self, conn, packet, raw):
        requested = conn.connect is not None and conn.connect.properties.get("request_response_information")
        if isinstance(packet, Connack) and packet.reason_code == 0 and not requested:
            return replace(packet, properties=with_prop(packet.properties, "response_information", "mqttc/rsp"))


@mutant("problem-information-despite-request-0",
        "acknowledgements carry a Reason String although the client set Request Problem Information 0",
        "test_3_01_connect", v5=("MQTT-3.1.2-29",), keyword="problem_information")
class ProblemInformationUnwanted(Fault):
    def b2c(self, conn, packet, raw):
        declined = conn.connect is not None and conn.connect.properties.get("request_problem_information") == 0
        if declined and isinstance(packet, Suback | Unsuback | Puback | Pubrec | Pubcomp):
            return replace(packet, properties=with_prop(packet.properties, "reason_string", "mutant says hello"))


@mutant("keep-alive-not-enforced", "a client silent for more than 1.5 x Keep Alive is never disconnected",
        "test_3_01_connect", v311=("MQTT-3.1.2-24",), v5=("MQTT-3.1.2-22",), keyword="silent_client",
        failure_pattern="was not disconnected")
class KeepAliveNotEnforced(Fault):
    """The broker never learns the Keep Alive: the CONNECT reaches it with Keep Alive 0. (A 5.0 broker
    may answer that with a Server Keep Alive, which the client would have to adopt; the proxy removes
    it, so that the client's own Keep Alive stays the one in force, unenforced.)"""

    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.keep_alive:
            conn.state["keep_alive"] = packet.keep_alive
            return replace(packet, keep_alive=0)

    def b2c(self, conn, packet, raw):
        if isinstance(packet, Connack) and conn.state.get("keep_alive") and "server_keep_alive" in packet.properties:
            return replace(packet, properties=without(packet.properties, "server_keep_alive"))


@mutant("second-connect-ignored", "a second CONNECT on a connection is ignored instead of closing it",
        "test_3_01_connect", v311=("MQTT-3.1.0-2",), v5=("MQTT-3.1.0-2",), keyword="second_connect")
class SecondConnectIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if raw[0] >> 4 == 1:
            if conn.state.get("connected"):
                return DROP
            conn.state["connected"] = True


@mutant("packet-before-connect-ignored", "a packet other than CONNECT as the first packet is ignored, not closed on",
        ("test_4_13_malformed",), v311=("MQTT-3.1.0-1", "MQTT-4.8.0-1"), v5=("MQTT-3.1.0-1", "MQTT-4.13.1-1"),
        keyword="before_connect")
class PacketBeforeConnectIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if conn.connect is None and raw[0] >> 4 != 1:
            return DROP


@mutant("connack-after-queued-messages", "a resumed session's queued messages overtake the CONNACK",
        "test_3_02_connack", v311=("MQTT-3.2.0-1",), v5=("MQTT-3.2.0-1",))
class ConnackOvertaken(Fault):
    def b2c(self, conn, packet, raw):
        hold = conn.state.get("hold")
        if isinstance(packet, Connack) and packet.session_present:
            conn.state["hold"] = hold = HoldOne(conn, self, to_client=True)
            hold.hold(raw)
            return DROP
        if hold is not None:
            held = hold.take()
            if held is not None:
                return [raw, held] if isinstance(packet, Publish) else [held, raw]


# == SUBSCRIBE / SUBACK / UNSUBSCRIBE ======================================================================
@mutant("suback-codes-reversed", "SUBACK return codes come in the reverse order of the filters",
        "test_3_08_subscribe", v311=("MQTT-3.9.3-1",), v5=("MQTT-3.9.3-1",))
class SubackReversed(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Suback) and len(set(packet.reason_codes)) > 1:
            return replace(packet, reason_codes=tuple(reversed(packet.reason_codes)))


@mutant("suback-wrong-packet-id", "SUBACK carries a packet identifier other than its SUBSCRIBE's",
        "test_3_08_subscribe", v311=("MQTT-3.8.4-2", "MQTT-2.3.1-7"), v5=("MQTT-3.8.4-2", "MQTT-2.2.1-6"))
class SubackWrongId(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Suback):
            return replace(packet, packet_id=packet.packet_id % 0xFFFF + 1)


@mutant("subscribe-qos3-accepted", "a SUBSCRIBE requesting QoS 3 is accepted (granted QoS 2)",
        "test_3_08_subscribe", v311=("MQTT-3.8.3-4",), v5=("MQTT-4.13.1-1",), keyword="qos_3")
class SubscribeQos3Accepted(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe) and any(s.qos == 3 for s in packet.subscriptions):
            subs = tuple(replace(s, qos=2) if s.qos == 3 else s for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)


@mutant("subscribe-reserved-bits-ignored", "reserved bits of the subscription options byte are ignored",
        "test_3_08_subscription_options", v311=("MQTT-3.8.3-4",), v5=("MQTT-3.8.3-5",), keyword="reserved")
class SubscribeReservedBitsIgnored(Fault):
    """The options byte is re-encoded from its decoded fields, which drops the reserved bits."""

    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe):
            clean = conn.encode(packet)
            return clean if clean != raw else None


@mutant("no-local-ignored", "No Local is ignored: a client gets its own publications back",
        "test_3_08_subscription_options", v5=("MQTT-3.8.3-3",))
class NoLocalIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe) and any(s.no_local for s in packet.subscriptions):
            subs = tuple(replace(s, no_local=False) for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)


@mutant("retain-as-published-ignored", "Retain As Published 1 is ignored: live messages always have RETAIN 0",
        "test_3_08_subscription_options", v5=("MQTT-3.3.1-13",))
class RetainAsPublishedIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe) and any(s.retain_as_published for s in packet.subscriptions):
            subs = tuple(replace(s, retain_as_published=False) for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)


@mutant("retain-handling-ignored", "Retain Handling 1 and 2 are treated as 0: retained messages on every SUBSCRIBE",
        "test_3_08_subscription_options", v5=("MQTT-3.3.1-10", "MQTT-3.3.1-11"))
class RetainHandlingIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe) and any(s.retain_handling in (1, 2) for s in packet.subscriptions):
            subs = tuple(replace(s, retain_handling=0) if s.retain_handling in (1, 2) else s
                         for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)


def _map_filters(packet: Packet, change) -> Packet | None:  # noqa: ANN001 - str -> str
    if isinstance(packet, Subscribe):
        subs = tuple(replace(s, topic_filter=change(s.topic_filter)) for s in packet.subscriptions)
        return replace(packet, subscriptions=subs) if subs != packet.subscriptions else None
    if isinstance(packet, Unsubscribe):
        filters = tuple(change(f) for f in packet.topic_filters)
        return replace(packet, topic_filters=filters) if filters != packet.topic_filters else None
    return None


@mutant("single-level-wildcard-spans-levels", "a trailing '+' matches any number of levels (acts as '#')",
        "test_4_07_topics", v311=("MQTT-4.7.1-3",), v5=("MQTT-4.7.1-2",), keyword="matches")
class PlusActsAsHash(Fault):
    def c2b(self, conn, packet, raw):
        return _map_filters(packet, lambda f: f[:-1] + "#" if f.endswith("/+") else f)


@mutant("multi-level-wildcard-misses-parent", "'#' does not match the parent level of the filter",
        "test_4_07_topics", v311=("MQTT-4.7.1-2",), v5=("MQTT-4.7.1-1",), keyword="matches")
class HashMissesParent(Fault):
    def c2b(self, conn, packet, raw):
        return _map_filters(packet, lambda f: f[:-1] + "+/#" if f.endswith("/#") else f)


@mutant("non-matching-topics-delivered", "publications are also delivered to subscribers whose filters do not match",
        "test_3_03_publish", v311=("MQTT-3.3.2-3",), v5=("MQTT-3.3.2-3",), keyword="matching")
class NonMatchingDelivered(Fault):
    """A copy (QoS 0) goes to every client with a filter under the same topic root that does not match."""

    def c2b(self, conn, packet, raw):
        track_subscriptions(conn, packet)
        if not isinstance(packet, Publish) or packet.topic.startswith("$"):
            return None
        root = packet.topic.split("/")[:2]
        for other in conn.proxy.live_connections():
            if other.version not in ("3.1.1", "5.0"):
                continue
            filters = filters_of(other)
            near = [f for f in filters if f.split("/")[:2] == root]
            if near and not any(topic_matches(f, packet.topic) for f in filters):
                other.to_client(Publish(topic=packet.topic, payload=packet.payload, qos=0))
        return None


@mutant("dollar-topics-match-leading-wildcards", "filters starting with '#' or '+' also receive '$' topics",
        "test_4_07_topics", v311=("MQTT-4.7.2-1",), v5=("MQTT-4.7.2-1",), keyword="dollar")
class DollarTopicsLeak(Fault):
    def c2b(self, conn, packet, raw):
        track_subscriptions(conn, packet)
        if isinstance(packet, Publish) and packet.topic.startswith("$"):
            for other in conn.proxy.live_connections():
                if any(f[:1] in ("#", "+") for f in filters_of(other)):
                    other.to_client(Publish(topic=packet.topic, payload=packet.payload, qos=0))
        return None


@mutant("unsuback-dropped", "UNSUBSCRIBE is never answered with UNSUBACK", "test_3_10_unsubscribe",
        v311=("MQTT-3.10.4-4",), v5=("MQTT-3.10.4-4",))
class UnsubackDropped(Fault):
    def b2c(self, conn, packet, raw):
        return DROP if isinstance(packet, Unsuback) else None


@mutant("unsubscribe-ignored", "UNSUBSCRIBE is acknowledged but the subscription stays: messages keep coming",
        "test_3_10_unsubscribe", v311=("MQTT-3.10.4-2",), v5=("MQTT-3.10.4-2",))
class UnsubscribeIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Unsubscribe):
            conn.to_client(Unsuback(packet_id=packet.packet_id, reason_codes=(0,) * len(packet.topic_filters)))
            return DROP


@mutant("shared-subscription-qos-not-capped", "shared subscription members get messages above their granted QoS",
        "test_4_08_shared", v5=("MQTT-4.8.2-3",))
class SharedQosNotCapped(Fault):
    """The broker is asked for QoS 2 on every shared filter; the SUBACK still shows the QoS asked for."""

    def c2b(self, conn, packet, raw):
        if isinstance(packet, Subscribe) and any(s.topic_filter.startswith("$share/") and s.qos < 2
                                                 for s in packet.subscriptions):
            conn.state.setdefault("asked", {})[packet.packet_id] = [s.qos for s in packet.subscriptions]
            subs = tuple(replace(s, qos=2) if s.topic_filter.startswith("$share/") else s
                         for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)

    def b2c(self, conn, packet, raw):
        asked = conn.state.get("asked", {})
        if isinstance(packet, Suback) and packet.packet_id in asked:
            qos = asked.pop(packet.packet_id)
            codes = tuple(min(c, q) if c < 0x80 else c for c, q in zip(packet.reason_codes, qos, strict=False))
            return replace(packet, reason_codes=codes)


# == PUBLISH flows ==========================================================================================
@mutant("publish-qos3-accepted", "a PUBLISH with QoS bits 11 is processed as QoS 1", "test_3_03_publish",
        v311=("MQTT-3.3.1-4",), v5=("MQTT-3.3.1-4",), keyword="qos_3")
class PublishQos3Accepted(Fault):
    def c2b(self, conn, packet, raw):
        if raw[0] >> 4 == 3 and (raw[0] >> 1) & 3 == 3:
            return bytes([raw[0] & 0xFB]) + raw[1:]


def _topic_span(raw: bytes) -> tuple[int, int] | None:
    i = 1
    while i < len(raw) and raw[i] & 0x80:
        i += 1
    i += 1
    if i + 2 > len(raw):
        return None
    length = int.from_bytes(raw[i:i + 2], "big")
    return (i + 2, i + 2 + length) if i + 2 + length <= len(raw) else None


@mutant("wildcard-topic-name-accepted", "a PUBLISH whose Topic Name holds '+' or '#' is accepted",
        "test_3_03_publish", v311=("MQTT-3.3.2-2",), v5=("MQTT-3.3.2-2",), keyword="wildcards")
class WildcardTopicAccepted(Fault):
    """The wildcard characters are replaced by '_' so that the broker takes the topic as valid."""

    def c2b(self, conn, packet, raw):
        if raw[0] >> 4 != 3 or not isinstance(packet, MalformedPacket):
            return None
        span = _topic_span(raw)
        if span is None:
            return None
        start, end = span
        topic = raw[start:end]
        if b"+" not in topic and b"#" not in topic:
            return None
        return raw[:start] + topic.replace(b"+", b"_").replace(b"#", b"_") + raw[end:]


@mutant("malformed-packets-swallowed", "malformed client packets are silently ignored instead of closing",
        "test_4_13_malformed", v311=("MQTT-4.8.0-1",), v5=("MQTT-4.13.1-1",))
class MalformedSwallowed(Fault):
    def c2b(self, conn, packet, raw):
        return DROP if isinstance(packet, MalformedPacket) else None


@mutant("malformed-reason-code-swapped", "DISCONNECT says Protocol Error (0x82) for a Malformed Packet and vice versa",
        "test_3_03_publish", v5=("MQTT-3.3.1-4", "MQTT-4.13.1-1"), keyword="qos_3")
class MalformedReasonSwapped(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Disconnect) and packet.reason_code in (0x81, 0x82):
            return replace(packet, reason_code=0x81 ^ 0x82 ^ packet.reason_code)


@mutant("qos1-delivered-at-qos0", "QoS 1 deliveries are downgraded to QoS 0", "test_3_03_publish",
        v311=("MQTT-3.8.4-6",), v5=("MQTT-3.8.4-8",))
class Qos1Downgraded(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.qos == 1:
            conn.to_broker(Puback(packet_id=packet.packet_id or 1))
            return replace(packet, qos=0, dup=False, packet_id=None)


@mutant("qos0-delivered-at-qos1", "QoS 0 publications are delivered at QoS 1 to higher-QoS subscriptions",
        "test_3_03_publish", v311=("MQTT-3.8.4-6",), v5=("MQTT-3.8.4-8",))
class Qos0Upgraded(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.qos == 0:
            return replace(packet, qos=1, packet_id=conn.invent_packet_id(1))


@mutant("puback-dropped", "a QoS 1 PUBLISH from a client is never acknowledged", "test_3_03_publish",
        v311=("MQTT-4.3.2-2",), v5=("MQTT-4.3.2-4",))
class PubackDropped(Fault):
    def b2c(self, conn, packet, raw):
        return DROP if isinstance(packet, Puback) else None


@mutant("puback-wrong-packet-id", "PUBACK carries a packet identifier other than its PUBLISH's", "test_3_03_publish",
        v311=("MQTT-2.3.1-6",), v5=("MQTT-2.2.1-5",))
class PubackWrongId(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Puback):
            return replace(packet, packet_id=packet.packet_id % 0xFFFF + 1)


@mutant("pubcomp-dropped", "a PUBREL from a client is never answered with PUBCOMP", "test_3_03_publish",
        v311=("MQTT-4.3.3-2",), v5=("MQTT-4.3.3-11",))
class PubcompDropped(Fault):
    def b2c(self, conn, packet, raw):
        return DROP if isinstance(packet, Pubcomp) else None


@mutant("pubrel-for-unknown-id-unanswered", "a PUBREL for a packet identifier not in flight gets no PUBCOMP",
        "test_4_03_qos", v311=("MQTT-4.3.3-2",), v5=("MQTT-4.3.3-11",), keyword="unknown_id")
class PubrelUnknownUnanswered(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Pubrec):
            conn.state.setdefault("pubrec", set()).add(packet.packet_id)

    def c2b(self, conn, packet, raw):
        if isinstance(packet, Pubrel) and packet.packet_id not in conn.state.get("pubrec", set()):
            return DROP


@mutant("qos2-publish-resent-after-pubrel", "the QoS 2 PUBLISH is sent again after its PUBREL (a duplicate delivery)",
        "test_3_03_publish", v311=("MQTT-4.3.3-1",), v5=("MQTT-4.3.3-6",))
class Qos2ResentAfterPubrel(Fault):
    def b2c(self, conn, packet, raw):
        sent = conn.state.setdefault("qos2", {})
        if isinstance(packet, Publish) and packet.qos == 2:
            sent[packet.packet_id] = packet
        elif isinstance(packet, Pubrel) and packet.packet_id in sent:
            return [raw, replace(sent.pop(packet.packet_id), dup=True)]


@mutant("dup-cleared-on-redelivery", "a re-delivered PUBLISH has DUP 0", "test_3_03_dup_and_redelivery",
        v311=("MQTT-3.3.1-1",), v5=("MQTT-3.3.1-1",))
class DupCleared(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.dup:
            return replace(packet, dup=False)


@mutant("incoming-dup-propagated", "the DUP flag of the publisher's PUBLISH is copied to the deliveries",
        "test_3_03_dup_and_redelivery", v311=("MQTT-3.3.1-3",), v5=("MQTT-3.3.1-3",), keyword="incoming_dup")
class IncomingDupPropagated(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.dup:
            with self.lock:
                self.shared.setdefault("dup", set()).add((packet.topic, packet.payload))

    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.qos and not packet.dup:
            with self.lock:
                if (packet.topic, packet.payload) in self.shared.get("dup", set()):
                    return replace(packet, dup=True)


@mutant("in-flight-packet-id-reused", "a QoS 1 delivery reuses the packet identifier of a message still in flight",
        "test_4_03_qos", v311=("MQTT-2.3.1-4",), v5=("MQTT-2.2.1-4",), keyword="distinct_nonzero_id")
class InFlightIdReused(Fault):
    """QoS 1 deliveries take the identifier of the oldest message still unacknowledged by the client;
    the client's PUBACKs are mapped back, oldest first."""

    def b2c(self, conn, packet, raw):
        flight: dict[int, int] = conn.state.setdefault("flight", {})  # client-side id -> QoS
        acks: dict[int, deque] = conn.state.setdefault("acks", {})  # client-side id -> broker ids (QoS 1)
        if not isinstance(packet, Publish) or not packet.qos or packet.dup:
            return None
        broker_id = packet.packet_id or 0
        target = next(iter(flight), broker_id) if packet.qos == 1 else broker_id
        flight.setdefault(target, packet.qos)
        if packet.qos == 1:
            acks.setdefault(target, deque()).append(broker_id)
        return replace(packet, packet_id=target) if target != broker_id else None

    def c2b(self, conn, packet, raw):
        flight: dict[int, int] = conn.state.setdefault("flight", {})
        acks: dict[int, deque] = conn.state.setdefault("acks", {})
        if isinstance(packet, Puback) and acks.get(packet.packet_id):
            broker_id = acks[packet.packet_id].popleft()
            if not acks[packet.packet_id] and flight.get(packet.packet_id) == 1:
                flight.pop(packet.packet_id, None)
            return replace(packet, packet_id=broker_id)
        if isinstance(packet, Pubcomp):
            if not acks.get(packet.packet_id):
                flight.pop(packet.packet_id, None)
            else:
                flight[packet.packet_id] = 1
        return None


@mutant("messages-reordered", "messages from one publisher overtake each other on the way to a subscriber",
        "test_4_06_ordering", v311=("MQTT-4.6.0-6",), v5=("MQTT-4.6.0-5", "MQTT-4.6.0-6"))
class MessagesReordered(Fault):
    """Every other PUBLISH to a client is held back until the next one has gone out."""

    def b2c(self, conn, packet, raw):
        hold: HoldOne = conn.state.setdefault("hold", HoldOne(conn, self, to_client=True))
        held = hold.take()
        if held is not None:
            return [raw, held] if isinstance(packet, Publish) else [held, raw]
        if isinstance(packet, Publish):
            hold.hold(raw)
            return DROP


@mutant("pingresp-dropped", "PINGREQ is never answered with PINGRESP", "test_3_12_ping",
        v311=("MQTT-3.12.4-1",), v5=("MQTT-3.12.4-1",))
class PingrespDropped(Fault):
    def b2c(self, conn, packet, raw):
        return DROP if isinstance(packet, Pingresp) else None


@mutant("server-packet-reserved-flags", "SUBACK is sent with reserved fixed-header flags 0010",
        "test_2_01_fixed_header", v311=("MQTT-2.2.2-1",), v5=("MQTT-2.1.3-1",), keyword="server_packets")
class ServerReservedFlags(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Suback):
            return bytes([raw[0] | 0x02]) + raw[1:]


@mutant("topic-name-normalised", "the Topic Name of a delivery is Unicode-normalised (NFD) instead of kept as is",
        "test_3_03_publish", v311=("MQTT-3.3.2-3",), v5=("MQTT-3.3.2-3",), keyword="utf8")
class TopicNormalised(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish):
            nfd = unicodedata.normalize("NFD", packet.topic)
            return replace(packet, topic=nfd) if nfd != packet.topic else None


@mutant("bom-stripped", "a U+FEFF (BOM) in a delivered Topic Name is stripped", "test_1_05_data_representation",
        v311=("MQTT-1.5.3-3",), v5=("MQTT-1.5.4-3",), keyword="bom")
class BomStripped(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and "\ufeff" in packet.topic:
            return replace(packet, topic=packet.topic.replace("\ufeff", ""))


# == RETAIN =================================================================================================
@mutant("retained-message-not-stored", "a RETAIN=1 publication is forwarded but never stored", "test_3_03_retain",
        v311=("MQTT-3.3.1-5",), v5=("MQTT-3.3.1-5",))
class RetainedNotStored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.retain and packet.payload:
            return replace(packet, retain=False)


@mutant("zero-byte-retained-not-cleared", "a zero-byte RETAIN=1 publication does not clear the retained message",
        "test_3_03_retain", v311=("MQTT-3.3.1-10",), v5=("MQTT-3.3.1-6",))
class ZeroByteRetainedNotCleared(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.retain and not packet.payload:
            return replace(packet, retain=False)


@mutant("retain-flag-on-live-delivery", "a live delivery keeps the publisher's RETAIN=1 (RAP 0 / 3.1.1)",
        "test_3_03_retain", v311=("MQTT-3.3.1-9",), v5=("MQTT-3.3.1-12",))
class RetainFlagOnLiveDelivery(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.retain:
            with self.lock:
                self.shared.setdefault("retained", set()).add((packet.topic, packet.payload))

    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and not packet.retain:
            with self.lock:
                if (packet.topic, packet.payload) in self.shared.get("retained", set()):
                    return replace(packet, retain=True)


@mutant("retain-flag-cleared-on-stored-delivery", "a retained message sent for a new subscription has RETAIN=0",
        "test_3_03_retain", v311=("MQTT-3.3.1-8",), v5=("MQTT-3.3.1-9",))
class RetainFlagCleared(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and packet.retain:
            return replace(packet, retain=False)


# == Will ===================================================================================================
@mutant("will-dropped", "the Will Message is never published", "test_3_01_will",
        v311=("MQTT-3.1.2-8",), v5=("MQTT-3.1.2-8",), keyword="connection_drops")
class WillDropped(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.will is not None:
            return replace(packet, will=None)


@mutant("will-after-normal-disconnect", "the Will is published although the client sent a normal DISCONNECT",
        "test_3_14_disconnect_will", v311=("MQTT-3.14.4-3",), v5=("MQTT-3.14.4-3",),
        keyword="discards_the_will")
class WillAfterDisconnect(Fault):
    """The DISCONNECT never reaches the broker: it sees the connection drop instead."""

    def c2b(self, conn, packet, raw):
        if (isinstance(packet, Disconnect) and packet.reason_code == 0 and conn.connect is not None
                and conn.connect.will is not None):
            conn.close_side(BROKER, reset=True)
            return DROP


@mutant("will-retain-ignored", "a Will with Will Retain 1 is published as a non-retained message", "test_3_01_will",
        v311=("MQTT-3.1.2-17",), v5=("MQTT-3.1.2-15",), keyword="retained_will")
class WillRetainIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.will is not None and packet.will.retain:
            return replace(packet, will=replace(packet.will, retain=False))


@mutant("will-user-properties-reordered", "the Will's User Properties are published in reverse order",
        "test_3_01_will", v5=("MQTT-3.1.3-10",), keyword="will_user_properties")
class WillUserPropertiesReordered(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.will is not None:
            props = packet.will.properties
            users = props.all("user_property")
            if len(users) > 1 and users != users[::-1]:
                reordered = Properties.of([*without(props, "user_property"),
                                           *(("user_property", u) for u in reversed(users))])
                return replace(packet, will=replace(packet.will, properties=reordered))


@mutant("will-delay-ignored", "the Will is published at once, without waiting for the Will Delay Interval",
        "test_3_01_will", v5=("MQTT-3.1.2-8",), keyword="waits_for_the_will_delay")
class WillDelayIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and packet.will is not None \
                and "will_delay_interval" in packet.will.properties:
            will = replace(packet.will, properties=without(packet.will.properties, "will_delay_interval"))
            return replace(packet, will=will)


# == 5.0 properties =========================================================================================
def _strip_publish(packet: Packet, *names: str) -> Result:
    if isinstance(packet, Publish) and any(n in packet.properties for n in names):
        return replace(packet, properties=without(packet.properties, *names))
    return None


@mutant("user-properties-dropped", "User Properties of a publication are not forwarded", "test_3_03_v5_properties",
        v5=("MQTT-3.3.2-17",), keyword="unaltered")
class UserPropertiesDropped(Fault):
    def b2c(self, conn, packet, raw):
        return _strip_publish(packet, "user_property")


@mutant("user-properties-reordered", "User Properties of a publication are forwarded in reverse order",
        "test_3_03_v5_properties", v5=("MQTT-3.3.2-18",), keyword="unaltered")
class UserPropertiesReordered(Fault):
    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish):
            users = packet.properties.all("user_property")
            if len(users) > 1 and users != users[::-1]:
                props = Properties.of([*without(packet.properties, "user_property"),
                                       *(("user_property", u) for u in reversed(users))])
                return replace(packet, properties=props)


@mutant("correlation-data-dropped", "Correlation Data of a publication is not forwarded", "test_3_03_v5_properties",
        v5=("MQTT-3.3.2-16",), keyword="request_response")
class CorrelationDataDropped(Fault):
    def b2c(self, conn, packet, raw):
        return _strip_publish(packet, "correlation_data")


@mutant("payload-format-indicator-dropped", "Payload Format Indicator 1 is not forwarded",
        "test_3_03_v5_properties", v5=("MQTT-3.3.2-4",), keyword="unaltered")
class PayloadFormatDropped(Fault):
    def b2c(self, conn, packet, raw):
        return _strip_publish(packet, "payload_format_indicator")


@mutant("message-expiry-not-decremented", "a forwarded Message Expiry Interval is not reduced by the time waited",
        "test_3_03_message_expiry", v5=("MQTT-3.3.2-6",), keyword="returning_session")
class MessageExpiryNotDecremented(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Publish) and "message_expiry_interval" in packet.properties:
            with self.lock:
                self.shared.setdefault("expiry", {})[(packet.topic, packet.payload)] = \
                    packet.properties.get("message_expiry_interval")

    def b2c(self, conn, packet, raw):
        if isinstance(packet, Publish) and "message_expiry_interval" in packet.properties:
            with self.lock:
                published = self.shared.get("expiry", {}).get((packet.topic, packet.payload))
            if published is not None and published != packet.properties.get("message_expiry_interval"):
                return replace(packet, properties=with_prop(packet.properties, "message_expiry_interval",
                                                            published))


@mutant("message-expiry-ignored", "messages never expire: the Message Expiry Interval is lost on the way in",
        "test_3_03_message_expiry", v5=("MQTT-3.3.2-5",), keyword="returning_session")
class MessageExpiryIgnored(Fault):
    def c2b(self, conn, packet, raw):
        return _strip_publish(packet, "message_expiry_interval")


@mutant("subscription-identifiers-dropped", "deliveries do not carry the Subscription Identifiers",
        "test_3_03_overlapping", v5=("MQTT-3.3.4-3",))
class SubscriptionIdentifiersDropped(Fault):
    def b2c(self, conn, packet, raw):
        return _strip_publish(packet, "subscription_identifier")


@mutant("topic-alias-unsolicited", "deliveries use a Topic Alias although the client allows none",
        "test_3_03_topic_alias", v5=("MQTT-3.1.2-27",), keyword="accepts_none")
class TopicAliasUnsolicited(Fault):
    def b2c(self, conn, packet, raw):
        allowed = conn.connect is not None and conn.connect.properties.get("topic_alias_maximum")
        if isinstance(packet, Publish) and not allowed and "topic_alias" not in packet.properties:
            return replace(packet, properties=with_prop(packet.properties, "topic_alias", 1))


@mutant("client-maximum-packet-size-ignored", "the server sends packets above the client's Maximum Packet Size",
        "test_3_01_maximum_packet_size", v5=("MQTT-3.1.2-24",))
class ClientMaximumIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect) and "maximum_packet_size" in packet.properties:
            return replace(packet, properties=without(packet.properties, "maximum_packet_size"))


@mutant("session-expiry-ignored", "a session with a Session Expiry Interval ends with its connection",
        "test_3_01_session_expiry", v5=("MQTT-3.1.2-23",), keyword="kept_after_the_connection")
class SessionExpiryIgnored(Fault):
    def c2b(self, conn, packet, raw):
        if isinstance(packet, Connect | Disconnect) and "session_expiry_interval" in packet.properties:
            return replace(packet, properties=without(packet.properties, "session_expiry_interval"))
