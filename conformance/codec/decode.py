"""Strict decoder and incremental parser.

``decode_packet`` turns one whole packet into a dataclass or raises MalformedPacket naming the rule
that was broken. ``Parser`` cuts a byte stream into packets whatever the TCP segmentation was.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import MalformedPacket
from .packets import (
    PACKET_CLASSES,
    REQUIRED_FLAGS,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import NO_PROPERTIES, WILL, Properties, decode_properties
from .wire import V31, V50, V311, Reader, decode_varint, rule

VALID_SUBACK_311 = {0x00, 0x01, 0x02, 0x80}


def decode_packet(data: bytes, level: int) -> Packet:
    """Decode exactly one packet (fixed header included)."""
    if not data:
        raise MalformedPacket("empty packet")
    first = data[0]
    type_value, flags = first >> 4, first & 0x0F
    if type_value == 0 or (type_value == PacketType.AUTH and level != V50):
        raise MalformedPacket(f"reserved packet type {type_value}")
    ptype = PacketType(type_value)
    length, used = decode_varint(data, 1, level, "Remaining Length")
    body = data[1 + used :]
    if len(body) != length:
        raise MalformedPacket(f"Remaining Length says {length} bytes, packet has {len(body)}")
    if ptype != PacketType.PUBLISH and flags != REQUIRED_FLAGS[ptype]:
        raise MalformedPacket(
            f"{ptype.name} fixed-header flags are 0b{flags:04b}, must be 0b{REQUIRED_FLAGS[ptype]:04b}",
            rule("flags", level),
        )
    reader = Reader(body, level)
    packet = _decode_body(ptype, flags, reader, level)
    if reader.remaining:
        raise MalformedPacket(f"{ptype.name} has {reader.remaining} unexpected trailing bytes")
    return packet


def _props(reader: Reader, packet: str, level: int) -> Properties:
    return decode_properties(reader, packet) if level == V50 else NO_PROPERTIES


def _packet_id(reader: Reader, name: str, level: int) -> int:
    value = reader.u16(f"{name} packet identifier")
    if value == 0:
        raise MalformedPacket(f"{name} packet identifier is 0", rule("packet_id_nonzero", level))
    return value


def _reason_and_properties(r: Reader, name: str, level: int) -> tuple[int, Properties]:
    """5.0's optional Reason Code and properties after the variable header (absent: 0, none)."""
    code, props = 0, NO_PROPERTIES
    if level == V50 and r.remaining:
        code = r.u8(f"{name} reason code")
        if r.remaining:
            props = decode_properties(r, name)
    return code, props


def _connack(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    ack_flags = r.u8("CONNACK acknowledge flags")
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK acknowledge flags bits 7-1 are not 0", rule("connack_reserved", level))
    code = r.u8("CONNACK reason code")
    return Connack(session_present=bool(ack_flags & 1), reason_code=code, properties=_props(r, ptype.name, level))


def _publish(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH QoS bits are 11", rule("qos3", level))
    topic = r.string("PUBLISH topic name")
    if "+" in topic or "#" in topic:
        raise MalformedPacket(f"PUBLISH topic name {topic!r} contains a wildcard", rule("topic_wildcard", level))
    packet_id = _packet_id(r, ptype.name, level) if qos else None
    props = _props(r, ptype.name, level)
    return Publish(
        topic=topic, payload=r.take(r.remaining, "payload"), qos=qos, retain=bool(flags & 1),
        dup=bool(flags & 8), packet_id=packet_id, properties=props,
    )


def _ack(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    packet_id = _packet_id(r, ptype.name, level)
    code, props = _reason_and_properties(r, ptype.name, level)
    return PACKET_CLASSES[ptype](packet_id=packet_id, reason_code=code, properties=props)  # type: ignore[call-arg]


def _subscribe(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    packet_id = _packet_id(r, ptype.name, level)
    props = _props(r, ptype.name, level)
    subs = []
    while r.remaining:
        topic_filter = r.string("SUBSCRIBE topic filter")
        options = r.u8("SUBSCRIBE options")
        subs.append(Subscription(
            topic_filter, qos=options & 3, no_local=bool(options & 4),
            retain_as_published=bool(options & 8), retain_handling=(options >> 4) & 3,
        ))
    return Subscribe(packet_id=packet_id, subscriptions=tuple(subs), properties=props)


def _suback(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    packet_id = _packet_id(r, ptype.name, level)
    props = _props(r, ptype.name, level)
    codes = tuple(r.take(r.remaining, "SUBACK return codes"))
    if level != V50 and not set(codes) <= VALID_SUBACK_311:
        raise MalformedPacket(f"SUBACK return codes {codes} include values 3.1.1 does not define", "MQTT-3.9.3-2")
    return Suback(packet_id=packet_id, reason_codes=codes, properties=props)


def _unsubscribe(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    packet_id = _packet_id(r, ptype.name, level)
    props = _props(r, ptype.name, level)
    filters = []
    while r.remaining:
        filters.append(r.string("UNSUBSCRIBE topic filter"))
    return Unsubscribe(packet_id=packet_id, topic_filters=tuple(filters), properties=props)


def _unsuback(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    packet_id = _packet_id(r, ptype.name, level)
    if level != V50:
        return Unsuback(packet_id=packet_id)
    props = decode_properties(r, ptype.name)
    return Unsuback(packet_id=packet_id, reason_codes=tuple(r.take(r.remaining, "codes")), properties=props)


def _disconnect_or_auth(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    code, props = _reason_and_properties(r, ptype.name, level)
    return (Disconnect if ptype == PacketType.DISCONNECT else Auth)(reason_code=code, properties=props)


_BODIES: dict[PacketType, Callable[[PacketType, int, Reader, int], Packet]] = {
    PacketType.CONNECT: lambda ptype, flags, r, level: _decode_connect(r),
    PacketType.CONNACK: _connack,
    PacketType.PUBLISH: _publish,
    **dict.fromkeys((PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP), _ack),
    PacketType.SUBSCRIBE: _subscribe,
    PacketType.SUBACK: _suback,
    PacketType.UNSUBSCRIBE: _unsubscribe,
    PacketType.UNSUBACK: _unsuback,
    PacketType.PINGREQ: lambda ptype, flags, r, level: Pingreq(),
    PacketType.PINGRESP: lambda ptype, flags, r, level: Pingresp(),
    PacketType.DISCONNECT: _disconnect_or_auth,
    PacketType.AUTH: _disconnect_or_auth,
}


def _decode_body(ptype: PacketType, flags: int, r: Reader, level: int) -> Packet:
    return _BODIES[ptype](ptype, flags, r, level)


def _decode_connect(r: Reader) -> Connect:
    protocol_name = r.string("CONNECT protocol name")
    level = r.u8("CONNECT protocol level")
    if level not in (V31, V311, V50):
        raise MalformedPacket(f"CONNECT protocol level {level} is not one this codec knows")
    r.level = level
    flags = r.u8("CONNECT flags")
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is 1", "MQTT-3.1.2-3")
    keep_alive = r.u16("CONNECT keep alive")
    props = _props(r, "CONNECT", level)
    client_id = r.string("CONNECT client identifier")
    will = None
    if flags & 0x04:
        will_props = decode_properties(r, WILL) if level == V50 else NO_PROPERTIES
        will = Will(
            topic=r.string("CONNECT will topic"), payload=r.binary("CONNECT will payload"),
            qos=(flags >> 3) & 3, retain=bool(flags & 0x20), properties=will_props,
        )
    username = r.string("CONNECT user name") if flags & 0x80 else None
    password = r.binary("CONNECT password") if flags & 0x40 else None
    return Connect(
        client_id=client_id, clean_start=bool(flags & 0x02), keep_alive=keep_alive, will=will,
        username=username, password=password, properties=props, protocol_name=protocol_name, protocol_level=level,
    )


def frame_length(buffer: bytes | bytearray, level: int) -> int | None:
    """Length of the first complete packet in ``buffer``, or None if more bytes are needed."""
    if len(buffer) < 2:
        return None
    try:
        length, used = decode_varint(bytes(buffer[:5]), 1, level, "Remaining Length")
    except MalformedPacket as exc:
        if exc.fatal:
            raise
        if "truncated" in exc.message:
            return None
        length, used = _lenient_varint(buffer)  # non-minimal but framed: let decode_packet report it
    total = 1 + used + length
    return total if len(buffer) >= total else None


def _lenient_varint(buffer: bytes | bytearray) -> tuple[int, int]:
    value = 0
    for i in range(4):
        byte = buffer[1 + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, i + 1
    raise MalformedPacket("Remaining Length longer than 4 bytes", fatal=True)


class Parser:
    """Incremental parser: ``feed`` bytes in any slices, get complete packets (or errors) out.

    A malformed packet whose boundary is known yields a MalformedPacket in the output and parsing
    goes on; one whose boundary is lost (bad Remaining Length) stops the parser.
    """

    def __init__(self, version: str | int = V311) -> None:
        from .encode import level_of

        self.level = level_of(version)
        self.buffer = bytearray()
        self.broken: MalformedPacket | None = None

    def feed(self, data: bytes) -> list[tuple[bytes, Packet | MalformedPacket]]:
        """Return (raw bytes, packet or error) for every packet completed by ``data``."""
        self.buffer += data
        out: list[tuple[bytes, Packet | MalformedPacket]] = []
        while not self.broken:
            try:
                total = frame_length(self.buffer, self.level)
            except MalformedPacket as exc:
                self.broken = exc
                out.append((bytes(self.buffer), exc))
                break
            if total is None:
                break
            raw = bytes(self.buffer[:total])
            del self.buffer[:total]
            try:
                out.append((raw, decode_packet(raw, self.level)))
            except MalformedPacket as exc:
                exc.raw = raw
                out.append((raw, exc))
        return out


def decode(data: bytes, version: str | int) -> Packet:
    """Decode one whole packet given as bytes, for the given version."""
    from .encode import level_of

    return decode_packet(data, level_of(version))
