"""MQTT 5.0 properties: the table of every property, and an ordered, duplicate-preserving container.

Order and duplicates are kept because both are observable (User Property order must be preserved, a
duplicated property is a Protocol Error the harness needs to be able to send).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import MalformedPacket
from .wire import Reader, encode_binary, encode_str, encode_u16, encode_u32, encode_varint

# Packet names used for "where may it appear"; WILL stands for the Will Properties of CONNECT.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = (
    "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH, WILL = (
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT", "AUTH", "WILL",
)
_ACKS = (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK)
_ALL = (CONNECT, CONNACK, PUBLISH, *_ACKS, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT, AUTH, WILL)


@dataclass(frozen=True)
class PropertySpec:
    ident: int
    name: str
    kind: str  # byte | u16 | u32 | varint | str | bin | pair
    packets: tuple[str, ...]
    repeatable: tuple[str, ...] = ()  # packets in which the property may appear more than once


SPECS: tuple[PropertySpec, ...] = (
    PropertySpec(0x01, "payload_format_indicator", "byte", (PUBLISH, WILL)),
    PropertySpec(0x02, "message_expiry_interval", "u32", (PUBLISH, WILL)),
    PropertySpec(0x03, "content_type", "str", (PUBLISH, WILL)),
    PropertySpec(0x08, "response_topic", "str", (PUBLISH, WILL)),
    PropertySpec(0x09, "correlation_data", "bin", (PUBLISH, WILL)),
    PropertySpec(0x0B, "subscription_identifier", "varint", (PUBLISH, SUBSCRIBE), repeatable=(PUBLISH,)),
    PropertySpec(0x11, "session_expiry_interval", "u32", (CONNECT, CONNACK, DISCONNECT)),
    PropertySpec(0x12, "assigned_client_identifier", "str", (CONNACK,)),
    PropertySpec(0x13, "server_keep_alive", "u16", (CONNACK,)),
    PropertySpec(0x15, "authentication_method", "str", (CONNECT, CONNACK, AUTH)),
    PropertySpec(0x16, "authentication_data", "bin", (CONNECT, CONNACK, AUTH)),
    PropertySpec(0x17, "request_problem_information", "byte", (CONNECT,)),
    PropertySpec(0x18, "will_delay_interval", "u32", (WILL,)),
    PropertySpec(0x19, "request_response_information", "byte", (CONNECT,)),
    PropertySpec(0x1A, "response_information", "str", (CONNACK,)),
    PropertySpec(0x1C, "server_reference", "str", (CONNACK, DISCONNECT)),
    PropertySpec(0x1F, "reason_string", "str", (CONNACK, *_ACKS, DISCONNECT, AUTH)),
    PropertySpec(0x21, "receive_maximum", "u16", (CONNECT, CONNACK)),
    PropertySpec(0x22, "topic_alias_maximum", "u16", (CONNECT, CONNACK)),
    PropertySpec(0x23, "topic_alias", "u16", (PUBLISH,)),
    PropertySpec(0x24, "maximum_qos", "byte", (CONNACK,)),
    PropertySpec(0x25, "retain_available", "byte", (CONNACK,)),
    PropertySpec(0x26, "user_property", "pair", _ALL, repeatable=_ALL),
    PropertySpec(0x27, "maximum_packet_size", "u32", (CONNECT, CONNACK)),
    PropertySpec(0x28, "wildcard_subscription_available", "byte", (CONNACK,)),
    PropertySpec(0x29, "subscription_identifier_available", "byte", (CONNACK,)),
    PropertySpec(0x2A, "shared_subscription_available", "byte", (CONNACK,)),
)
BY_ID = {spec.ident: spec for spec in SPECS}
BY_NAME = {spec.name: spec for spec in SPECS}


class Properties:
    """An immutable, ordered list of (name, value) pairs.

    ``Properties(session_expiry_interval=10, user_property=[("k", "v")])`` builds one; a list value
    gives the property once per element, in order. Unknown names are allowed only as integers (raw
    identifiers) through ``Properties.of`` so that the crafting path can send them.
    """

    __slots__ = ("items",)
    items: tuple[tuple[str | int, Any], ...]

    def __init__(self, **values: Any) -> None:
        items: list[tuple[str, Any]] = []
        for name, value in values.items():
            if name not in BY_NAME:
                raise TypeError(f"unknown MQTT 5.0 property {name!r}")
            repeated = isinstance(value, list)
            for one in value if repeated else [value]:
                items.append((name, tuple(one) if BY_NAME[name].kind == "pair" else one))
        object.__setattr__(self, "items", tuple(items))

    @classmethod
    def of(cls, items: Iterable[tuple[str | int, Any]]) -> Properties:
        new = cls.__new__(cls)
        object.__setattr__(new, "items", tuple(items))
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Properties are immutable")

    def get(self, name: str, default: Any = None) -> Any:
        return next((value for key, value in self.items if key == name), default)

    def all(self, name: str) -> list[Any]:
        return [value for key, value in self.items if key == name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.items)

    def __iter__(self) -> Iterator[tuple[str | int, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Properties) and self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self.items)
        return f"Properties({inner})"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for reports; repeatable properties become lists."""
        out: dict[str, Any] = {}
        for key, value in self.items:
            name = key if isinstance(key, str) else f"0x{key:02X}"
            spec = BY_NAME.get(name)
            shown = value.hex() if isinstance(value, bytes) else list(value) if isinstance(value, tuple) else value
            if spec and spec.repeatable:
                out.setdefault(name, []).append(shown)
            else:
                out[name] = shown
        return out


NO_PROPERTIES = Properties()


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "byte": lambda value: bytes([value]), "u16": encode_u16, "u32": encode_u32, "varint": encode_varint,
    "str": encode_str, "bin": encode_binary, "pair": lambda value: encode_str(value[0]) + encode_str(value[1]),
}
# Reader methods by kind; a "pair" (User Property) is two strings, read in _read_value.
_READERS: dict[str, Callable[[Reader, str], Any]] = {
    "byte": Reader.u8, "u16": Reader.u16, "u32": Reader.u32, "varint": Reader.varint, "str": Reader.string,
    "bin": Reader.binary,
}


def encode_value(kind: str, value: Any) -> bytes:
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise ValueError(kind)
    return encoder(value)


def encode_properties(props: Properties) -> bytes:
    """Property Length followed by the properties; an int key with bytes value is sent verbatim."""
    body = bytearray()
    for key, value in props.items:
        if isinstance(key, int):
            body += encode_varint(key) + (value if isinstance(value, bytes) else b"")
            continue
        spec = BY_NAME[key]
        body += encode_varint(spec.ident) + encode_value(spec.kind, value)
    return encode_varint(len(body)) + bytes(body)


def _read_value(reader: Reader, spec: PropertySpec) -> Any:
    what = f"property {spec.name}"
    read = _READERS.get(spec.kind)
    if read is not None:
        return read(reader, what)
    return (reader.string(f"{what} name"), reader.string(f"{what} value"))


def decode_properties(reader: Reader, packet: str) -> Properties:
    """Read Property Length and the properties; reject unknown, misplaced and duplicated ones."""
    length = reader.varint(f"{packet} property length")
    sub = Reader(reader.take(length, f"{packet} properties"), reader.level)
    items: list[tuple[str, Any]] = []
    while sub.remaining:
        ident = sub.varint(f"{packet} property identifier")
        spec = BY_ID.get(ident)
        if spec is None:
            raise MalformedPacket(f"{packet}: unknown property identifier 0x{ident:02X}")
        if packet not in spec.packets:
            raise MalformedPacket(f"{packet}: property {spec.name} is not allowed in this packet")
        if packet not in spec.repeatable and any(name == spec.name for name, _ in items):
            raise MalformedPacket(f"{packet}: property {spec.name} appears more than once")
        items.append((spec.name, _read_value(sub, spec)))
    return Properties.of(items)
