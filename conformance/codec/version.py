"""The two MQTT versions the harness judges, as one type.

A ``Version`` is a string enum, so a member equals and hashes as its label ("3.1.1", "5.0"): profiles,
results files and command lines keep their plain strings, while code names the member and asks it for the
protocol level that goes on the wire. MQTT 3.1 (level 3, "MQIsdp") is spoken by the codec only, as a
level number (codec/wire.py).
"""

from __future__ import annotations

from enum import StrEnum


class Version(StrEnum):
    V311 = "3.1.1"
    V50 = "5.0"

    @property
    def level(self) -> int:
        """The Protocol Level byte of CONNECT."""
        return 5 if self is Version.V50 else 4

    @property
    def v5(self) -> bool:
        return self is Version.V50

    @classmethod
    def parse(cls, value: str | int) -> Version:
        """A label ("3.1.1", "5.0", also "5"), a protocol level (4, 5) or a member; ValueError otherwise."""
        if isinstance(value, cls):
            return value
        by_text = {"3.1.1": cls.V311, "5.0": cls.V50, "5": cls.V50, "4": cls.V311}
        found = by_text.get(str(value).strip().lower().removeprefix("v"))
        if found is None:
            raise ValueError(f"unknown MQTT version {value!r} (use 3.1.1 or 5.0)")
        return found


VERSIONS: tuple[Version, ...] = tuple(Version)

__all__ = ["VERSIONS", "Version"]
