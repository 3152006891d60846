"""Steps of the connection cases (CONNECT, CONNACK, DISCONNECT, AUTH, sessions).

Steps assert only what every refusal or server DISCONNECT must satisfy, and say which rule failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..codec import Connack, Connect, Disconnect, MalformedPacket, Publish, segments
from ..codec.reason_codes import ALLOWED_50
from ..codec.version import Version
from ..grading import NotDetected, wrong_code
from ..probe import Probe
from ..transcript import describe
from ..verdicts import BrokerViolation

# The 3.1.1 CONNACK refusing the protocol version (code 0x01, no properties). A server that does not know
# which version a client speaks may answer a 5.0 client with it.
LEGACY_REFUSAL = bytes.fromhex("20020001")

# Refusal codes by cause: 3.1.1 return codes, 5.0 reason codes.
BAD_CREDENTIALS = {Version.V311: {0x04, 0x05}, Version.V50: {0x86, 0x87}}  # bad user name or password / not authorised
MALFORMED_CONNECT = {0x81, 0x82}  # 5.0: Malformed Packet, Protocol Error
# 5.0: an Authentication Method no server supports, and the codes that may refuse it (MQTT-4.12.0-1).
UNKNOWN_AUTH_METHOD = "mqttc-no-such-method"
BAD_AUTH_METHOD = {0x8C, 0x87}
# 5.0 Maximum Packet Size small enough that an optional Reason String or User Property could overflow
# it, large enough for a CONNACK with every property a server usually sends (about 30 bytes).
SMALL_MAXIMUM_PACKET_SIZE = 40


def _codes(codes: Iterable[int]) -> str:
    return ", ".join(f"0x{c:02X}" for c in sorted(codes))


def expect_refusal(probe: Probe, codes: Iterable[int] = (), *, connack: str = "optional",
                   legacy_ok: bool = False, accept_ok: bool = False) -> Connack | None:
    """The server refuses the CONNECT just sent: it closes the connection, after at most one CONNACK.

    ``connack`` is "required", "optional" or "forbidden" (3.1.1 closes a non-conforming CONNECT without
    one); a CONNACK must carry one of ``codes`` and Session Present 0. Nothing else may come: in 5.0 a
    DISCONNECT before a successful CONNACK breaks MQTT-3.14.0-1. With ``legacy_ok`` a 5.0 probe also
    accepts the 3.1.1 protocol-version refusal. With ``accept_ok`` a CONNACK accepting the connection is
    returned at once (for a CONNECT the server may support). Returns the CONNACK, if any.
    """
    codes = set(codes)
    got: Connack | None = None
    complaint = ""  # a wrong code in an optional CONNACK: NON-STRICT once the close has come
    while True:
        packet = probe.next(strict=False)
        if packet is None:
            if probe.closed is not None:
                break
            raise NotDetected(
                "expected the broker to close the connection after refusing the CONNECT; it stayed open"
                + ("" if got else f" and sent nothing within {probe.timing.response:.1f} s")
            )
        if isinstance(packet, MalformedPacket):
            if legacy_ok and got is None and getattr(packet, "raw", None) == LEGACY_REFUSAL:
                got = Connack(reason_code=0x01)
                continue
            raise BrokerViolation(f"broker sent a malformed packet: {packet}")
        if isinstance(packet, Connack) and got is None and connack != "forbidden":
            if accept_ok and (packet.reason_code == 0 or (probe.v5 and packet.reason_code < 0x80)):
                return packet
            if packet.reason_code not in codes:
                complaint = _wrong_refusal(probe, packet, codes, connack)
            if packet.session_present:
                raise BrokerViolation("a CONNACK refusing the connection has Session Present 1")
            got = packet
            continue
        if isinstance(packet, Disconnect):
            raise BrokerViolation(f"broker sent {describe(packet, probe.level)} without a successful CONNACK "
                                  "before it (a server sends DISCONNECT only after CONNACK < 0x80)")
        expected = "the close"
        if got is None and connack != "forbidden":
            expected = f"a CONNACK with one of {_codes(codes)} or the close"
        raise BrokerViolation(f"expected {expected} after the refused CONNECT, got "
                              f"{describe(packet, probe.level)}")
    if got is None and connack == "required":
        raise BrokerViolation(f"the broker closed the connection without the CONNACK (one of "
                              f"{_codes(codes)}) it must send first")
    if complaint:
        raise wrong_code(complaint)
    return got


def _wrong_refusal(probe: Probe, packet: Connack, codes: set[int], connack: str) -> str:
    """A CONNACK with a code not in ``codes``: an acceptance, or a code the spec requires (``connack``
    "required"), is a FAIL; a failure code in a CONNACK the spec makes optional is NON-STRICT (the
    code there is a SHOULD), returned to be raised after the close (conformance/grading.py)."""
    text = f"refusing CONNACK has {describe(packet, probe.level)}, expected one of {_codes(codes)}"
    accepted = packet.reason_code == 0 or (probe.v5 and packet.reason_code < 0x80)
    if accepted:
        raise NotDetected(f"the broker accepted the CONNECT it must refuse: {text}")
    if connack == "required":
        raise BrokerViolation(text)
    return f"{text}; the connection was closed as required, and the CONNACK is optional"


def check_server_disconnect(disconnect: Disconnect) -> None:
    """A 5.0 DISCONNECT from the server: a defined reason code and no Session Expiry Interval."""
    if disconnect.reason_code not in ALLOWED_50["DISCONNECT"]:
        raise BrokerViolation(f"DISCONNECT reason code 0x{disconnect.reason_code:02X} is not a defined "
                              "DISCONNECT code")
    if "session_expiry_interval" in disconnect.properties:
        raise BrokerViolation("the server's DISCONNECT carries a Session Expiry Interval, which only a "
                              "client may send")


def connect_flags(probe: Probe, connect: Connect) -> int:
    """The Connect Flags byte ``probe`` sends for ``connect``."""
    return next(seg.data[0] for seg in segments(connect, probe.level) if seg.name == "connect_flags")


def publish_after_refused_connect(make_probe: Callable[..., Probe], refused: Probe, connect: Connect,
                                  topic: str, codes: Iterable[int], *, connack: str = "optional") -> None:
    """Send ``connect``, which the server refuses, and right behind it a retained QoS 1 PUBLISH to ``topic``.
    The refusal must be a proper one (``expect_refusal``) and the PUBLISH must not be processed: a
    subscriber of ``topic`` gets nothing, and no retained message is stored there."""
    watcher = make_probe(name="watch").connect()
    watcher.subscribe(topic, qos=1)
    refused.send(connect)
    refused.send(Publish(topic=topic, payload=b"sent after a refused CONNECT", qos=1, retain=True,
                         packet_id=1))
    expect_refusal(refused, codes, connack=connack)
    watcher.expect_nothing()
    checker = make_probe(name="check").connect()
    checker.subscribe(topic, qos=1)
    checker.expect_nothing()
