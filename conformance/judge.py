"""The one judge of how a broker reacts to a packet the spec makes an error (a malformed packet, a
protocol error, a CONNECT it must refuse).

Pure: ``classify`` reads an observed ``Reaction`` against what the spec ``Expected`` and returns a
``Judgement``; it waits for nothing and raises nothing. Live steps collect the Reaction with
``Probe.reaction`` (bounded waits, the PINGREQ barrier); the fuzzer builds it from the packets one
connection received (``Reaction.received``). What a Judgement is worth is the caller's to say (a step
raises BrokerViolation, grading.NotDetected, grading.wrong_code or NonStrict; the fuzzer reports a
Problem). The outcomes:

- CLOSED: the connection closed, silently or after one error packet (5.0: a DISCONNECT; for a CONNECT,
  a refusing CONNACK where one may come); ``code_ok`` says whether its code is one the spec gives.
- REFUSED: the broker refused (a refusing CONNACK; for a SUBSCRIBE, UNSUBSCRIBE or PUBLISH a failure
  code for the item at fault in its SUBACK, UNSUBACK, PUBACK or PUBREC) and kept the connection.
- ACCEPTED: the broker carried on: the connection stayed open and nothing refused the packet (it may
  have answered it, or accepted the CONNECT).
- VIOLATION: the reaction itself breaks a rule, whatever the error was: a malformed packet, an answer
  before the close, more than one error packet, a DISCONNECT before CONNACK or not followed by the
  close, a CONNACK where none may come, a SUBACK without reason codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .codec import Connack, Disconnect, MalformedPacket, Packet, Pingresp, Puback, Pubrec, Suback, Unsuback
from .codec.reason_codes import reason_name
from .codec.version import Version
from .transcript import describe

CLOSED, REFUSED, ACCEPTED, VIOLATION = "closed", "refused", "accepted", "violation"
OPTIONAL, REQUIRED, FORBIDDEN = "optional", "required", "forbidden"  # may a CONNACK refuse a CONNECT?

Received = Packet | MalformedPacket

# The 3.1.1 CONNACK refusing the protocol version (code 0x01, no properties). A server that does not know
# which version a client speaks may answer a 5.0 client with it (``Expected.legacy_ok``).
LEGACY_REFUSAL = bytes.fromhex("20020001")
LEGACY_CONNACK = Connack(reason_code=0x01)  # stands for it in a Judgement (compared by identity)


@dataclass(frozen=True)
class Reaction:
    """What the broker did after the bad packet."""

    version: Version
    packets: tuple[Received, ...] = ()  # what it sent, in order; the barrier's PINGRESP left out
    closed: bool = False
    barrier_answered: bool = False  # it answered the PINGREQ sent behind the bad packet
    waited: float = 0.0  # how long the close was awaited (s), for the message

    @classmethod
    def received(cls, version: str, packets: Iterable[Received], closed: bool, *, barrier: bool = False
                 ) -> Reaction:
        """From packets recorded offline (a fuzz Outcome). ``barrier``: a PINGREQ followed the bad packet,
        so the first PINGRESP answers it."""
        items = list(packets)
        index = next((i for i, p in enumerate(items) if isinstance(p, Pingresp)), None) if barrier else None
        if index is not None:
            del items[index]
        return cls(Version.parse(version), tuple(items), closed, index is not None)


@dataclass(frozen=True)
class Item:
    """The item at fault in a SUBSCRIBE, UNSUBSCRIBE or PUBLISH: the packet identifier its
    acknowledgement carries, and its position among the acknowledgement's codes."""

    packet_id: int | None
    index: int = 0


@dataclass(frozen=True)
class Expected:
    """What the spec asks of the broker's reaction."""

    codes: frozenset[int] | None = None  # the codes the spec gives the error packet (5.0); None: any
    connecting: bool = False  # the error is in (or before) the CONNECT: no connection accepted yet
    connack: str = OPTIONAL  # when connecting: may (must, must not) a refusing CONNACK come first?
    item: Item | None = None  # a failure code for this item, the connection kept, is REFUSED
    allow: tuple[type[Packet], ...] = ()  # answers to earlier packets, which may come at any point
    legacy_ok: bool = False  # 5.0: the 3.1.1 protocol-version refusal counts as a refusing CONNACK


@dataclass(frozen=True)
class Judgement:
    outcome: str  # CLOSED, REFUSED, ACCEPTED or VIOLATION
    message: str
    code_ok: bool = True  # the error packet carried a code the spec gives (or none came)
    disconnect: Disconnect | None = None
    connack: Connack | None = None

    def about(self, what: str) -> Judgement:
        """The same judgement, its message prefixed with what was judged."""
        return replace(self, message=f"{what}: {self.message}")


def accepts(connack: Connack, version: Version) -> bool:
    """Does the CONNACK accept the connection?"""
    if connack is LEGACY_CONNACK:
        return False
    return connack.reason_code == 0 or (version.v5 and connack.reason_code < 0x80)


def classify(reaction: Reaction, expected: Expected) -> Judgement:
    """Judge the reaction (see the module docstring)."""
    packets = _legacy(list(reaction.packets), reaction, expected)
    packets = [p for p in packets if not isinstance(p, expected.allow)]
    bad = next((p for p in packets if isinstance(p, MalformedPacket)), None)
    if bad is not None:
        return Judgement(VIOLATION, f"the broker answered with a malformed packet: {bad}")
    answers = [p for p in packets if isinstance(p, Packet)]
    refusal = _refusal(answers, expected)
    if refusal is not None:
        answers = answers[1:]
    signal = _signal(answers, reaction, expected)
    connack = next((p for p in answers if isinstance(p, Connack)), None)
    disconnect = signal if isinstance(signal, Disconnect) else None
    broken = _broken(answers, signal, reaction, expected)
    if broken:
        return Judgement(VIOLATION, broken, disconnect=disconnect, connack=connack)
    if not reaction.closed:
        return _open(answers, signal or refusal, reaction, expected)
    if answers and signal is None:
        return Judgement(VIOLATION, _answered_then_closed(answers, reaction, expected), connack=connack)
    if expected.connecting and expected.connack == REQUIRED and connack is None:
        return Judgement(VIOLATION, f"the broker closed the connection without the CONNACK (one of "
                                    f"{_hex(expected.codes)}) it must send first")
    return _closed(signal, refusal, reaction, expected)


def sealed(reaction: Reaction, expected: Expected) -> bool:
    """Whether the packets so far make a VIOLATION whatever follows (a close or not): a live judge may
    stop waiting."""
    return all(classify(Reaction(reaction.version, reaction.packets, closed), expected).outcome == VIOLATION
               for closed in (True, False))


def _legacy(packets: list[Received], reaction: Reaction, expected: Expected) -> list[Received]:
    if not (expected.legacy_ok and reaction.version.v5 and packets):
        return packets
    first = packets[0]
    if isinstance(first, MalformedPacket) and first.raw == LEGACY_REFUSAL:
        return [LEGACY_CONNACK, *packets[1:]]
    return packets


def _refusal(answers: list[Packet], expected: Expected) -> Packet | None:
    """The acknowledgement refusing the item at fault, if it is the first answer."""
    if expected.item is None or not answers:
        return None
    first = answers[0]
    if not isinstance(first, Suback | Unsuback | Puback | Pubrec) or first.packet_id != expected.item.packet_id:
        return None
    codes = tuple(first.reason_codes) if isinstance(first, Suback | Unsuback) else (first.reason_code,)
    if not codes:
        return None
    index = expected.item.index
    return first if (codes[index] if index < len(codes) else codes[-1]) >= 0x80 else None


def _signal(answers: list[Packet], reaction: Reaction, expected: Expected) -> Disconnect | Connack | None:
    """The first answer, if it is an error packet the broker may send before closing."""
    first = answers[0] if answers else None
    if isinstance(first, Disconnect) and reaction.version.v5 and not expected.connecting:
        return first
    if isinstance(first, Connack) and expected.connecting and expected.connack != FORBIDDEN and \
            not accepts(first, reaction.version):
        return first
    return None


def _broken(answers: list[Packet], signal: Packet | None, reaction: Reaction, expected: Expected) -> str:
    """What in the answers breaks a rule whatever the close, or ''."""
    if not answers:
        return ""
    first, seen, level = answers[0], _seen(answers, reaction), reaction.version.level
    if expected.connecting and isinstance(first, Disconnect) and reaction.version.v5:
        return (f"the broker sent {seen} without a successful CONNACK first; a server sends DISCONNECT only "
                "after accepting the connection (MQTT-3.14.0-1)")
    if expected.connecting and expected.connack == FORBIDDEN and isinstance(first, Connack):
        return (f"the broker sent {seen}; a CONNECT that does not conform must be refused by closing the "
                "connection without a CONNACK")
    if expected.connecting and not isinstance(first, Connack):
        wanted = "the close" if expected.connack == FORBIDDEN else "a CONNACK or the close"
        return f"expected {wanted} after the CONNECT, got {seen}"
    if signal is first and isinstance(first, Connack) and first.session_present:
        return "a CONNACK refusing the connection has Session Present 1"
    if signal is first and isinstance(first, Connack) and expected.connack == REQUIRED and \
            not _code_ok(first, expected):
        return f"refusing CONNACK has {describe(first, level)}, expected one of {_hex(expected.codes)}"
    if signal is not None and len(answers) > 1:
        after = " (MQTT-3.14.4-1: nothing may follow a DISCONNECT)" if isinstance(first, Disconnect) else ""
        return (f"the broker sent {seen}; at most one {'CONNACK' if expected.connecting else 'DISCONNECT'} "
                f"may come first, then the close{after}")
    if isinstance(signal, Disconnect) and not reaction.closed:
        return f"the broker sent {seen} but kept the connection open; the close must follow a DISCONNECT"
    if isinstance(first, Suback) and not first.reason_codes:
        return f"the broker answered with a SUBACK without reason codes ({seen})"
    return ""


def _open(answers: list[Packet], refused_by: Packet | None, reaction: Reaction, expected: Expected) -> Judgement:
    connack = next((p for p in answers if isinstance(p, Connack)), None)
    level = reaction.version.level
    if refused_by is not None:
        return Judgement(REFUSED, f"refused with {describe(refused_by, level)} but the connection stayed open",
                         not isinstance(refused_by, Connack) or _code_ok(refused_by, expected), connack=connack)
    seen = _seen(answers, reaction)
    if connack is not None and expected.connecting:
        return Judgement(ACCEPTED, f"the broker accepted the CONNECT ({seen}) and kept the connection open",
                         connack=connack)
    return Judgement(ACCEPTED, "the broker kept the connection open"
                     + (f"; it sent {seen}" if answers else "")
                     + ("; it answered a PINGREQ sent after it" if reaction.barrier_answered
                        else f" (no close within {reaction.waited:.1f} s)"))


def _answered_then_closed(answers: list[Packet], reaction: Reaction, expected: Expected) -> str:
    first, seen = answers[0], _seen(answers, reaction)
    if expected.connecting and isinstance(first, Connack):
        return f"the broker accepted the CONNECT ({seen}), then closed"
    return f"the broker answered with {seen} before closing the connection"


def _closed(signal: Disconnect | Connack | None, refusal: Packet | None, reaction: Reaction,
            expected: Expected) -> Judgement:
    level = reaction.version.level
    disconnect = signal if isinstance(signal, Disconnect) else None
    connack = signal if isinstance(signal, Connack) else None
    shown = [describe(p, level) for p in (refusal, signal) if p is not None]
    text = "the broker closed the connection" + (f" after {', '.join(shown)}" if shown else "")
    if signal is None or _code_ok(signal, expected):
        return Judgement(CLOSED, text, disconnect=disconnect, connack=connack)
    codes = " or ".join(f"0x{c:02X} ({reason_name(c, signal.name, level)})" for c in sorted(expected.codes or ()))
    return Judgement(CLOSED, f"{text}; the spec gives {codes} for this error", False, disconnect, connack)


def _code_ok(packet: Packet, expected: Expected) -> bool:
    if expected.codes is None or packet is LEGACY_CONNACK:
        return True
    return getattr(packet, "reason_code", None) in expected.codes


def _seen(answers: list[Packet], reaction: Reaction) -> str:
    return ", ".join(describe(p, reaction.version.level) for p in answers) or "nothing"


def _hex(codes: Iterable[int] | None) -> str:
    return ", ".join(f"0x{c:02X}" for c in sorted(codes or ()))
