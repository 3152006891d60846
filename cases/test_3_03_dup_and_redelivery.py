"""3.3.1.1 DUP and 4.4 message delivery retry: what a resumed session resends, with which flags and ids.

To see a resend, a subscriber with a persistent session receives a PUBLISH, leaves it unacknowledged,
drops the connection without DISCONNECT and reconnects with Clean Session / Clean Start 0.
"""

from conformance import Puback, Pubcomp, Publish, Pubrec, Pubrel, case
from conformance.steps.common import PERSISTENT, delivered, subscriber
from conformance.steps.publish import persistent_subscriber, resume


@case("MQTT-3.3.1-1", "MQTT-4.4.0-1", "MQTT-4.3.2-1", v5=["MQTT-3.3.1-1", "MQTT-4.4.0-1", "MQTT-4.3.2-3"])
def test_unacknowledged_qos1_is_resent_with_dup_and_same_id(make_probe, client_id, topic_prefix):
    """A QoS 1 message delivered but never acknowledged stays unacknowledged in the session; when the
    client resumes the session the server sends it again, with DUP 1 and the original packet identifier."""
    topic = f"{topic_prefix}/r1"
    sub = persistent_subscriber(make_probe, client_id, topic, qos=1)
    make_probe().connect().publish(topic, b"resend me", qos=1)
    first = sub.expect(Publish, topic=topic, payload=b"resend me", qos=1, dup=False)
    sub.close()
    again = resume(make_probe, client_id)
    again.expect(Publish, topic=topic, payload=b"resend me", qos=1, dup=True, packet_id=first.packet_id)
    again.send(Puback(packet_id=first.packet_id))
    again.expect_nothing()


@case("MQTT-3.3.1-1", "MQTT-4.4.0-1", "MQTT-4.3.3-1",
      v5=["MQTT-3.3.1-1", "MQTT-4.4.0-1", "MQTT-4.3.3-3", "MQTT-4.3.3-4"], requires=["qos2"])
def test_unacknowledged_qos2_publish_is_resent_with_dup_and_same_id(make_probe, client_id, topic_prefix):
    """A QoS 2 PUBLISH never answered with PUBREC is resent on session resumption with DUP 1 and the
    original packet identifier; the handshake then completes with that identifier."""
    topic = f"{topic_prefix}/r2"
    sub = persistent_subscriber(make_probe, client_id, topic, qos=2)
    make_probe().connect().publish(topic, b"exactly once", qos=2)
    first = sub.expect(Publish, topic=topic, payload=b"exactly once", qos=2, dup=False)
    sub.close()
    again = resume(make_probe, client_id)
    again.expect(Publish, topic=topic, payload=b"exactly once", qos=2, dup=True, packet_id=first.packet_id)
    again.send(Pubrec(packet_id=first.packet_id))
    again.expect(Pubrel, packet_id=first.packet_id)
    again.send(Pubcomp(packet_id=first.packet_id))
    again.expect_nothing()


@case("MQTT-4.4.0-1", "MQTT-4.3.3-1", v5=["MQTT-4.4.0-1", "MQTT-4.3.3-5", "MQTT-4.3.3-6"], requires=["qos2"])
def test_unacknowledged_pubrel_is_resent_instead_of_the_publish(make_probe, client_id, topic_prefix):
    """Once the server has answered PUBREC with PUBREL, a resumed session gets that PUBREL again (same
    packet identifier) until PUBCOMP arrives, and never the PUBLISH."""
    topic = f"{topic_prefix}/rel"
    sub = persistent_subscriber(make_probe, client_id, topic, qos=2)
    make_probe().connect().publish(topic, b"released", qos=2)
    first = sub.expect(Publish, topic=topic, payload=b"released", qos=2, dup=False)
    sub.send(Pubrec(packet_id=first.packet_id))
    sub.expect(Pubrel, packet_id=first.packet_id)
    sub.close()
    again = resume(make_probe, client_id)
    again.expect(Pubrel, packet_id=first.packet_id)
    again.send(Pubcomp(packet_id=first.packet_id))
    again.expect_nothing()


@case(v5=["MQTT-4.4.0-1"], requires=["qos1"])
def test_acknowledged_messages_are_not_resent(make_probe, client_id, topic_prefix, capabilities):
    """Messages whose QoS flow completed (QoS 1 acknowledged, QoS 2 up to PUBCOMP) are not resent when
    the session resumes: resending is allowed only for unacknowledged packets."""
    topic = f"{topic_prefix}/done"
    levels = range(1, capabilities["maximum_qos"] + 1)
    sub = persistent_subscriber(make_probe, client_id, topic, qos=max(levels))
    pub = make_probe().connect()
    for qos in levels:
        pub.publish(topic, f"q{qos}", qos=qos)
        sub.receive(topic=topic, payload=f"q{qos}".encode(), qos=qos)
    sub.expect_nothing()  # every acknowledgement has been processed before the connection drops
    sub.close()
    resume(make_probe, client_id).expect_nothing()


@case(v5=["MQTT-4.4.0-2"], requires=["qos1"])
def test_publish_answered_with_an_error_code_is_not_resent(make_probe, client_id, topic_prefix, capabilities):
    """A PUBLISH answered with PUBACK or PUBREC carrying a Reason Code of 0x80 or more counts as
    acknowledged: no PUBREL follows the PUBREC, and a resumed session does not resend either message."""
    topic = f"{topic_prefix}/err"
    levels = range(1, capabilities["maximum_qos"] + 1)
    sub = persistent_subscriber(make_probe, client_id, topic, qos=max(levels))
    pub = make_probe().connect()
    for qos, ack in zip(levels, (Puback, Pubrec), strict=False):
        pub.publish(topic, f"refused {qos}", qos=qos)
        got = sub.expect(Publish, topic=topic, payload=f"refused {qos}".encode(), qos=qos)
        sub.send(ack(packet_id=got.packet_id, reason_code=0x80))
    sub.expect_nothing()
    sub.close()
    resume(make_probe, client_id).expect_nothing()


@case("MQTT-3.3.1-3", "MQTT-3.3.1-2", "MQTT-4.3.2-1", "MQTT-4.3.3-1",
      v5=["MQTT-3.3.1-3", "MQTT-3.3.1-2", "MQTT-4.3.2-2", "MQTT-4.3.3-2"], requires=["qos1"])
def test_incoming_dup_flag_is_not_propagated(make_probe, topic_prefix, capabilities):
    """The DUP flag of a PUBLISH the server forwards says only whether the server itself is
    retransmitting: a first delivery has DUP 0 (always at QoS 0) even when the publisher set DUP 1."""
    topic = f"{topic_prefix}/dup"
    levels = list(range(1, capabilities["maximum_qos"] + 1))
    subs = {qos: subscriber(make_probe, topic, qos=qos) for qos in (0, *levels)}
    pub = make_probe().connect()
    for qos in levels:
        pub.send(Publish(topic=topic, payload=f"dup{qos}".encode(), qos=qos, dup=True, packet_id=20 + qos))
        if qos == 1:
            pub.expect(Puback, packet_id=21)
        else:
            pub.expect(Pubrec, packet_id=22)
            pub.send(Pubrel(packet_id=22))
            pub.expect(Pubcomp, packet_id=22)
    for granted, sub in subs.items():
        got = sorted((p.payload, p.qos) for p in (sub.receive(topic=topic, dup=False) for _ in levels))
        assert got == [(f"dup{q}".encode(), min(q, granted)) for q in levels], (
            f"a QoS {granted} subscriber got (payload, QoS) {got}")


@case("MQTT-4.4.0-1", "MQTT-4.3.3-2", "MQTT-3.3.1-1",
      v5=["MQTT-4.4.0-1", "MQTT-4.3.3-10", "MQTT-4.3.3-8", "MQTT-4.3.3-11"], requires=["qos2"])
def test_publisher_resending_after_reconnect_is_delivered_once(make_probe, client_id, topic_prefix):
    """A publisher whose QoS 2 flow is cut after PUBREC, twice, resumes its session each time and
    resends the PUBLISH with DUP 1 and the original packet identifier, then sends PUBREL: the server
    answers every copy with PUBREC and the PUBREL with PUBCOMP, all with that identifier, and delivers
    the message exactly once."""
    topic = f"{topic_prefix}/once"
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=2)
    pub = make_probe(client_id).connect(**PERSISTENT)
    pub.send(Publish(topic=topic, payload=b"once", qos=2, packet_id=0x0A0B))
    pub.expect(Pubrec, packet_id=0x0A0B)
    for _ in range(2):
        pub.close()
        pub = resume(make_probe, client_id)
        pub.send(Publish(topic=topic, payload=b"once", qos=2, dup=True, packet_id=0x0A0B))
        pub.expect(Pubrec, packet_id=0x0A0B)
    pub.send(Pubrel(packet_id=0x0A0B))
    pub.expect(Pubcomp, packet_id=0x0A0B)
    got = delivered(pub, sub, sentinel)
    assert [p.payload for p in got] == [b"once"], f"the subscriber got {[p.payload for p in got]}"


@case("MQTT-4.4.0-1", "MQTT-4.3.3-2", v5=["MQTT-4.4.0-1", "MQTT-4.3.3-11"], requires=["qos2"])
def test_publisher_resending_pubrel_after_reconnect_gets_pubcomp(make_probe, client_id, topic_prefix):
    """A publisher whose connection dropped after it sent PUBREL resumes its session and resends the
    PUBREL with the original packet identifier: the server answers PUBCOMP with that identifier, and
    the message is delivered exactly once."""
    topic = f"{topic_prefix}/rel"
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=2)
    pub = make_probe(client_id).connect(**PERSISTENT)
    pub.send(Publish(topic=topic, payload=b"released", qos=2, packet_id=0x0C0D))
    pub.expect(Pubrec, packet_id=0x0C0D)
    pub.send(Pubrel(packet_id=0x0C0D))
    pub.close()  # whether or not the PUBCOMP was on its way, the client never saw it
    pub = resume(make_probe, client_id)
    pub.send(Pubrel(packet_id=0x0C0D))
    pub.expect(Pubcomp, packet_id=0x0C0D)
    got = delivered(pub, sub, sentinel)
    assert [p.payload for p in got] == [b"released"], f"the subscriber got {[p.payload for p in got]}"
