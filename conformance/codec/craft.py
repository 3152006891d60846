"""The crafting path: take a well-formed packet and force any part of it.

``craft(Publish(...), qos_bits=3)`` or ``craft(Connect(...), connect_flags=0x03)`` returns a
``Crafted`` value; the probe encodes it for its own protocol version, like any packet. ``Raw`` sends
bytes as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .encode import level_of, segments
from .errors import HarnessError
from .packets import Packet
from .wire import encode_u16, encode_varint


@dataclass(frozen=True)
class Raw:
    """Bytes sent verbatim; ``label`` names them in the transcript."""

    data: bytes
    label: str = "raw bytes"

    def encode(self, version: str | int) -> bytes:
        return self.data


@dataclass(frozen=True)
class Crafted:
    packet: Packet
    replace: dict[str, bytes] = field(default_factory=dict)
    flags: int | None = None
    packet_type: int | None = None
    remaining_length: int | None = None
    remaining_length_bytes: bytes | None = None
    drop: tuple[str, ...] = ()
    append: bytes = b""
    truncate: int | None = None
    label: str = ""

    def encode(self, version: str | int) -> bytes:
        segs = segments(self.packet, level_of(version))
        names = {seg.name for seg in segs}
        unknown = (set(self.replace) | set(self.drop)) - names
        if unknown:
            raise HarnessError(
                f"craft: {self.packet.name} has no segment {sorted(unknown)}; it has {[s.name for s in segs]}"
            )
        body = b"".join(
            self.replace.get(seg.name, seg.data) for seg in segs[2:] if seg.name not in self.drop
        ) + self.append
        header = segs[0].data[0]
        if self.packet_type is not None:
            header = (self.packet_type << 4) | (header & 0x0F)
        if self.flags is not None:
            header = (header & 0xF0) | self.flags
        if self.remaining_length_bytes is not None:
            length = self.remaining_length_bytes
        else:
            length = encode_varint(len(body) if self.remaining_length is None else self.remaining_length)
        data = bytes([header]) + length + body
        return data[: self.truncate] if self.truncate is not None else data

    def describe(self) -> str:
        forced = [f"{k}={v.hex()}" for k, v in self.replace.items()]
        forced += [f"{k}={getattr(self, k)!r}" for k in ("flags", "packet_type", "remaining_length",
                                                          "remaining_length_bytes", "truncate")
                   if getattr(self, k) is not None]
        forced += [f"drop={list(self.drop)}"] if self.drop else []
        forced += [f"append={self.append.hex()}"] if self.append else []
        return self.label or f"crafted {self.packet.name} ({', '.join(forced)})"


def craft(
    packet: Packet,
    *,
    flags: int | None = None,
    qos_bits: int | None = None,
    dup_bit: int | None = None,
    retain_bit: int | None = None,
    packet_type: int | None = None,
    remaining_length: int | None = None,
    remaining_length_bytes: bytes | None = None,
    replace: dict[str, bytes | int] | None = None,
    drop: Iterable[str] = (),
    append: bytes = b"",
    truncate: int | None = None,
    label: str = "",
    **segment_values: bytes | int,
) -> Crafted:
    """Force parts of ``packet``. Keyword names other than the options are segment names
    (``connect_flags``, ``protocol_level``, ``topic``, ``packet_id``, ``properties`` ...); an int
    value of a one-byte segment is that byte, an int for ``packet_id`` is two bytes.
    """
    merged: dict[str, bytes] = {}
    for name, value in {**(replace or {}), **segment_values}.items():
        if isinstance(value, int):
            value = encode_u16(value) if name in ("packet_id", "keep_alive") else bytes([value])
        merged[name] = value
    if any(bit is not None for bit in (qos_bits, dup_bit, retain_bit)):
        base = flags if flags is not None else _publish_flags(packet)
        if qos_bits is not None:
            base = (base & ~0x06) | (qos_bits << 1)
        if dup_bit is not None:
            base = (base & ~0x08) | (dup_bit << 3)
        if retain_bit is not None:
            base = (base & ~0x01) | retain_bit
        flags = base
    return Crafted(
        packet=packet, replace=merged, flags=flags, packet_type=packet_type, remaining_length=remaining_length,
        remaining_length_bytes=remaining_length_bytes, drop=tuple(drop), append=append, truncate=truncate,
        label=label,
    )


def _publish_flags(packet: Packet) -> int:
    from .encode import header_byte

    return header_byte(packet) & 0x0F


def raw_string(data: bytes, length: int | None = None) -> bytes:
    """A length-prefixed string whose bytes (and, if given, declared length) are forced."""
    return encode_u16(len(data) if length is None else length) + data
