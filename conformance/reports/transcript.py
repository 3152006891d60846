"""Transcript entries made presentable: direction, decoded fields, hex dump, plain-text rendering."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..codec import Properties, decode
from ..codec.version import Version

ARROWS = {"out": "→", "in": "←", "close": "✕", "note": "•"}
MASK = "***"


def entry_bytes(entry: dict[str, Any]) -> bytes:
    """The entry's raw bytes; empty when absent or not valid hex."""
    text = entry.get("hex") or ""
    try:
        return bytes.fromhex(str(text))
    except ValueError:
        return b""


def direction(entry: dict[str, Any]) -> str:
    return str(entry.get("dir") or "note")


def direction_label(entry: dict[str, Any]) -> str:
    probe = str(entry.get("probe") or "")
    kind = direction(entry)
    if kind == "out":
        return f"{probe} → broker"
    if kind == "in":
        return f"{probe} ← broker"
    if kind == "close":
        return f"{probe} ✕ closed"
    return f"{probe} note" if probe else "note"


def fmt_t(entry: dict[str, Any]) -> str:
    t = entry.get("t")
    return f"{float(t) * 1000:10.3f} ms" if isinstance(t, int | float) else ""


def masked(value: Any) -> Any:
    """Copy of ``value`` with every password field replaced, whatever the nesting."""
    if isinstance(value, dict):
        return {k: (MASK if str(k).lower() == "password" and v is not None else masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Properties):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + value.hex()
        return text if text.isprintable() else "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# 3.1.1 has no properties, no reason codes on acks/DISCONNECT/UNSUBACK and no subscription options
# beyond QoS; the decoders' shared dataclasses carry them with defaults, which would mislead a reader.
_V5_ONLY = frozenset({"properties", "no_local", "retain_as_published", "retain_handling", "reason_string",
                      "user_properties"})
_V5_ONLY_BY_TYPE = {"PUBACK": {"reason_code"}, "PUBREC": {"reason_code"}, "PUBREL": {"reason_code"},
                    "PUBCOMP": {"reason_code"}, "DISCONNECT": {"reason_code"}, "UNSUBACK": {"reason_codes"},
                    "AUTH": {"reason_code"}}
_V3_NAMES = {"CONNECT": {"clean_start": "clean_session"}, "CONNACK": {"reason_code": "return_code"},
             "SUBACK": {"reason_codes": "return_codes"}}


def for_version(fields: Any, version: str, kind: str = "") -> Any:
    """``fields`` as the version's packet has them: 3.1.1 without 5.0-only fields, under 3.1.1 names."""
    if version != Version.V311:
        return fields
    if isinstance(fields, list):
        return [for_version(v, version) for v in fields]
    if not isinstance(fields, dict):
        return fields
    kind = str(fields.get("type") or kind)
    drop = _V5_ONLY | _V5_ONLY_BY_TYPE.get(kind, set())
    names = _V3_NAMES.get(kind, {})
    return {names.get(k, k): for_version(v, version) for k, v in fields.items() if k not in drop}


def packet_fields(entry: dict[str, Any], version: str) -> tuple[dict[str, Any] | None, str]:
    """(decoded fields, problem): the probe's own decoding, else the codec's, else why not."""
    packet = entry.get("packet")
    if isinstance(packet, dict):
        return for_version(masked(packet), version), ""
    data = entry_bytes(entry)
    if not data or direction(entry) not in ("in", "out"):
        return None, ""
    try:
        decoded = decode(data, version)
    except Exception as exc:  # crafted bytes are meant to be malformed; say why, never crash
        return None, f"not decodable as MQTT {version}: {exc}"
    fields = {"type": decoded.name, **_plain(decoded)}
    return for_version(masked(fields), version), ""


def hexdump(data: bytes) -> str:
    """Classic 16-bytes-per-line dump with an ASCII column."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:04x}  {left:<23}  {right:<23}  |{text}|")
    return "\n".join(lines)


def as_text(transcript: list[dict[str, Any]], version: str) -> str:
    """The whole transcript as plain text, for attachments and JUnit output."""
    if not transcript:
        return "(no transcript)"
    lines = []
    for entry in transcript:
        lines.append(f"{fmt_t(entry):>13}  {direction_label(entry):<18}  {entry.get('summary') or ''}".rstrip())
        fields, problem = packet_fields(entry, version)
        if fields:
            lines.append(" " * 15 + "fields: " + json.dumps(fields, ensure_ascii=False, default=str))
        if problem:
            lines.append(" " * 15 + problem)
        data = entry_bytes(entry)
        if data:
            lines.append(" " * 15 + f"hex ({len(data)} bytes): {data.hex()}")
    return "\n".join(lines)
