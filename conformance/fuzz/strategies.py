"""The packet grammar of the fuzzer: hypothesis strategies that build *structure* (a packet dataclass plus
one mutation object), encoded to bytes only at the end, so that a failing input shrinks to a readable
``Input(packet=Publish(...), mutation=Qos3(...))`` rather than to a byte soup.

Every mutation knows what the spec requires of the broker for the input it makes (``expect``):

- ``answer``: a well-formed packet; the broker answers normally (PUBACK, SUBACK, ... with the packet id).
  ``limit`` marks inputs beyond everyday sizes (very long or deep topics, big payloads, many user
  properties), where a broker may refuse by closing the connection;
- ``closed``: malformed or forbidden; the connection must be closed (5.0: a DISCONNECT may come first).
  ``refusal`` names the failure acknowledgement the conformance cases accept instead of the close
  (NON-STRICT there, so not a fuzz finding);
- ``connect``: a well-formed CONNECT; a CONNACK follows, with its rules;
- ``tolerate``: the spec leaves the reaction open (MAY close, or nothing is said): only liveness counts.

Only what the spec determines is judged; anything else is checked for liveness only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from ..codec import (
    Auth,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
    craft,
    encode,
    raw_string,
)
from ..codec.encode import segments
from ..codec.packets import REQUIRED_FLAGS
from ..codec.properties import BY_NAME
from ..codec.utf8 import ILL_FORMED_UTF8, SURROGATES
from ..codec.version import Version
from ..codec.wire import encode_u16, encode_varint

# -- context -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzContext:
    """What the generator needs to know about the run and the broker (from its 5.0 CONNACK)."""

    version: Version
    prefix: str  # every topic of the campaign lives below it
    topic_alias_maximum: int = 0
    maximum_qos: int = 2
    retain_available: bool = True
    maximum_packet_size: int | None = None
    receive_maximum: int = 65535
    subscription_identifiers: bool = True
    shared_subscriptions: bool = True
    wildcard_subscriptions: bool = True

    @property
    def v5(self) -> bool:
        return self.version.v5

    @property
    def level(self) -> int:
        return self.version.level

    @classmethod
    def from_caps(cls, version: str, prefix: str, caps: dict[str, Any]) -> FuzzContext:
        parsed = Version.parse(version)
        if not parsed.v5:
            return cls(parsed, prefix)
        return cls(
            parsed, prefix,
            topic_alias_maximum=int(caps.get("topic_alias_maximum") or 0),
            maximum_qos=int(caps.get("maximum_qos", 2)),
            retain_available=bool(caps.get("retain_available", True)),
            maximum_packet_size=caps.get("maximum_packet_size"),
            receive_maximum=int(caps.get("receive_maximum") or 65535),
            subscription_identifiers=bool(caps.get("subscription_identifiers", True)),
            shared_subscriptions=bool(caps.get("shared_subscriptions", True)),
            wildcard_subscriptions=bool(caps.get("wildcard_subscriptions", True)),
        )


# -- what the broker must do ---------------------------------------------------------------------------------
ANSWER, CLOSED, TOLERATE, CONNECT = "answer", "closed", "tolerate", "connect"


@dataclass(frozen=True)
class Expect:
    kind: str
    rule: str
    refusal: str | None = None  # "ack" | "suback:<i>" | "unsuback:<i>": a failure code instead of the close
    barrier: bool = True  # the packet's framing is intact: a PINGREQ behind it is a packet of its own
    limit: bool = False  # answer: a close is tolerated (implementation limits)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "refusal": self.refusal, "barrier": self.barrier,
                "limit": self.limit}


# -- inputs and mutations ----------------------------------------------------------------------------------
class Mutation:
    """Base: the packet as a well-behaved client would send it."""

    def encode(self, packet: Packet, level: int) -> bytes:
        return encode(packet, level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        raise NotImplementedError

    def label(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class Valid(Mutation):
    """Unchanged: a well-formed (possibly unusual) packet."""

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if isinstance(packet, Connect):
            return Expect(CONNECT, "valid/connect", limit=is_limit(packet))
        if isinstance(packet, Disconnect):
            return Expect(TOLERATE, "valid/disconnect", barrier=False)
        rule = {Publish: "valid/publish", Subscribe: "valid/subscribe", Unsubscribe: "valid/unsubscribe",
                Pingreq: "valid/pingreq"}.get(type(packet), "valid/other")
        if isinstance(packet, Publish) and packet.qos:
            rule = f"valid/publish-qos{packet.qos}"
        return Expect(ANSWER, rule, limit=is_limit(packet))


@dataclass(frozen=True)
class Flags(Mutation):
    """Fixed-header flags other than the ones the packet type requires."""

    value: int

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, flags=self.value).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if isinstance(packet, Connect):
            return Expect(CLOSED, "malformed/connect/flags")
        return Expect(CLOSED, f"malformed/flags/{packet.name}")


@dataclass(frozen=True)
class Qos3(Mutation):
    """A PUBLISH whose QoS bits are 11."""

    dup: bool = False

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, qos_bits=3, dup_bit=int(self.dup)).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/publish-qos3")


BAD_BYTES: dict[str, bytes] = {**ILL_FORMED_UTF8, **SURROGATES, "null": b"\x00"}
DISCOURAGED: dict[str, str] = {"c0-control-01": "\x01", "c0-control-1f": "\x1f", "del-7f": "\x7f",
                               "c1-control-85": "\x85", "noncharacter-fffe": "\ufffe", "noncharacter-ffff": "\uffff",
                               "noncharacter-fdd0": "\ufdd0", "tab": "\t"}


def _segment_text(packet: Packet, segment: str) -> str:
    if segment == "topic":
        return packet.topic  # type: ignore[attr-defined]
    if segment.startswith("topic_filter["):
        i = int(segment[13:-1])
        return (packet.subscriptions[i].topic_filter if isinstance(packet, Subscribe)
                else packet.topic_filters[i])  # type: ignore[attr-defined]
    if segment == "will_topic":
        return packet.will.topic  # type: ignore[attr-defined]
    return getattr(packet, segment) or ""


@dataclass(frozen=True)
class BadString(Mutation):
    """A UTF-8 string field carrying ill-formed UTF-8, an encoded surrogate or U+0000 (in its middle)."""

    segment: str
    bad: str  # key of BAD_BYTES

    def encode(self, packet: Packet, level: int) -> bytes:
        text = _segment_text(packet, self.segment).encode("utf-8")
        half = len(text) // 2
        return craft(packet, replace={self.segment: raw_string(text[:half] + BAD_BYTES[self.bad] + text[half:])}
                     ).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        which = "null-char" if self.bad == "null" else "utf8"
        if isinstance(packet, Connect):
            return Expect(CLOSED, f"malformed/connect/{which}")
        return Expect(CLOSED, f"malformed/{which}")


@dataclass(frozen=True)
class Discouraged(Mutation):
    """A string with a control character or a non-character: the receiver MAY close (tolerated)."""

    segment: str
    char: str  # key of DISCOURAGED

    def encode(self, packet: Packet, level: int) -> bytes:
        text = _segment_text(packet, self.segment)
        half = len(text) // 2
        bad = (text[:half] + DISCOURAGED[self.char] + text[half:]).encode("utf-8")
        return craft(packet, replace={self.segment: raw_string(bad)}).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(TOLERATE, "tolerated/discouraged-character", barrier=False)


@dataclass(frozen=True)
class TopicWildcard(Mutation):
    """A PUBLISH Topic Name with a wildcard character in it."""

    form: str  # "+" | "#" | "a+b" | "a#b" | "+/x"

    def encode(self, packet: Packet, level: int) -> bytes:
        return encode(replace(packet, topic=f"{packet.topic}/{self.form}"), level)  # type: ignore[call-arg, attr-defined]

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/topic-wildcard", refusal="ack")


@dataclass(frozen=True)
class BadFilter(Mutation):
    """A SUBSCRIBE (or UNSUBSCRIBE) Topic Filter with a wildcard where it may not stand."""

    index: int
    form: str  # appended to the filter: "x#", "#/x", "##", "x+", "+x", "++"

    def _changed(self, packet: Packet) -> Packet:
        index = self.index % _filter_count(packet)
        if isinstance(packet, Subscribe):
            subs = list(packet.subscriptions)
            subs[index] = replace(subs[index], topic_filter=_strip_hash(subs[index].topic_filter) + "/" + self.form)
            return replace(packet, subscriptions=tuple(subs))
        filters = list(packet.topic_filters)  # type: ignore[attr-defined]
        filters[index] = _strip_hash(filters[index]) + "/" + self.form
        return replace(packet, topic_filters=tuple(filters))  # type: ignore[call-arg]

    def encode(self, packet: Packet, level: int) -> bytes:
        return encode(self._changed(packet), level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        rule = "malformed/filter-hash" if "#" in self.form else "malformed/filter-plus"
        if isinstance(packet, Unsubscribe):
            return Expect(TOLERATE, "tolerated/unsubscribe-bad-filter", barrier=False)
        return Expect(CLOSED, rule, refusal=f"suback:{self.index % _filter_count(packet)}")


def _strip_hash(topic_filter: str) -> str:
    return topic_filter[:-2] if topic_filter.endswith("/#") else topic_filter


def _filter_count(packet: Packet) -> int:
    if isinstance(packet, Subscribe):
        return max(1, len(packet.subscriptions))
    return max(1, len(packet.topic_filters))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EmptyTopic(Mutation):
    """A zero-length Topic Name (PUBLISH, without a Topic Alias) or Topic Filter."""

    index: int = 0

    def encode(self, packet: Packet, level: int) -> bytes:
        if isinstance(packet, Publish):
            return encode(replace(packet, topic="", properties=_without(packet.properties, "topic_alias")), level)
        i = self.index % _filter_count(packet)
        return craft(packet, replace={f"topic_filter[{i}]": raw_string(b"")}).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if isinstance(packet, Publish):
            return Expect(CLOSED, "malformed/empty-topic", refusal="ack")
        kind = "suback" if isinstance(packet, Subscribe) else "unsuback"
        return Expect(CLOSED, "malformed/empty-topic", refusal=f"{kind}:{self.index % _filter_count(packet)}")


def _without(props: Properties, name: str) -> Properties:
    return Properties.of([(k, v) for k, v in props if k != name])


@dataclass(frozen=True)
class PacketIdZero(Mutation):
    """SUBSCRIBE, UNSUBSCRIBE or QoS>0 PUBLISH with Packet Identifier 0."""

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, packet_id=b"\x00\x00").encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/packet-id-zero")


@dataclass(frozen=True)
class NoPayload(Mutation):
    """SUBSCRIBE or UNSUBSCRIBE without any topic filter."""

    def encode(self, packet: Packet, level: int) -> bytes:
        drop = [s.name for s in segments(packet, level) if s.name.startswith(("topic_filter[", "options["))]
        return craft(packet, drop=drop).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/subscribe-empty" if isinstance(packet, Subscribe)
                      else "malformed/unsubscribe-empty")


@dataclass(frozen=True)
class SubOptions(Mutation):
    """A SUBSCRIBE options byte with reserved bits set, QoS 3, or (5.0) Retain Handling 3."""

    index: int
    value: int

    def encode(self, packet: Packet, level: int) -> bytes:
        i = self.index % _filter_count(packet)
        return craft(packet, replace={f"options[{i}]": bytes([self.value])}).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, options_rule(self.value, ctx.v5) or "valid/subscribe")


def options_rule(value: int, v5: bool) -> str | None:
    """Which rule a SUBSCRIBE options byte breaks (None: a valid byte)."""
    reserved = 0xC0 if v5 else 0xFC
    if value & reserved:
        return "malformed/subscribe-options/reserved"
    if value & 0x03 == 3:
        return "malformed/subscribe-options/qos3"
    if v5 and (value >> 4) & 0x03 == 3:
        return "malformed/subscribe-options/retain-handling-3"
    return None


@dataclass(frozen=True)
class RemainingLength(Mutation):
    """Remaining Length written differently: ``non-minimal`` (padded to ``size`` bytes), ``five-bytes``,
    ``longer`` / ``shorter`` than the body by ``delta`` (the packet then swallows or leaves bytes)."""

    form: str
    size: int = 2
    delta: int = 1

    def encode(self, packet: Packet, level: int) -> bytes:
        data = encode(packet, level)
        segs = segments(packet, level)
        body = b"".join(s.data for s in segs[2:])
        if self.form == "non-minimal":
            length = encode_varint(len(body), min_bytes=max(self.size, len(segs[1].data) + 1))
            if len(length) > 4:
                length = encode_varint(len(body), min_bytes=4)
            return segs[0].data + length + body
        if self.form == "five-bytes":
            return segs[0].data + bytes([(len(body) & 0x7F) | 0x80, 0x80, 0x80, 0x80, 0x00]) + body
        if self.form == "longer":
            return segs[0].data + encode_varint(len(body) + self.delta) + body
        if self.form == "shorter":
            return segs[0].data + encode_varint(max(0, len(body) - self.delta)) + body
        return data

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        connect = isinstance(packet, Connect)
        if self.form == "five-bytes":
            return Expect(CLOSED, "malformed/connect/length" if connect else "malformed/remaining-length/five-bytes",
                          barrier=False)
        if self.form == "non-minimal":
            if len(segments(packet, ctx.level)[1].data) >= 4:  # already four bytes: nothing to pad
                return Valid().expect(packet, ctx)
            if ctx.v5:
                rule = "malformed/connect/non-minimal" if connect else "malformed/remaining-length/non-minimal"
                return Expect(CLOSED, rule)
            return Expect(TOLERATE, "tolerated/non-minimal-remaining-length", barrier=False)
        return Expect(TOLERATE, f"tolerated/remaining-length-{self.form}", barrier=False)


@dataclass(frozen=True)
class Trailing(Mutation):
    """Bytes appended inside the Remaining Length, after the last field."""

    data: bytes = b"\x00"

    def encode(self, packet: Packet, level: int) -> bytes:
        extra = self.data
        if isinstance(packet, Subscribe | Unsubscribe):
            extra = extra[:1] or b"\x00"  # one byte: an incomplete filter length, never a filter
        return craft(packet, append=extra).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if isinstance(packet, Connect):
            return Expect(CLOSED, "malformed/connect/length")
        if isinstance(packet, Pingreq | Subscribe | Unsubscribe):
            return Expect(CLOSED, f"malformed/trailing-bytes/{packet.name}")
        return Expect(TOLERATE, f"tolerated/trailing-bytes/{packet.name}", barrier=False)


@dataclass(frozen=True)
class Truncated(Mutation):
    """Only the first ``keep`` bytes of the packet, then the client half-closes."""

    keep: int

    def encode(self, packet: Packet, level: int) -> bytes:
        data = encode(packet, level)
        return data[: max(1, min(self.keep, len(data) - 1))]

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(TOLERATE, "tolerated/truncated", barrier=False)


@dataclass(frozen=True)
class RawPacket(Mutation):
    """A packet type the client must not send (reserved 0, AUTH in 3.1.1, server-only packets)."""

    first_byte: int
    body: bytes = b""

    def encode(self, packet: Packet, level: int) -> bytes:
        return bytes([self.first_byte]) + encode_varint(len(self.body)) + self.body

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        kind = self.first_byte >> 4
        if kind == 0 or (kind == 15 and not ctx.v5):
            return Expect(CLOSED, "malformed/reserved-type")
        return Expect(TOLERATE, f"tolerated/server-packet/{PacketType(kind).name}", barrier=False)


@dataclass(frozen=True)
class SecondConnect(Mutation):
    """A second CONNECT on an accepted connection."""

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/second-connect")


@dataclass(frozen=True)
class NotConnectFirst(Mutation):
    """A packet other than CONNECT as the first packet of a connection."""

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/first-packet-not-connect")


@dataclass(frozen=True)
class AuthWithoutMethod(Mutation):
    """5.0: AUTH on a connection whose CONNECT had no Authentication Method."""

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, "malformed/auth-without-method")


@dataclass(frozen=True)
class Tolerated(Mutation):
    """A well-formed packet whose handling the spec leaves open (stray acks, QoS 0 with DUP=1, ...)."""

    why: str

    def encode(self, packet: Packet, level: int) -> bytes:
        if self.why == "qos0-dup":
            return craft(packet, dup_bit=1).encode(level)
        return encode(packet, level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(TOLERATE, f"tolerated/{self.why}", barrier=False)


@dataclass(frozen=True)
class PropertyItems(Mutation):
    """5.0: the packet's properties replaced by raw (identifier, value bytes) items: duplicates, unknown
    identifiers, properties of another packet type, forbidden values, ill-formed strings."""

    items: tuple[tuple[int, bytes], ...]
    rule: str
    target: str = "properties"  # or will_properties

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, replace={self.target: _property_block(self.items)}).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if self.rule.startswith("tolerated/"):
            return Expect(TOLERATE, self.rule, barrier=False)
        if isinstance(packet, Connect):
            rule = self.rule.replace("malformed/property", "malformed/connect/property")
            rule = rule.replace("malformed/utf8", "malformed/connect/utf8").replace(
                "malformed/null-char", "malformed/connect/null-char")
            return Expect(CLOSED, rule)
        return Expect(CLOSED, self.rule)


def _property_block(items: tuple[tuple[int, bytes], ...], length_bytes: bytes | None = None) -> bytes:
    body = b"".join(encode_varint(ident) + value for ident, value in items)
    return (encode_varint(len(body)) if length_bytes is None else length_bytes) + body


@dataclass(frozen=True)
class PropertyLength(Mutation):
    """5.0: Property Length non-minimal (``pad`` bytes) or running past the packet (``overrun``)."""

    form: str  # non-minimal | overrun
    amount: int = 2

    def encode(self, packet: Packet, level: int) -> bytes:
        body = _property_body(packet, level)
        if self.form == "non-minimal":
            need = len(encode_varint(len(body)))
            length = encode_varint(len(body), min_bytes=min(4, max(need + 1, self.amount)))
        else:  # past the end of the packet: a PUBLISH payload must not be read as properties instead
            extra = max(1, self.amount) + (len(packet.payload) if isinstance(packet, Publish) else 0)
            length = encode_varint(len(body) + extra)
        return craft(packet, properties=length + body).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        connect = isinstance(packet, Connect)
        if self.form == "non-minimal" and len(encode_varint(len(_property_body(packet, ctx.level)))) >= 4:
            return Valid().expect(packet, ctx)  # already four bytes: nothing to pad
        if self.form == "non-minimal":
            return Expect(CLOSED, "malformed/connect/non-minimal" if connect else "malformed/property/non-minimal")
        return Expect(CLOSED, "malformed/connect/property/length" if connect else "malformed/property/length")


def _property_body(packet: Packet, level: int) -> bytes:
    block = next((s.data for s in segments(packet, level) if s.name == "properties"), b"\x00")
    return block[_varint_len(block)[1]:]


def _varint_len(data: bytes) -> tuple[int, int]:
    value = 0
    for i, byte in enumerate(data[:4]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, i + 1
    return value, min(4, len(data))


@dataclass(frozen=True)
class ConnectFlags(Mutation):
    """A CONNECT whose Connect Flags byte is forced."""

    value: int

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, connect_flags=self.value).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(CLOSED, connect_flags_rule(self.value, packet, ctx.v5) or "valid/connect")


def connect_flags_rule(flags: int, packet: Packet, v5: bool) -> str | None:
    assert isinstance(packet, Connect)
    if flags & 0x01:
        return "malformed/connect/reserved-flag"
    will = bool(flags & 0x04)
    if not will and flags & 0x38:
        return "malformed/connect/will-flags"
    if will and (flags >> 3) & 0x03 == 3:
        return "malformed/connect/will-qos3"
    if not v5 and flags & 0x40 and not flags & 0x80:
        return "malformed/connect/password-without-username"
    return None


@dataclass(frozen=True)
class ProtocolLevel(Mutation):
    """A CONNECT with a Protocol Level this spec does not define."""

    value: int

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, protocol_level=self.value).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        if self.value in (3, 4, 5):
            return Expect(TOLERATE, "tolerated/protocol-level-of-another-version", barrier=False)
        return Expect(CLOSED, "malformed/connect/protocol-level")


@dataclass(frozen=True)
class ProtocolName(Mutation):
    """A CONNECT with another Protocol Name: the server MAY close or treat it as another protocol."""

    name: str

    def encode(self, packet: Packet, level: int) -> bytes:
        return craft(packet, protocol_name=raw_string(self.name.encode())).encode(level)

    def expect(self, packet: Packet, ctx: FuzzContext) -> Expect:
        return Expect(TOLERATE, "tolerated/protocol-name", barrier=False)


@dataclass(frozen=True)
class Input:
    """One fuzz input: ``packet`` (well-formed structure) as changed by ``mutation``; ``phase`` says whether it
    is sent as the first packet of a connection (``connect``) or on an accepted connection (``session``).
    ``then`` are well-formed packets sent right behind it (a Topic Alias being used after it is set)."""

    phase: str
    packet: Packet
    mutation: Mutation
    then: tuple[Packet, ...] = ()

    def expect(self, ctx: FuzzContext) -> Expect:
        return self.mutation.expect(self.packet, ctx)

    def encode(self, level: int) -> bytes:
        return self.mutation.encode(self.packet, level) + b"".join(encode(p, level) for p in self.then)

    def signature(self) -> str:
        """What kind of input this is, without its details (to recognise a known crash trigger)."""
        form = getattr(self.mutation, "form", None) or getattr(self.mutation, "rule", None)
        return type(self.mutation).__name__ + (f":{form}" if form else "")

    def describe(self) -> str:
        text = f"{self.packet.name} {self.mutation.label()}"
        return text + (f" then {', '.join(p.name for p in self.then)}" if self.then else "")


# -- sizes that count as "beyond everyday limits" -------------------------------------------------------------
LIMIT_TOPIC_BYTES = 1024
LIMIT_LEVELS = 32
LIMIT_PAYLOAD = 65536
LIMIT_USER_PROPERTIES = 16
LIMIT_CLIENT_ID = 64


def is_limit(packet: Packet) -> bool:
    """Well-formed but beyond common implementation limits: a broker may refuse it by closing."""
    topics: list[str] = []
    props = getattr(packet, "properties", Properties())
    if isinstance(packet, Publish):
        topics = [packet.topic]
        if len(packet.payload) > LIMIT_PAYLOAD:
            return True
    elif isinstance(packet, Subscribe):
        topics = [s.topic_filter for s in packet.subscriptions]
    elif isinstance(packet, Unsubscribe):
        topics = list(packet.topic_filters)
    elif isinstance(packet, Connect):
        if len(packet.client_id.encode("utf-8", "surrogatepass")) > LIMIT_CLIENT_ID:
            return True
        if packet.will is not None:
            topics = [packet.will.topic]
            if len(packet.will.payload) > LIMIT_PAYLOAD or len(packet.will.properties.all("user_property")) > \
                    LIMIT_USER_PROPERTIES:
                return True
    if any(len(t.encode("utf-8", "surrogatepass")) > LIMIT_TOPIC_BYTES or t.count("/") >= LIMIT_LEVELS for t in topics):
        return True
    if len(props.all("user_property")) > LIMIT_USER_PROPERTIES:
        return True
    return any(isinstance(v, str | bytes) and len(v) > LIMIT_TOPIC_BYTES for _, v in props)


# -- the grammar -----------------------------------------------------------------------------------------
#
# A hypothesis draw costs about 0.1 ms, so an input built from thirty separate draws would cap the campaign
# far below a thousand inputs a second. Each input is therefore one fixed-width choice vector (``GENES``
# bytes, a single cheap ``st.binary`` draw) that ``build_input`` interprets: every gene has a fixed meaning,
# and the value 0 always selects the simplest production (PUBLISH, QoS 0, topic ``<prefix>/a``, empty
# payload, no properties, no mutation). Shrinking drives genes towards 0, i.e. towards the plainest packet
# that still fails, and the example hypothesis keeps is the built ``Input``, printed structurally.

GENES = 24
LEVELS = ("a", "b", "x1", "", " ", "sp ace", "$x", "ü", "日本", "😀", "e\u0301", "\u00e9", "\ufeff", "-_.~", "UP", "0")
LONG_CHARS = ("a", "é", "日", "😀")
TEXTS = ("a", "", "text", "ü", "日本語", "😀", "\ufeff", "k=v", "  ", "x" * 40)
U32S = (0, 1, 60, 300, 2**31, 2**32 - 1)
CLIENT_ID_SUFFIXES = ("", "x", "ü", "日本", "😀", "-_.", "A" * 30, "b" * 200, " sp", "")
RL_TARGETS = (127, 128, 16383, 16384, 65536, 262144)


class Genes:
    """The choice vector of one input; reading past its end gives 0 (the simplest choice)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __getitem__(self, i: int) -> int:
        return self.data[i] if i < len(self.data) else 0

    def pick(self, i: int, seq: tuple | list) -> Any:
        return seq[self[i] % len(seq)]

    def bit(self, i: int, n: int) -> bool:
        return bool((self[i] >> n) & 1)


def _clamp(text: str, limit: int = 65535) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _suffix(g: Genes, shift: int = 0, wild: bool = False) -> str:
    """Topic levels below the prefix (genes 3-6); ``shift`` varies them per filter; ``wild`` allows '+'/'#'."""
    form = g[3] % 8
    if form == 5:
        return "/".join([LEVELS[(g[5] + shift) % len(LEVELS)]] * (6 + g[4]))  # deep: 6-261 levels
    if form == 6:
        return LONG_CHARS[(g[5] + shift) % 4] * (2 + g[4] * 16)  # one long level, up to ~4000 characters
    if form == 7 and wild:
        return "#"
    count = 1 + g[4] % 4
    levels = [LEVELS[(g[5] * (i + 1) + g[6] * i + shift) % len(LEVELS)] for i in range(count)]
    if wild:
        levels = ["+" if (g[6] >> i) & 1 and i else lvl for i, lvl in enumerate(levels)]
        if form == 4:
            levels.append("#")
    return "/".join(levels)


def _topic(g: Genes, ctx: FuzzContext, shift: int = 0, wild: bool = False) -> str:
    return _clamp(f"{ctx.prefix}/{_suffix(g, shift, wild and ctx.wildcard_subscriptions)}")


def _payload(g: Genes) -> bytes | int:
    """Payload bytes, or an int: the Remaining Length the PUBLISH should reach (a varint boundary)."""
    kind, size = g[7] % 8, g[8]
    if kind == 0:
        return b""
    if kind <= 3:
        return bytes([0x61 + i % 26 for i in range(size % 48)])
    if kind == 4:
        return bytes(range(size % 64))  # not UTF-8 in general
    if kind == 5:
        return "é😀".encode() * (1 + size % 16)
    if kind == 6:
        return RL_TARGETS[size % len(RL_TARGETS)]
    return bytes([0x5A]) * (70000 + size)


def _users(g: Genes, i: int) -> list[tuple[str, str]]:
    n = 24 if g[i] >= 250 else g[i] % 4
    return [(TEXTS[(g[i] + k) % len(TEXTS)], TEXTS[(g[i] * 3 + k) % len(TEXTS)]) for k in range(n)]


def _publish_props(g: Genes, ctx: FuzzContext, payload: bytes) -> Properties:
    if not ctx.v5:
        return Properties()
    mask = g[9]
    items: list[tuple[str, Any]] = []
    if mask & 0x01:
        utf8 = _is_utf8(payload)
        items.append(("payload_format_indicator", 1 if utf8 and g[10] & 1 else 0))
    if mask & 0x02:
        items.append(("message_expiry_interval", U32S[g[10] % len(U32S)]))
    if mask & 0x04:
        items.append(("content_type", TEXTS[g[11] % len(TEXTS)]))
    if mask & 0x08:
        items.append(("response_topic", f"{ctx.prefix}/r/{LEVELS[g[11] % len(LEVELS)]}"))
    if mask & 0x10:
        items.append(("correlation_data", bytes(range(g[12] % 16))))
    if mask & 0x40 and ctx.topic_alias_maximum:
        items.append(("topic_alias", 1 + g[10] % ctx.topic_alias_maximum))
    if mask & 0x20:
        items += [("user_property", pair) for pair in _users(g, 12)]
    return Properties.of(items)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_publish(g: Genes, ctx: FuzzContext) -> Publish:
    qos = min((g[2] & 3) % 3, ctx.maximum_qos)
    payload = _payload(g)
    props = _publish_props(g, ctx, payload if isinstance(payload, bytes) else b"")
    publish = Publish(topic=_topic(g, ctx), payload=b"", qos=qos, retain=g.bit(2, 2) and ctx.retain_available,
                      dup=g.bit(2, 3) and qos > 0, packet_id=1 if qos else None, properties=props)
    if isinstance(payload, int):  # fill the payload so that the Remaining Length hits the boundary
        body = sum(len(s.data) for s in segments(publish, ctx.level)[2:])
        payload = bytes([0x5A]) * max(0, payload - body)
    publish = replace(publish, payload=payload)
    if ctx.maximum_packet_size and len(encode(publish, ctx.level)) > ctx.maximum_packet_size:
        publish = replace(publish, payload=b"")
    return publish


def _subscriptions(g: Genes, ctx: FuzzContext) -> tuple[Subscription, ...]:
    subs = []
    for i in range(1 + g[18] % 4):
        qos = ((g[2] >> (2 * i)) & 3) % 3
        if ctx.v5:
            subs.append(Subscription(_topic(g, ctx, 3 * i, wild=True), qos, g.bit(19, i), g.bit(19, i + 4),
                                     ((g[23] >> (2 * i)) & 3) % 3))
        else:
            subs.append(Subscription(_topic(g, ctx, 3 * i, wild=True), qos))
    return tuple(subs)


def build_subscribe(g: Genes, ctx: FuzzContext) -> Subscribe:
    items: list[tuple[str, Any]] = []
    if ctx.v5:
        if g[9] & 0x01 and ctx.subscription_identifiers:
            items.append(("subscription_identifier", (1, 127, 128, 16384, 268435455)[g[10] % 5]))
        if g[9] & 0x20:
            items += [("user_property", pair) for pair in _users(g, 12)]
    return Subscribe(packet_id=1, subscriptions=_subscriptions(g, ctx), properties=Properties.of(items))


def build_unsubscribe(g: Genes, ctx: FuzzContext) -> Unsubscribe:
    filters = tuple(_topic(g, ctx, 3 * i, wild=True) for i in range(1 + g[18] % 4))
    items = [("user_property", pair) for pair in _users(g, 12)] if ctx.v5 and g[9] & 0x20 else []
    return Unsubscribe(packet_id=1, topic_filters=filters, properties=Properties.of(items))


def build_connect(g: Genes, ctx: FuzzContext) -> Connect:
    will = None
    if g.bit(2, 5):
        will_props: list[tuple[str, Any]] = []
        if ctx.v5:
            if g[12] & 0x01:
                will_props.append(("will_delay_interval", (0, 1, 300)[g[11] % 3]))
            if g[12] & 0x02:
                will_props.append(("message_expiry_interval", U32S[g[11] % len(U32S)]))
            if g[12] & 0x04:
                will_props.append(("content_type", TEXTS[g[11] % len(TEXTS)]))
        will = Will(topic=_topic(g, ctx), payload=bytes(range(g[8] % 16)), qos=min(g[21] % 3, ctx.maximum_qos),
                    retain=g.bit(21, 2) and ctx.retain_available, properties=Properties.of(will_props))
    username = ("user", "", "日本")[(g[21] >> 4) % 3] if g.bit(2, 6) else None
    password = bytes(range(g[10] % 8)) if g.bit(2, 7) and (ctx.v5 or username is not None) else None
    items: list[tuple[str, Any]] = []
    if ctx.v5:
        mask = g[9]
        if mask & 0x01:
            items.append(("session_expiry_interval", (0, 1, 300, 2**32 - 1)[g[10] % 4]))
        if mask & 0x02:
            items.append(("receive_maximum", (1, 20, 65535)[g[10] % 3]))
        if mask & 0x04:
            items.append(("maximum_packet_size", (1024, 65536, 268435455)[g[11] % 3]))
        if mask & 0x08:
            items.append(("topic_alias_maximum", (0, 1, 65535)[g[11] % 3]))
        if mask & 0x10:
            items.append(("request_response_information", g[11] & 1))
        if mask & 0x40:
            items.append(("request_problem_information", (g[11] >> 1) & 1))
        if mask & 0x20:
            items += [("user_property", pair) for pair in _users(g, 12)]
    return Connect(client_id=CLIENT_ID_SUFFIXES[g[20] % len(CLIENT_ID_SUFFIXES)], clean_start=not g.bit(2, 4),
                   keep_alive=(60, 0, 1, 65535)[g[20] >> 6], will=will, username=username, password=password,
                   properties=Properties.of(items))


# -- mutations chosen by gene 13, parameters in genes 14-17 ------------------------------------------------
def _string_segments(packet: Packet) -> list[str]:
    if isinstance(packet, Publish):
        return ["topic"]
    if isinstance(packet, Subscribe):
        return [f"topic_filter[{i}]" for i in range(len(packet.subscriptions))]
    if isinstance(packet, Unsubscribe):
        return [f"topic_filter[{i}]" for i in range(len(packet.topic_filters))]
    if isinstance(packet, Connect):
        return ["client_id"] + (["will_topic"] if packet.will else []) + \
            (["username"] if packet.username is not None else [])
    return []


BAD_KEYS = tuple(sorted(BAD_BYTES))
DISCOURAGED_KEYS = tuple(sorted(DISCOURAGED))
WILDCARD_FORMS = ("+", "#", "a+b", "a#b", "+/x")
BAD_FILTER_FORMS = ("x#", "#x", "#/x", "##", "x+", "+x", "x+y", "++", "#/#", "+#")

# properties of other packets that a client must not put in PUBLISH / SUBSCRIBE / UNSUBSCRIBE / CONNECT
_MISPLACED = {
    "PUBLISH": [("session_expiry_interval", b"\x00\x00\x00\x05"), ("receive_maximum", b"\x00\x05"),
                ("maximum_qos", b"\x01"), ("server_keep_alive", b"\x00\x05"), ("reason_string", raw_string(b"r"))],
    "SUBSCRIBE": [("session_expiry_interval", b"\x00\x00\x00\x05"), ("topic_alias", b"\x00\x01"),
                  ("content_type", raw_string(b"c"))],
    "UNSUBSCRIBE": [("session_expiry_interval", b"\x00\x00\x00\x05"), ("subscription_identifier", b"\x01"),
                    ("correlation_data", raw_string(b"c"))],
    "CONNECT": [("topic_alias", b"\x00\x01"), ("maximum_qos", b"\x01"), ("content_type", raw_string(b"c")),
                ("server_keep_alive", b"\x00\x05")],
}
# properties the packet may carry once (with a valid value), to send twice
_ONCE = {
    "PUBLISH": [("message_expiry_interval", b"\x00\x00\x00\x3c"), ("content_type", raw_string(b"c")),
                ("payload_format_indicator", b"\x00"), ("correlation_data", raw_string(b"c"))],
    "SUBSCRIBE": [("subscription_identifier", b"\x05")],
    "UNSUBSCRIBE": [],
    "CONNECT": [("session_expiry_interval", b"\x00\x00\x00\x00"), ("receive_maximum", b"\x00\x0a"),
                ("maximum_packet_size", b"\x00\x01\x00\x00"), ("topic_alias_maximum", b"\x00\x01"),
                ("request_problem_information", b"\x01"), ("request_response_information", b"\x00")],
}
# values the spec forbids (or leaves open: ``tolerated/...``): (property, value bytes, rule)
_BAD_VALUES = {
    "PUBLISH": [("topic_alias", b"\x00\x00", "malformed/property/topic-alias-zero"),
                ("payload_format_indicator", b"\x02", "tolerated/payload-format-indicator-value"),
                ("subscription_identifier", b"\x05", "tolerated/subscription-identifier-from-client")],
    "SUBSCRIBE": [("subscription_identifier", b"\x00", "malformed/property/subscription-identifier-zero")],
    "UNSUBSCRIBE": [],
    "CONNECT": [("receive_maximum", b"\x00\x00", "malformed/property/value"),
                ("maximum_packet_size", b"\x00\x00\x00\x00", "malformed/property/value"),
                ("request_problem_information", b"\x02", "malformed/property/value"),
                ("request_response_information", b"\x02", "malformed/property/value"),
                ("authentication_data", raw_string(b"d"), "malformed/property/value")],
}
_UNKNOWN_IDS = (0x00, 0x04, 0x05, 0x07, 0x10, 0x14, 0x1B, 0x2B, 0x7F)


def _property_mutation(g: Genes, ctx: FuzzContext, packet: Packet) -> Mutation:
    name, which, p = packet.name, g[14] % 6, g[15]
    if which == 0:
        return PropertyItems(((_UNKNOWN_IDS[p % len(_UNKNOWN_IDS)], b"\x00"),), "malformed/property/unknown")
    if which == 1:
        prop, value = _MISPLACED[name][p % len(_MISPLACED[name])]
        return PropertyItems(((BY_NAME[prop].ident, value),), "malformed/property/misplaced")
    if which == 2:
        return PropertyLength(("non-minimal", "overrun")[p % 2], 2 + g[16] % 3)
    if which == 3 and _ONCE[name]:
        prop, value = _ONCE[name][p % len(_ONCE[name])]
        return PropertyItems(((BY_NAME[prop].ident, value),) * 2, "malformed/property/duplicate")
    if which == 4:
        bad_values = list(_BAD_VALUES[name])
        if name == "PUBLISH" and ctx.topic_alias_maximum < 65535:
            bad_values.append(("topic_alias", encode_u16(ctx.topic_alias_maximum + 1),
                               "malformed/property/topic-alias-above-maximum"))
        if bad_values:
            prop, value, rule = bad_values[p % len(bad_values)]
            return PropertyItems(((BY_NAME[prop].ident, value),), rule)
    names = ["content_type", "response_topic", "user_property"] if name == "PUBLISH" else ["user_property"]
    prop, bad = names[p % len(names)], BAD_KEYS[g[16] % len(BAD_KEYS)]
    raw = raw_string(b"x" + BAD_BYTES[bad] + b"y")
    value = raw + raw_string(b"v") if prop == "user_property" else raw
    return PropertyItems(((BY_NAME[prop].ident, value),), "malformed/null-char" if bad == "null" else "malformed/utf8")


def _wrong_flags(g: Genes, packet: Packet) -> int:
    required = REQUIRED_FLAGS.get(packet.TYPE, 0)
    value = 1 + g[14] % 15
    return value if value != required else (value + 1) % 16


def _bad_options(g: Genes, v5: bool) -> int:
    candidates = (0x03, 0x04, 0x40, 0x80, 0xC1) if not v5 else (0x03, 0x40, 0x80, 0x30, 0xC2, 0x33)
    return candidates[g[15] % len(candidates)]


def session_mutation(g: Genes, ctx: FuzzContext, packet: Packet) -> Mutation:
    """The mutation gene 13 selects for a session packet (0-7 of every 18 leave it well-formed)."""
    choice = g[13] % 18
    if choice < 8:
        return Valid()
    choice -= 2
    segs = _string_segments(packet)
    if choice == 6:
        return RemainingLength(("non-minimal", "five-bytes", "longer", "shorter")[g[14] % 4], 2 + g[15] % 3,
                               1 + g[16] % 3)
    if choice == 7:
        return Truncated(1 + g[14] % 64)
    if choice == 8 and segs:
        return BadString(segs[g[14] % len(segs)], BAD_KEYS[g[15] % len(BAD_KEYS)])
    if choice == 9 and segs:
        return Discouraged(segs[g[14] % len(segs)], DISCOURAGED_KEYS[g[15] % len(DISCOURAGED_KEYS)])
    if choice in (10, 11) and ctx.v5 and isinstance(packet, Publish | Subscribe | Unsubscribe):
        return _property_mutation(g, ctx, packet)
    if isinstance(packet, Publish):
        if choice in (8, 9, 10, 11):
            return Qos3(g.bit(14, 0))
        if choice == 12:
            return Qos3(g.bit(14, 0))
        if choice == 13:
            return TopicWildcard(WILDCARD_FORMS[g[14] % len(WILDCARD_FORMS)])
        if choice == 14:
            return EmptyTopic()
        return PacketIdZero() if packet.qos else Tolerated("qos0-dup")
    if isinstance(packet, Subscribe | Unsubscribe):
        if choice in (8, 9, 10, 11):
            return Flags(_wrong_flags(g, packet))
        if choice == 12:
            return BadFilter(g[14] % 4, BAD_FILTER_FORMS[g[15] % len(BAD_FILTER_FORMS)])
        if choice == 13:
            return (EmptyTopic(g[14] % 4), PacketIdZero(), NoPayload(), Trailing(bytes([g[15]])))[g[16] % 4]
        if choice == 14 and isinstance(packet, Subscribe):
            return SubOptions(g[14] % 4, _bad_options(g, ctx.v5))
        return Flags(_wrong_flags(g, packet))
    # PINGREQ
    if choice in (12, 13):
        return Trailing(bytes([g[15]]) * (1 + g[14] % 3))
    return Flags(_wrong_flags(g, packet))


def connect_mutation(g: Genes, ctx: FuzzContext, packet: Connect) -> Mutation:
    choice = g[13] % 16
    if choice < 6:
        return Valid()
    if choice == 6:
        value = (0x01, 0x03, 0x0A, 0x22, 0x1E, 0x42, 0x3E)[g[14] % 7]
        return ConnectFlags(value) if connect_flags_rule(value, packet, ctx.v5) else ConnectFlags(0x01)
    if choice == 7:
        return ProtocolLevel((0, 1, 2, 6, 7, 0x84, 255, 3, 4, 5)[g[14] % 10])
    if choice == 8:
        return ProtocolName(("MQIsdp", "MQTX", "mqtt", "MQTT\x00", "")[g[14] % 5])
    segs = _string_segments(packet)
    if choice == 9:
        return BadString(segs[g[14] % len(segs)], BAD_KEYS[g[15] % len(BAD_KEYS)])
    if choice == 10:
        return Discouraged(segs[g[14] % len(segs)], DISCOURAGED_KEYS[g[15] % len(DISCOURAGED_KEYS)])
    if choice == 11:
        return Flags(_wrong_flags(g, packet))
    if choice == 12:
        return Trailing(bytes([g[15]]) * (1 + g[14] % 3))
    if choice == 13:
        return Truncated(1 + g[14] % 40)
    if choice == 14 and ctx.v5:
        return _property_mutation(g, ctx, packet)
    return RemainingLength(("non-minimal", "five-bytes")[g[14] % 2], 2 + g[15] % 3)


def _special(g: Genes, ctx: FuzzContext) -> Input:
    """Inputs outside the packet x mutation scheme (gene 22)."""
    which = g[22] % 8
    if which == 0:
        cls = (Puback, Pubrec, Pubrel, Pubcomp)[g[14] % 4]
        return Input("session", cls(packet_id=1 + g[15] * 256 + g[16]), Tolerated("stray-ack"))
    if which == 1:
        first = (0x00, 0x20, 0x90, 0xB0, 0xD0, 0xF0)[g[14] % (6 if not ctx.v5 else 5)]
        return Input("session", Pingreq(), RawPacket(first))
    if which == 2:
        return Input("session", Connect(client_id="second"), SecondConnect())
    if which == 3:
        return Input("session", Disconnect(reason_code=(0, 4)[g[14] % 2] if ctx.v5 else 0), Valid())
    if which == 4 and ctx.v5:
        return Input("session", Auth(reason_code=(0x00, 0x18, 0x19)[g[14] % 3]), AuthWithoutMethod())
    if which == 5 and ctx.v5 and ctx.topic_alias_maximum:
        publish = build_publish(g, ctx)
        publish = replace(publish, payload=publish.payload[:512])
        alias = 1 + g[15] % ctx.topic_alias_maximum
        setting = replace(publish, properties=Properties.of([*_without(publish.properties, "topic_alias"),
                                                             ("topic_alias", alias)]))
        using = Publish(topic="", payload=b"aliased", qos=publish.qos, packet_id=publish.packet_id,
                        properties=Properties(topic_alias=alias))
        return Input("session", setting, Valid(), (using,))
    first_packet = (Pingreq(), build_subscribe(g, ctx), replace(build_publish(g, ctx), payload=b"x"))[g[14] % 3]
    return Input("connect", first_packet, NotConnectFirst())


SESSION_TYPES = ("PUBLISH",) * 6 + ("SUBSCRIBE",) * 3 + ("UNSUBSCRIBE",) * 2 + ("PINGREQ",)
PHASES = ("session",) * 12 + ("connect",) * 3 + ("special",)


def build_input(ctx: FuzzContext, genes: bytes) -> Input:
    """Interpret one choice vector: phase (gene 0), packet (1-12, 18-23), mutation (13-17)."""
    g = Genes(genes)
    phase = PHASES[g[0] % len(PHASES)]
    if phase == "special":
        return _special(g, ctx)
    if phase == "connect":
        connect = build_connect(g, ctx)
        return Input("connect", connect, connect_mutation(g, ctx, connect))
    kind = SESSION_TYPES[g[1] % len(SESSION_TYPES)]
    packet: Packet
    if kind == "PUBLISH":
        packet = build_publish(g, ctx)
    elif kind == "SUBSCRIBE":
        packet = build_subscribe(g, ctx)
    elif kind == "UNSUBSCRIBE":
        packet = build_unsubscribe(g, ctx)
    else:
        packet = Pingreq()
    return Input("session", packet, session_mutation(g, ctx, packet))


def input_st(ctx: FuzzContext) -> st.SearchStrategy[Input]:
    return st.binary(min_size=GENES, max_size=GENES).map(lambda genes: build_input(ctx, genes))


def _flatten(groups: list[list[Input]]) -> list[Input]:
    return [inp for group in groups for inp in group]


def batch_st(ctx: FuzzContext, max_size: int = 144) -> st.SearchStrategy[list[Input]]:
    """One hypothesis example: a batch of inputs, run concurrently, then one liveness check.

    A list of lists: hypothesis keeps lists short on average (about six elements), and every example costs
    a fixed overhead and a liveness check, so nesting brings the average batch to about 25 inputs while
    shrinking can still take whole groups or single inputs away."""
    side = max(1, int(max_size**0.5))
    return st.lists(st.lists(input_st(ctx), min_size=1, max_size=side), min_size=1, max_size=side).map(_flatten)


__all__ = [
    "ANSWER", "CLOSED", "CONNECT", "GENES", "TOLERATE", "Expect", "FuzzContext", "Input",
    "Mutation", "batch_st", "build_input", "input_st", "is_limit",
]
