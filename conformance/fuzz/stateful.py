"""The stateful fuzzer: a hypothesis ``RuleBasedStateMachine`` drives two or three clients through
connects (clean and persistent sessions), disconnects (normal and abrupt), subscribes, unsubscribes and
publishes, and the ``ModelDriver`` compares every CONNACK, SUBACK, UNSUBACK and delivery with the reference
model of ``model.py``.

Steps are structured actions (plain dicts), so a shrunk failure is a readable list such as::

    {"action": "connect", "client": "a", "clean": false, "persistent": true}
    {"action": "subscribe", "client": "a", "subscriptions": [["t/a", 1, false, false, 0]]}
    ...

and a reproducer replays the same list. Delivery barriers instead of sleeps: after each step the acting
client publishes a QoS 1 sentinel to each receiving client's own sentinel topic; what a client got before
its sentinel is what the step delivered. Only when something is missing does the driver give late
deliveries a short grace (the spec orders one publisher's messages per topic, not across topics). Every
wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from ..codec import (
    Connack,
    Disconnect,
    MalformedPacket,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscription,
)
from ..codec.version import Version
from ..probe import Probe
from ..transcript import Transcript
from ..verdicts import BrokerGone, BrokerViolation
from .common import (
    SUBACK_311,
    VALID_CODES,
    FuzzFailure,
    FuzzTarget,
    IgnoreList,
    Limits,
    Problem,
    open_probe,
)
from .context import context_for
from .model import BrokerModel, Expected, compare, topic_matches
from .packet_fuzz import LivenessChecker

CLIENTS = ("a", "b", "c")
TOPICS = ("a", "b", "a/b", "a/c", "b/a")
FILTERS = ("a", "b", "a/b", "#", "+", "a/#", "a/+", "+/b", "+/+", "b/#", "a/c", "+/a")
GRANTED = {0, 1, 2}

ACK_RULES = {"connect": "model/connack", "subscribe": "model/suback", "unsubscribe": "model/unsuback",
             "publish": "model/publish-ack", "disconnect": "model/closed"}


class StepFailed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.rule)
        self.problem = problem


class ModelDriver:
    """Runs structured actions against the broker and judges them against ``BrokerModel``."""

    def __init__(self, target: FuzzTarget, version: str, prefix: str, token: str, limits: Limits,
                 ignore: IgnoreList, clients: int = 3) -> None:
        self.target, self.limits, self.ignore = target, limits, ignore
        self.version = Version.parse(version)
        self.v5 = self.version.v5
        self.names = list(CLIENTS[:max(2, min(3, clients))])
        self.prefix = prefix
        self.token = token
        self.model = BrokerModel(version, self.names)
        self.transcript = Transcript()
        self.probes: dict[str, Probe | None] = {n: None for n in self.names}
        self.actions: list[dict[str, Any]] = []
        self.sentinels = 0
        self.broken = False  # a step failed: the model no longer describes the broker
        self.counter: Any = None  # statistics to count the steps run in (while generating)

    # -- names ---------------------------------------------------------------------------------------------
    def topic(self, relative: str) -> str:
        return f"{self.prefix}/t/{relative}"

    def sentinel_topic(self, name: str) -> str:
        return f"{self.prefix}/s/{name}"

    def client_id(self, name: str) -> str:
        return f"{self.token}{name}"

    def offline(self) -> list[str]:
        return [n for n in self.names if n not in self.model.online]

    def online(self) -> list[str]:
        return [n for n in self.names if n in self.model.online]

    def resumable(self) -> list[str]:
        """Offline clients whose session the broker keeps."""
        return [n for n in self.offline() if self.model.has_session(n)]

    def queue_topics(self) -> list[str]:
        """Topics (relative) that match a subscription of an offline persistent session."""
        filters = [f[len(self.topic("")):] for n in self.resumable()
                   for f in self.model.sessions[n].subs]  # type: ignore[union-attr]
        return [t for t in TOPICS if any(topic_matches(f, t) for f in filters)]

    # -- running an action ---------------------------------------------------------------------------------
    def do(self, action: dict[str, Any]) -> None:
        """Run one action; raise StepFailed with the first problem not ignored."""
        if action.get("client") not in self.names or \
                (action["action"] == "connect") == (action["client"] in self.model.online):
            return  # not applicable in this state (a step was removed while minimising): skipped
        self.actions.append(action)
        if self.counter is not None:
            self.counter.inputs += 1
        handler: Callable[[dict[str, Any]], None] = getattr(self, f"_{action['action']}")
        where = _where(action, len(self.actions))
        try:
            handler(action)
        except StepFailed:
            raise
        except BrokerViolation as exc:
            text = str(exc)
            rule = "model/closed" if "closed" in text else ACK_RULES[action["action"]]
            self._fail(Problem(rule, _expected_text(action), text, where))
        except (BrokerGone, OSError) as exc:
            self._fail(Problem("model/closed", _expected_text(action), f"{type(exc).__name__}: {exc}", where))

    def _fail(self, problem: Problem) -> None:
        if self.ignore(problem.rule, self.version):
            return
        raise StepFailed(problem)

    def _check(self, problems: list[Problem], action: dict[str, Any]) -> None:
        for problem in problems:
            if not self.ignore(problem.rule, self.version):
                problem.where = _where(action, len(self.actions))
                raise StepFailed(problem)

    def _probe(self, name: str) -> Probe:
        probe = self.probes[name]
        if probe is None:
            raise BrokerViolation(f"client {name} has no connection")
        return probe

    def _connect(self, action: dict[str, Any]) -> None:
        name, clean, persistent = action["client"], action["clean"], action["persistent"]
        if not self.v5:
            persistent = not clean
        probe = open_probe(self.target, self.version, self.transcript, name, self.client_id(name), self.limits.timeout)
        self.probes[name] = probe
        expected_present, queued = self.model.connect(name, clean, persistent)
        probe.send(probe.connect_packet(clean_start=clean, session_expiry=300 if persistent else None))
        connack = probe.expect(Connack)
        if connack.reason_code != 0:
            self._fail(Problem("model/connack", "CONNACK 0x00 for a plain CONNECT", f"reason code "
                               f"0x{connack.reason_code:02X}", _where(action, len(self.actions))))
        if connack.session_present != expected_present:
            self._fail(Problem("model/session-present", f"Session Present {int(expected_present)} "
                               f"({'a session was stored' if expected_present else 'no stored session'})",
                               f"Session Present {int(connack.session_present)}", _where(action, len(self.actions))))
        probe.subscribe(Subscription(self.sentinel_topic(name), 1))
        got = self._barrier(name, [name])
        self._compare({name: queued}, got, action)

    def _disconnect(self, action: dict[str, Any]) -> None:
        name = action["client"]
        probe = self._probe(name)
        if not action.get("abrupt"):
            probe.send(Disconnect())
        extra = _close_and_drain(probe, self.limits.timeout)
        self.probes[name] = None
        self.model.disconnect(name)
        stray = [p for p in extra if isinstance(p, Publish)]
        if stray:
            self._compare({name: []}, {name: stray}, action)

    def _subscribe(self, action: dict[str, Any]) -> None:
        name = action["client"]
        probe = self._probe(name)
        requests = [(self.topic(f), int(q), bool(nl), bool(rap), int(rh)) for f, q, nl, rap, rh in
                    action["subscriptions"]]
        subs = [Subscription(f, q, nl if self.v5 else False, rap if self.v5 else False, rh if self.v5 else 0)
                for f, q, nl, rap, rh in requests]
        suback = probe.subscribe(*subs)
        codes = list(suback.reason_codes)
        allowed = VALID_CODES["SUBACK"] if self.v5 else SUBACK_311
        bad = len(codes) != len(subs) or any(c not in allowed or (c in GRANTED and c > s.qos)
                                             for c, s in zip(codes, subs, strict=False))
        if bad:
            self._fail(Problem("model/suback", f"SUBACK with {len(subs)} codes, each the granted QoS (at most the "
                               "requested one) or a failure", f"codes {codes} for requested {[s.qos for s in subs]}",
                               _where(action, len(self.actions))))
        expected = self.model.subscribe(name, requests, codes)
        got = self._barrier(name, [name])
        self._compare({name: expected}, got, action)

    def _unsubscribe(self, action: dict[str, Any]) -> None:
        name = action["client"]
        probe = self._probe(name)
        filters = [self.topic(f) for f in action["filters"]]
        unsuback = probe.unsubscribe(*filters)
        self.model.unsubscribe(name, filters)
        if self.v5:
            codes = list(unsuback.reason_codes)
            if len(codes) != len(filters) or not set(codes) <= VALID_CODES["UNSUBACK"]:
                self._fail(Problem("model/unsuback", f"UNSUBACK with {len(filters)} defined reason codes",
                                   f"codes {codes}", _where(action, len(self.actions))))

    def _publish(self, action: dict[str, Any]) -> None:
        name = action["client"]
        probe = self._probe(name)
        topic = self.topic(action["topic"])
        payload = b"" if action.get("empty") else f"m{len(self.actions)}".encode()
        qos, retain = int(action["qos"]), bool(action["retain"])
        ack = probe.publish(topic, payload, qos=qos, retain=retain)
        if self.v5 and isinstance(ack, Puback | Pubrec | Pubcomp) and ack.reason_code >= 0x80:
            return  # refused by the broker: nothing was published (allowed in 5.0)
        live = self.model.publish(name, topic, payload, qos, retain)
        receivers = self.online()
        got = self._barrier(name, receivers)
        self._compare({r: [live[r]] if r in live else [] for r in receivers}, got, action)

    # -- barriers --------------------------------------------------------------------------------------------
    def _barrier(self, sender: str, receivers: list[str]) -> dict[str, list[Publish]]:
        """``sender`` publishes a QoS 1 sentinel to each receiver's sentinel topic; each receiver's deliveries
        before its sentinel are returned (every one acknowledged on arrival, QoS 2 flows completed)."""
        self.sentinels += 1
        token = f"sentinel {self.sentinels}".encode()
        probe = self._probe(sender)
        for receiver in receivers:
            probe.publish(self.sentinel_topic(receiver), token, qos=1)
        got: dict[str, list[Publish]] = {}
        for receiver in receivers:
            got[receiver] = self._collect(receiver, token)
        return got

    def _collect(self, receiver: str, token: bytes | None, wait: float | None = None) -> list[Publish]:
        """Read ``receiver``'s packets until its sentinel ``token`` (or, with ``token`` None, for ``wait``
        seconds), acknowledging each PUBLISH at once so that the broker's in-flight window never fills."""
        probe = self._probe(receiver)
        sentinel = self.sentinel_topic(receiver)
        deadline = time.monotonic() + (self.limits.timeout if wait is None else wait)
        extended = wait is not None  # a sentinel gets one extension: a loaded machine is not a lost message
        deliveries: list[Publish] = []
        pending: set[int] = set()
        done = False
        while not done or pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not extended and probe.closed is None:
                extended, deadline = True, time.monotonic() + self.limits.timeout
                remaining = self.limits.timeout
            if remaining <= 0:
                break
            packet = probe.next(remaining, strict=False)
            if packet is None:
                break
            if isinstance(packet, MalformedPacket):
                raise StepFailed(Problem("broker/malformed-packet", "well-formed packets from the broker",
                                         str(packet)))
            if isinstance(packet, Publish):
                if packet.qos == 1:
                    probe.send(Puback(packet_id=packet.packet_id or 0))
                elif packet.qos == 2:
                    probe.send(Pubrec(packet_id=packet.packet_id or 0))
                    pending.add(packet.packet_id or 0)
                if packet.topic == sentinel:
                    done = done or packet.payload == token
                else:
                    deliveries.append(packet)
            elif isinstance(packet, Pubrel):
                probe.send(Pubcomp(packet_id=packet.packet_id))
                pending.discard(packet.packet_id)
        if token is not None and not done:
            why = "the connection closed" if probe.closed else f"not within {2 * self.limits.timeout:.1f} s"
            raise StepFailed(Problem("model/missing", f"the barrier message (QoS 1, on {receiver}'s own sentinel "
                                     f"topic) delivered to client {receiver}", why))
        return deliveries

    def _compare(self, expected: dict[str, list[Expected]], got: dict[str, list[Publish]],
                 action: dict[str, Any]) -> None:
        for receiver, exp in expected.items():
            observed = got.get(receiver, [])
            problems = [p for p in compare(exp, observed) if not self.ignore(p.rule, self.version)]
            if any(p.rule.startswith("model/missing") for p in problems):
                observed = observed + self._grace(receiver)  # late arrivals are not losses
                problems = [p for p in compare(exp, observed) if not self.ignore(p.rule, self.version)]
            for problem in problems:
                problem.observed = f"client {receiver}: {problem.observed}"
            self._check(problems, action)

    def _grace(self, receiver: str) -> list[Publish]:
        """A second barrier, from the receiver to itself: what was only late arrives before it."""
        if self.probes.get(receiver) is None:
            return []
        return self._barrier(receiver, [receiver])[receiver]

    # -- the end -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect everybody, end persistent sessions and clear the retained messages of this run."""
        for name, probe in self.probes.items():
            if probe is not None:
                with contextlib.suppress(Exception):
                    probe.send(Disconnect())
                    _close_and_drain(probe, min(1.0, self.limits.timeout))
                self.probes[name] = None
        with contextlib.suppress(Exception):
            cleaner = open_probe(self.target, self.version, Transcript(), "clean", f"{self.token}z",
                                 self.limits.timeout)
            cleaner.connect()
            for topic in sorted(self.model.ever_retained):
                cleaner.send(Publish(topic=topic, payload=b"", retain=True))
            cleaner.ping()
            cleaner.disconnect()
        for name in self.names:
            session = self.model.sessions.get(name)
            if session is not None and session.persistent:
                with contextlib.suppress(Exception):
                    probe = open_probe(self.target, self.version, Transcript(), name, self.client_id(name),
                                       self.limits.timeout)
                    probe.connect(clean_start=True)
                    probe.disconnect()


def _close_and_drain(probe: Probe, timeout: float) -> list[Any]:
    """Half-close and read until the broker closes too (it has then processed everything we sent)."""
    packets: list[Any] = list(probe.inbox)
    probe.inbox.clear()
    sock = getattr(probe.transport, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + timeout
    while probe.closed is None and probe.transport is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        packet = probe.next(remaining, strict=False)
        if packet is None:
            break
        packets.append(packet)
    probe.close()
    return packets


def _expected_text(action: dict[str, Any]) -> str:
    return {"connect": "a CONNACK", "subscribe": "a SUBACK", "unsubscribe": "an UNSUBACK",
            "publish": "the acknowledgement of the PUBLISH", "disconnect": "an orderly close"}[action["action"]]


def _where(action: dict[str, Any], index: int) -> str:
    args = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("action", "client"))
    return f"step {index}: {action['client']} {action['action']}({args})"


# -- the state machine -------------------------------------------------------------------------------------
class BrokerMachine(RuleBasedStateMachine):
    """Hypothesis drives the driver; ``factory`` (set on a subclass per round) makes a fresh driver."""

    factory: Callable[[], ModelDriver | None] = staticmethod(lambda: None)
    on_failure: Callable[[ModelDriver, Problem], bool] = staticmethod(lambda d, p: True)

    def __init__(self) -> None:
        super().__init__()
        self.driver = type(self).factory()

    def _run(self, action: dict[str, Any]) -> None:
        driver = self.driver
        if driver is None or driver.broken:
            return
        try:
            driver.do(action)
        except StepFailed as exc:
            driver.broken = True
            if type(self).on_failure(driver, exc.problem):
                raise FuzzFailure(exc.problem.rule) from None

    def _has(self, which: str) -> bool:
        return self.driver is not None and bool(getattr(self.driver, which)())

    def _pick(self, client: str, which: str) -> str:
        """The drawn client if it is eligible, else the next eligible one: the choice's range never changes,
        so that hypothesis can delete steps while shrinking without invalidating later choices."""
        assert self.driver is not None
        eligible = getattr(self.driver, which)()
        names = self.driver.names
        start = names.index(client) if client in names else 0
        return next(names[(start + i) % len(names)] for i in range(len(names))
                    if names[(start + i) % len(names)] in eligible)

    @initialize(cleans=st.lists(st.booleans(), min_size=3, max_size=3))
    def connect_everybody(self, cleans: list[bool]) -> None:
        """Start with every client connected (the minimising pass drops the connects a failure does not need)."""
        for client, clean in zip(CLIENTS, cleans, strict=False):
            self._run({"action": "connect", "client": client, "clean": clean, "persistent": not clean})

    @precondition(lambda self: self._has("offline"))
    @rule(client=st.sampled_from(CLIENTS), clean=st.booleans(), persistent=st.booleans())
    def connect(self, client: str, clean: bool, persistent: bool) -> None:
        self._run({"action": "connect", "client": self._pick(client, "offline"), "clean": clean,
                   "persistent": persistent})

    @precondition(lambda self: self._has("online"))
    @rule(client=st.sampled_from(CLIENTS), abrupt=st.booleans())
    def disconnect(self, client: str, abrupt: bool) -> None:
        self._run({"action": "disconnect", "client": self._pick(client, "online"), "abrupt": abrupt})

    @precondition(lambda self: self._has("online"))
    @rule(client=st.sampled_from(CLIENTS), subs=st.lists(st.tuples(
        st.sampled_from(FILTERS), st.integers(0, 2), st.booleans(), st.booleans(), st.integers(0, 2)),
        min_size=1, max_size=2))
    def subscribe(self, client: str, subs: list[tuple[str, int, bool, bool, int]]) -> None:
        assert self.driver is not None
        if not self.driver.v5:
            subs = [(f, q, False, False, 0) for f, q, *_ in subs]
        self._run({"action": "subscribe", "client": self._pick(client, "online"),
                   "subscriptions": [list(s) for s in subs]})

    @precondition(lambda self: self._has("online"))
    @rule(client=st.sampled_from(CLIENTS), filters=st.lists(st.sampled_from(FILTERS), min_size=1, max_size=2,
                                                              unique=True))
    def unsubscribe(self, client: str, filters: list[str]) -> None:
        self._run({"action": "unsubscribe", "client": self._pick(client, "online"), "filters": filters})

    @precondition(lambda self: self._has("online"))
    @rule(client=st.sampled_from(CLIENTS), topic=st.sampled_from(TOPICS), qos=st.integers(0, 2),
          retain=st.booleans(), empty=st.integers(0, 5))
    def publish(self, client: str, topic: str, qos: int, retain: bool, empty: int) -> None:
        self._run({"action": "publish", "client": self._pick(client, "online"), "topic": topic, "qos": qos,
                   "retain": retain, "empty": empty == 0 and retain})

    # Two state-aware rules make the interesting sessions likely: publishing to what an offline session is
    # subscribed to, and coming back to a stored session. They record plain publish / connect actions.
    @precondition(lambda self: self._has("online") and self._has("queue_topics"))
    @rule(client=st.sampled_from(CLIENTS), index=st.integers(0, len(TOPICS) - 1), qos=st.integers(0, 2),
          retain=st.booleans())
    def publish_to_offline_session(self, client: str, index: int, qos: int, retain: bool) -> None:
        assert self.driver is not None
        topics = self.driver.queue_topics()
        self._run({"action": "publish", "client": self._pick(client, "online"), "topic": topics[index % len(topics)],
                   "qos": qos, "retain": retain, "empty": False})

    @precondition(lambda self: self._has("resumable"))
    @rule(client=st.sampled_from(CLIENTS))
    def resume_session(self, client: str) -> None:
        self._run({"action": "connect", "client": self._pick(client, "resumable"), "clean": False,
                   "persistent": True})

    def teardown(self) -> None:
        if self.driver is not None:
            self.driver.close()


def as_liveness(problem: Problem, liveness: LivenessChecker) -> Problem | None:
    """A lost connection or message may be a dead broker: the liveness problem it then is, else None."""
    if problem.rule == "model/closed" or problem.rule.startswith("model/missing"):
        live, _ = liveness.check()
        if live is not None:
            return Problem(live.rule, live.expected, live.observed, problem.where)
    return None


def replay_actions(doc: dict[str, Any], target: FuzzTarget, limits: Limits, ignore: IgnoreList
                   ) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Run a stateful reproducer's actions in a fresh namespace; the problems met (at most one)."""
    version = doc["mqtt_version"]
    ctx = context_for(target, version, doc.get("seed"), limits)
    stamp = f"{int(time.time() * 1000) % 10**8:x}"
    driver = ModelDriver(target, version, f"{ctx.prefix}/replay{stamp}", f"fzr{stamp}", limits, ignore,
                         clients=len(CLIENTS))
    problems: list[Problem] = []
    try:
        for action in doc["steps"]:
            try:
                driver.do(action)
            except StepFailed as exc:
                liveness = LivenessChecker(target, ctx, limits, f"fzr{stamp}L")
                problems.append(as_liveness(exc.problem, liveness) or exc.problem)
                break
    finally:
        driver.close()
    return problems, driver.transcript.to_json()


__all__ = ["CLIENTS", "FILTERS", "TOPICS", "BrokerMachine", "ModelDriver", "StepFailed", "as_liveness",
           "replay_actions"]

