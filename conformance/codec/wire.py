"""Primitive data types of MQTT: integers, Variable Byte Integers, strings, binary data.

Statement IDs differ between versions, so rules are named by key and resolved through ``RULES``.
"""

from __future__ import annotations

from .errors import MalformedPacket

V311 = 4
V50 = 5
V31 = 3

# rule key -> statement ID per protocol level (3.1 shares 3.1.1's IDs)
RULES: dict[str, dict[int, str]] = {
    "utf8": {V311: "MQTT-1.5.3-1", V50: "MQTT-1.5.4-1"},
    "utf8_null": {V311: "MQTT-1.5.3-2", V50: "MQTT-1.5.4-2"},
    "varint_minimal": {V50: "MQTT-1.5.5-1"},
    "flags": {V311: "MQTT-2.2.2-1", V50: "MQTT-2.1.3-1"},
    "qos3": {V311: "MQTT-3.3.1-4", V50: "MQTT-3.3.1-4"},
    "packet_id_nonzero": {V311: "MQTT-2.3.1-1", V50: "MQTT-2.2.1-3"},
    "topic_wildcard": {V311: "MQTT-3.3.2-2", V50: "MQTT-3.3.2-2"},
    "connack_reserved": {V311: "MQTT-3.2.2-1", V50: "MQTT-3.2.2-1"},
}


def rule(key: str, level: int) -> str | None:
    return RULES.get(key, {}).get(V311 if level == V31 else level)


def encode_varint(value: int, *, min_bytes: int = 1) -> bytes:
    """Variable Byte Integer; ``min_bytes`` > needed forces a non-minimal (padded) encoding."""
    if value < 0:
        raise ValueError("Variable Byte Integer cannot be negative")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte)
        if not value:
            break
    while len(out) < min_bytes:
        out.append(0)
    for i in range(len(out) - 1):
        out[i] |= 0x80
    return bytes(out)


def encode_u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def encode_u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def encode_binary(data: bytes) -> bytes:
    return encode_u16(len(data)) + data


def encode_str(text: str | bytes) -> bytes:
    """Length-prefixed UTF-8 string; bytes pass through unchanged (to send invalid UTF-8)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return encode_binary(raw)


class Reader:
    """Cursor over one packet's body; every read checks bounds and names what was missing."""

    def __init__(self, data: bytes, level: int) -> None:
        self.data = data
        self.pos = 0
        self.level = level

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if self.remaining < n:
            raise MalformedPacket(f"{what}: needs {n} bytes, only {self.remaining} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def binary(self, what: str) -> bytes:
        return self.take(self.u16(f"{what} length"), what)

    def string(self, what: str) -> str:
        return decode_utf8(self.binary(what), what, self.level)

    def varint(self, what: str) -> int:
        value, used = decode_varint(self.data, self.pos, self.level, what)
        self.pos += used
        return value


def decode_utf8(raw: bytes, what: str, level: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what} is not well-formed UTF-8 ({exc.reason})", rule("utf8", level)) from None
    if "\x00" in text:
        raise MalformedPacket(f"{what} contains U+0000", rule("utf8_null", level))
    return text


def decode_varint(data: bytes, pos: int, level: int, what: str) -> tuple[int, int]:
    """Return (value, bytes used). Raises on a fifth byte or (in 5.0) a non-minimal encoding."""
    value = 0
    for i in range(4):
        if pos + i >= len(data):
            raise MalformedPacket(f"{what}: Variable Byte Integer truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            used = i + 1
            if used > 1 and byte == 0 and level == V50:  # 3.1.1 has no rule against padding
                raise MalformedPacket(
                    f"{what}: Variable Byte Integer is not minimally encoded", rule("varint_minimal", level)
                )
            return value, used
    raise MalformedPacket(f"{what}: Variable Byte Integer longer than 4 bytes", fatal=True)
