"""Leave the broker as the case found it.

A case may leave state in the broker: retained messages on its topics, and sessions that outlive
their connection (3.1.1 Clean Session 0, which never expires; a 5.0 Session Expiry Interval). Run
against a shared broker, a suite must not pile these up; and on brokers that mix sessions up (amqtt
sends a new client the retained messages matching anybody's subscriptions) what one case leaves
behind changes the verdicts of the next. After each case the harness therefore clears the retained
messages the case published under its own topic root and discards the sessions of its own client
IDs, on connections of their own whose packets stay out of the case's transcript.

Best effort and bounded: the first step that fails (the broker refuses, closes or is gone) ends the
clean-up of that case; a clean-up never changes a verdict.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ..codec import Connect, Pingreq, Pingresp, Properties, Publish
from ..codec.version import Version
from ..probe import Probe, Timing
from ..transcript import OUT, Transcript

CLEANUP_TIMING = Timing(response=1.0, connect=2.0, late=0.0)


@dataclass
class Leftovers:
    """What one case may have left in the broker, with a probe whose address and identity reach it."""

    sessions: dict[str, Probe] = field(default_factory=dict)  # client ID -> a probe that used it
    retained: dict[Probe, set[str]] = field(default_factory=dict)  # a probe -> the topics it retained

    def __bool__(self) -> bool:
        return bool(self.sessions or self.retained)


def _outlives_connection(connect: Connect, level: int) -> bool:
    if level < Version.V50.level:
        return not connect.clean_start
    return bool(connect.properties.get("session_expiry_interval"))


def _accepted(probe: Probe) -> bool:
    return probe.connack is not None and probe.connack.reason_code == 0


def find_leftovers(probes: list[Probe], transcript: Transcript, client_base: str, topic_prefix: str) -> Leftovers:
    """Scan what the case's probes sent: persistent sessions of the case's client IDs, and retained
    messages (also retained Wills) on the case's topics."""
    by_name = {probe.name: probe for probe in probes}
    found = Leftovers()
    own_topic = f"{topic_prefix}/"

    def retained(probe: Probe, topic: str) -> None:
        if topic.startswith(own_topic):
            found.retained.setdefault(probe, set()).add(topic)

    for event in transcript.events:
        probe = by_name.get(event.probe)
        if event.dir != OUT or probe is None or not _accepted(probe):
            continue  # a refused identity left nothing behind, and could not clean up either
        packet = event.packet
        if isinstance(packet, Connect):
            if packet.client_id.startswith(client_base) and _outlives_connection(packet, event.level):
                found.sessions[packet.client_id] = probe
            if packet.will is not None and packet.will.retain:
                retained(probe, packet.will.topic)
        elif isinstance(packet, Publish) and packet.retain and packet.payload:
            retained(probe, packet.topic)
    return found


def _twin(probe: Probe, client_id: str) -> Probe:
    """A connection like ``probe``'s (address, version, TLS, identity) with a throw-away transcript."""
    return Probe(probe.endpoint, probe.version, Transcript(), name="cleanup", client_id=client_id,
                 timing=CLEANUP_TIMING, tls=probe.tls, username=probe.username, password=probe.password)


def clean_up(leftovers: Leftovers, client_base: str) -> None:
    """Discard the sessions, then clear the retained messages (a discarded session may publish a
    retained Will). The first step that fails ends it."""
    # Best effort: the broker may refuse, close or be gone; the first failure ends the clean-up.
    with contextlib.suppress(Exception):
        for client_id, probe in leftovers.sessions.items():
            with _twin(probe, client_id) as twin:
                twin.connect(clean_start=True, expect_code=None, properties=Properties())
        for index, (probe, topics) in enumerate(leftovers.retained.items()):
            with _twin(probe, f"{client_base}z{index}") as twin:
                twin.connect(expect_code=0)
                for topic in sorted(topics):
                    twin.publish(topic, b"", qos=0, retain=True)
                # The broker has read every clearing PUBLISH once it answers this (wait_for: a broker
                # may push other messages to the new connection first).
                twin.send(Pingreq())
                twin.wait_for(Pingresp)
