"""3.3 PUBLISH: QoS 0/1/2 flows, topic matching, QoS 3, Topic Name rules, packet identifier 0,
unauthorised publications."""

from conformance import (
    BrokerViolation,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    case,
    craft,
    raw_string,
)
from conformance.grading import NotDetected
from conformance.steps.common import delivered, subscriber
from conformance.steps.malformed import expect_rejected


@case("MQTT-3.3.1-4", "MQTT-4.8.0-1", v5=["MQTT-3.3.1-4", "MQTT-4.13.1-1"])
def test_publish_with_qos_3_closes_the_connection(probe, topic_prefix):
    """A PUBLISH with both QoS bits set is malformed: the server closes the connection."""
    probe.send(craft(Publish(topic=f"{topic_prefix}/q3", payload=b"x", qos=1, packet_id=1), qos_bits=0b11))
    probe.expect_closed(reason_codes={0x81})


@case("MQTT-3.3.1-2", "MQTT-4.8.0-1", v5=["MQTT-3.3.1-2", "MQTT-4.13.1-1"])
def test_qos0_publish_with_dup_set_closes_the_connection(make_probe, topic_prefix):
    """A QoS 0 PUBLISH must have DUP 0: one with DUP 1 is a protocol violation, so the server closes the
    connection and does not deliver it (3.1.1 unconditionally; 5.0 once it detects it, docs/grading.md).
    Whatever it does, it never sends a QoS 0 PUBLISH with DUP 1 itself."""
    topic = f"{topic_prefix}/dup0"
    sub = subscriber(make_probe, topic, qos=0)
    pub = make_probe(name="dup").connect()
    pub.send(craft(Publish(topic=topic, payload=b"dup", qos=0), dup_bit=1, label="QoS 0 PUBLISH with DUP 1"))
    try:
        expect_rejected(pub)
    except NotDetected:
        forwarded = sub.next(strict=False)
        if isinstance(forwarded, Publish) and forwarded.qos == 0 and forwarded.dup:
            raise BrokerViolation("the server forwarded the QoS 0 PUBLISH with DUP 1 still set") from None
        raise
    sub.expect_nothing()


@case("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.3.1-5",
      v5=["MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.2.1-2"])
def test_qos0_publish_is_delivered_without_ack(make_probe, topic_prefix):
    """QoS 0: no acknowledgement to the publisher; delivered at QoS 0, DUP 0, no packet identifier."""
    topic = f"{topic_prefix}/q0"
    sub = subscriber(make_probe, topic, qos=0)
    pub = make_probe().connect()
    pub.send(Publish(topic=topic, payload=b"zero", qos=0))
    pub.expect_nothing()
    sub.expect(Publish, topic=topic, payload=b"zero", qos=0, dup=False, packet_id=None)


@case("MQTT-3.3.4-1", "MQTT-4.3.2-2", "MQTT-2.3.1-6", "MQTT-4.3.2-1",
      v5=["MQTT-3.3.4-1", "MQTT-4.3.2-4", "MQTT-2.2.1-5", "MQTT-4.3.2-2", "MQTT-4.3.2-1"])
def test_qos1_publish_flow(make_probe, topic_prefix):
    """QoS 1: the server answers PUBACK with the same packet id; delivery is QoS 1, DUP 0, non-zero id."""
    topic = f"{topic_prefix}/q1"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.send(Publish(topic=topic, payload=b"one", qos=1, packet_id=0x1234))
    pub.expect(Puback, packet_id=0x1234)
    got = sub.expect(Publish, topic=topic, payload=b"one", qos=1, dup=False)
    assert got.packet_id, "QoS 1 delivery without a packet identifier"
    sub.send(Puback(packet_id=got.packet_id))
    sub.expect_nothing()


@case("MQTT-3.3.4-1", "MQTT-4.3.3-2", "MQTT-2.3.1-6", "MQTT-4.3.3-1",
      v5=["MQTT-3.3.4-1", "MQTT-4.3.3-8", "MQTT-4.3.3-11", "MQTT-2.2.1-5", "MQTT-4.3.3-2", "MQTT-4.3.3-4"],
      requires=["qos2"])
def test_qos2_publish_flow(make_probe, topic_prefix):
    """QoS 2: PUBREC, then PUBCOMP for our PUBREL, same packet id; delivery at QoS 2, released by PUBREL."""
    topic = f"{topic_prefix}/q2"
    sub = subscriber(make_probe, topic, qos=2)
    pub = make_probe().connect()
    pub.send(Publish(topic=topic, payload=b"two", qos=2, packet_id=0x0102))
    pub.expect(Pubrec, packet_id=0x0102)
    pub.send(Pubrel(packet_id=0x0102))
    pub.expect(Pubcomp, packet_id=0x0102)
    got = sub.expect(Publish, topic=topic, payload=b"two", qos=2, dup=False)
    sub.send(Pubrec(packet_id=got.packet_id))
    sub.expect(Pubrel, packet_id=got.packet_id)
    sub.send(Pubcomp(packet_id=got.packet_id))
    sub.expect_nothing()


@case("MQTT-3.3.2-3", "MQTT-4.5.0-1", v5=["MQTT-3.3.2-3", "MQTT-4.5.0-1"])
def test_only_matching_topics_are_delivered(make_probe, topic_prefix):
    """A subscriber receives publications on topics its filter matches and nothing else."""
    sub = subscriber(make_probe, f"{topic_prefix}/a/+/c", f"{topic_prefix}/sentinel", qos=1)
    pub = make_probe().connect()
    for topic in ("a/b/c", "a/b", "a/b/c/d", "a/x/c", "b/b/c", "a//c"):
        pub.publish(f"{topic_prefix}/{topic}", topic, qos=1)
    got = delivered(pub, sub, f"{topic_prefix}/sentinel")
    topics = [p.topic for p in got]
    assert topics == [f"{topic_prefix}/{t}" for t in ("a/b/c", "a/x/c", "a//c")], f"delivered {topics}"


@case("MQTT-3.8.4-6", v5=["MQTT-3.8.4-8"], requires=["qos2"])
def test_delivery_qos_is_the_lower_of_publish_and_granted(make_probe, topic_prefix):
    """A QoS 2 publication to a QoS 1 subscription is delivered at QoS 1; a QoS 0 one at QoS 0."""
    topic = f"{topic_prefix}/min"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.publish(topic, b"two", qos=2)
    sub.receive(topic=topic, payload=b"two", qos=1)
    pub.publish(topic, b"zero", qos=0)
    sub.receive(topic=topic, payload=b"zero", qos=0)


@case("MQTT-3.3.2-2", "MQTT-4.8.0-1", v5=["MQTT-3.3.2-2", "MQTT-4.13.1-1"], requires=["wildcard_subscriptions"])
def test_topic_name_with_wildcards_closes_the_connection(make_probe, topic_prefix):
    """A PUBLISH whose Topic Name holds '+' or '#' is refused: the server closes the connection (5.0:
    a DISCONNECT may say Malformed Packet, Protocol Error or Topic Name invalid first), and the message
    reaches no subscriber, not even one whose filter would match the literal characters."""
    sentinel = f"{topic_prefix}/sentinel"
    watcher = subscriber(make_probe, f"{topic_prefix}/w/#", sentinel, qos=1)
    for name in ("+", "#", "a/+/b", "a/#"):
        pub = make_probe().connect()
        pub.send(Publish(topic=f"{topic_prefix}/w/{name}", payload=b"wild", qos=1, packet_id=1))
        pub.expect_closed(reason_codes={0x81, 0x82, 0x90})
    got = delivered(make_probe().connect(), watcher, sentinel)
    assert not got, f"a publication with a wildcard topic name was forwarded: {got}"


@case("MQTT-3.3.2-1", "MQTT-3.3.2-3", v5=["MQTT-3.3.2-1", "MQTT-3.3.2-3"])
def test_utf8_topic_name_is_forwarded_unchanged(make_probe, topic_prefix):
    """A Topic Name is a UTF-8 string, multi-byte characters included: the subscriber gets the exact
    Topic Name the publisher used."""
    topic = f"{topic_prefix}/ü/日本/😀"
    sub = subscriber(make_probe, topic, qos=1)
    make_probe().connect().publish(topic, b"utf8", qos=1)
    sub.receive(topic=topic, payload=b"utf8")


@case("MQTT-3.3.2-1", "MQTT-4.8.0-1", v5=["MQTT-3.3.2-1", "MQTT-4.13.1-1"])
def test_publish_without_a_valid_topic_name_string_closes_the_connection(make_probe, topic_prefix):
    """The variable header of PUBLISH starts with the Topic Name as a UTF-8 string: a topic that is not
    UTF-8 (byte 0xFF), or whose length runs past the end of the packet, makes the packet malformed and
    the server closes the connection."""
    packet = Publish(topic=f"{topic_prefix}/t", payload=b"", qos=0)
    bad = (
        craft(packet, topic=raw_string(f"{topic_prefix}/".encode() + b"\xff")),
        craft(packet, topic=raw_string(f"{topic_prefix}/t".encode(), length=200)),
    )
    for crafted in bad:
        probe = make_probe().connect()
        probe.send(crafted)
        probe.expect_closed(reason_codes={0x81, 0x82, 0x90})


@case("MQTT-2.3.1-1", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"], requires=["qos1"])
def test_qos_1_or_2_publish_with_packet_id_0_closes_the_connection(make_probe, topic_prefix, capabilities):
    """A QoS 1 or QoS 2 PUBLISH needs a non-zero packet identifier: one with identifier 0 is a protocol
    violation and the server closes the connection (5.0: DISCONNECT Malformed Packet or Protocol Error
    may come first) without acknowledging it."""
    for qos in range(1, capabilities["maximum_qos"] + 1):
        probe = make_probe().connect()
        probe.send(craft(Publish(topic=f"{topic_prefix}/zero", payload=b"x", qos=qos, packet_id=1), packet_id=0))
        probe.expect_closed(reason_codes={0x81, 0x82})


@case("MQTT-3.3.5-2", requires=["denied_topic"])
def test_unauthorised_publish_is_acknowledged_or_closes_the_connection(make_probe, topic_prefix, capabilities):
    """3.1.1 has no way to tell a client its PUBLISH was not authorised: the server either acknowledges
    it by the normal QoS rules (PUBACK; PUBREC then PUBCOMP) or closes the connection."""
    denied = f"{capabilities['denied_topic'].rstrip('/')}/{topic_prefix}"
    for qos in range(capabilities["maximum_qos"] + 1):
        pub = make_probe().connect()
        pub.send(Publish(topic=denied, payload=b"refused", qos=qos, packet_id=0x0404 if qos else None))
        if qos == 0:
            pub.send(Pingreq(), note="barrier")  # QoS 0 gets no acknowledgement: PINGRESP or a close
        answer = pub.next()
        if answer is None and pub.closed is not None:
            continue  # closing is one of the two allowed reactions
        if qos == 0:
            assert isinstance(answer, Pingresp), f"a QoS 0 PUBLISH was answered with {answer}"
            continue
        if qos == 1:
            assert isinstance(answer, Puback) and answer.packet_id == 0x0404, (
                f"expected PUBACK for packet identifier 0x0404 or a close, got {answer}")
        else:
            assert isinstance(answer, Pubrec) and answer.packet_id == 0x0404, (
                f"expected PUBREC for packet identifier 0x0404 or a close, got {answer}")
            pub.send(Pubrel(packet_id=0x0404))
            pub.expect(Pubcomp, packet_id=0x0404)
        pub.expect_nothing()
