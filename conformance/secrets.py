"""Masking credentials wherever bytes or text are recorded (transcripts, hence results.json, report.html,
pcaps, Allure attachments and the terminal).

A case may send only part of a password (a CONNECT whose last field is cut short, a CONNECT written a few
bytes at a time), so masking the whole secret is not enough: every run of at least ``MIN_RUN`` bytes that
also occurs in a secret is replaced by ``*``, byte for byte, so that lengths and frame offsets stay right.
The price: bytes of the recorded traffic that happen to share such a run with a password (a topic that
contains part of it) are masked too; the decoded fields of the packets stay readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

MIN_RUN = 3  # shorter runs occur by chance everywhere (length prefixes, flags); they reveal little
MASK = ord("*")


@lru_cache(maxsize=64)  # a run has a handful of secret sets, each masking thousands of events
def _pieces(secrets: tuple[bytes, ...], run: int) -> frozenset[bytes]:
    """Every ``run``-byte piece of every secret: a longer common run is covered by its pieces."""
    return frozenset(s[i:i + run] for s in secrets for i in range(len(s) - run + 1))


def mask_bytes(data: bytes, secrets: Iterable[bytes], run: int = MIN_RUN) -> bytes:
    """``data`` with every byte that belongs to a run of >= ``run`` bytes of a secret replaced by '*'."""
    pieces = _pieces(tuple(secrets), run)
    if not pieces or len(data) < run:
        return data
    out = bytearray(data)
    for piece in pieces:  # bytes.find runs in C: a large payload costs little
        at = data.find(piece)
        while at != -1:
            out[at:at + run] = bytes([MASK]) * run
            at = data.find(piece, at + 1)
    return bytes(out)


def mask_text(text: str, secrets: Iterable[bytes]) -> str:
    """The same for a note or message: runs of a secret's text, and of its hex form, become '*'."""
    secrets = [s for s in secrets if s]
    if not secrets or not text:
        return text
    masked = mask_bytes(text.encode("utf-8", "surrogateescape"), secrets)
    masked = mask_bytes(masked, [s.hex().encode() for s in secrets], 2 * MIN_RUN)  # "6d7174"
    masked = mask_bytes(masked, [s.hex(" ").encode() for s in secrets], 3 * MIN_RUN - 1)  # "6d 71 74"
    return masked.decode("utf-8", "replace")
