"""3.3.1.3 RETAIN: stored, replaced, cleared by a zero-byte payload, flags on delivery."""

from conformance import case
from conformance.steps.common import subscriber
from conformance.steps.publish import received_around_sentinel


@case("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8", v5=["MQTT-3.3.1-5", "MQTT-3.3.1-9"],
      requires=["retain_available"])
def test_retained_message_is_stored_and_sent_to_new_subscription(make_probe, topic_prefix):
    """A RETAIN=1 publication is stored and delivered, with RETAIN=1, to a later subscriber."""
    topic = f"{topic_prefix}/r"
    make_probe().connect().publish(topic, b"kept", qos=1, retain=True)
    sub = make_probe().connect()
    sub.subscribe(topic, qos=1)
    sub.receive(topic=topic, payload=b"kept", retain=True, qos=1)


@case("MQTT-3.3.1-7", "MQTT-3.3.1-5", v5=["MQTT-3.3.1-5"], requires=["retain_available"])
def test_retained_message_is_replaced(make_probe, topic_prefix):
    """A new retained publication replaces the previous one: a new subscriber gets only the latest."""
    topic = f"{topic_prefix}/r"
    pub = make_probe().connect()
    pub.publish(topic, b"first", qos=1, retain=True)
    pub.publish(topic, b"second", qos=0, retain=True)
    pub.publish(topic, b"third", qos=1, retain=True)
    sub = make_probe().connect()
    sub.subscribe(topic, qos=1)
    sub.receive(topic=topic, payload=b"third", retain=True)
    sub.expect_nothing()


@case("MQTT-3.3.1-10", "MQTT-3.3.1-11", v5=["MQTT-3.3.1-6", "MQTT-3.3.1-7"], requires=["retain_available"])
def test_zero_byte_retained_publish_clears_and_is_forwarded(make_probe, topic_prefix):
    """A zero-byte RETAIN=1 publication is forwarded to current subscribers and clears the retained
    message: a later subscriber gets nothing."""
    topic = f"{topic_prefix}/r"
    pub = make_probe().connect()
    pub.publish(topic, b"old", qos=1, retain=True)
    current = subscriber(make_probe, topic, qos=1)
    current.receive(topic=topic, payload=b"old")
    pub.publish(topic, b"", qos=1, retain=True)
    current.receive(topic=topic, payload=b"")
    later = make_probe().connect()
    later.subscribe(topic, qos=1)
    later.expect_nothing()


@case("MQTT-3.3.1-9", v5=["MQTT-3.3.1-12"], requires=["retain_available"])
def test_delivery_to_established_subscription_has_retain_0(make_probe, topic_prefix):
    """A RETAIN=1 publication forwarded to an existing subscription arrives with RETAIN=0
    (5.0: with Retain As Published 0)."""
    topic = f"{topic_prefix}/r"
    sub = subscriber(make_probe, topic, qos=1)
    make_probe().connect().publish(topic, b"live", qos=1, retain=True)
    sub.receive(topic=topic, payload=b"live", retain=False)


@case("MQTT-3.3.1-12", v5=["MQTT-3.3.1-8"], requires=["retain_available"])
def test_non_retained_publish_leaves_retained_message_alone(make_probe, topic_prefix):
    """A RETAIN=0 publication is not stored and does not replace or clear the retained message."""
    topic = f"{topic_prefix}/r"
    pub = make_probe().connect()
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.publish(topic, b"passing", qos=1, retain=False)
    pub.publish(topic, b"", qos=1, retain=False)
    sub = make_probe().connect()
    sub.subscribe(topic, f"{topic_prefix}/sentinel", qos=1)
    got = received_around_sentinel(pub, sub, f"{topic_prefix}/sentinel")
    assert [(p.payload, p.retain) for p in got] == [(b"kept", True)], (
        f"a new subscriber got {[(p.payload, p.retain) for p in got]}"
    )


@case("MQTT-3.3.1-5", v5=["MQTT-3.3.1-5"], requires=["retain_available", "qos2"])
def test_retained_message_keeps_its_qos(make_probe, topic_prefix):
    """A retained message is stored with the QoS it was published at: a new QoS 2 subscription gets a
    retained QoS 1 message at QoS 1 and a retained QoS 2 message at QoS 2."""
    pub = make_probe().connect()
    pub.publish(f"{topic_prefix}/r/one", b"one", qos=1, retain=True)
    pub.publish(f"{topic_prefix}/r/two", b"two", qos=2, retain=True)
    sub = make_probe().connect()
    sub.subscribe(f"{topic_prefix}/r/one", qos=2)
    sub.receive(topic=f"{topic_prefix}/r/one", payload=b"one", qos=1, retain=True)
    sub.subscribe(f"{topic_prefix}/r/two", qos=2)
    sub.receive(topic=f"{topic_prefix}/r/two", payload=b"two", qos=2, retain=True)


@case("MQTT-3.3.1-6", "MQTT-3.3.1-8", v5=["MQTT-3.3.1-5"], requires=["retain_available", "wildcard_subscriptions"])
def test_new_wildcard_subscription_gets_latest_retained_of_each_topic(make_probe, topic_prefix):
    """A new subscription receives, for each matching topic, that topic's latest retained message
    (once, with RETAIN 1), and nothing for topics outside its filter."""
    pub = make_probe().connect()
    for topic, payload in (("t/a", "a1"), ("t/b", "b1"), ("t/a", "a2"), ("t/c/d", "cd1"), ("u/a", "u1")):
        pub.publish(f"{topic_prefix}/{topic}", payload, qos=1, retain=True)
    sub = make_probe().connect()
    sub.subscribe(f"{topic_prefix}/t/#", f"{topic_prefix}/sentinel", qos=1)
    got = received_around_sentinel(pub, sub, f"{topic_prefix}/sentinel")
    seen = sorted((p.topic, p.payload, p.retain) for p in got)
    expected = sorted((f"{topic_prefix}/{t}", p, True) for t, p in (("t/a", b"a2"), ("t/b", b"b1"), ("t/c/d", b"cd1")))
    assert seen == expected, f"a new subscription to t/# got {seen}"


@case("MQTT-3.3.1-7", v5=["MQTT-3.3.1-5"], requires=["retain_available"])
def test_retained_qos0_message_replaces_the_previous_one(make_probe, topic_prefix):
    """A retained QoS 0 publication replaces whatever was retained for the topic. The server may later
    drop a retained QoS 0 message, so a new subscriber gets either the new message or nothing, never
    the old one."""
    topic = f"{topic_prefix}/r"
    pub = make_probe().connect()
    pub.publish(topic, b"old", qos=1, retain=True)
    pub.publish(topic, b"new", qos=0, retain=True)
    pub.ping()  # QoS 0 has no acknowledgement: the PINGRESP shows the broker read the PUBLISH before
    sub = make_probe().connect()
    sub.subscribe(topic, f"{topic_prefix}/sentinel", qos=1)
    got = [(p.payload, p.qos) for p in received_around_sentinel(pub, sub, f"{topic_prefix}/sentinel")]
    assert got in ([(b"new", 0)], []), f"a new subscriber got {got}; expected the QoS 0 replacement or nothing"
