"""Exceptions of the codec, each saying whose fault it is."""

from __future__ import annotations


class HarnessError(Exception):
    """The harness itself is wrong (a bug, a bad argument): the verdict is ERROR, never FAIL."""


class MalformedPacket(Exception):
    """Bytes that break an encoding rule.

    ``statement`` names the normative statement the bytes break, when one applies; ``fatal`` is True
    when the stream cannot be resynchronised (the packet boundary itself is lost).
    """

    def __init__(self, message: str, statement: str | None = None, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.statement = statement
        self.fatal = fatal
        self.raw = b""  # the packet's bytes, when the parser knows them

    def __str__(self) -> str:
        return f"{self.message} [{self.statement}]" if self.statement else self.message
