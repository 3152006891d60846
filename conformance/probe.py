"""Probe: one raw client connection to the broker under test.

It sends packets (well-formed, crafted or raw bytes), records every byte in the case's transcript,
and judges what comes back: ``expect`` (the next packet, partially matched), ``reaction`` (what the
broker does after a bad packet, for ``judge.classify``), ``expect_closed``, and ``barrier`` /
``expect_nothing`` (the PINGREQ barrier: absence proved by a round trip, never by a sleep). Every wait
is bounded; a mismatch raises ``BrokerViolation`` with expected vs actual.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, overload

from .codec import (
    Connack,
    Connect,
    Crafted,
    Disconnect,
    MalformedPacket,
    Packet,
    Parser,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Raw,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    encode,
    level_of,
)
from .codec.errors import HarnessError
from .codec.properties import BY_NAME
from .codec.version import Version
from .codec.wire import V50
from .judge import CLOSED, Expected, Judgement, Reaction, classify
from .net import BrokerUnreachable, Endpoint, TlsOptions, Transport, open_transport
from .setup_steps import SUBACK_COUNT, UNSUBACK_COUNT, PreconditionFailed, failed_answer
from .transcript import BROKER, CLOSE, IN, NOTE, OUT, Transcript, describe
from .verdicts import BrokerGone, BrokerViolation

P = TypeVar("P", bound=Packet)
Sendable = Packet | Crafted | Raw | bytes


@dataclass(frozen=True)
class Closed:
    """How the broker ended the connection: after ``elapsed`` s, with a DISCONNECT or silently."""

    elapsed: float
    disconnect: Disconnect | None
    reset: bool = False


CLOSE_GRACE = 0.5  # how long a close may lag behind the broker's answer to a later packet
BARRIER_LIMIT = 30.0  # the longest a PINGREQ barrier waits while packets keep coming before the PINGRESP
DRAIN_WITHOUT_HALF_CLOSE = 0.25  # after DISCONNECT over TLS or WebSocket: how long to wait for the close


@dataclass
class Timing:
    response: float = 2.0  # how long a reply may take before it counts as missing
    connect: float = 5.0
    late: float = 6.0  # how much longer an event with no deadline of its own is awaited (NON-STRICT)


def _matches(expected: Any, actual: Any) -> bool:
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(actual))
    if isinstance(expected, set | frozenset):
        return actual in expected
    if isinstance(expected, list) and isinstance(actual, tuple):
        return tuple(expected) == actual
    return expected == actual


def mismatches(packet: Packet, fields: dict[str, Any]) -> list[str]:
    """Field names (or property names) whose values differ from ``fields``."""
    wrong = []
    for name, expected in fields.items():
        if hasattr(packet, name):
            actual = getattr(packet, name)
        elif name in BY_NAME:
            props = getattr(packet, "properties", Properties())
            actual = props.all(name) if BY_NAME[name].repeatable and isinstance(expected, list) else props.get(name)
        else:
            raise HarnessError(f"{packet.name} has no field or property {name!r}")
        if not _matches(expected, actual):
            wrong.append(f"{name}={actual!r} (expected {_show(expected)})")
    return wrong


def _show(expected: Any) -> str:
    if callable(expected) and not isinstance(expected, type):
        return str(getattr(expected, "__doc__", None) or getattr(expected, "__name__", "a predicate"))
    if isinstance(expected, set | frozenset):
        return "one of " + ", ".join(repr(v) for v in sorted(expected))
    return repr(expected)


class Probe:
    """A raw MQTT client. Create it through the ``make_probe`` fixture, which shares the case's transcript."""

    def __init__(
        self,
        endpoint: Endpoint,
        version: str,
        transcript: Transcript,
        *,
        name: str = "c1",
        client_id: str = "",
        timing: Timing | None = None,
        tls: TlsOptions | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.version = version
        self.level = level_of(version)
        self.transcript = transcript
        self.name = name
        self.client_id = client_id
        self.timing = timing or Timing()
        self.tls = tls
        self.username = username
        self.password = password
        if password:
            transcript.secrets.append(password.encode())
        self.parser = Parser(self.level)
        self.inbox: deque[Packet | MalformedPacket] = deque()
        self.transport: Transport | None = None
        self.closed: Closed | None = None
        self.connack: Connack | None = None
        self._next_id = 0
        self._opened_at = 0.0
        self._sent_crafted = False  # the last packet sent was crafted or raw bytes
        self._crafted_any = False  # a crafted packet or raw bytes went out on this connection
        self.awaiting = ""  # what the current expect/collect_until/expect_closed/expect_nothing waits for

    # -- connection ----------------------------------------------------------------------------
    @property
    def v5(self) -> bool:
        return self.level == V50

    def open(self) -> Probe:
        if self.transport is None:
            try:
                self.transport = open_transport(self.endpoint, self.timing.connect, self.tls)
            except BrokerUnreachable as exc:
                self.transcript.add(self.name, NOTE, note=str(exc))
                raise BrokerGone(str(exc)) from None
            self.restart_clock()
            self.transcript.add(self.name, NOTE, note=f"TCP connected to {self.endpoint.url} (MQTT {self.version})")
        return self

    def restart_clock(self) -> None:
        """Count the connection's age (``Closed.elapsed``) from now: for a transport opened outside ``open``."""
        self._opened_at = time.monotonic()

    def send(self, item: Sendable, note: str = "") -> Probe:
        """Send a packet, a crafted packet or raw bytes, and record it."""
        self.open()
        if isinstance(item, Packet):
            data, packet = encode(item, self.level), item
        elif isinstance(item, Crafted | Raw):
            data = item.encode(self.level)
            packet = None
            note = note or (item.describe() if isinstance(item, Crafted) else item.label)
        elif isinstance(item, bytes | bytearray):
            data, packet, note = bytes(item), None, note or "raw bytes"
        else:
            raise HarnessError(f"cannot send {item!r}")
        self._sent_crafted = packet is None
        self._crafted_any = self._crafted_any or self._sent_crafted
        if packet is None:
            packet = self._try_decode(data)
        self.transcript.add(self.name, OUT, data, packet, note, self.level)
        assert self.transport is not None
        try:
            self.transport.send(data)
        except OSError as exc:
            # The broker may legitimately close while we send (it judged an earlier packet).
            self._mark_closed(reset=True, why=f"send failed: {exc}")
        return self

    def _try_decode(self, data: bytes) -> Packet | None:
        items = Parser(self.level).feed(data)
        if len(items) == 1 and isinstance(items[0][1], Packet) and items[0][0] == data:
            return items[0][1]
        return None

    def close(self) -> None:
        """Drop the network connection without DISCONNECT (an abrupt close)."""
        if self.transport is not None:
            if self.closed is None:
                self.transcript.add(self.name, NOTE, note="harness closed the connection")
            self.transport.close()
            self.transport = None
            self.closed = self.closed or Closed(0.0, None)

    def disconnect(self, reason_code: int = 0, **props: Any) -> None:
        """Send DISCONNECT and close, as a well-behaved client does."""
        if self.transport is not None and self.closed is None:
            self.send(Disconnect(reason_code=reason_code, properties=Properties(**props)))
            self._await_close()
        self.close()

    def _await_close(self) -> None:
        """Let the broker end the connection first, reading (and recording) what it still sends. Closing
        a socket that holds unread bytes makes the kernel reset the connection, and a broker that reads
        the reset first loses our last packets: the acknowledgements and the DISCONNECT itself (seen:
        mosquitto then resent messages already acknowledged). Bounded: a half-close (TCP) makes every
        broker close at once; over TLS or WebSocket the wait is short."""
        assert self.transport is not None
        wait = min(self.timing.response, 1.0) if self.transport.half_close() else DRAIN_WITHOUT_HALF_CLOSE
        deadline = time.monotonic() + wait
        while self.read(deadline):
            pass

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- receiving -------------------------------------------------------------------------------
    def _mark_closed(self, reset: bool = False, why: str = "") -> None:
        if self.closed is None:
            self.closed = Closed(time.monotonic() - self._opened_at, None, reset)
            note = "connection closed by broker" + (" (reset)" if reset else "") + (f": {why}" if why else "")
            self.transcript.add(self.name, CLOSE, note=note, closed_by=BROKER)
            if self.transport is not None:
                # Finish the close at once (TLS close_notify, WebSocket Close): mosquitto's WebSocket listener
                # otherwise waits ~5 s for it over wss before it drops the client and publishes its Will.
                self.transport.close()

    def read(self, deadline: float) -> bool:
        """A bounded read: read once, until ``deadline`` (a ``time.monotonic()`` value) at most; what
        arrives is recorded and queued in ``inbox``. False when nothing more can come (closed or timed out)."""
        if self.closed is not None or self.transport is None:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            data = self.transport.recv(remaining)
        except (ConnectionResetError, BrokenPipeError, OSError) as exc:
            self._mark_closed(reset=True, why=type(exc).__name__)
            return False
        if data is None:
            return False
        if data == b"":
            self._mark_closed()
            return False
        for raw, packet in self.parser.feed(data):
            self.transcript.add(self.name, IN, raw, packet, level=self.level)
            if isinstance(packet, Connack) and self.connack is None:
                self.connack = packet
            self.inbox.append(packet)
        return True

    @overload
    def next(self, timeout: float | None = None, *, strict: Literal[True] = True) -> Packet | None: ...

    @overload
    def next(self, timeout: float | None = None, *, strict: bool) -> Packet | MalformedPacket | None: ...

    def next(self, timeout: float | None = None, *, strict: bool = True) -> Packet | MalformedPacket | None:
        """The next packet from the broker, or None if the connection closed or nothing came in time.
        A malformed packet is a BrokerViolation, unless ``strict`` is False (then it is returned)."""
        if not self.arrives(timeout):
            return None
        item = self.inbox.popleft()
        if isinstance(item, MalformedPacket) and strict:
            raise BrokerViolation(f"broker sent a malformed packet: {item}")
        return item

    def arrives(self, timeout: float | None = None) -> bool:
        """Whether a packet is queued, or arrives within ``timeout``; it is left in the queue."""
        deadline = time.monotonic() + (self.timing.response if timeout is None else timeout)
        while not self.inbox:
            if not self.read(deadline):
                break
        return bool(self.inbox)

    def expect(self, kind: type[P], timeout: float | None = None, **fields: Any) -> P:
        """The next packet must be of ``kind`` with the given field values (a set means any of them,
        a callable is a predicate; property names check the packet's properties)."""
        wanted = f"{kind.__name__.upper()}{_fields_text(fields)}"
        self.awaiting = wanted
        packet = self.next(timeout)
        if packet is None:
            if self.closed is not None:
                raise BrokerViolation(f"expected {wanted}, but the broker closed the connection")
            raise self._missing(kind, f"expected {wanted}, but nothing arrived within {self._timeout(timeout):.1f} s")
        if not isinstance(packet, kind):
            raise BrokerViolation(f"expected {wanted}, got {describe(packet, self.level)}")
        wrong = mismatches(packet, fields)
        if wrong:
            raise BrokerViolation(f"expected {wanted}, got {describe(packet, self.level)}: " + "; ".join(wrong))
        return packet

    def wait_for(self, kind: type[P], timeout: float | None = None, **fields: Any) -> P:
        """The first packet of ``kind`` matching ``fields``; packets before it stay queued, in order.
        For helpers whose subject is not the order of unrelated packets."""
        return self.collect_until(kind, timeout, keep=True, **fields)[1]

    def collect_until(self, kind: type[P], timeout: float | None = None, *, keep: bool = False,
                      **fields: Any) -> tuple[list[Packet], P]:
        """Wait for the first ``kind`` matching ``fields``; return (the packets that came before it,
        the match). With ``keep`` the earlier packets stay queued instead of being taken."""
        wanted = f"{kind.__name__.upper()}{_fields_text(fields)}"
        self.awaiting = wanted
        deadline = time.monotonic() + self._timeout(timeout)
        seen = 0
        while True:
            for index, item in enumerate(list(self.inbox)[seen:], start=seen):
                if isinstance(item, kind) and not mismatches(item, fields):
                    before = list(self.inbox)[:index]
                    del self.inbox[index]
                    if not keep:
                        for _ in range(index):
                            self.inbox.popleft()
                    bad = [b for b in before if isinstance(b, MalformedPacket)]
                    if bad and not keep:
                        raise BrokerViolation(f"broker sent a malformed packet: {bad[0]}")
                    return [b for b in before if isinstance(b, Packet)], item
            seen = len(self.inbox)
            if not self.read(deadline):
                got = ", ".join(describe(p, self.level) if isinstance(p, Packet) else f"malformed: {p}"
                                for p in self.inbox) or "nothing"
                why = "the broker closed the connection" if self.closed else f"not within {self._timeout(timeout):.1f} s"
                raise self._missing(kind, f"expected {wanted}, {why}; received: {got}")

    def _missing(self, kind: type[Packet], message: str) -> BrokerViolation:
        """An expected packet did not come. An answer to a request we encoded ourselves that never came
        while the connection stayed open fails a setup step (setup_steps.ANSWER_STEPS). Not so after a
        close (the broker's reaction to the request) or on a connection that carried crafted bytes: then
        what follows may well be what the case is about."""
        if self._crafted_any or self.closed is not None:
            return BrokerViolation(message)
        return failed_answer(kind.__name__.upper(), message)

    def reaction(self, timeout: float | None = None, *, barrier: bool | None = None, rearm: bool = False,
                 stop: Callable[[Reaction], bool] | None = None) -> Reaction:
        """Collect the broker's reaction to the packet just sent, for ``judge.classify``: what it sends
        until it closes the connection or ``timeout`` passes (``rearm``: counted from each packet), or
        until ``stop`` holds for what came so far.

        ``barrier`` (default: after a crafted or raw packet on an accepted connection, when no timeout is
        given; before CONNACK a PINGREQ is itself an error) follows up with a PINGREQ: a broker that
        answers it has read past the packet without closing, so the wait ends ``CLOSE_GRACE`` later."""
        if barrier is None:
            barrier = self._sent_crafted and timeout is None and self.connack is not None
        barrier = barrier and self.closed is None and self.transport is not None
        if barrier:
            self.send(Pingreq(), note="barrier: a broker that closes does not answer this")
        wait = self._timeout(timeout)
        deadline = time.monotonic() + wait
        packets: list[Packet | MalformedPacket] = []
        answered = False
        while (item := self.next(max(0.0, deadline - time.monotonic()), strict=False)) is not None:
            if barrier and not answered and isinstance(item, Pingresp):
                answered = True
                deadline = min(deadline, time.monotonic() + CLOSE_GRACE)
                continue
            packets.append(item)
            if stop is not None and stop(self._reaction(packets, answered, wait)):
                break
            if rearm:
                deadline = time.monotonic() + (CLOSE_GRACE if answered else wait)
        return self._reaction(packets, answered, wait)

    def _reaction(self, packets: list[Packet | MalformedPacket], answered: bool, wait: float) -> Reaction:
        return Reaction(Version.parse(self.version), tuple(packets), self.closed is not None, answered, wait)

    def expect_closed(self, timeout: float | None = None, reason_codes: Iterable[int] | None = None,
                      allow: tuple[type[Packet], ...] = (), barrier: bool | None = None) -> Closed:
        """The broker must close the connection within ``timeout``. In 5.0 it may send a DISCONNECT
        first; if ``reason_codes`` is given, that DISCONNECT's code must be one of them (else FAIL).
        ``allow``: packets that may come meanwhile (answers to earlier packets); ``barrier``: see
        ``reaction``. Anything else is a violation, and so is a connection left open."""
        expected = Expected(None if reason_codes is None else frozenset(reason_codes), allow=allow)
        self.awaiting = "the broker to close the connection"
        # stop waiting once even a close could not make it right
        seen = self.reaction(timeout, barrier=barrier,
                             stop=lambda seen: not _closed_well(classify(replace(seen, closed=True), expected)))
        judgement = classify(seen, expected)
        if not _closed_well(judgement) or self.closed is None:
            raise BrokerViolation(f"expected the broker to close the connection: {judgement.message}")
        return Closed(self.closed.elapsed, judgement.disconnect, self.closed.reset)

    def barrier(self, timeout: float | None = None, *, strict: bool = True) -> list[Packet]:
        """The PINGREQ barrier: send PINGREQ and return what arrives before its PINGRESP (taken from the
        queue). The broker answers in order, so that is everything it sent before it read the PINGREQ.
        Each packet must come within ``timeout`` (default: the response timeout) of the one before, the
        whole within ``BARRIER_LIMIT``; a close or a missing PINGRESP is a violation, and so is a
        malformed packet unless ``strict`` is off (then it is left out: on a subscription wider than the
        case's topics it is another case's traffic)."""
        self.send(Pingreq(), note="barrier")
        self.awaiting = "PINGRESP (the barrier)"
        limit = time.monotonic() + BARRIER_LIMIT
        got: list[Packet] = []
        while True:
            item = self.next(min(self._timeout(timeout), max(0.0, limit - time.monotonic())), strict=strict)
            if isinstance(item, Pingresp):
                return got
            if isinstance(item, Packet):
                got.append(item)
            elif item is None:
                before = ", ".join(describe(p, self.level) for p in got) or "nothing"
                why = "the broker closed the connection" if self.closed is not None else "it did not come in time"
                raise BrokerViolation(f"expected the PINGRESP to a PINGREQ barrier, {why}; received before: {before}")

    def expect_nothing(self, timeout: float | None = None, allow: tuple[type[Packet], ...] = ()) -> None:
        """Nothing (but ``allow``) may arrive: proved by the PINGREQ barrier, never by a wait."""
        unexpected = [p for p in self.barrier(timeout) if not isinstance(p, allow)]
        if unexpected:
            raise BrokerViolation(f"expected nothing before the PINGRESP barrier, got {describe(unexpected[0], self.level)}")

    def _timeout(self, timeout: float | None) -> float:
        return self.timing.response if timeout is None else timeout

    # -- conveniences ----------------------------------------------------------------------------
    def packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def connect_packet(self, client_id: str | None = None, *, clean_start: bool = True, keep_alive: int = 60,
                       will: Will | None = None, session_expiry: int | None = None,
                       properties: Properties | None = None, username: str | None = None,
                       password: str | bytes | None = None) -> Connect:
        """A CONNECT carrying the target's credentials unless others are given."""
        props = properties or Properties()
        if session_expiry is not None and self.v5:
            props = Properties.of([*props, ("session_expiry_interval", session_expiry)])
        user = username if username is not None else self.username
        secret = password if password is not None else self.password
        if isinstance(secret, str):
            secret = secret.encode()
        if secret is not None and user is None and not self.v5:
            secret = None  # 3.1.1 forbids a password without a user name
        return Connect(
            client_id=self.client_id if client_id is None else client_id, clean_start=clean_start,
            keep_alive=keep_alive, will=will, username=user, password=secret, properties=props,
        )

    def connect(self, client_id: str | None = None, *, expect_code: int | None = 0, **options: Any) -> Probe:
        """Send CONNECT and expect CONNACK (code 0 unless ``expect_code`` says otherwise)."""
        if client_id is not None:
            self.client_id = client_id
        self.send(self.connect_packet(client_id, **options))
        fields = {} if expect_code is None else {"reason_code": expect_code}
        self.connack = self.expect(Connack, **fields)
        return self

    def subscribe(self, *filters: str | Subscription, qos: int = 0, properties: Properties | None = None,
                  expect_codes: Iterable[int] | None = None) -> Suback:
        subs = tuple(f if isinstance(f, Subscription) else Subscription(f, qos) for f in filters)
        packet_id = self.packet_id()
        self.send(Subscribe(packet_id=packet_id, subscriptions=subs, properties=properties or Properties()))
        suback = self.wait_for(Suback, packet_id=packet_id)
        if len(suback.reason_codes) != len(subs):  # cases index the codes by filter
            raise PreconditionFailed(f"SUBACK carries {len(suback.reason_codes)} return codes for "
                                     f"{len(subs)} topic filters", [SUBACK_COUNT])
        if expect_codes is not None and tuple(suback.reason_codes) != tuple(expect_codes):
            raise BrokerViolation(f"SUBACK codes {suback.reason_codes}, expected {tuple(expect_codes)}")
        return suback

    def unsubscribe(self, *filters: str, properties: Properties | None = None) -> Unsuback:
        packet_id = self.packet_id()
        self.send(Unsubscribe(packet_id=packet_id, topic_filters=filters, properties=properties or Properties()))
        unsuback = self.wait_for(Unsuback, packet_id=packet_id)
        if self.v5 and len(unsuback.reason_codes) != len(filters):
            raise PreconditionFailed(f"UNSUBACK carries {len(unsuback.reason_codes)} reason codes for "
                                     f"{len(filters)} topic filters", [UNSUBACK_COUNT])
        return unsuback

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                properties: Properties | None = None, **props: Any) -> Packet | None:
        """Publish and complete the QoS flow; returns the PUBACK/PUBCOMP (None for QoS 0)."""
        if isinstance(payload, str):
            payload = payload.encode()
        merged = Properties.of([*(properties or Properties()), *Properties(**props)])
        packet_id = self.packet_id() if qos else None
        self.send(Publish(topic=topic, payload=payload, qos=qos, retain=retain, packet_id=packet_id,
                          properties=merged))
        if qos == 1:
            return self.wait_for(Puback, packet_id=packet_id)
        if qos == 2:
            pubrec = self.wait_for(Pubrec, packet_id=packet_id)
            if pubrec.reason_code >= 0x80:
                return pubrec
            self.send(Pubrel(packet_id=pubrec.packet_id))
            return self.wait_for(Pubcomp, packet_id=packet_id)
        return None

    def ack(self, publish: Publish) -> None:
        """Acknowledge a received PUBLISH (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP)."""
        if publish.qos == 1:
            self.send(Puback(packet_id=publish.packet_id or 0))
        elif publish.qos == 2:
            self.send(Pubrec(packet_id=publish.packet_id or 0))
            self.wait_for(Pubrel, packet_id=publish.packet_id)
            self.send(Pubcomp(packet_id=publish.packet_id or 0))

    def receive(self, timeout: float | None = None, **fields: Any) -> Publish:
        """The next packet must be a PUBLISH matching ``fields``; it is acknowledged."""
        publish = self.expect(Publish, timeout, **fields)
        self.ack(publish)
        return publish

    def ping(self, timeout: float | None = None) -> None:
        self.send(Pingreq())
        self.expect(Pingresp, timeout)

    def drain(self, predicate: Callable[[Packet], bool] | None = None) -> list[Packet]:
        """Take every packet already received (after a barrier), optionally only matching ones."""
        taken = [p for p in self.inbox if isinstance(p, Packet) and (predicate is None or predicate(p))]
        for packet in taken:
            self.inbox.remove(packet)
        return taken


def _closed_well(judgement: Judgement) -> bool:
    return judgement.outcome == CLOSED and judgement.code_ok


def _fields_text(fields: dict[str, Any]) -> str:
    if not fields:
        return ""
    return "(" + ", ".join(f"{k}={_show(v)}" for k, v in fields.items()) + ")"
