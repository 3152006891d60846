"""4.9 Flow Control and 3.3.4 Receive Maximum (5.0): the server sends no more unacknowledged QoS 1/2
PUBLISHes than the client's Receive Maximum, keeps answering every other packet while its quota is
used up, and refuses a client that exceeds the server's own Receive Maximum."""

from conformance import (
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Unsupported,
    case,
)
from conformance.steps.common import publisher
from conformance.steps.v5 import judge_refusal, receive_within_quota, refusal, take_until_barrier


def _limited_subscriber(make_probe, topic: str, receive_maximum: int, qos: int, **connect):
    probe = make_probe().connect(properties=Properties(receive_maximum=receive_maximum), **connect)
    probe.subscribe(topic, qos=qos)
    return probe


@case(v5=["MQTT-3.3.4-9", "MQTT-4.9.0-2"])
def test_server_stops_at_the_client_receive_maximum(make_probe, topic_prefix):
    """A client with Receive Maximum 2 acknowledges five QoS 1 PUBLISHes one at a time, oldest first: the
    server never has more than two unacknowledged (it may keep fewer), sends the next one whenever none
    is in flight, and delivers all five in order."""
    topic = f"{topic_prefix}/flow"
    sub = _limited_subscriber(make_probe, topic, 2, qos=1)
    pub = publisher(make_probe)
    for i in range(5):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    payloads = [p.payload for p in receive_within_quota(sub, 5, 2)]
    sub.expect_nothing()
    assert payloads == [f"m{i}".encode() for i in range(5)], f"received {payloads}"


@case(v5=["MQTT-3.3.4-10", "MQTT-4.9.0-3", "MQTT-4.9.0-1"], requires=["qos2"])
def test_server_answers_other_packets_at_zero_quota(make_probe, topic_prefix):
    """While a client with Receive Maximum 1 holds an unacknowledged QoS 1 PUBLISH and another waits (the
    server's send quota is zero), the server still answers its PINGREQ, its own QoS 1 and QoS 2
    PUBLISHes (PUBACK, PUBREC, PUBCOMP), SUBSCRIBE and UNSUBSCRIBE."""
    topic = f"{topic_prefix}/flow"
    sub = _limited_subscriber(make_probe, topic, 1, qos=1)
    pub = publisher(make_probe)
    for i in range(2):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    sub.expect(Publish, topic=topic, qos=1)  # the quota is now zero; the second message waits
    sub.send(Pingreq())
    sub.wait_for(Pingresp)
    other = f"{topic_prefix}/other"
    packet_id = sub.packet_id()
    sub.send(Publish(topic=other, payload=b"own 1", qos=1, packet_id=packet_id))
    sub.wait_for(Puback, packet_id=packet_id)
    packet_id = sub.packet_id()
    sub.send(Publish(topic=other, payload=b"own 2", qos=2, packet_id=packet_id))
    sub.wait_for(Pubrec, packet_id=packet_id)
    sub.send(Pubrel(packet_id=packet_id))
    sub.wait_for(Pubcomp, packet_id=packet_id)
    packet_id = sub.packet_id()
    sub.send(Subscribe(packet_id=packet_id, subscriptions=(Subscription(f"{topic_prefix}/more", 0),)))
    sub.wait_for(Suback, packet_id=packet_id)
    packet_id = sub.packet_id()
    sub.send(Unsubscribe(packet_id=packet_id, topic_filters=(f"{topic_prefix}/more",)))
    sub.wait_for(Unsuback, packet_id=packet_id)
    sub.send(Pingreq())
    sub.wait_for(Pingresp)


@case(v5=["MQTT-3.3.4-9", "MQTT-4.9.0-2", "MQTT-4.9.0-3"], requires=["qos2"])
def test_qos2_quota_is_released_by_pubcomp_not_pubrec(make_probe, topic_prefix):
    """With Receive Maximum 1 and QoS 2, a PUBREC does not free the quota: the server answers it with
    PUBREL and sends nothing more; the PUBCOMP frees it and the next PUBLISH follows."""
    topic = f"{topic_prefix}/flow2"
    sub = _limited_subscriber(make_probe, topic, 1, qos=2)
    pub = publisher(make_probe)
    for i in range(3):
        pub.publish(topic, f"m{i}".encode(), qos=2)
    payloads = []
    for _ in range(3):
        got = sub.expect(Publish, topic=topic, qos=2)
        payloads.append(got.payload)
        assert not take_until_barrier(sub, [got], 1)
        sub.send(Pubrec(packet_id=got.packet_id or 0))
        sub.expect(Pubrel, packet_id=got.packet_id)
        assert not take_until_barrier(sub, [got], 1)  # PUBREC does not release the quota; PUBCOMP does
        sub.send(Pubcomp(packet_id=got.packet_id or 0))
    sub.expect_nothing()
    assert payloads == [b"m0", b"m1", b"m2"], f"received {payloads}"


@case(v5=["MQTT-3.3.4-9", "MQTT-4.9.0-2"])
def test_receive_maximum_of_the_new_connection_applies_to_resent_messages(make_probe, client_id, topic_prefix):
    """Receive Maximum belongs to the Network Connection: a session left with unacknowledged QoS 1
    PUBLISHes and resumed with Receive Maximum 1 gets them (and the rest) one at a time, each after the
    previous PUBACK."""
    topic = f"{topic_prefix}/resend"
    first = _limited_subscriber(make_probe, topic, 3, qos=1, client_id=client_id, clean_start=False,
                                session_expiry=300)
    pub = publisher(make_probe)
    for i in range(3):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    held = [first.expect(Publish, topic=topic, qos=1)]
    take_until_barrier(first, held, 3)
    first.disconnect()  # none acknowledged

    second = make_probe(client_id).connect(clean_start=False, session_expiry=0,
                                            properties=Properties(receive_maximum=1))
    payloads = [p.payload for p in receive_within_quota(second, 3, 1)]
    second.expect_nothing()
    assert payloads == [b"m0", b"m1", b"m2"], f"received {payloads}"


@case(v5=["MQTT-4.13.1-1"], requires=["qos2"])
def test_client_exceeding_the_server_receive_maximum_is_disconnected(probe, topic_prefix):
    """A client that keeps more QoS 2 PUBLISHes unacknowledged (PUBREC received, no PUBREL sent) than the
    server's Receive Maximum is disconnected with Reason Code 0x93 (Receive Maximum exceeded)."""
    maximum = probe.connack.properties.get("receive_maximum", 65535) if probe.connack else 65535
    if maximum >= 65535:
        raise Unsupported("the server's Receive Maximum is 65535: a client cannot exceed it (packet identifiers "
                          "run out first)")
    for packet_id in range(1, maximum + 1):
        probe.send(Publish(topic=f"{topic_prefix}/over", payload=b"x", qos=2, packet_id=packet_id))
    for packet_id in range(1, maximum + 1):
        probe.expect(Pubrec, packet_id=packet_id, reason_code=lambda c: c < 0x80)
    probe.send(Publish(topic=f"{topic_prefix}/over", payload=b"x", qos=2, packet_id=maximum + 1))
    judge_refusal(refusal(probe), {0x93}, f"QoS 2 PUBLISH number {maximum + 1} with {maximum} unreleased "
                  f"(server Receive Maximum {maximum})")
