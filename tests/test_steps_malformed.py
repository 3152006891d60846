"""The judge of malformed-packet cases (conformance.steps.malformed) against a scripted fake broker:
each way a broker can react to a broken packet gets the verdict the module promises."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conformance import BrokerViolation, NonStrict, Probe, Raw
from conformance.net import Endpoint
from conformance.probe import Timing
from conformance.steps.malformed import MALFORMED, PROTOCOL_ERROR, expect_rejected, rejected
from conformance.transcript import Transcript

CONNACK = {"3.1.1": b"\x20\x02\x00\x00", "5.0": b"\x20\x03\x00\x00\x00"}
BROKEN = Raw(b"\x00\x00", "a broken packet")


class FakeBroker:
    """Accepts one connection. ``accept_connect``: answer the CONNECT with a CONNACK 0. Then, on the
    next bytes, sends ``reply`` and closes if ``close``; with ``pong`` every PINGREQ gets a PINGRESP."""

    def __init__(self, version: str, reply: bytes = b"", *, close: bool = True, accept_connect: bool = True,
                 pong: bool = False) -> None:
        self.version, self.reply, self.close, self.accept_connect, self.pong = version, reply, close, accept_connect, pong
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(5)
        try:
            if self.accept_connect:
                conn.recv(4096)
                conn.sendall(CONNACK[self.version])
            data = conn.recv(4096)
            if self.reply:
                conn.sendall(self.reply)
            if self.close:
                return
            while data:
                if self.pong and b"\xc0\x00" in data:
                    conn.sendall(b"\xd0\x00")
                data = conn.recv(4096)
        except OSError:
            pass
        finally:
            conn.close()
            self.server.close()

    def probe(self) -> Probe:
        probe = Probe(Endpoint("mqtt", "127.0.0.1", self.port), self.version, Transcript(), client_id="selftest",
                      timing=Timing(response=1.0))
        if self.accept_connect:
            probe.connect()
        return probe


def test_disconnect_with_the_expected_code_then_close_passes():
    probe = FakeBroker("5.0", b"\xe0\x01\x81").probe()
    probe.send(BROKEN)
    closed = expect_rejected(probe, MALFORMED)
    assert closed.disconnect is not None and closed.disconnect.reason_code == MALFORMED


def test_silent_close_passes():
    probe = FakeBroker("3.1.1").probe()
    probe.send(BROKEN)
    assert expect_rejected(probe).disconnect is None


def test_another_error_code_is_non_strict():
    probe = FakeBroker("5.0", b"\xe0\x01\x82").probe()
    probe.send(BROKEN)
    with pytest.raises(NonStrict, match=r"0x81 \(Malformed Packet\)"):
        expect_rejected(probe, MALFORMED)


def test_connection_left_open_fails_soon_thanks_to_the_barrier():
    probe = FakeBroker("5.0", close=False, pong=True).probe()
    probe.send(BROKEN)
    started = time.monotonic()
    with pytest.raises(BrokerViolation, match="kept the connection open.*answered a PINGREQ"):
        expect_rejected(probe, timeout=5)
    assert time.monotonic() - started < 2


def test_connection_left_open_without_answers_fails_after_the_timeout():
    probe = FakeBroker("3.1.1", close=False).probe()
    probe.send(BROKEN)
    with pytest.raises(BrokerViolation, match=r"no close within 0.3 s"):
        expect_rejected(probe, timeout=0.3)


def test_answering_the_broken_packet_before_closing_fails():
    probe = FakeBroker("3.1.1", b"\x40\x02\x00\x01").probe()  # a PUBACK
    probe.send(BROKEN)
    with pytest.raises(BrokerViolation, match="answered with PUBACK"):
        expect_rejected(probe)


@pytest.mark.parametrize(("version", "reply", "outcome"), [
    ("3.1.1", b"\x20\x02\x00\x02", "without a CONNACK"),  # 3.1.1: any CONNACK breaks 3.1.4-1
    ("5.0", b"\x20\x03\x00\x00\x00", "accepted the CONNECT"),
    ("5.0", b"\xe0\x01\x81", "without a successful CONNACK first"),  # DISCONNECT before CONNACK
    ("5.0", b"\x20\x03\x00\x81\x00", None),  # refusing CONNACK 0x81, then the close: PASS
])
def test_broken_connect(version, reply, outcome):
    probe = FakeBroker(version, reply, accept_connect=False).probe()
    probe.send(BROKEN)
    if outcome is None:
        expect_rejected(probe, MALFORMED, connecting=True)
    else:
        with pytest.raises(BrokerViolation, match=outcome):
            expect_rejected(probe, MALFORMED, connecting=True)


def test_rejected_reports_the_wrong_code_after_the_block():
    probe = FakeBroker("5.0", b"\xe0\x01\x81").probe()
    probe.send(BROKEN)
    ran = []
    with pytest.raises(NonStrict), rejected(probe, PROTOCOL_ERROR):
        ran.append(True)
    assert ran == [True]


def test_rejected_lets_a_failure_in_the_block_win():
    probe = FakeBroker("5.0", b"\xe0\x01\x81").probe()
    probe.send(BROKEN)
    with pytest.raises(BrokerViolation, match="no Will"), rejected(probe, PROTOCOL_ERROR):
        raise BrokerViolation("no Will")
