"""4.1 Storing state, with the session rules of 3.1 (Clean Session / Clean Start, ClientId as the key):
what a session holds while connected and across connections, and when it is gone."""

from conformance import Pubcomp, Publish, Pubrec, Pubrel, case
from conformance.steps.common import PERSISTENT, delivered, leave_session, subscriber


@case("MQTT-4.1.0-1", "MQTT-4.1.0-2", v5=["MQTT-4.1.0-1"])
def test_session_state_is_kept_while_connected(make_probe, topic_prefix, capabilities):
    """A session lasts at least as long as its connection, even one that ends with it (Clean Session 1, 5.0
    Session Expiry 0): while other clients come and go, its subscription keeps delivering and (where the
    target supports QoS 2) an incoming QoS 2 message held between PUBREC and PUBREL completes."""
    topic = f"{topic_prefix}/held"
    qos2 = capabilities["maximum_qos"] >= 2
    probe = make_probe(name="held").connect(clean_start=True, session_expiry=0)
    probe.subscribe(topic, qos=1)
    if qos2:
        probe.send(Publish(topic=f"{topic_prefix}/qos2", payload=b"in flight", qos=2, packet_id=0x0202))
        probe.expect(Pubrec, packet_id=0x0202)
    for n in range(3):  # other sessions start and end meanwhile, clean and persistent
        with make_probe(name=f"other{n}").connect(clean_start=n % 2 == 0) as other:
            other.subscribe(f"{topic_prefix}/other", qos=1)
    with make_probe(name="pub").connect() as pub:
        pub.publish(topic, b"still subscribed", qos=1)
    probe.receive(topic=topic, payload=b"still subscribed")
    if qos2:
        probe.send(Pubrel(packet_id=0x0202))
        probe.expect(Pubcomp, packet_id=0x0202, reason_code=0)


@case("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-4.1.0-1", "MQTT-3.1.4-3",
      v5=["MQTT-3.1.2-5", "MQTT-4.1.0-1", "MQTT-3.1.4-4"])
def test_stored_session_keeps_subscriptions_and_queues_messages(make_probe, client_id, topic_prefix,
                                                               capabilities):
    """A session with Clean Session 0 (5.0: Clean Start 0 and a Session Expiry) outlives its connection:
    the QoS 1 and QoS 2 messages (QoS 2 where the target supports it) published to its subscriptions
    meanwhile are delivered when it resumes, and the subscriptions still match new messages without
    subscribing again."""
    q1, q2 = f"{topic_prefix}/q1", f"{topic_prefix}/q2"
    top = min(2, capabilities["maximum_qos"])
    leave_session(make_probe, client_id, q1, q2, qos=top)
    with make_probe(name="pub").connect() as pub:
        pub.publish(q1, b"offline 1", qos=1)
        pub.publish(q2, b"offline 2", qos=top)
    probe = make_probe(client_id, name="resumed").connect(**PERSISTENT)
    assert probe.connack is not None and probe.connack.session_present, "the stored session was not resumed"
    probe.ack(probe.wait_for(Publish, topic=q1, payload=b"offline 1"))
    probe.ack(probe.wait_for(Publish, topic=q2, payload=b"offline 2"))
    with make_probe(name="pub2").connect() as pub:
        pub.publish(q2, b"online", qos=1)
    probe.receive(topic=q2, payload=b"online")


@case("MQTT-3.1.3-2", v5=["MQTT-3.1.3-2"])
def test_sessions_are_keyed_by_client_id(make_probe, topic_prefix, client_id):
    """The ClientId selects the session: two stored sessions of different ClientIds each get back only
    their own subscription's messages."""
    ids = {"a": client_id, "b": client_id + "b"}
    for key, cid in ids.items():
        leave_session(make_probe, cid, f"{topic_prefix}/{key}", qos=1)
    with make_probe(name="pub").connect() as pub:
        for key in ids:
            pub.publish(f"{topic_prefix}/{key}", f"for {key}".encode(), qos=1)
    for key, cid in ids.items():
        probe = make_probe(cid, name=f"resume-{key}").connect(**PERSISTENT)
        probe.receive(topic=f"{topic_prefix}/{key}", payload=f"for {key}".encode())
        probe.expect_nothing()


@case("MQTT-3.1.2-6", "MQTT-3.1.4-3", v5=["MQTT-3.1.2-4", "MQTT-3.1.4-4"])
def test_clean_start_discards_the_stored_subscriptions(make_probe, client_id, topic_prefix):
    """Clean Session / Clean Start 1 discards the stored session: its subscriptions no longer deliver to the
    new connection of the same ClientId."""
    old = f"{topic_prefix}/old"
    sentinel = f"{topic_prefix}/sentinel"
    leave_session(make_probe, client_id, old, qos=1)
    probe = subscriber(make_probe, sentinel, qos=1, client_id=client_id, clean_start=True)
    with make_probe(name="pub").connect() as pub:
        pub.publish(old, b"to the discarded subscription", qos=1)
        got = delivered(pub, probe, sentinel)
    assert not got, f"the new session received {got[0].name} on {old!r} through a discarded subscription"


@case("MQTT-3.1.2-7", requires=["retain_available"])
def test_retained_message_outlives_the_publishing_session(make_probe, topic_prefix):
    """3.1.1: retained messages are not session state: one published by a Clean Session client is still
    delivered to new subscribers after that client's session has ended."""
    topic = f"{topic_prefix}/retained"
    with make_probe(name="pub").connect(clean_start=True) as pub:
        pub.publish(topic, b"kept", qos=1, retain=True)
    probe = make_probe(name="sub").connect()
    probe.subscribe(topic, qos=1)
    probe.receive(topic=topic, payload=b"kept", retain=True)
    probe.publish(topic, b"", qos=1, retain=True)  # clear it
