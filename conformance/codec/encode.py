"""Encoder: packet -> named byte segments -> bytes.

Encoding goes through a list of named segments so that the crafting path can replace any one of
them (a flag byte, a length, a string) with raw bytes and still get a consistent packet around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import HarnessError
from .packets import (
    REQUIRED_FLAGS,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Publish,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    _Ack,
)
from .properties import Properties, encode_properties
from .version import Version
from .wire import V31, V50, V311, encode_binary, encode_str, encode_u16, encode_varint

PROTOCOL_NAMES = {V31: "MQIsdp", V311: "MQTT", V50: "MQTT"}
LEVELS = {"3.1": V31, Version.V311: V311, Version.V50: V50, "5": V50}


def level_of(version: str | int) -> int:
    if isinstance(version, int):
        if version in (V31, V311, V50):
            return version
    elif version in LEVELS:
        return LEVELS[version]
    raise HarnessError(f"unknown MQTT version {version!r} (use 3.1, 3.1.1 or 5.0)")


@dataclass
class Segment:
    name: str
    data: bytes


def header_byte(packet: Packet) -> int:
    flags = REQUIRED_FLAGS.get(packet.TYPE, 0)
    if isinstance(packet, Publish):
        flags = (0x08 if packet.dup else 0) | (packet.qos << 1) | (0x01 if packet.retain else 0)
    return (packet.TYPE << 4) | flags


def _properties(name: str, properties: Properties, v5: bool) -> list[Segment]:
    return [Segment(name, encode_properties(properties))] if v5 else []


def _connect_flags(packet: Connect) -> int:
    will = packet.will
    flags = 0x02 if packet.clean_start else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.password is not None:
        flags |= 0x40
    if packet.username is not None:
        flags |= 0x80
    return flags


def _connect(packet: Connect, level: int, v5: bool) -> list[Segment]:
    name = packet.protocol_name if packet.protocol_name is not None else PROTOCOL_NAMES[level]
    protocol_level = packet.protocol_level if packet.protocol_level is not None else level
    segs = [
        Segment("protocol_name", encode_str(name)),
        Segment("protocol_level", bytes([protocol_level])),
        Segment("connect_flags", bytes([_connect_flags(packet)])),
        Segment("keep_alive", encode_u16(packet.keep_alive)),
        *_properties("properties", packet.properties, v5),
        Segment("client_id", encode_str(packet.client_id)),
    ]
    if packet.will is not None:
        segs += [*_properties("will_properties", packet.will.properties, v5),
                 Segment("will_topic", encode_str(packet.will.topic)),
                 Segment("will_payload", encode_binary(packet.will.payload))]
    if packet.username is not None:
        segs.append(Segment("username", encode_str(packet.username)))
    if packet.password is not None:
        segs.append(Segment("password", encode_binary(packet.password)))
    return segs


def _connack(packet: Connack, level: int, v5: bool) -> list[Segment]:
    return [Segment("acknowledge_flags", bytes([1 if packet.session_present else 0])),
            Segment("reason_code", bytes([packet.reason_code])),
            *_properties("properties", packet.properties, v5)]


def _publish(packet: Publish, level: int, v5: bool) -> list[Segment]:
    segs = [Segment("topic", encode_str(packet.topic))]
    if packet.qos > 0 or packet.packet_id is not None:
        segs.append(Segment("packet_id", encode_u16(packet.packet_id or 0)))
    return [*segs, *_properties("properties", packet.properties, v5), Segment("payload", packet.payload)]


def _reason_and_properties(packet: _Ack | Disconnect | Auth, v5: bool) -> list[Segment]:
    """5.0 lets Reason Code 0 with no properties be omitted; the shortest form is the default."""
    if not (v5 and (packet.reason_code or packet.properties)):
        return []
    segs = [Segment("reason_code", bytes([packet.reason_code]))]
    return segs + (_properties("properties", packet.properties, v5) if packet.properties else [])


def _ack(packet: _Ack, level: int, v5: bool) -> list[Segment]:
    return [Segment("packet_id", encode_u16(packet.packet_id)), *_reason_and_properties(packet, v5)]


def _subscribe(packet: Subscribe, level: int, v5: bool) -> list[Segment]:
    segs = [Segment("packet_id", encode_u16(packet.packet_id)), *_properties("properties", packet.properties, v5)]
    for i, sub in enumerate(packet.subscriptions):
        segs += [Segment(f"topic_filter[{i}]", encode_str(sub.topic_filter)),
                 Segment(f"options[{i}]", bytes([sub.options if v5 else sub.qos]))]
    return segs


def _suback(packet: Suback, level: int, v5: bool) -> list[Segment]:
    return [Segment("packet_id", encode_u16(packet.packet_id)), *_properties("properties", packet.properties, v5),
            Segment("reason_codes", bytes(packet.reason_codes))]


def _unsubscribe(packet: Unsubscribe, level: int, v5: bool) -> list[Segment]:
    segs = [Segment("packet_id", encode_u16(packet.packet_id)), *_properties("properties", packet.properties, v5)]
    return segs + [Segment(f"topic_filter[{i}]", encode_str(f)) for i, f in enumerate(packet.topic_filters)]


def _unsuback(packet: Unsuback, level: int, v5: bool) -> list[Segment]:
    segs = [Segment("packet_id", encode_u16(packet.packet_id))]
    if v5:  # 3.1.1's UNSUBACK carries no reason codes
        segs += [*_properties("properties", packet.properties, v5), Segment("reason_codes", bytes(packet.reason_codes))]
    return segs


def _disconnect_or_auth(packet: Disconnect | Auth, level: int, v5: bool) -> list[Segment]:
    return _reason_and_properties(packet, v5)


# By packet class, most specific first: the acknowledgements share _Ack.
_BODIES: tuple[tuple[type, Callable[..., list[Segment]]], ...] = (
    (Connect, _connect), (Connack, _connack), (Publish, _publish), (_Ack, _ack), (Subscribe, _subscribe),
    (Suback, _suback), (Unsubscribe, _unsubscribe), (Unsuback, _unsuback), (Disconnect, _disconnect_or_auth),
    (Auth, _disconnect_or_auth),
)


def body_segments(packet: Packet, level: int) -> list[Segment]:
    """The variable header and payload of ``packet`` as named segments (none for PINGREQ and the like)."""
    for kind, body in _BODIES:
        if isinstance(packet, kind):
            return body(packet, level, level == V50)
    return []


def segments(packet: Packet, version: str | int) -> list[Segment]:
    """All segments of the packet, fixed header included."""
    level = level_of(version)
    body = body_segments(packet, level)
    length = sum(len(seg.data) for seg in body)
    return [Segment("header", bytes([header_byte(packet)])), Segment("remaining_length", encode_varint(length)), *body]


def encode(packet: Packet, version: str | int) -> bytes:
    """The packet's bytes as a well-behaved client would send them."""
    if not isinstance(packet, Packet):
        raise HarnessError(f"cannot encode {packet!r}: not a packet")
    return b"".join(seg.data for seg in segments(packet, version))
