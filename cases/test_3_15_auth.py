"""3.15 AUTH and 4.12 Enhanced authentication (5.0).

Two cases run on every 5.0 server: an Authentication Method it cannot support is refused, and no AUTH
exchange happens unless the client asks for one. The others need the method the target profile names
(capabilities["authentication_method"]). The harness does not know how to answer that method's
challenges, so it answers with data the method cannot accept: the cases judge the shape of the
exchange (reason codes, the repeated method, the close after a rejection), not a successful login,
unless the server accepts the CONNECT without a challenge.

One method the harness can complete, for the case that needs a successful authentication first:
"MQTTC-CHALLENGE" (a test method, not a security mechanism; the embedded broker mosquitto-auth
implements it in fixtures/brokers/mosquitto-auth/). The client names it in CONNECT or AUTH 0x19 (any
Authentication Data there is ignored); the server sends AUTH 0x18 with a challenge as Authentication
Data; the client answers AUTH 0x18 with the challenge's bytes bit-inverted (each XOR 0xFF); the right
answer ends in CONNACK 0x00 (AUTH 0x00 for a re-authentication), any other fails the authentication.
"""

from conformance import (
    Auth,
    BrokerViolation,
    Connack,
    Informational,
    Properties,
    Unsupported,
    case,
    craft,
    encode,
)
from conformance.codec import Disconnect, Packet
from conformance.probe import Probe
from conformance.steps.connect import BAD_AUTH_METHOD, MALFORMED_CONNECT, UNKNOWN_AUTH_METHOD, expect_refusal
from conformance.steps.v5 import assert_within
from conformance.transcript import describe

WRONG_DATA = b"\x00mqttc: not a valid response for any method"
CHALLENGE_METHOD = "MQTTC-CHALLENGE"  # the method the harness can complete (module docstring)
MAX_ROUNDS = 8  # AUTH challenges answered before the harness gives up on an exchange


def auth_reply(method: str, data: bytes = WRONG_DATA, code: int = 0x18) -> Auth:
    props = Properties(authentication_method=method, authentication_data=data)
    return Auth(reason_code=code, properties=props)


def check_server_auth(packet: Auth, method: str, *, expected_codes: set[int]) -> None:
    """A server AUTH: a defined Authenticate code (0x18 during authentication) and the client's method."""
    assert packet.reason_code in expected_codes, (
        f"server AUTH has reason code 0x{packet.reason_code:02X}; expected "
        + ", ".join(f"0x{c:02X}" for c in sorted(expected_codes))
    )
    got = packet.properties.get("authentication_method")
    assert got == method, f"server AUTH carries Authentication Method {got!r}, the client's is {method!r}"


def exchange(probe: Probe, method: str, *, expected_codes: set[int]) -> Connack | Auth | None:
    """Answer the server's AUTH challenges with wrong data until something else comes: returns the
    CONNACK, the AUTH that ended a re-authentication (0x00), or None when the server closed."""
    for _ in range(MAX_ROUNDS):
        packet = probe.next()
        if packet is None:
            assert probe.closed is not None, f"the server sent nothing within {probe.timing.response:.1f} s"
            return None
        if isinstance(packet, Auth):
            check_server_auth(packet, method, expected_codes=expected_codes)
            if packet.reason_code != 0x18:
                return packet
            probe.send(auth_reply(method))
            continue
        if isinstance(packet, Connack | Disconnect):
            return packet
        raise AssertionError(f"expected AUTH, CONNACK or the close during authentication, got "
                             f"{describe(packet, probe.level)}")
    raise Unsupported(f"the server kept asking for authentication data after {MAX_ROUNDS} rounds")


def known_response(method: str, challenge: bytes) -> bytes | None:
    """The right answer to a server challenge for a method the harness knows; None for any other."""
    return bytes(b ^ 0xFF for b in challenge) if method == CHALLENGE_METHOD else None


def authenticate(probe: Probe, method: str) -> Packet | None:
    """Read the server's answer to the CONNECT just sent; where the harness knows the method, answer its
    AUTH 0x18 challenges rightly and read on. Returns the first other packet (None: the server closed)."""
    packet = probe.next()
    for _ in range(MAX_ROUNDS):
        if not (isinstance(packet, Auth) and packet.reason_code == 0x18):
            return packet
        response = known_response(method, packet.properties.get("authentication_data", b""))
        if response is None:
            return packet
        check_server_auth(packet, method, expected_codes={0x18})
        probe.send(auth_reply(method, response))
        packet = probe.next()
    raise Unsupported(f"the server kept asking for authentication data after {MAX_ROUNDS} rounds")


def connect_with_method(make_probe, method: str, data: bytes | None = WRONG_DATA) -> Probe:  # noqa: ANN001
    probe = make_probe()
    props = Properties(authentication_method=method)
    if data is not None:
        props = Properties.of([*props, ("authentication_data", data)])
    probe.send(probe.connect_packet(properties=props))
    return probe


@case(v5=["MQTT-4.12.0-1", "MQTT-3.14.0-1", "MQTT-3.2.2-8"])
def test_unsupported_authentication_method_is_refused(make_probe):
    """A CONNECT naming an Authentication Method the server does not support is refused: the connection
    is closed, optionally after CONNACK 0x8C (Bad authentication method) or 0x87 (Not authorized)."""
    probe = make_probe()
    probe.send(probe.connect_packet(properties=Properties(authentication_method=UNKNOWN_AUTH_METHOD)))
    expect_refusal(probe, BAD_AUTH_METHOD)


@case(v5=["MQTT-4.12.0-6"])
def test_no_authentication_exchange_without_a_method(make_probe, topic_prefix):
    """A client that names no Authentication Method gets no AUTH packet and a CONNACK without an
    Authentication Method (nor Authentication Data)."""
    probe = make_probe().connect()
    assert probe.connack is not None
    for name in ("authentication_method", "authentication_data"):
        assert name not in probe.connack.properties, (
            f"CONNACK carries {name} {probe.connack.properties.get(name)!r} though the client named no method"
        )
    probe.subscribe(f"{topic_prefix}/auth", qos=1)
    probe.publish(f"{topic_prefix}/auth", b"x", qos=1)
    probe.receive(topic=f"{topic_prefix}/auth")
    probe.expect_nothing()


@case(v5=["MQTT-4.12.0-2", "MQTT-4.12.0-4", "MQTT-4.12.0-5", "MQTT-3.15.2-1", "MQTT-3.15.1-1",
          "MQTT-3.14.0-1"], requires=["authentication_method"])
def test_authentication_exchange_with_wrong_data(make_probe, capabilities):
    """With the target's Authentication Method and data the method cannot accept, every AUTH from the server
    has reason code 0x18 (Continue authentication) and repeats the method; the server ends by rejecting the
    authentication (optionally CONNACK 0x80 or above) and closing the connection, or, if it accepts, its
    CONNACK repeats the method too."""
    method = capabilities["authentication_method"]
    probe = connect_with_method(make_probe, method)
    ending = exchange(probe, method, expected_codes={0x18})
    if isinstance(ending, Connack) and ending.reason_code == 0:
        got = ending.properties.get("authentication_method")
        assert got == method, (
            f"successful CONNACK carries Authentication Method {got!r}, the client's is {method!r}"
        )
        raise Informational(f"the server accepted method {method!r} with data no method should accept")
    assert not isinstance(ending, Disconnect), "the server sent DISCONNECT before a successful CONNACK"
    if isinstance(ending, Connack):
        assert ending.reason_code >= 0x80 and not ending.session_present, (
            f"rejecting CONNACK {describe(ending, probe.level)}: a code of 0x80 or more and Session Present 0"
        )
        expect_refusal(probe, connack="forbidden")


@case(v5=["MQTT-3.15.1-1", "MQTT-4.13.1-1"], requires=["authentication_method"])
def test_auth_with_reserved_flags_closes_the_connection(make_probe, capabilities):
    """An AUTH whose reserved header bits are not 0 is malformed: the server closes the connection (before
    CONNACK optionally after CONNACK 0x81, after it optionally after DISCONNECT 0x81)."""
    method = capabilities["authentication_method"]
    probe = connect_with_method(make_probe, method, data=None)
    first = probe.next()
    if isinstance(first, Connack) and first.reason_code == 0:
        probe.connack = first
        probe.send(craft(auth_reply(method, code=0x19), flags=0x01,
                         label="AUTH (re-authenticate) with reserved bits 0001"))
        probe.expect_closed(reason_codes={0x81})
        return
    if not isinstance(first, Auth):
        shown = describe(first, probe.level) if first else "closing the connection"
        raise Unsupported(f"the server answered CONNECT with method {method!r} by {shown}: "
                          "no AUTH exchange to disturb")
    probe.send(craft(auth_reply(method), flags=0x01, label="AUTH with reserved bits 0001"))
    expect_refusal(probe, MALFORMED_CONNECT)


@case(v5=["MQTT-4.12.1-2", "MQTT-3.15.2-1", "MQTT-4.12.0-5", "MQTT-3.2.0-2"], requires=["authentication_method"])
def test_failed_reauthentication_closes_the_connection(make_probe, capabilities):
    """After a successful authentication, a re-authentication (AUTH 0x19) with data the method cannot accept
    fails: the server closes the connection, optionally after a DISCONNECT. Its AUTH packets meanwhile
    carry 0x18 and the method, as does the successful CONNACK. Runs where the server accepts the method's
    CONNECT without a challenge, or after challenges the harness can answer (MQTTC-CHALLENGE)."""
    method = capabilities["authentication_method"]
    probe = connect_with_method(make_probe, method, data=None)
    first = authenticate(probe, method)
    if not (isinstance(first, Connack) and first.reason_code == 0):
        shown = describe(first, probe.level) if first else "closing the connection"
        raise Unsupported(f"the server answered CONNECT with method {method!r} by {shown}; the harness "
                          "cannot complete that method, so it cannot re-authenticate")
    probe.connack = first
    got = first.properties.get("authentication_method")
    assert got == method, (
        f"successful CONNACK carries Authentication Method {got!r}, the client's is {method!r}"
    )
    probe.send(auth_reply(method, code=0x19))
    ending = exchange(probe, method, expected_codes={0x00, 0x18})
    if isinstance(ending, Auth):
        raise Informational(f"the server completed a re-authentication with method {method!r} and data no "
                            "method should accept")
    if isinstance(ending, Connack):  # the close 4.12.1-2 asks for may follow; the second CONNACK is the fault
        raise BrokerViolation(f"the server sent a second CONNACK ({describe(ending, probe.level)}) during "
                              "re-authentication; a server sends at most one CONNACK per connection (MQTT-3.2.0-2)")
    if isinstance(ending, Disconnect):
        assert ending.reason_code >= 0x80, (
            f"DISCONNECT after a failed re-authentication has code 0x{ending.reason_code:02X}"
        )
        probe.expect_closed()


@case(v5=["MQTT-3.15.2-2", "MQTT-3.15.2-3"], requires=["authentication_method"])
def test_server_auth_fits_the_client_maximum_packet_size(make_probe, capabilities):
    """A server AUTH leaves out a Reason String or User Property that would take it past the client's
    Maximum Packet Size. A first connection learns the size of the server's first AUTH without them; a
    second one sets its Maximum Packet Size to that (plus less than the smallest such property) and
    must get an AUTH, if any, within it."""
    method = capabilities["authentication_method"]
    first = connect_with_method(make_probe, method)
    challenge = first.next()
    if not isinstance(challenge, Auth):
        raise Unsupported(f"the server answered CONNECT with method {method!r} without an AUTH challenge")
    core = Auth(reason_code=challenge.reason_code, properties=Properties.of(
        [(k, v) for k, v in challenge.properties if k not in ("reason_string", "user_property")]))
    limit = len(encode(core, "5.0")) + 2  # a Reason String takes 3 bytes at least, a User Property 5
    second = make_probe(name="limited")
    props = Properties.of([*auth_reply(method).properties, ("maximum_packet_size", limit)])
    second.send(second.connect_packet(properties=props))
    second.next()
    assert_within(second, limit)
