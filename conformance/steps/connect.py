"""Steps of the connection cases (CONNECT, CONNACK, DISCONNECT, AUTH, sessions).

Steps assert only what every refusal or server DISCONNECT must satisfy, and say which rule failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..codec import Connack, Connect, Disconnect, Publish, segments
from ..codec.reason_codes import ALLOWED_50
from ..codec.version import Version
from ..grading import NotDetected, wrong_code
from ..judge import ACCEPTED, OPTIONAL, REFUSED, VIOLATION, Expected, Reaction, accepts, classify, sealed
from ..probe import Probe
from ..verdicts import BrokerViolation
from .malformed import MALFORMED_OR_PROTOCOL

# Refusal codes by cause: 3.1.1 return codes, 5.0 reason codes.
BAD_CREDENTIALS = {Version.V311: {0x04, 0x05}, Version.V50: {0x86, 0x87}}  # bad user name or password / not authorised
MALFORMED_CONNECT = set(MALFORMED_OR_PROTOCOL)  # 5.0: Malformed Packet, Protocol Error
# 5.0: an Authentication Method no server supports, and the codes that may refuse it (MQTT-4.12.0-1).
UNKNOWN_AUTH_METHOD = "mqttc-no-such-method"
BAD_AUTH_METHOD = {0x8C, 0x87}
# 5.0 Maximum Packet Size small enough that an optional Reason String or User Property could overflow
# it, large enough for a CONNACK with every property a server usually sends (about 30 bytes).
SMALL_MAXIMUM_PACKET_SIZE = 40


def expect_refusal(probe: Probe, codes: Iterable[int] = (), *, connack: str = OPTIONAL,
                   legacy_ok: bool = False, accept_ok: bool = False) -> Connack | None:
    """The server refuses the CONNECT just sent: it closes the connection, after at most one CONNACK.

    ``connack`` is "required", "optional" or "forbidden" (3.1.1 closes a non-conforming CONNECT without
    one); a CONNACK must carry one of ``codes`` (a wrong code in an optional CONNACK is NON-STRICT, the
    code there being a SHOULD) and Session Present 0. Nothing else may come: in 5.0 a DISCONNECT before
    a successful CONNACK breaks MQTT-3.14.0-1. With ``legacy_ok`` a 5.0 probe also accepts the 3.1.1
    protocol-version refusal. With ``accept_ok`` a CONNACK accepting the connection is returned at once
    (for a CONNECT the server may support). Returns the CONNACK, if any. Judged by conformance.judge.
    """
    expected = Expected(frozenset(codes), connecting=True, connack=connack, legacy_ok=legacy_ok)
    probe.awaiting = "the broker to refuse the CONNECT and close the connection"
    judgement = classify(probe.reaction(barrier=False, rearm=True, stop=lambda seen: _decided(seen, expected)),
                         expected)
    if judgement.outcome == ACCEPTED and judgement.connack is not None:
        if accept_ok:
            return judgement.connack
        raise NotDetected(f"the broker accepted the CONNECT it must refuse: {judgement.message}")
    if judgement.outcome in (ACCEPTED, REFUSED):
        raise NotDetected(f"expected the broker to close the connection after refusing the CONNECT; "
                          f"{judgement.message}")
    if judgement.outcome == VIOLATION:
        raise BrokerViolation(judgement.message)
    if not judgement.code_ok:
        raise wrong_code(f"{judgement.message}; the connection was closed as required, and the CONNACK is optional")
    return judgement.connack


def _decided(seen: Reaction, expected: Expected) -> bool:
    """A CONNACK accepting the connection ends the wait at once, and so does a violation."""
    last = seen.packets[-1]
    return isinstance(last, Connack) and accepts(last, seen.version) or sealed(seen, expected)


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
