"""A reference model of the broker, written from the spec, for the stateful fuzzer.

It tracks what the spec fixes about sessions, subscriptions and retained messages, and says for every step
which deliveries a client must, may and must not get:

- a session per client id: its subscriptions (filter -> granted QoS and, in 5.0, No Local / Retain As
  Published) and the messages owed to it while it is offline (persistent sessions only: 3.1.1 Clean
  Session 0, 5.0 a Session Expiry Interval above 0); Session Present follows from it;
- the retained store: the last retained message per topic; an empty retained payload deletes it;
- routing: a message goes to every session with a matching subscription, at min(published QoS, granted
  QoS); when several subscriptions of one session match, the server may send one copy or one per
  subscription, but some copy must carry the highest of those QoS;
- RETAIN on delivery: 1 for retained messages sent because of a subscription, 0 on forwarding (3.1.1)
  or as directed by Retain As Published (5.0);
- DUP is 0 on every first delivery (the driver acknowledges everything before it disconnects, so
  nothing is ever re-delivered);
- order: one publisher's messages on one topic at one QoS arrive in publication order.

Where the spec leaves a choice, the model allows it: QoS 0 messages may be dropped (at most once), a
QoS 0 retained message may be discarded, QoS 0 messages for an offline session may or may not be kept,
a subscription the broker refused with a failure code leaves the old state unknown (deliveries through it
become optional).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codec import Publish
from ..codec.version import Version
from .common import Problem


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching (4.7): '+' one whole level, '#' the rest (parent included)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


@dataclass
class Sub:
    topic_filter: str
    qos: int  # granted
    no_local: bool = False
    retain_as_published: bool = False
    uncertain: bool = False  # the broker refused a re-subscription: whether the old one holds is unknown
    replaced: bool = False  # replaced an identical filter with other No Local / Retain As Published options


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    publisher: str


@dataclass
class Expected:
    """What one client may receive of one message in one step."""

    message: Message
    qos_options: set[int]
    retain_options: set[bool]
    min_count: int
    max_count: int
    origin: str  # live | queued | retained
    must_qos: int | None = None  # some copy must have this QoS (overlapping subscriptions)
    replaced: bool = False  # a subscription involved had its options changed by a re-subscription

    @property
    def key(self) -> tuple[str, bytes]:
        return self.message.topic, self.message.payload

    def merge(self, other: Expected) -> None:
        self.qos_options |= other.qos_options
        self.retain_options |= other.retain_options
        self.min_count += other.min_count
        self.max_count += other.max_count
        self.replaced = self.replaced or other.replaced
        if other.must_qos is not None:
            self.must_qos = max(self.must_qos or 0, other.must_qos)


@dataclass
class Session:
    persistent: bool
    subs: dict[str, Sub] = field(default_factory=dict)
    queue: list[Expected] = field(default_factory=list)


@dataclass
class Retained:
    message: Message
    optional: bool  # QoS 0: the server may have discarded it


class BrokerModel:
    def __init__(self, version: str, clients: list[str]) -> None:
        self.version = Version.parse(version)
        self.v5 = self.version.v5
        self.sessions: dict[str, Session | None] = {c: None for c in clients}
        self.online: set[str] = set()
        self.retained: dict[str, Retained] = {}
        self.ever_retained: set[str] = set()
        self.seq = 0

    # -- sessions ------------------------------------------------------------------------------------------
    def connect(self, client: str, clean: bool, persistent: bool) -> tuple[bool, list[Expected]]:
        """Returns (Session Present expected, deliveries owed from the offline queue)."""
        session = self.sessions[client]
        self.online.add(client)
        if clean or session is None:
            self.sessions[client] = Session(persistent)
            return False, []
        session.persistent = persistent
        queued, session.queue = session.queue, []
        return True, queued

    def disconnect(self, client: str) -> None:
        self.online.discard(client)
        session = self.sessions[client]
        if session is not None and not session.persistent:
            self.sessions[client] = None

    def has_session(self, client: str) -> bool:
        return self.sessions[client] is not None

    # -- subscriptions ---------------------------------------------------------------------------------------
    def subscribe(self, client: str, requests: list[tuple[str, int, bool, bool, int]], codes: list[int]
                  ) -> list[Expected]:
        """Apply a SUBSCRIBE ((filter, qos, no_local, retain_as_published, retain_handling) per filter) with
        the broker's SUBACK codes; return the retained deliveries it causes."""
        session = self.sessions[client]
        assert session is not None
        out: dict[tuple[str, bytes], Expected] = {}
        for (topic_filter, _qos, no_local, rap, handling), code in zip(requests, codes, strict=False):
            existed = topic_filter in session.subs
            if code >= 0x80:
                if existed:
                    session.subs[topic_filter].uncertain = True
                continue
            old = session.subs.get(topic_filter)
            new = Sub(topic_filter, code, no_local and self.v5, rap and self.v5)
            new.replaced = old is not None and (old.replaced or (old.no_local, old.retain_as_published) !=
                                                (new.no_local, new.retain_as_published))
            session.subs[topic_filter] = new
            if self.v5 and (handling == 2 or (handling == 1 and existed)):
                continue
            for topic, entry in self.retained.items():
                if not topic_matches(topic_filter, topic):
                    continue
                exp = Expected(entry.message, {min(entry.message.qos, code)}, {True},
                               0 if entry.optional else 1, 1, "retained")
                if exp.key in out:
                    out[exp.key].merge(exp)
                    out[exp.key].min_count = min(out[exp.key].min_count, 1)
                else:
                    out[exp.key] = exp
        return list(out.values())

    def unsubscribe(self, client: str, filters: list[str]) -> list[bool]:
        session = self.sessions[client]
        assert session is not None
        existed = []
        for topic_filter in filters:
            existed.append(session.subs.pop(topic_filter, None) is not None)
        return existed

    # -- messages ----------------------------------------------------------------------------------------------
    def publish(self, publisher: str, topic: str, payload: bytes, qos: int, retain: bool) -> dict[str, Expected]:
        """Route a message the broker accepted; returns the deliveries owed to online clients now
        (offline persistent sessions get them queued)."""
        self.seq += 1
        message = Message(self.seq, topic, payload, qos, retain, publisher)
        if retain:
            self.ever_retained.add(topic)
            if payload:
                self.retained[topic] = Retained(message, optional=qos == 0)
            else:
                self.retained.pop(topic, None)
        live: dict[str, Expected] = {}
        for client, session in self.sessions.items():
            if session is None:
                continue
            candidates = [s for s in session.subs.values() if topic_matches(s.topic_filter, topic)]
            matching = [s for s in candidates if not (s.no_local and client == publisher)]
            replaced = any(s.replaced for s in candidates)
            if not matching:
                if candidates and client in self.online and not any(s.uncertain for s in candidates):
                    live[client] = Expected(message, set(), set(), 0, 0, "no-local", replaced=replaced)
                continue
            qos_each = [min(qos, s.qos) for s in matching]
            if self.v5:
                retain_options = {retain if s.retain_as_published else False for s in matching}
            else:
                retain_options = {False}
            certain = [q for q, s in zip(qos_each, matching, strict=True) if not s.uncertain]
            top = max(certain) if certain else None
            exp = Expected(message, set(qos_each), retain_options, 1 if top else 0, len(matching),
                           "live" if client in self.online else "queued",
                           must_qos=top if top is not None and len(matching) > 1 else None, replaced=replaced)
            if client in self.online:
                live[client] = exp
            elif session.persistent:
                session.queue.append(exp)
        return live


def compare(expected: list[Expected], observed: list[Publish]) -> list[Problem]:
    """Every way ``observed`` (one client's deliveries in one step, in arrival order) breaks ``expected``."""
    table = _by_message(expected)
    problems: list[Problem] = []
    seen: dict[tuple[str, bytes], list[Publish]] = {}
    for packet in observed:
        key = (packet.topic, packet.payload)
        if key not in table:
            problems.append(Problem("model/unexpected", "no delivery of this message (no matching subscription "
                                    "in the session, or it was removed)", _show(packet)))
            continue
        seen.setdefault(key, []).append(packet)
    for key, exp in table.items():
        problems += _copy_problems(exp, seen.get(key, []))
    problems += _order_problems(observed, table)
    _name_replacements(problems, [e for e in table.values() if e.replaced])
    return problems


def _by_message(expected: list[Expected]) -> dict[tuple[str, bytes], Expected]:
    """One entry per message: what several subscriptions (or steps) allow of it, merged into a copy."""
    table: dict[tuple[str, bytes], Expected] = {}
    for exp in expected:
        if exp.key in table:
            table[exp.key].merge(exp)
        else:
            table[exp.key] = Expected(exp.message, set(exp.qos_options), set(exp.retain_options), exp.min_count,
                                      exp.max_count, exp.origin, exp.must_qos, exp.replaced)
    return table


def _copy_problems(exp: Expected, copies: list[Publish]) -> list[Problem]:
    """What is wrong with the copies of one message a client got: their number, and each copy's flags."""
    what = f"{exp.origin} message {_show_message(exp.message)}"
    if copies and exp.origin == "no-local":
        return [Problem("model/no-local", "no delivery to the publisher itself: its only matching "
                        "subscriptions have No Local set", _show(copies[0]))]
    problems: list[Problem] = []
    if len(copies) > exp.max_count:
        problems.append(Problem("model/duplicate", f"at most {exp.max_count} cop{'y' if exp.max_count == 1 else 'ies'}"
                                f" of the {what}", f"{len(copies)}: " + ", ".join(_show(p) for p in copies)))
    if len(copies) < exp.min_count:
        rule = {"queued": "model/missing-queued", "retained": "model/missing-retained"}.get(exp.origin,
                                                                                       "model/missing")
        problems.append(Problem(rule, f"the {what} (QoS {sorted(exp.qos_options)})",
                                "it never arrived" if not copies else f"only {len(copies)} copies"))
    for packet in copies:
        if packet.qos not in exp.qos_options:
            problems.append(Problem("model/qos", f"QoS {' or '.join(map(str, sorted(exp.qos_options)))} for "
                                    f"the {what} (min of published and granted)", _show(packet)))
        if packet.retain not in exp.retain_options:
            problems.append(Problem("model/retain-flag", f"RETAIN={int(next(iter(exp.retain_options)))} on the "
                                    f"{what}", _show(packet)))
        if packet.dup:
            problems.append(Problem("model/dup", f"DUP=0 on the first delivery of the {what}", _show(packet)))
    if copies and exp.must_qos is not None and max(p.qos for p in copies) < exp.must_qos:
        problems.append(Problem("model/overlap-qos", f"a copy of the {what} at QoS {exp.must_qos}, the highest "
                                "of the matching subscriptions", ", ".join(_show(p) for p in copies)))
    return problems


def _name_replacements(problems: list[Problem], replaced: list[Expected]) -> None:
    """A problem with a message whose subscription a re-subscription changed (other No Local / Retain As
    Published options) is renamed to say so: the new options apply."""
    for problem in problems:
        if problem.rule == "model/unexpected":
            continue
        if any(e.message.topic in problem.expected or e.message.topic in problem.observed for e in replaced):
            problem.rule = "model/subscription-replacement"
            problem.expected += (" (a re-subscription to an identical filter changed its No Local / Retain As "
                                 "Published options: the new ones apply)")


def _order_problems(observed: list[Publish], table: dict[tuple[str, bytes], Expected]) -> list[Problem]:
    last: dict[tuple[str, str, int], Message] = {}
    counted: set[tuple[str, bytes]] = set()
    for packet in observed:
        key = (packet.topic, packet.payload)
        exp = table.get(key)
        if exp is None or exp.origin == "retained" or key in counted or not packet.payload:
            continue
        counted.add(key)
        message = exp.message
        group = (message.publisher, message.topic, message.qos)
        previous = last.get(group)
        if previous is not None and previous.seq > message.seq:
            return [Problem("model/order", f"messages of one publisher on {message.topic!r} at QoS {message.qos} "
                            "in publication order", f"{_show_message(previous)} arrived before "
                            f"{_show_message(message)}")]
        last[group] = message
    return []


def _show(packet: Publish) -> str:
    return (f"PUBLISH {packet.topic!r} payload={packet.payload!r} qos={packet.qos} retain={int(packet.retain)} "
            f"dup={int(packet.dup)}")


def _show_message(message: Message) -> str:
    return (f"{message.topic!r} payload={message.payload!r} (published by {message.publisher} at QoS "
            f"{message.qos}{', retained' if message.retain else ''})")


__all__ = ["BrokerModel", "Expected", "Message", "Session", "Sub", "compare", "topic_matches"]
