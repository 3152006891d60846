"""3.3 PUBLISH: QoS 0/1/2 flows, topic matching, QoS 3, retained messages."""

from conformance import Puback, Pubcomp, Publish, Pubrec, Pubrel, case, craft
from conformance.steps import received_before_sentinel, subscriber


@case("MQTT-3.3.1-4", "MQTT-4.8.0-1", v5=["MQTT-3.3.1-4", "MQTT-4.13.1-1"])
def test_publish_with_qos_3_closes_the_connection(probe, topic_prefix):
    """A PUBLISH with both QoS bits set is malformed: the server closes the connection."""
    probe.send(craft(Publish(topic=f"{topic_prefix}/q3", payload=b"x", qos=1, packet_id=1), qos_bits=0b11))
    probe.expect_closed(reason_codes={0x81})


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
      v5=["MQTT-3.3.4-1", "MQTT-4.3.3-8", "MQTT-4.3.3-11", "MQTT-2.2.1-5", "MQTT-4.3.3-2", "MQTT-4.3.3-4"])
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
    got = received_before_sentinel(pub, sub, f"{topic_prefix}/sentinel")
    topics = [p.topic for p in got if isinstance(p, Publish)]
    assert topics == [f"{topic_prefix}/{t}" for t in ("a/b/c", "a/x/c", "a//c")], f"delivered {topics}"


@case("MQTT-3.8.4-6", v5=["MQTT-3.8.4-8"])
def test_delivery_qos_is_the_lower_of_publish_and_granted(make_probe, topic_prefix):
    """A QoS 2 publication to a QoS 1 subscription is delivered at QoS 1; a QoS 0 one at QoS 0."""
    topic = f"{topic_prefix}/min"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.publish(topic, b"two", qos=2)
    sub.receive(topic=topic, payload=b"two", qos=1)
    pub.publish(topic, b"zero", qos=0)
    sub.receive(topic=topic, payload=b"zero", qos=0)
