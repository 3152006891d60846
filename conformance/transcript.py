"""The wire transcript of one case: every byte sent and received, by which probe, when, decoded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from .codec import Connect, MalformedPacket, Packet, Properties, reason_name
from .codec.wire import V50
from .secrets import mask_bytes, mask_text

OUT, IN, NOTE, CLOSE = "out", "in", "note", "close"
BROKER, HARNESS = "broker", "harness"  # who closed a connection (Event.closed_by)
TEXT_ARROWS = {OUT: "->", IN: "<-", NOTE: "  ", CLOSE: "xx"}  # directions in a plain-text transcript


@dataclass
class Event:
    t: float
    probe: str
    dir: str
    data: bytes = b""
    packet: Packet | MalformedPacket | None = None
    note: str = ""
    level: int = 4
    # CLOSE events: who ended the connection, BROKER or HARNESS (None: it never opened).
    closed_by: str | None = None

    def summary(self) -> str:
        if self.dir in (NOTE, CLOSE):
            return self.note
        if isinstance(self.packet, MalformedPacket):
            return f"malformed: {self.packet}"
        if self.packet is None:
            return self.note or f"{len(self.data)} bytes"
        text = describe(self.packet, self.level)
        return f"{text}  [{self.note}]" if self.note else text

    def to_json(self) -> dict[str, Any]:
        decoded = packet_fields(self.packet) if isinstance(self.packet, Packet) else None
        return {
            "t": round(self.t, 6), "probe": self.probe, "dir": self.dir, "hex": self.data.hex(),
            "summary": self.summary(), "packet": decoded,
            **({"closed_by": self.closed_by} if self.dir == CLOSE else {}),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Properties):
        return value.as_dict()
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
            return text if text.isprintable() else value.hex()
        except UnicodeDecodeError:
            return value.hex()
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def packet_fields(packet: Packet) -> dict[str, Any]:
    out: dict[str, Any] = {"type": packet.name}
    for f in fields(packet):
        value = getattr(packet, f.name)
        if value is None or (isinstance(value, Properties) and not value):
            continue
        out[f.name] = _plain(value)
    return out


def describe(packet: Packet, level: int = 4) -> str:
    """One line an engineer reads like a capture: type and the fields that are set."""
    parts = []
    for f in fields(packet):
        value = getattr(packet, f.name)
        unset = value is None or value == f.default or (isinstance(value, Properties) and not value)
        if unset and not (packet.name == "CONNACK" and f.name in ("reason_code", "session_present")):
            continue
        if f.name == "reason_code" or f.name == "reason_codes":
            codes = value if isinstance(value, tuple) else (value,)
            shown = ", ".join(f"0x{c:02X} {reason_name(c, packet.name, level)}" for c in codes)
            parts.append(f"{f.name}=[{shown}]" if isinstance(value, tuple) else f"{f.name}={shown}")
            continue
        if isinstance(value, bytes) and len(value) > 48:
            value = value[:48] + b"..."
        parts.append(f"{f.name}={_plain(value)!r}" if not isinstance(value, Properties) else f"properties={value.as_dict()}")
    return f"{packet.name} " + " ".join(parts) if parts else packet.name


@dataclass
class Transcript:
    """Events of all probes of one case, on one clock."""

    start: float = field(default_factory=time.monotonic)
    events: list[Event] = field(default_factory=list)
    secrets: list[bytes] = field(default_factory=list)
    # SHOULD-level shortfalls seen on the way (e.g. a Will that came late): a case that otherwise
    # passes is graded NON-STRICT with these, and one that fails keeps its FAIL.
    reservations: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, probe: str, direction: str, data: bytes = b"", packet: Any = None, note: str = "",
            level: int = 4, closed_by: str | None = None) -> Event:
        data, packet = self._mask(data, packet)
        note = mask_text(note, self.secrets)
        event = Event(self.now(), probe, direction, data, packet, note, level, closed_by)
        self.events.append(event)
        return event

    def _mask(self, data: bytes, packet: Any) -> tuple[bytes, Any]:
        data = mask_bytes(data, self.secrets)  # any run of a secret: a case may send only part of one
        if isinstance(packet, Connect) and packet.password is not None:
            from dataclasses import replace

            packet = replace(packet, password=b"*" * len(packet.password))
        return data, packet

    def reserve(self, probe: str, text: str) -> None:
        """Record a shortfall that grades the case NON-STRICT unless it ends worse."""
        self.reservations.append(text)
        self.add(probe, NOTE, note=f"NON-STRICT: {text}")

    def to_json(self) -> list[dict[str, Any]]:
        return [event.to_json() for event in self.events]

    def text(self) -> str:
        return "\n".join(f"{e.t:9.4f}s {e.probe:>4} {TEXT_ARROWS[e.dir]} {e.summary()}" for e in self.events)


__all__ = ["BROKER", "CLOSE", "HARNESS", "IN", "NOTE", "OUT", "Event", "Transcript", "describe", "packet_fields", "V50"]
