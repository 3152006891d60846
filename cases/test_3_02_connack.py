"""3.2 CONNACK: return / reason codes, Session Present in every combination, the close after a refusal."""

from conformance import Connack, Connect, MalformedPacket, case, craft
from conformance.steps import PERSISTENT, leave_session

LEGACY_REFUSAL = bytes.fromhex("20020001")  # 3.1.1 CONNACK: unacceptable protocol version


@case("MQTT-3.2.2-1", "MQTT-3.1.4-4", v5=["MQTT-3.2.2-2", "MQTT-3.1.4-5"])
def test_clean_start_without_session_gives_session_present_0(make_probe, client_id):
    """A new connection with Clean Session / Clean Start = 1 is accepted with Session Present 0."""
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


@case("MQTT-3.2.2-2", "MQTT-3.1.2-4", v5=["MQTT-3.2.2-3", "MQTT-3.1.2-5", "MQTT-3.1.2-23"])
def test_resumed_session_gives_session_present_1(make_probe, client_id, topic_prefix):
    """Clean Session / Clean Start = 0 with a stored session resumes it: Session Present is 1."""
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
      v5=["MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-3.1.2-2", "MQTT-4.13.2-1"])
def test_refused_connect_has_session_present_0_and_closes(make_probe, client_id, mqtt_version, topic_prefix):
    """An unsupported protocol level is refused (3.1.1: code 0x01; 5.0: optionally 0x84) with Session
    Present 0, even when a session is stored for the client, and the connection is closed."""
    leave_session(make_probe, client_id, f"{topic_prefix}/sp", qos=1)
    probe = make_probe(client_id)
    probe.send(craft(Connect(client_id=client_id, clean_start=False), protocol_level=0x07,
                     label="CONNECT with protocol level 7"))
    if mqtt_version == "3.1.1":
        probe.expect(Connack, reason_code=0x01, session_present=False)
        probe.expect_closed()
    else:
        # 5.0 lets the server refuse silently; if it answers, it is CONNACK 0x84. A server cannot know
        # which CONNACK layout a client of an unknown version reads, so the 3.1.1 refusal (0x01,
        # no properties) is accepted as well.
        answer = probe.next(strict=False)
        if isinstance(answer, MalformedPacket):
            assert answer.raw == LEGACY_REFUSAL, f"expected CONNACK 0x84 or a close, got bytes {answer.raw.hex()}"
        elif answer is not None:
            assert isinstance(answer, Connack), f"expected CONNACK 0x84 or a close, got {answer.name}"
            assert answer.reason_code == 0x84, f"CONNACK reason 0x{answer.reason_code:02X}, expected 0x84"
            assert not answer.session_present, "refusing CONNACK has Session Present 1"
        probe.expect_closed()


@case("MQTT-3.1.3-8", "MQTT-3.2.2-4", "MQTT-3.2.2-5")
def test_empty_client_id_with_persistent_session_is_refused(make_probe):
    """3.1.1: a zero-length ClientId with Clean Session 0 gets CONNACK 0x02 and the connection closes."""
    probe = make_probe("")
    probe.send(Connect(client_id="", clean_start=False, username=probe.username,
                       password=probe.password.encode() if probe.password else None))
    probe.expect(Connack, reason_code=0x02, session_present=False)
    probe.expect_closed()


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
