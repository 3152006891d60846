"""3.1 CONNECT: keep-alive, protocol name and level, flags, client identifiers, takeover, properties,
what follows a refused CONNECT."""

import random
import string
import time

from conformance import (
    BrokerViolation,
    Connack,
    Informational,
    NonStrict,
    Pingreq,
    Properties,
    Publish,
    Unsuback,
    Unsubscribe,
    Unsupported,
    case,
    craft,
    raw_string,
)
from conformance.codec import Disconnect
from conformance.grading import late_timer
from conformance.probe import Probe
from conformance.steps.connect import (
    BAD_AUTH_METHOD,
    MALFORMED_CONNECT,
    UNKNOWN_AUTH_METHOD,
    connect_flags,
    expect_refusal,
    publish_after_refused_connect,
)
from conformance.steps.v5 import received_sizes

# Keep Alive 1 s is the smallest the spec allows; the close must come within 1.5 x Keep Alive.
KEEP_ALIVE = 1
SAMPLE_OFFSETS = (0.0, 2.0, 4.0)  # phases at which silent clients start (covers timer periods up to 6 s)
POLL = 0.02  # how long each silent client is watched per round


@case("MQTT-3.1.2-24", v5=["MQTT-3.1.2-22", "MQTT-3.2.2-22"], timer=True,
      expectation="closed within 1.5 x Keep Alive of silence; later than that plus the timer tolerance is FAIL "
                  "(docs/grading.md); the measured times are reported either way")
def test_silent_client_is_disconnected_after_one_and_a_half_keep_alive(make_probe, mqtt_version, target):
    """A client that sends nothing for 1.5 x Keep Alive is disconnected by the server (5.0: the Keep Alive
    the server returned in CONNACK, else the client's own). Three silent clients, started 2 s apart,
    sample a periodic timer at different phases, so that the grade does not depend on when in the
    server's timer cycle the case happened to start; the latest close is graded."""
    late_window = target.profile.limits["timer_late_window"]
    started = time.monotonic()
    waiting = list(SAMPLE_OFFSETS)
    silent: list[tuple[Probe, float, float]] = []  # probe, bound, silent since
    closes: list[float] = []
    while waiting or silent:
        if waiting and time.monotonic() - started >= waiting[0]:
            waiting.pop(0)
            probe = make_probe().connect(keep_alive=KEEP_ALIVE)
            assert probe.connack is not None
            keep_alive = KEEP_ALIVE
            if mqtt_version == "5.0":
                keep_alive = probe.connack.properties.get("server_keep_alive", KEEP_ALIVE)
            if keep_alive == 0:
                raise NonStrict("the server set Server Keep Alive 0 and will not disconnect idle clients")
            if 1.5 * keep_alive > late_window:
                raise Informational(f"the server replaced Keep Alive {KEEP_ALIVE} with Server Keep Alive "
                                    f"{keep_alive} s, too long to wait for here")
            silent.append((probe, 1.5 * keep_alive, time.monotonic()))
        for entry in list(silent):
            probe, bound, since = entry
            packet = probe.next(timeout=POLL)
            if isinstance(packet, Disconnect) and probe.v5:
                assert packet.reason_code == 0x8D, f"DISCONNECT 0x{packet.reason_code:02X}, expected 0x8D"
            elif packet is not None:
                raise AssertionError(f"a silent client was sent {packet.name} instead of being disconnected")
            elapsed = time.monotonic() - since
            if probe.closed is not None:
                closes.append(elapsed)
                silent.remove(entry)
            elif elapsed > bound + late_window:
                raise AssertionError(f"a client silent for {elapsed:.1f} s (1.5 x Keep Alive = {bound:.1f} s) "
                                     "was not disconnected")
    # An explicit MUST bound: late past the timer tolerance is a FAIL, the measured times shown either way.
    late_timer(probe, "silent clients closed after", closes, 1.5 * KEEP_ALIVE)


@case("MQTT-3.1.2-24", v5=["MQTT-3.1.2-22"], timer=True,
      expectation="a client that pings within Keep Alive stays connected")
def test_pinging_client_stays_connected(make_probe):
    """A client that sends PINGREQ within every Keep Alive period is not disconnected."""
    probe = make_probe().connect(keep_alive=KEEP_ALIVE)
    deadline = time.monotonic() + 2.5 * KEEP_ALIVE
    while time.monotonic() < deadline:
        probe.ping()
        # Idle for half a Keep Alive; anything the broker sends meanwhile (a close) is caught here.
        assert probe.next(timeout=KEEP_ALIVE / 2) is None, "unexpected packet while idle"
        assert probe.closed is None, "the broker closed a client that kept pinging"
    probe.ping()


@case("MQTT-3.1.0-2", "MQTT-4.8.0-1", v5=["MQTT-3.1.0-2", "MQTT-4.13.1-1", "MQTT-3.2.0-2"])
def test_second_connect_closes_the_connection(probe):
    """A second CONNECT on the same connection is a protocol violation: the server closes it, without a
    second CONNACK."""
    probe.send(probe.connect_packet())
    probe.expect_closed(reason_codes={0x82})


@case("MQTT-3.2.0-1", "MQTT-4.8.0-1", v5=["MQTT-3.2.0-1", "MQTT-4.13.1-1"])
def test_packet_before_connect_closes_the_connection(make_probe):
    """The first packet of a connection must be CONNECT: a PINGREQ in its place is a protocol violation.
    The server closes the connection and sends nothing first (its first packet could only be a CONNACK)."""
    probe = make_probe()
    probe.send(Pingreq())
    expect_refusal(probe, connack="forbidden")


@case("MQTT-3.1.4-4", "MQTT-3.1.3-5", v5=["MQTT-3.1.4-5", "MQTT-3.1.3-5"])
def test_valid_connect_is_accepted(make_probe, client_id):
    """A well-formed CONNECT with a 23 character alphanumeric ClientId gets CONNACK 0x00."""
    probe = make_probe((client_id + "ABCDEFGHIJKLMNOPQRSTUVW")[:23])
    probe.send(probe.connect_packet(clean_start=True))
    probe.expect(Connack, reason_code=0)
    probe.send(Disconnect())


@case("MQTT-3.1.3-5", "MQTT-3.1.4-4", v5=["MQTT-3.1.3-5", "MQTT-3.1.4-5"])
def test_one_character_client_id_is_accepted(make_probe, mqtt_version):
    """The shortest ClientId a server must accept, a single letter or digit, gets CONNACK 0x00."""
    # A one-character id cannot be unique to the case: the two versions draw from different sets so
    # that their runs never share one, and no other case uses one-character ids.
    alphabet = string.digits if mqtt_version == "3.1.1" else string.ascii_letters
    probe = make_probe(random.choice(alphabet))
    probe.send(probe.connect_packet(clean_start=True))
    probe.expect(Connack, reason_code=0)
    probe.ping()


@case("MQTT-3.1.2-3", "MQTT-3.1.4-1", v5=["MQTT-3.1.2-3", "MQTT-3.1.4-1", "MQTT-4.13.1-1", "MQTT-3.14.0-1"])
def test_connect_reserved_flag_closes_the_connection(make_probe, mqtt_version):
    """A CONNECT whose reserved flag bit is 1 does not conform: the server closes the connection
    (3.1.1: without a CONNACK; 5.0: optionally after CONNACK 0x81)."""
    probe = make_probe()
    connect = probe.connect_packet()
    flags = connect_flags(probe, connect) | 0x01
    probe.send(craft(connect, connect_flags=flags, label="CONNECT with reserved flag 1"))
    if mqtt_version == "3.1.1":
        expect_refusal(probe, connack="forbidden")
    else:
        expect_refusal(probe, MALFORMED_CONNECT)


@case("MQTT-3.1.2-1", v5=["MQTT-3.1.2-1", "MQTT-3.14.0-1"])
def test_wrong_protocol_name_is_not_accepted(make_probe, mqtt_version):
    """A CONNECT naming the protocol "mqtt" (it must be "MQTT", capitalised) is not accepted as MQTT of
    this version. 3.1.1 lets the server close, or go on under some other specification (so silence
    without a CONNACK is allowed: INFORMATIONAL), but never accept it as 3.1.1; 5.0 requires the close,
    optionally after CONNACK 0x84."""
    probe = make_probe()
    probe.send(craft(probe.connect_packet(), protocol_name=raw_string(b"mqtt"),
                     label='CONNECT with protocol name "mqtt"'))
    if mqtt_version == "5.0":
        expect_refusal(probe, {0x84}, legacy_ok=True)
        return
    packet = probe.next(strict=False)
    if isinstance(packet, Connack) and packet.reason_code == 0:
        raise BrokerViolation(f"the broker accepted the wrong protocol name as MQTT 3.1.1 ({packet.name} 0x00)")
    if isinstance(packet, Connack):
        expect_refusal(probe, range(1, 6), connack="forbidden")  # refused: the close must follow
    elif packet is not None:
        raise Informational(f"the broker answered with {getattr(packet, 'name', packet)}: not 3.1.1, which "
                            "a server going on under another specification may do")
    elif probe.closed is None:
        raise Informational(f"no CONNACK and the connection stayed open for {probe.timing.response:.1f} s: "
                            "allowed, the server may go on under another specification")


@case("MQTT-3.1.4-2", "MQTT-3.1.4-4", v5=["MQTT-3.1.4-3", "MQTT-3.1.4-5"])
def test_connect_with_a_client_id_in_use_takes_over(make_probe, client_id, mqtt_version):
    """A CONNECT with the ClientId of a connected client is accepted and the server closes the older
    connection (5.0: after DISCONNECT 0x8E Session taken over)."""
    old = make_probe(client_id, name="old").connect()
    new = make_probe(client_id, name="new").connect()
    closed = old.expect_closed(reason_codes={0x8E})
    new.ping()
    if mqtt_version == "5.0" and closed.disconnect is None:
        raise NonStrict("the older connection was closed without the DISCONNECT 0x8E (Session taken over) "
                        "the spec describes")


@case(v5=["MQTT-3.1.3-7", "MQTT-3.1.3-6", "MQTT-3.2.2-16", "MQTT-3.1.4-3"])
def test_assigned_client_id_is_the_client_id(make_probe):
    """The server processes a CONNECT with an empty ClientId as if the client had sent the Assigned Client
    Identifier it returns: a later CONNECT with that identifier takes the connection over."""
    first = make_probe("", name="empty")
    first.send(first.connect_packet("", clean_start=True))
    connack = first.expect(Connack, reason_code={0x00, 0x85})
    if connack.reason_code:
        raise Unsupported("the server refuses an empty ClientId (0x85); it need not assign identifiers")
    assigned = connack.properties.get("assigned_client_identifier")
    assert assigned, "CONNACK for an empty ClientId carries no Assigned Client Identifier"
    make_probe(assigned, name="same").connect()
    first.expect_closed(reason_codes={0x8E})


@case("MQTT-3.1.4-5", v5=["MQTT-3.1.4-6", "MQTT-4.12.0-1", "MQTT-3.14.0-1"])
def test_packets_after_a_refused_connect_are_not_processed(make_probe, topic_prefix, mqtt_version):
    """Packets a client sends right behind a CONNECT that the server refuses are ignored: a retained
    QoS 1 PUBLISH sent that way reaches neither a subscriber nor the retained store. The refusal:
    3.1.1, an empty ClientId with Clean Session 0 (CONNACK 0x02); 5.0, an Authentication Method the
    server cannot support (optional CONNACK 0x8C or 0x87)."""
    topic = f"{topic_prefix}/after-refusal"
    if mqtt_version == "3.1.1":
        refused = make_probe("", name="refused")
        # The CONNACK 0x02 itself is judged by test_empty_client_id_with_persistent_session_is_refused;
        # with packets queued behind the CONNECT some brokers (mosquitto over TLS) close before it leaves.
        publish_after_refused_connect(make_probe, refused, refused.connect_packet(clean_start=False), topic,
                                      {0x02}, connack="optional")
    else:
        refused = make_probe(name="refused")
        connect = refused.connect_packet(properties=Properties(authentication_method=UNKNOWN_AUTH_METHOD))
        publish_after_refused_connect(make_probe, refused, connect, topic, BAD_AUTH_METHOD)


@case(v5=["MQTT-3.1.2-28"])
def test_no_response_information_unless_requested(make_probe):
    """Without Request Response Information, or with it set to 0, the CONNACK carries no Response
    Information."""
    for name, props in (("absent", Properties()), ("zero", Properties(request_response_information=0))):
        probe = make_probe(name=name).connect(properties=props)
        assert probe.connack is not None
        assert "response_information" not in probe.connack.properties, (
            f"Request Response Information {name}: CONNACK has Response Information "
            f"{probe.connack.properties.get('response_information')!r}"
        )


@case(v5=["MQTT-3.1.2-29"])
def test_no_problem_information_when_the_client_declines_it(make_probe, topic_prefix, capabilities):
    """With Request Problem Information 0 the server puts no Reason String or User Property on packets other
    than PUBLISH, CONNACK and DISCONNECT, even on acknowledgements that report a problem (no subscriber,
    no such subscription, a denied topic where the target has one)."""
    probe = make_probe().connect(properties=Properties(request_problem_information=0))
    nobody = f"{topic_prefix}/nobody"
    for qos in range(1, min(2, capabilities["maximum_qos"]) + 1):
        probe.publish(nobody, b"nobody", qos=qos)  # PUBACK or PUBREC, possibly 0x10 No matching subscribers
    probe.subscribe(f"{topic_prefix}/sub", qos=1)
    denied = capabilities.get("denied_topic")
    if denied:
        probe.publish(f"{denied.rstrip('/')}/{topic_prefix}", b"denied", qos=1)  # PUBACK 0x87 Not authorized
        probe.subscribe(f"{denied.rstrip('/')}/{topic_prefix}", qos=1)  # SUBACK 0x87
    # UNSUBACK, possibly 0x11 No subscription existed; its absence is another statement's business.
    probe.send(Unsubscribe(packet_id=probe.packet_id(), topic_filters=(f"{topic_prefix}/never-subscribed",)))
    probe.expect_nothing(allow=(Unsuback,))
    for _size, packet in received_sizes(probe):
        if packet is None or isinstance(packet, Publish | Connack | Disconnect):
            continue
        props = getattr(packet, "properties", Properties())
        for name in ("reason_string", "user_property"):
            assert name not in props, (
                f"{packet.name} carries {name} {props.get(name)!r} although the client declined"
            )
