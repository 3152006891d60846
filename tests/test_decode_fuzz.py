"""No broker reply can raise inside the harness: random and mutated bytes of every packet a broker sends, in
both versions, go through the codec's decoders and through a Probe's receive path (a local socket server
sends them); only MalformedPacket (codec) and BrokerViolation (Probe) may come out. About 6 s."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import by_type

from conformance import BrokerViolation, Connack, Probe, Subscribe, Subscription, encode
from conformance.codec import MalformedPacket, Packet, PacketType, Parser
from conformance.codec.decode import decode_packet
from conformance.net import parse_url
from conformance.probe import Timing
from conformance.steps.topics import react
from conformance.transcript import IN, Event, Transcript, describe

SERVER_SENDS = (PacketType.CONNACK, PacketType.PUBLISH, PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL,
                PacketType.PUBCOMP, PacketType.SUBACK, PacketType.UNSUBACK, PacketType.PINGRESP,
                PacketType.DISCONNECT, PacketType.AUTH)
LEVELS = {"3.1.1": 4, "5.0": 5}
FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
NETWORK = settings(FAST, max_examples=80)  # each example is a loopback connection


def server_packet(level: int) -> st.SearchStrategy[Packet]:
    return st.one_of([s for t, s in by_type(level).items() if t in SERVER_SENDS])


@st.composite
def mutated(draw: st.DrawFn, level: int) -> bytes:
    """A well-formed server packet with a few bytes flipped, replaced, inserted, cut or removed; the
    Remaining Length is sometimes fixed up so that the damage reaches the body decoder."""
    packet = draw(server_packet(level))
    if getattr(packet, "packet_id", None):  # the ids the Probe's first requests use, to reach its helpers
        packet = dataclasses.replace(packet, packet_id=draw(st.sampled_from((1, 2))))
    wire = bytearray(encode(packet, level))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(wire) - 1, 0)))
        op = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        if op == "flip" and wire:
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and wire:
            wire[at] = draw(st.integers(0, 255))
        elif op == "insert":
            wire[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del wire[at:at + 1]
        else:
            del wire[at:]
    if draw(st.booleans()) and 2 <= len(wire) < 129:
        wire[1] = len(wire) - 2
    return bytes(wire)


def replies(level: int) -> st.SearchStrategy[bytes]:
    packets = st.lists(mutated(level) | server_packet(level).map(lambda p: encode(p, level)), min_size=1, max_size=3)
    return packets.map(b"".join) | st.binary(max_size=40)


def _show(raw: bytes, item: Packet | MalformedPacket, level: int) -> None:
    """What the transcript does with every received packet must not raise either."""
    event = Event(0.0, "c1", IN, raw, item, level=level)
    event.summary()
    event.to_json()
    if isinstance(item, Packet):
        describe(item, level)


@pytest.mark.parametrize("version", LEVELS)
@FAST
@given(data=st.data())
def test_decoders_raise_only_malformed_packet(version, data):
    level = LEVELS[version]
    wire = data.draw(replies(level))
    with contextlib.suppress(MalformedPacket):
        decode_packet(wire, level)
    parser, out = Parser(level), []
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=3)))
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        out += parser.feed(wire[start:end])  # the parser never raises: errors come out as items
    for raw, item in out:
        _show(raw, item, level)


class ReplyServer:
    """A loopback server that answers each connection with the next queued bytes, then closes it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.replies: queue.Queue[bytes] = queue.Queue()
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                with contextlib.suppress(OSError):
                    conn.recv(4096)  # the CONNECT
                    conn.sendall(self.replies.get(timeout=1))

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def reply_server() -> Iterator[ReplyServer]:
    server = ReplyServer()
    yield server
    server.stop()


def _exercise(probe: Probe) -> None:
    """The Probe's request/answer helpers on whatever the server sent."""
    probe.connect(expect_code=None)
    probe.subscribe("fuzz/a", "fuzz/b", qos=1)
    probe.publish("fuzz/a", b"x", qos=2)
    probe.receive()
    probe.expect_nothing()


@pytest.mark.parametrize("version", LEVELS)
@NETWORK
@given(data=st.data())
def test_probe_turns_any_reply_into_a_broker_violation(reply_server, version, data):
    level = LEVELS[version]
    prefix = data.draw(st.sampled_from([b"", encode(Connack(), level)]))
    reply_server.replies.put(prefix + data.draw(replies(level)))
    probe = Probe(parse_url(f"mqtt://127.0.0.1:{reply_server.port}"), version, Transcript(),
                  client_id=f"fz{uuid.uuid4().hex[:8]}", timing=Timing(response=0.2, connect=1.0))
    try:
        with contextlib.suppress(BrokerViolation):
            _exercise(probe)
        if data.draw(st.booleans()):
            react(probe, Subscribe(packet_id=1, subscriptions=(Subscription("fuzz/#", 0),)), "a filter")
    except BrokerViolation:
        pass
    finally:
        probe.close()
    for event in probe.transcript.events:
        event.to_json()
