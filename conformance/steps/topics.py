"""Steps for the cases about subscriptions, topic names and topic filters (3.8-3.11, 4.7, 4.8).

The central one judges how a broker reacts to a packet the spec makes a protocol violation (a bad
topic filter, a wildcard in a topic name, a shared filter without a ShareName, ...):

* it closes the connection (5.0: optionally after a DISCONNECT whose code names the error): what
  both versions require (3.1.1 section 4.8, 5.0 section 4.13.1);
* it refuses only that subscription or message with a failure code and keeps the connection: the
  harm is avoided but the spec asks for a close, so this grades NON-STRICT;
* it accepts the packet (grants the subscription, acknowledges the message, or says nothing at
  all): FAIL.

Each violation is sent on a connection of its own, so that one close does not hide the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..codec import (
    Disconnect,
    MalformedPacket,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Pubrec,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    encode,
    encode_varint,
)
from ..codec.craft import Crafted
from ..grading import NotDetected
from ..probe import Probe
from ..transcript import IN, describe
from ..verdicts import BrokerViolation, NonStrict
from .common import SENTINEL

MakeProbe = Callable[..., Probe]

# DISCONNECT codes that name a malformed or invalid packet (5.0 section 4.13.1 and table 3-10).
MALFORMED_OR_PROTOCOL = frozenset({0x81, 0x82})
BAD_FILTER_CODES = MALFORMED_OR_PROTOCOL | {0x8F}  # 0x8F Topic Filter invalid
BAD_TOPIC_NAME_CODES = MALFORMED_OR_PROTOCOL | {0x90}  # 0x90 Topic Name invalid

CLOSED, REFUSED, ACCEPTED = "closed", "refused", "accepted"


@dataclass(frozen=True)
class Reaction:
    """What the broker did with one violating packet."""

    what: str
    outcome: str  # CLOSED (as required), REFUSED (failure code, connection kept), ACCEPTED
    detail: str
    soft: bool = False  # closed as required, but with a DISCONNECT code that does not name the error
    broken: bool = False  # the answer itself breaks a rule every server must keep (a SUBACK without codes)

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


def _packet_id(item: Packet | Crafted) -> int | None:
    packet = item.packet if isinstance(item, Crafted) else item
    return getattr(packet, "packet_id", None)


def react(probe: Probe, item: Packet | Crafted, what: str, *, close_codes: Iterable[int] = BAD_FILTER_CODES,
          index: int = 0) -> Reaction:
    """Send ``item`` on the connected ``probe`` and classify the broker's answer.

    ``index`` is the position, in a SUBSCRIBE or UNSUBSCRIBE, of the filter that breaks the rule.
    A PUBLISH should be sent at QoS 1 so that its acceptance is visible as a PUBACK."""
    codes = frozenset(close_codes)
    probe.send(item)
    packet_id = _packet_id(item)
    while True:
        packet = probe.next(strict=False)
        if packet is None:
            if probe.closed is not None:
                return Reaction(what, CLOSED, "connection closed")
            return Reaction(what, ACCEPTED, f"no reaction within {probe.timing.response:.1f} s; "
                                            "the connection stayed open")
        if isinstance(packet, Disconnect):
            probe.expect_closed()
            text = describe(packet, probe.level)
            if packet.reason_code in codes:
                return Reaction(what, CLOSED, f"{text}, connection closed")
            return Reaction(what, CLOSED, f"{text}, connection closed (expected reason "
                                          f"{_codes(codes)})", soft=True)
        if isinstance(packet, Suback | Unsuback | Puback | Pubrec) and packet.packet_id == packet_id:
            codes_seen = tuple(packet.reason_codes) if isinstance(packet, Suback | Unsuback) else (
                packet.reason_code,)
            text = describe(packet, probe.level)
            if not codes_seen:  # 3.1.1: UNSUBACK carries no code; a SUBACK without codes answers all the same
                return Reaction(what, ACCEPTED, f"answered {text}; the connection stayed open",
                                broken=isinstance(packet, Suback))
            code = codes_seen[index] if index < len(codes_seen) else codes_seen[-1]
            if code >= 0x80:
                return Reaction(what, REFUSED, f"refused with {text} but the connection stayed open")
            return Reaction(what, ACCEPTED, f"accepted: {text}")
        if isinstance(packet, Publish):
            probe.ack(packet)  # a retained or routed message: not the answer being judged
            continue
        return Reaction(what, ACCEPTED, f"answered {describe(packet, probe.level) if isinstance(packet, Packet) else packet}")


def _codes(codes: Iterable[int]) -> str:
    return "one of " + ", ".join(f"0x{c:02X}" for c in sorted(codes))


def judge(reactions: Sequence[Reaction], rule: str) -> None:
    """Grade a set of reactions to violations of ``rule`` (see the module docstring)."""
    accepted = [r for r in reactions if r.outcome == ACCEPTED]
    if any(r.broken for r in accepted):  # a SUBACK without reason codes: FAIL whatever the rule's class
        raise BrokerViolation(f"{rule}; the broker answered with a SUBACK without reason codes: "
                              + "; ".join(map(str, accepted)))
    if accepted:  # graded by conformance/grading.py: FAIL or, for a 5.0 error only 4.13.1-1 names, NON-STRICT
        raise NotDetected(f"{rule}; the broker did not treat as a violation: " + "; ".join(map(str, accepted)))
    refused = [r for r in reactions if r.outcome == REFUSED]
    if refused:
        raise NonStrict(f"{rule}, a protocol violation on which the spec requires closing the connection; "
                        "the broker only refused: " + "; ".join(map(str, refused)))
    soft = [r for r in reactions if r.soft]
    if soft:
        raise NonStrict(f"{rule}; closed, but the DISCONNECT did not name the error: " + "; ".join(map(str, soft)))


def subscribe_reactions(make_probe: MakeProbe, filters: Iterable[str | Subscription], *,
                        close_codes: Iterable[int] = BAD_FILTER_CODES, **connect: object) -> list[Reaction]:
    """Each filter alone in a SUBSCRIBE on a fresh connection: how the broker reacted to each."""
    reactions = []
    for item in filters:
        sub = item if isinstance(item, Subscription) else Subscription(item, 0)
        probe = make_probe().connect(**connect)
        reactions.append(react(probe, Subscribe(packet_id=0x1234, subscriptions=(sub,)),
                               f"SUBSCRIBE {sub.topic_filter!r}", close_codes=close_codes))
    return reactions


def unsubscribe_reactions(make_probe: MakeProbe, filters: Iterable[str], *,
                          close_codes: Iterable[int] = BAD_FILTER_CODES) -> list[Reaction]:
    """Each filter alone in an UNSUBSCRIBE on a fresh connection."""
    reactions = []
    for topic_filter in filters:
        probe = make_probe().connect()
        reactions.append(react(probe, Unsubscribe(packet_id=0x1234, topic_filters=(topic_filter,)),
                               f"UNSUBSCRIBE {topic_filter!r}", close_codes=close_codes))
    return reactions


def publish_reactions(make_probe: MakeProbe, topics: Iterable[str], *,
                      close_codes: Iterable[int] = BAD_TOPIC_NAME_CODES) -> list[Reaction]:
    """Each topic name in a QoS 1 PUBLISH on a fresh connection (a PUBACK would show acceptance)."""
    reactions = []
    for topic in topics:
        probe = make_probe().connect()
        reactions.append(react(probe, Publish(topic=topic, payload=b"x", qos=1, packet_id=0x1234),
                               f"PUBLISH to {topic!r}", close_codes=close_codes))
    return reactions


def granted(suback: Suback, what: str = "") -> tuple[int, ...]:
    """The SUBACK's codes, which must all be grants (below 0x80)."""
    failed = [f"0x{c:02X}" for c in suback.reason_codes if c >= 0x80]
    if failed:
        raise BrokerViolation(f"subscription{' to ' + what if what else ''} refused ({', '.join(failed)}); "
                              "the case needs it granted")
    return tuple(suback.reason_codes)


def publishes(packets: Iterable[Packet]) -> list[Publish]:
    return [p for p in packets if isinstance(p, Publish)]


def delivered(sender: Probe, receiver: Probe, sentinel_topic: str, *, wide: bool = False) -> list[Publish]:
    """``sender`` publishes a QoS 1 sentinel on ``sentinel_topic``, to which ``receiver`` is subscribed at
    QoS 1 or more: the PUBLISHes ``receiver`` got before it (the broker forwards one sender's messages in
    order), each acknowledged as it arrives so that flow control cannot stall the sentinel behind them."""
    sender.publish(sentinel_topic, SENTINEL, qos=1)
    return until_sentinel(receiver, sentinel_topic, wide=wide)


def until_sentinel(probe: Probe, topic: str, limit: float = 30.0, *, wide: bool = False) -> list[Publish]:
    """The PUBLISHes ``probe`` gets before the sentinel on ``topic`` (published by ``delivered`` or by
    the case), all acknowledged on arrival. Each packet must come within the response timeout, and
    the whole wait is bounded by ``limit`` seconds. ``wide``: see ``caught_until``."""
    return caught_until(probe, lambda p: isinstance(p, Publish) and p.topic == topic and p.payload == SENTINEL,
                        f"the sentinel PUBLISH on {topic!r}", limit, wide=wide)


def caught_until(probe: Probe, done: Callable[[Packet], bool], what: str, limit: float = 30.0, *,
                 wide: bool = False) -> list[Publish]:
    """The PUBLISHes ``probe`` gets before the first packet for which ``done`` holds (taken, left out),
    each acknowledged on arrival; any other packet is a violation. With ``wide`` (a subscription such
    as '#' that also catches other cases' traffic) a malformed packet is skipped: judging it is the
    subject of the case that provoked it, not of this one."""
    deadline = time.monotonic() + limit
    got: list[Publish] = []
    while time.monotonic() < deadline:
        packet = probe.next(strict=not wide)
        if packet is None:
            why = "the broker closed the connection" if probe.closed else (
                f"nothing more within {probe.timing.response:.1f} s")
            raise BrokerViolation(f"{probe.name}: expected {what}, {why}; received before: {shown(got)}")
        if isinstance(packet, MalformedPacket):
            continue
        if done(packet):
            if isinstance(packet, Publish):
                probe.ack(packet)
            return got
        if not isinstance(packet, Publish):
            raise BrokerViolation(f"{probe.name}: unexpected {describe(packet, probe.level)} while waiting for "
                                  f"{what}")
        probe.ack(packet)
        got.append(packet)
    raise BrokerViolation(f"{probe.name}: no {what} within {limit:.0f} s; received {len(got)} other messages")


def shown(packets: Iterable[Publish]) -> str:
    items = [f"{p.topic!r} {p.payload!r} qos={p.qos} retain={int(p.retain)}" for p in packets]
    return "[" + ", ".join(items) + "]" if items else "nothing"


def until_barrier(probe: Probe, timeout: float | None = None) -> list[Publish]:
    """Everything ``probe`` receives before the PINGRESP to a PINGREQ sent now (PUBLISHes acknowledged).
    Other packets than PUBLISH are a violation of the case's expectations."""
    probe.send(Pingreq(), note="barrier")
    before, _ = probe.collect_until(Pingresp, timeout)
    for packet in before:
        if not isinstance(packet, Publish):
            raise BrokerViolation(f"unexpected {describe(packet, probe.level)} before the PINGRESP barrier")
        probe.ack(packet)
    return publishes(before)


def first_receiver(probes: Sequence[Probe], timeout: float, **fields: object) -> tuple[Probe, Publish]:
    """Which of ``probes`` gets the first PUBLISH matching ``fields`` (a shared subscription picks one).
    Polls each in turn, bounded by ``timeout``; the PUBLISH is left unacknowledged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for probe in probes:
            packet = _peek(probe, 0.02, fields)
            if packet is not None:
                return probe, packet
    names = ", ".join(p.name for p in probes)
    raise BrokerViolation(f"none of {names} received PUBLISH{fields} within {timeout:.1f} s")


def _peek(probe: Probe, wait: float, fields: dict) -> Publish | None:
    from ..probe import mismatches

    deadline = time.monotonic() + wait
    while True:
        for item in list(probe.inbox):
            if isinstance(item, Publish) and not mismatches(item, fields):
                probe.inbox.remove(item)
                return item
        if not probe._pump(deadline):  # noqa: SLF001 - a bounded read, as Probe.next does
            return None


def wire_size(probe: Probe, packet: Packet) -> int:
    """How many bytes ``packet`` (received by ``probe``) took on the wire."""
    for event in reversed(probe.transcript.events):
        if event.packet is packet and event.dir == IN:
            return len(event.data)
    return len(encode(packet, probe.level))


MANY_FILTERS = 200

def tight_ack_limit(count: int) -> int:
    """A Maximum Packet Size that fits a SUBACK/UNSUBACK with ``count`` codes and no properties, and
    too small for any property (the shortest, an empty Reason String, takes 3 bytes)."""
    remaining = 2 + 1 + count  # packet id, property length 0, codes
    return 1 + len(encode_varint(remaining)) + remaining + 2

def many_filters(topic_prefix: str, capabilities: dict) -> list[str]:
    """Filters under the profile's denied topic when there is one (refusals tend to carry a Reason
    String), else under the case's own prefix."""
    denied = capabilities.get("denied_topic")
    root = f"{denied}/{topic_prefix.rsplit('/', 1)[-1]}" if denied else topic_prefix
    return [f"{root}/{i}" for i in range(MANY_FILTERS)]


def dollar_topic(topic_prefix: str) -> tuple[str, str]:
    """A topic name beginning with '$' that only this case uses, and its unique last level."""
    unique = topic_prefix.rsplit("/", 1)[-1]
    return f"$mqttc-{unique}/{unique}", unique
