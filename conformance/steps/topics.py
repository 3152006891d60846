"""Steps for the cases about subscriptions, topic names and topic filters (3.8-3.11, 4.7, 4.8).

The central one judges how a broker reacts to a packet the spec makes a protocol violation (a bad
topic filter, a wildcard in a topic name, a shared filter without a ShareName, ...):

* it closes the connection (5.0: optionally after a DISCONNECT whose code names the error): what
  both versions require (3.1.1 section 4.8, 5.0 section 4.13.1);
* it refuses only that subscription or message with a failure code and keeps the connection: the
  harm is avoided but the spec asks for a close, so this grades NON-STRICT;
* it accepts the packet (grants the subscription, acknowledges the message, or says nothing at
  all): ``NotDetected`` (conformance/grading.py: FAIL, or NON-STRICT for a 5.0 error only 4.13.1-1
  names);
* its reaction breaks a rule of its own (a malformed packet, a SUBACK without reason codes, a
  DISCONNECT not followed by the close): FAIL.

The classification is conformance.judge's. Each violation is sent on a connection of its own, so that one close does not hide the next.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..codec import (
    Packet,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsubscribe,
    encode,
    encode_varint,
)
from ..codec.craft import Crafted
from ..grading import NotDetected
from ..judge import ACCEPTED, CLOSED, REFUSED, VIOLATION, Expected, Item, Judgement, classify
from ..probe import Probe, mismatches
from ..transcript import IN
from ..verdicts import BrokerViolation, NonStrict
from .common import MakeProbe, first_answer
from .malformed import MALFORMED_OR_PROTOCOL

# DISCONNECT codes that name a malformed or invalid packet (5.0 section 4.13.1 and table 3-10).
BAD_FILTER_CODES = MALFORMED_OR_PROTOCOL | {0x8F}  # 0x8F Topic Filter invalid
BAD_TOPIC_NAME_CODES = MALFORMED_OR_PROTOCOL | {0x90}  # 0x90 Topic Name invalid


def _packet_id(item: Packet | Crafted) -> int | None:
    packet = item.packet if isinstance(item, Crafted) else item
    return getattr(packet, "packet_id", None)


def react(probe: Probe, item: Packet | Crafted, what: str, *, close_codes: Iterable[int] = BAD_FILTER_CODES,
          index: int = 0) -> Judgement:
    """Send ``item`` on the connected ``probe`` and judge the broker's answer (conformance.judge).

    ``index`` is the position, in a SUBSCRIBE or UNSUBSCRIBE, of the filter that breaks the rule.
    A PUBLISH should be sent at QoS 1 so that its acceptance is visible as a PUBACK. The first answer
    decides (``steps.common.first_answer``), except that a DISCONNECT must be followed by the close."""
    probe.send(item)
    expected = Expected(frozenset(close_codes), item=Item(_packet_id(item), index))
    return classify(first_answer(probe, ack=True), expected).about(what)


def judge(reactions: Sequence[Judgement], rule: str) -> None:
    """Grade a set of reactions to violations of ``rule`` (see the module docstring)."""
    broken = [r for r in reactions if r.outcome == VIOLATION]  # FAIL whatever the rule's class
    if broken:
        raise BrokerViolation(f"{rule}; " + "; ".join(r.message for r in broken))
    accepted = [r for r in reactions if r.outcome == ACCEPTED]
    if accepted:  # graded by conformance/grading.py: FAIL or, for a 5.0 error only 4.13.1-1 names, NON-STRICT
        raise NotDetected(f"{rule}; the broker did not treat as a violation: " + "; ".join(r.message for r in accepted))
    refused = [r for r in reactions if r.outcome == REFUSED]
    if refused:
        raise NonStrict(f"{rule}, a protocol violation on which the spec requires closing the connection; "
                        "the broker only refused: " + "; ".join(r.message for r in refused))
    soft = [r for r in reactions if r.outcome == CLOSED and not r.code_ok]
    if soft:
        raise NonStrict(f"{rule}; closed, but the DISCONNECT did not name the error: "
                        + "; ".join(r.message for r in soft))


def _reactions(make_probe: MakeProbe, sent: Iterable[tuple[Packet, str]], close_codes: Iterable[int],
               connect: dict[str, Any]) -> list[Judgement]:
    """Each packet alone on a fresh connection: how the broker reacted to each."""
    return [react(make_probe().connect(**connect), packet, what, close_codes=close_codes) for packet, what in sent]


def subscribe_reactions(make_probe: MakeProbe, filters: Iterable[str | Subscription], *,
                        close_codes: Iterable[int] = BAD_FILTER_CODES, **connect: Any) -> list[Judgement]:
    """Each filter alone in a SUBSCRIBE on a fresh connection: how the broker reacted to each."""
    subs = [item if isinstance(item, Subscription) else Subscription(item, 0) for item in filters]
    sent = [(Subscribe(packet_id=0x1234, subscriptions=(sub,)), f"SUBSCRIBE {sub.topic_filter!r}") for sub in subs]
    return _reactions(make_probe, sent, close_codes, connect)


def unsubscribe_reactions(make_probe: MakeProbe, filters: Iterable[str], *,
                          close_codes: Iterable[int] = BAD_FILTER_CODES) -> list[Judgement]:
    """Each filter alone in an UNSUBSCRIBE on a fresh connection."""
    sent = [(Unsubscribe(packet_id=0x1234, topic_filters=(f,)), f"UNSUBSCRIBE {f!r}") for f in filters]
    return _reactions(make_probe, sent, close_codes, {})


def publish_reactions(make_probe: MakeProbe, topics: Iterable[str], *,
                      close_codes: Iterable[int] = BAD_TOPIC_NAME_CODES) -> list[Judgement]:
    """Each topic name in a QoS 1 PUBLISH on a fresh connection (a PUBACK would show acceptance)."""
    sent = [(Publish(topic=t, payload=b"x", qos=1, packet_id=0x1234), f"PUBLISH to {t!r}") for t in topics]
    return _reactions(make_probe, sent, close_codes, {})


def granted(suback: Suback, what: str = "") -> tuple[int, ...]:
    """The SUBACK's codes, which must all be grants (below 0x80)."""
    failed = [f"0x{c:02X}" for c in suback.reason_codes if c >= 0x80]
    if failed:
        raise BrokerViolation(f"subscription{' to ' + what if what else ''} refused ({', '.join(failed)}); "
                              "the case needs it granted")
    return tuple(suback.reason_codes)


def publishes(packets: Iterable[Packet]) -> list[Publish]:
    return [p for p in packets if isinstance(p, Publish)]


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
    deadline = time.monotonic() + wait
    while True:
        for item in list(probe.inbox):
            if isinstance(item, Publish) and not mismatches(item, fields):
                probe.inbox.remove(item)
                return item
        if not probe.read(deadline):
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
