"""Steps of the Will and Session Expiry cases.

A Will is observed from outside: an *observer* probe subscribes to the Will Topic (and to a sentinel
topic), the *owner* connects with the Will and then ends its connection one way or another.

- Published: ``receive_will`` waits for it (``timed_will`` also measures when it came).
- Not published: the broker handles the end of the owner's connection asynchronously, so the owner's
  end is completed first (``disconnect_and_wait``: the broker closed the connection after reading the
  DISCONNECT; ``take_over``: a new connection with the same ClientId made the broker finish with the
  old one), and only then ``assert_no_will`` sends an ordered sentinel: nothing may come before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..codec import Connack, Connect, Disconnect, Properties, Publish, Subscription, Will, segments
from ..probe import Probe
from ..setup_steps import SUBSCRIPTION_GRANTED, PreconditionFailed
from ..transcript import NOTE, describe
from ..verdicts import BrokerViolation, NonStrict
from .common import MakeProbe, delivered

WILL_PAYLOAD = b"last will"
# Will Delay and Session Expiry count whole seconds: a broker may run them on a one-second tick, so an
# event up to one tick (plus loopback scheduling) after its bound is still on time.
TIMER_TICK = 1.0
SCHEDULING_SLACK = 0.25
ON_TIME = TIMER_TICK + SCHEDULING_SLACK
# Only for grading lateness (NON-STRICT at worst: 3.1.2-8 obliges the server to publish the Will once it is
# due but sets no deadline, and no statement asks for promptness; see docs/grading.md): besides its one-second tick, a broker's
# loop may sleep up to a second between timer checks, and in a parallel run on a small machine it is
# scheduled later still. Measured on 2 CPUs (mosquitto): a 1 s Will Delay came 1.0-2.0 s after the
# close serially, 1.2-2.2 s in 8-worker runs, now and then 2.6 s and more.
LATE_BOUND = 2 * TIMER_TICK + SCHEDULING_SLACK


@dataclass
class WillWatch:
    """A connected observer subscribed to the Will Topic and to a sentinel topic."""

    observer: Probe
    topic: str
    sentinel: str
    granted: int  # the QoS the broker granted on the Will Topic

    def delivered_qos(self, will: Will) -> int:
        return min(will.qos, self.granted)


def watch_will(make_probe: MakeProbe, topic_prefix: str, *, topic: str | None = None, qos: int = 2,
               retain_as_published: bool = False) -> WillWatch:
    """An observer of ``topic`` (default ``<prefix>/will``) and of ``<prefix>/sentinel``, both at ``qos``
    (5.0: Retain As Published on the Will Topic if asked, to see a retained Will's RETAIN flag)."""
    topic = topic or f"{topic_prefix}/will"
    sentinel = f"{topic_prefix}/sentinel"
    observer = make_probe(name="obs").connect()
    suback = observer.subscribe(Subscription(topic, qos, retain_as_published=retain_as_published),
                                Subscription(sentinel, max(qos, 1)))
    granted = suback.reason_codes[0]
    if granted >= 0x80:  # not what the Will cases test: a failed precondition
        raise PreconditionFailed(f"the broker refused the observer's subscription to {topic} (0x{granted:02X})",
                                 [SUBSCRIPTION_GRANTED])
    return WillWatch(observer, topic, sentinel, granted)


def will_for(watch: WillWatch, payload: bytes = WILL_PAYLOAD, *, qos: int = 1, retain: bool = False,
             **properties: Any) -> Will:
    """A Will on the watched topic; keyword arguments are Will Properties (5.0)."""
    return Will(topic=watch.topic, payload=payload, qos=qos, retain=retain, properties=Properties(**properties))


def connect_with_will(make_probe: MakeProbe, will: Will, client_id: str | None = None, **connect: Any) -> Probe:
    """The Will's owner, connected (``connect`` options as for ``Probe.connect``)."""
    return make_probe(client_id, name="own").connect(will=will, **connect)


def receive_will(watch: WillWatch, will: Will, timeout: float | None = None, **fields: Any) -> Publish:
    """The observer's next packet must be the Will (its topic and payload, and ``fields``); it is
    acknowledged. The delivery QoS is checked only where a case asks (``qos=watch.delivered_qos(will)``):
    it has statements of its own.

    Only the Will Delay gives the Will a deadline, so with no ``timeout`` a Will that has not come within
    the response timeout is awaited the profile's late window longer: one that comes then was published,
    late (a reservation: NON-STRICT unless the case fails), and one that never comes is a FAIL."""
    expected = {"topic": will.topic, "payload": will.payload, **fields}
    observer = watch.observer
    if timeout is not None:
        return observer.receive(timeout, **expected)
    began = time.monotonic()
    if observer.arrives() or observer.closed is not None:
        return observer.receive(**expected)  # whatever came first (or the close) is judged now
    publish = observer.receive(observer.timing.late, **expected)
    observer.transcript.reserve(observer.name, f"the Will came {time.monotonic() - began:.2f} s after the "
                                f"harness began to wait for it, past the {observer.timing.response:g} s response time")
    return publish


def timed_will(watch: WillWatch, will: Will, since: float, timeout: float, **fields: Any) -> tuple[Publish, float]:
    """``receive_will`` waiting up to ``timeout`` s; also returns the seconds from ``since`` to its arrival."""
    publish = receive_will(watch, will, timeout=timeout, **fields)
    return publish, time.monotonic() - since


def judge_timing(elapsed: float, earliest: float, due: float, event: str) -> None:
    """A timed event ``elapsed`` s after the close: FAIL before ``earliest`` (less loopback scheduling),
    NON-STRICT more than two timer ticks (plus slack) after ``due`` (the spec sets no deadline, so late is
    not a FAIL; docs/grading.md)."""
    if elapsed < earliest - SCHEDULING_SLACK:
        raise BrokerViolation(f"{event} {elapsed:.2f} s after the close, before the {earliest:g} s it must wait")
    if elapsed > due + LATE_BOUND:
        raise NonStrict(f"{event} {elapsed:.2f} s after the close; it was due after {due:g} s (the spec sets "
                        "no deadline, so late is not a FAIL)")


def note(probe: Probe, text: str) -> None:
    """A line in the case transcript (what the harness did or decided)."""
    probe.transcript.add(probe.name, NOTE, note=text)


def disconnect_and_wait(owner: Probe, reason_code: int = 0, **props: Any) -> Disconnect | None:
    """Send DISCONNECT and wait until the broker closes the connection, so that it has acted on the
    DISCONNECT before anything else is observed. Closing is only a SHOULD for the broker: one that keeps
    the connection open is closed by the harness. Returns the broker's DISCONNECT (5.0) if it sent one."""
    owner.send(Disconnect(reason_code=reason_code, properties=Properties(**props)))
    return close_after(owner)


def close_after(owner: Probe, timeout: float | None = None) -> Disconnect | None:
    """Wait for the broker to close ``owner``'s connection; close it ourselves if it stays open."""
    try:
        return owner.expect_closed(timeout).disconnect
    except BrokerViolation as exc:
        note(owner, f"the broker did not close the connection ({exc}); the harness closes it")
        owner.close()
        return None


def take_over(make_probe: MakeProbe, client_id: str, **connect: Any) -> Probe:
    """Connect with ``client_id`` again: the broker must have finished with any earlier connection of
    that ClientId (published or dropped its Will) before it answers this CONNECT."""
    return make_probe(client_id, name="new").connect(**connect)


def assert_no_will(watch: WillWatch, sender: Probe, why: str = "") -> None:
    """Ordered barrier: ``sender`` publishes a sentinel; nothing may reach the observer before it."""
    before = delivered(sender, watch.observer, watch.sentinel)
    if before:
        got = "; ".join(describe(p, watch.observer.level) for p in before)
        raise BrokerViolation(f"{why or 'no Will may be published'}, but the observer received: {got}")


def quiet_for(probe: Probe, seconds: float, what: str) -> None:
    """Let a broker timer run for ``seconds`` while watching ``probe``: nothing may arrive on it.
    (A bounded observation window, for timers that must *not* fire; absence is then confirmed by a
    sentinel.)"""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        packet = probe.next(timeout=remaining)
        if packet is not None:
            raise BrokerViolation(f"{what}, but {probe.name} received {describe(packet, probe.level)}")
        if probe.closed is not None:
            raise BrokerViolation(f"the broker closed {probe.name}'s connection while {what.lower()}")


def connect_flags(probe: Probe, packet: Connect) -> int:
    """The Connect Flags byte ``packet`` encodes to (credentials included), for crafting variants."""
    return next(seg.data[0] for seg in segments(packet, probe.version) if seg.name == "connect_flags")


def connect_outcome(probe: Probe) -> Connack | None:
    """The broker's answer to the CONNECT just sent: its CONNACK, or None if it closed the connection
    without one."""
    answer = probe.next()
    if answer is None:
        if probe.closed is not None:
            return None
        raise BrokerViolation(f"neither a CONNACK nor a close within {probe.timing.response:.1f} s of the CONNECT")
    if not isinstance(answer, Connack):
        raise BrokerViolation(f"expected CONNACK or a close, got {describe(answer, probe.level)}")
    return answer
