"""3.2 CONNACK: return / reason codes, Session Present in every combination, the close after a refusal,
CONNACK before anything else, what a 5.0 CONNACK advertises."""

from conformance import (
    BrokerViolation,
    Connack,
    Connect,
    Informational,
    Properties,
    Publish,
    Unsupported,
    Will,
    case,
    craft,
)
from conformance.steps.common import PERSISTENT, leave_session
from conformance.steps.connect import (
    BAD_AUTH_METHOD,
    SMALL_MAXIMUM_PACKET_SIZE,
    UNKNOWN_AUTH_METHOD,
    expect_refusal,
)
from conformance.steps.v5 import assert_within


@case("MQTT-3.2.2-1", "MQTT-3.1.4-4", v5=["MQTT-3.2.2-2", "MQTT-3.1.4-5", "MQTT-3.2.2-1"])
def test_clean_start_without_session_gives_session_present_0(make_probe, client_id):
    """A new connection with Clean Session / Clean Start = 1 is accepted with Session Present 0 (5.0: the
    other acknowledge-flag bits are 0)."""
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(clean_start=True))
    probe.expect(Connack, reason_code=0, session_present=False)


@case("MQTT-3.2.2-1", "MQTT-3.1.2-6", v5=["MQTT-3.2.2-2", "MQTT-3.1.2-4"])
def test_clean_start_with_stored_session_gives_session_present_0(make_probe, client_id):
    """Clean Session / Clean Start = 1 discards a stored session: Session Present is 0."""
    leave_session(make_probe, client_id, "mqttc/unused/sp", qos=1)
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(clean_start=True))
    probe.expect(Connack, reason_code=0, session_present=False)


@case("MQTT-3.2.2-2", "MQTT-3.1.2-4", v5=["MQTT-3.2.2-3", "MQTT-3.1.2-5", "MQTT-3.1.2-23", "MQTT-3.2.2-1"])
def test_resumed_session_gives_session_present_1(make_probe, client_id, topic_prefix):
    """Clean Session / Clean Start = 0 with a stored session resumes it: Session Present is 1 (5.0: and
    the other acknowledge-flag bits are 0)."""
    leave_session(make_probe, client_id, f"{topic_prefix}/sp", qos=1)
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(**PERSISTENT))
    probe.expect(Connack, reason_code=0, session_present=True)


@case("MQTT-3.2.2-3", v5=["MQTT-3.2.2-3", "MQTT-3.1.2-6"])
def test_persistent_connect_without_session_gives_session_present_0(make_probe, client_id):
    """Clean Session / Clean Start = 0 with no stored session creates one: Session Present is 0."""
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(**PERSISTENT))
    probe.expect(Connack, reason_code=0, session_present=False)


@case("MQTT-3.1.2-6", v5=["MQTT-3.1.2-4"])
def test_clean_session_state_is_not_kept_after_it_ends(make_probe, client_id, topic_prefix):
    """A session started with Clean Session / Clean Start = 1 is not resumed by a later connection."""
    leave_session(make_probe, client_id, f"{topic_prefix}/old", qos=1)
    with make_probe(client_id).connect(clean_start=True) as clean:
        clean.subscribe(f"{topic_prefix}/new", qos=1)
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(**PERSISTENT))
    probe.expect(Connack, reason_code=0, session_present=False)


@case("MQTT-3.2.2-4", "MQTT-3.2.2-5", "MQTT-3.1.2-2",
      v5=["MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-3.1.2-2", "MQTT-4.13.2-1", "MQTT-3.2.2-8", "MQTT-3.14.0-1"])
def test_refused_connect_has_session_present_0_and_closes(make_probe, client_id, mqtt_version, topic_prefix):
    """An unsupported protocol level is refused (3.1.1: code 0x01; 5.0: optionally 0x84) with Session
    Present 0, even when a session is stored for the client, and the connection is closed."""
    leave_session(make_probe, client_id, f"{topic_prefix}/sp", qos=1)
    probe = make_probe(client_id)
    probe.send(craft(Connect(client_id=client_id, clean_start=False), protocol_level=0x07,
                     label="CONNECT with protocol level 7"))
    if mqtt_version == "3.1.1":
        expect_refusal(probe, {0x01}, connack="required")
    else:
        # 5.0 lets the server refuse silently; if it answers, it is CONNACK 0x84. A server cannot know
        # which CONNACK layout a client of an unknown version reads, so the 3.1.1 refusal is accepted too.
        expect_refusal(probe, {0x84}, legacy_ok=True)


@case("MQTT-3.1.3-8", "MQTT-3.2.2-4", "MQTT-3.2.2-5")
def test_empty_client_id_with_persistent_session_is_refused(make_probe):
    """3.1.1: a zero-length ClientId with Clean Session 0 gets CONNACK 0x02 and the connection closes."""
    probe = make_probe("")
    probe.send(probe.connect_packet(clean_start=False))
    expect_refusal(probe, {0x02}, connack="required")


@case("MQTT-3.1.3-6", "MQTT-3.1.3-9", v5=["MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16", "MQTT-3.1.3-8"])
def test_empty_client_id_is_assigned_or_refused(make_probe, mqtt_version):
    """A zero-length ClientId with Clean Start 1 is accepted (5.0: the CONNACK carries an Assigned Client
    Identifier) or refused with 0x02 / 0x85 and a close."""
    probe = make_probe("")
    probe.send(probe.connect_packet("", clean_start=True))
    refused = 0x02 if mqtt_version == "3.1.1" else 0x85
    connack = probe.expect(Connack, reason_code={0x00, refused})
    if connack.reason_code:
        probe.expect_closed()
        return
    if mqtt_version == "5.0":
        assigned = connack.properties.get("assigned_client_identifier")
        assert assigned, "CONNACK for an empty ClientId carries no Assigned Client Identifier"
    probe.ping()


@case("MQTT-3.2.0-1", v5=["MQTT-3.2.0-1", "MQTT-3.2.0-2"])
def test_connack_comes_before_queued_messages(make_probe, client_id, topic_prefix):
    """When a resumed session has messages waiting, the server still sends CONNACK first, and only one."""
    topic = f"{topic_prefix}/queued"
    leave_session(make_probe, client_id, topic, qos=1)
    with make_probe(name="pub").connect() as pub:
        for n in range(3):
            pub.publish(topic, f"queued {n}".encode(), qos=1)
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(**PERSISTENT))
    probe.expect(Connack, reason_code=0, session_present=True)
    try:
        for n in range(3):
            probe.ack(probe.wait_for(Publish, topic=topic, payload=f"queued {n}".encode()))
    except BrokerViolation as exc:
        raise Informational(f"the resumed session delivered no queued message ({exc}); CONNACK came first, "
                            "but with nothing queued behind it (see the session cases)") from None
    probe.expect_nothing()


@case(v5=["MQTT-3.2.2-9", "MQTT-3.2.2-10"])
def test_maximum_qos_is_advertised_and_subscriptions_of_any_qos_accepted(make_probe, topic_prefix):
    """A server that does not advertise Maximum QoS supports QoS 2: its QoS 1 and 2 PUBLISHes are not
    refused as unsupported. Whatever its Maximum QoS, it accepts SUBSCRIBE at QoS 0, 1 and 2."""
    probe = make_probe().connect()
    assert probe.connack is not None
    maximum = probe.connack.properties.get("maximum_qos")
    suback = probe.subscribe(*(f"{topic_prefix}/q{qos}" for qos in range(3)), qos=2)
    assert all(code < 0x80 for code in suback.reason_codes), (
        f"SUBACK {suback.reason_codes} refuses a subscription; a server accepts any requested QoS "
        "and may grant less"
    )
    if maximum is not None:
        assert maximum in (0, 1), f"CONNACK Maximum QoS {maximum}; only 0 or 1 may be sent"
        return
    for qos in (1, 2):
        ack = probe.publish(f"{topic_prefix}/pub{qos}", b"x", qos=qos)
        assert ack is not None and probe.closed is None, f"QoS {qos} PUBLISH was not completed"
        assert ack.reason_code != 0x9B, f"QoS {qos} PUBLISH refused with 0x9B, but CONNACK set no Maximum QoS"


@case(v5=["MQTT-3.2.2-12"])
def test_will_qos_above_maximum_qos_is_refused(make_probe, capabilities, topic_prefix):
    """A server with Maximum QoS below 2 refuses a CONNECT whose Will QoS exceeds it (0x9B advised) and
    closes the connection."""
    maximum = capabilities.get("maximum_qos", 2)
    if maximum >= 2:
        raise Unsupported("the target supports QoS 2, so no Will QoS exceeds its Maximum QoS")
    probe = make_probe()
    probe.send(probe.connect_packet(will=Will(topic=f"{topic_prefix}/will", payload=b"w", qos=maximum + 1)))
    expect_refusal(probe, range(0x80, 0x100))


@case(v5=["MQTT-3.2.2-13"])
def test_retained_will_without_retain_support_is_refused(make_probe, capabilities, topic_prefix):
    """A server without retained messages refuses a CONNECT whose Will Retain is 1 (0x9A advised) and
    closes the connection."""
    if capabilities.get("retain_available", True):
        raise Unsupported("the target supports retained messages")
    probe = make_probe()
    probe.send(probe.connect_packet(will=Will(topic=f"{topic_prefix}/will", payload=b"w", retain=True)))
    expect_refusal(probe, range(0x80, 0x100))


@case(v5=["MQTT-3.2.2-19", "MQTT-3.2.2-20"])
def test_connack_fits_the_client_maximum_packet_size(make_probe):
    """Accepting or refusing (here: an unsupported Authentication Method), the CONNACK stays within the
    client's Maximum Packet Size: a Reason String or User Property that would not fit is left out."""
    small = Properties(maximum_packet_size=SMALL_MAXIMUM_PACKET_SIZE, request_problem_information=1)
    accepted = make_probe(name="accepted").connect(properties=small)
    assert_within(accepted, SMALL_MAXIMUM_PACKET_SIZE)
    refused = make_probe(name="refused")
    unknown_method = Properties.of([*small, ("authentication_method", UNKNOWN_AUTH_METHOD)])
    refused.send(refused.connect_packet(properties=unknown_method))
    expect_refusal(refused, BAD_AUTH_METHOD)
    assert_within(refused, SMALL_MAXIMUM_PACKET_SIZE)


@case("MQTT-3.1.2-2", v5=["MQTT-3.1.2-2"])
def test_protocol_level_with_the_high_bit_set_is_refused(make_probe, mqtt_version):
    """A protocol level of 0x84 (3.1.1) or 0x85 (5.0) is not a level the spec defines. The refusal is
    required only for a level the server does not support, and some brokers support the top bit as
    their bridge protocol (mosquitto documents it): a refusal (3.1.1: CONNACK 0x01; 5.0: optionally
    CONNACK 0x84) and close PASS, an acceptance is INFORMATIONAL."""
    probe = make_probe()
    level = 0x84 if mqtt_version == "3.1.1" else 0x85
    probe.send(craft(probe.connect_packet(), protocol_level=level, label=f"CONNECT with protocol level 0x{level:02X}"))
    if mqtt_version == "3.1.1":
        got = expect_refusal(probe, {0x01}, connack="required", accept_ok=True)
    else:
        got = expect_refusal(probe, {0x84}, connack="optional", legacy_ok=True, accept_ok=True)
    if got is not None and got.reason_code < 0x80:
        raise Informational(f"the broker accepted protocol level 0x{level:02X} (CONNACK 0x{got.reason_code:02X}): "
                            "it supports that level (for example as its bridge protocol), which the spec allows")
