"""Encoder: packet -> named byte segments -> bytes.

Encoding goes through a list of named segments so that the crafting path can replace any one of
them (a flag byte, a length, a string) with raw bytes and still get a consistent packet around it.
"""

from __future__ import annotations

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
from .properties import encode_properties
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


def body_segments(packet: Packet, level: int) -> list[Segment]:
    """The variable header and payload of ``packet`` as named segments."""
    v5 = level == V50
    segs: list[Segment] = []
    add = segs.append

    def props(name: str, properties) -> None:  # noqa: ANN001 - Properties
        if v5:
            add(Segment(name, encode_properties(properties)))

    if isinstance(packet, Connect):
        name = packet.protocol_name if packet.protocol_name is not None else PROTOCOL_NAMES[level]
        add(Segment("protocol_name", encode_str(name)))
        add(Segment("protocol_level", bytes([packet.protocol_level if packet.protocol_level is not None else level])))
        will = packet.will
        flags = (0x02 if packet.clean_start else 0)
        if will is not None:
            flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        if packet.password is not None:
            flags |= 0x40
        if packet.username is not None:
            flags |= 0x80
        add(Segment("connect_flags", bytes([flags])))
        add(Segment("keep_alive", encode_u16(packet.keep_alive)))
        props("properties", packet.properties)
        add(Segment("client_id", encode_str(packet.client_id)))
        if will is not None:
            props("will_properties", will.properties)
            add(Segment("will_topic", encode_str(will.topic)))
            add(Segment("will_payload", encode_binary(will.payload)))
        if packet.username is not None:
            add(Segment("username", encode_str(packet.username)))
        if packet.password is not None:
            add(Segment("password", encode_binary(packet.password)))
    elif isinstance(packet, Connack):
        add(Segment("acknowledge_flags", bytes([1 if packet.session_present else 0])))
        add(Segment("reason_code", bytes([packet.reason_code])))
        props("properties", packet.properties)
    elif isinstance(packet, Publish):
        add(Segment("topic", encode_str(packet.topic)))
        if packet.qos > 0 or packet.packet_id is not None:
            add(Segment("packet_id", encode_u16(packet.packet_id or 0)))
        props("properties", packet.properties)
        add(Segment("payload", packet.payload))
    elif isinstance(packet, _Ack):
        add(Segment("packet_id", encode_u16(packet.packet_id)))
        # 5.0 lets Reason Code 0 with no properties be omitted; the shortest form is the default.
        if v5 and (packet.reason_code or packet.properties):
            add(Segment("reason_code", bytes([packet.reason_code])))
            if packet.properties:
                props("properties", packet.properties)
    elif isinstance(packet, Subscribe):
        add(Segment("packet_id", encode_u16(packet.packet_id)))
        props("properties", packet.properties)
        for i, sub in enumerate(packet.subscriptions):
            add(Segment(f"topic_filter[{i}]", encode_str(sub.topic_filter)))
            add(Segment(f"options[{i}]", bytes([sub.options if v5 else sub.qos])))
    elif isinstance(packet, Suback):
        add(Segment("packet_id", encode_u16(packet.packet_id)))
        props("properties", packet.properties)
        add(Segment("reason_codes", bytes(packet.reason_codes)))
    elif isinstance(packet, Unsubscribe):
        add(Segment("packet_id", encode_u16(packet.packet_id)))
        props("properties", packet.properties)
        for i, topic_filter in enumerate(packet.topic_filters):
            add(Segment(f"topic_filter[{i}]", encode_str(topic_filter)))
    elif isinstance(packet, Unsuback):
        add(Segment("packet_id", encode_u16(packet.packet_id)))
        if v5:
            props("properties", packet.properties)
            add(Segment("reason_codes", bytes(packet.reason_codes)))
    elif isinstance(packet, Disconnect | Auth) and v5 and (packet.reason_code or packet.properties):
        add(Segment("reason_code", bytes([packet.reason_code])))
        if packet.properties:
            props("properties", packet.properties)
    return segs


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
