"""3.8 SUBSCRIBE and 3.9 SUBACK: codes per filter, their order, packet ids, empty payload, replacing
an identical subscription, several filters as a sequence, the delivered QoS, Subscription Identifiers,
and refusals by a server without wildcard or Subscription Identifier support."""

from conformance import (
    Properties,
    Publish,
    Subscribe,
    Subscription,
    Unsupported,
    case,
    craft,
)
from conformance.codec import Suback
from conformance.steps.common import delivered, shown
from conformance.steps.topics import (
    MALFORMED_OR_PROTOCOL,
    MANY_FILTERS,
    granted,
    judge,
    many_filters,
    react,
    subscribe_reactions,
    tight_ack_limit,
    wire_size,
)


@case("MQTT-3.8.3-3", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_subscribe_without_payload_closes_the_connection(probe):
    """A SUBSCRIBE with no topic filter is a protocol violation: the server closes the connection."""
    probe.send(Subscribe(packet_id=7, subscriptions=()))
    probe.expect_closed(reason_codes={0x81, 0x82})


@case("MQTT-3.9.3-1", "MQTT-3.8.4-5", "MQTT-3.8.4-4", "MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-3.9.3-2",
      v5=["MQTT-3.9.3-1", "MQTT-3.8.4-6", "MQTT-3.8.4-7", "MQTT-3.8.4-5", "MQTT-3.8.4-1", "MQTT-3.8.4-2",
          "MQTT-2.2.1-6", "MQTT-3.9.3-2"])
def test_suback_codes_follow_filter_order(probe, topic_prefix):
    """One SUBSCRIBE with several filters gets one SUBACK with the same packet id and one code per
    filter, in order: the granted QoS (at most the requested one) or a failure code (0x80 or more).
    Requested QoS values alternate so that a reordering shows as a code above its request."""
    requested = [(f"{topic_prefix}/q2", 2), (f"{topic_prefix}/q0", 0), (f"{topic_prefix}/q1", 1),
                 (f"{topic_prefix}/q0b/+", 0), (f"{topic_prefix}/q2b/#", 2), (f"{topic_prefix}/q0c", 0)]
    probe.send(Subscribe(packet_id=0x4242, subscriptions=tuple(Subscription(f, q) for f, q in requested)))
    suback = probe.expect(Suback, packet_id=0x4242)
    codes = suback.reason_codes
    assert len(codes) == len(requested), f"{len(codes)} codes for {len(requested)} filters"
    for (topic_filter, qos), code in zip(requested, codes, strict=True):
        assert code <= qos or code >= 0x80, (
            f"filter {topic_filter!r} asked QoS {qos}, got code 0x{code:02X} (codes out of order?)"
        )


@case("MQTT-3.8.3-4", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_subscribe_with_qos_3_closes_the_connection(probe, topic_prefix):
    """A requested QoS of 3 in SUBSCRIBE is malformed (3.1.1) or a protocol error (5.0): the server
    closes the connection."""
    packet = Subscribe(packet_id=3, subscriptions=(Subscription(f"{topic_prefix}/x", 0),))
    probe.send(craft(packet, replace={"options[0]": b"\x03"}))
    probe.expect_closed(reason_codes={0x81, 0x82})


@case("MQTT-3.8.4-3", v5=["MQTT-3.8.4-3"])
def test_identical_filter_replaces_the_subscription(make_probe, topic_prefix):
    """Subscribing again to an identical filter replaces the subscription instead of adding one: after
    QoS 2 then QoS 0 on the same filter, a QoS 1 message arrives once, at the new maximum QoS (0)."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(sentinel, qos=1))
    granted(sub.subscribe(topic, qos=2))
    (new_qos,) = granted(sub.subscribe(topic, qos=0))
    pub = make_probe().connect()
    pub.publish(topic, b"once", qos=1)
    got = delivered(pub, sub, sentinel)
    assert len(got) == 1, f"expected one copy (the subscription was replaced, not added); received {shown(got)}"
    assert got[0].qos == min(1, new_qos), (
        f"delivered at QoS {got[0].qos}; the replacing subscription granted QoS {new_qos}"
    )


@case("MQTT-3.8.4-3", v5=["MQTT-3.8.4-4", "MQTT-3.3.1-9"], requires=["retain_available"])
def test_resubscribe_resends_retained_and_loses_nothing(make_probe, topic_prefix):
    """Re-subscribing to an identical filter (5.0: Retain Handling 0) sends the matching retained message
    again, with RETAIN=1, and does not interrupt the flow: a message published just before the
    SUBSCRIBE and one just after both arrive, once each."""
    topic, sentinel = f"{topic_prefix}/r", f"{topic_prefix}/sentinel"
    pub = make_probe(name="pub").connect()
    pub.publish(topic, b"retained", qos=1, retain=True)
    sub = make_probe(name="sub").connect()
    granted(sub.subscribe(topic, sentinel, qos=1))
    sub.ack(sub.wait_for(Publish, topic=topic, payload=b"retained", retain=True))
    pub.publish(topic, b"before", qos=1)
    granted(sub.subscribe(topic, qos=1))
    pub.publish(topic, b"after", qos=1)
    got = delivered(pub, sub, sentinel)
    seen = sorted((m.payload, m.retain) for m in got)
    assert seen == [(b"after", False), (b"before", False), (b"retained", True)], (
        f"expected 'before' and 'after' once each with RETAIN=0 and the retained message again with RETAIN=1; "
        f"received {shown(got)}"
    )
    pub.publish(topic, b"", qos=1, retain=True)


@case("MQTT-3.8.4-4", "MQTT-3.8.4-5", v5=["MQTT-3.8.4-5", "MQTT-3.8.4-6"])
def test_multi_filter_subscribe_acts_as_a_sequence(make_probe, topic_prefix):
    """A SUBSCRIBE listing the same filter twice acts like two SUBSCRIBEs in a row: the second entry
    replaces the first, so a message arrives once, at the QoS granted to the second entry."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(sentinel, qos=1))
    codes = granted(sub.subscribe(Subscription(topic, 1), Subscription(topic, 0)))
    assert len(codes) == 2, f"SUBACK has {len(codes)} codes for 2 filters"
    pub = make_probe().connect()
    pub.publish(topic, b"once", qos=1)
    got = delivered(pub, sub, sentinel)
    assert len(got) == 1, f"expected one copy (the second entry replaces the first); received {shown(got)}"
    assert got[0].qos == min(1, codes[1]), f"delivered at QoS {got[0].qos}; the second entry was granted {codes[1]}"


@case("MQTT-3.8.4-6", v5=["MQTT-3.8.4-8"])
def test_delivery_qos_is_the_lower_of_published_and_granted(make_probe, topic_prefix, capabilities):
    """Each message is delivered at the minimum of the QoS it was published with and the maximum QoS
    granted to the subscription (every combination of 0, 1, 2 the target supports)."""
    max_qos = capabilities.get("maximum_qos", 2)
    sentinel = f"{topic_prefix}/sentinel"
    sub = make_probe().connect()
    topics = [f"{topic_prefix}/g{q}" for q in range(3)]
    codes = granted(sub.subscribe(*[Subscription(t, q) for q, t in enumerate(topics)], Subscription(sentinel, 1)))
    pub = make_probe().connect()
    expected = []
    for topic, grant in zip(topics, codes, strict=False):
        for qos in range(max_qos + 1):
            payload = f"{topic}|{qos}".encode()
            pub.publish(topic, payload, qos=qos)
            expected.append((payload, min(qos, grant)))
    got = delivered(pub, sub, sentinel)
    seen = sorted((m.payload, m.qos) for m in got)
    assert seen == sorted(expected), f"expected (payload, QoS) {sorted(expected)}, received {seen}"


@case("MQTT-3.8.3-2", v5=["MQTT-4.13.1-1", "MQTT-3.9.3-2"])
def test_wildcard_filters_refused_when_wildcards_unsupported(make_probe, topic_prefix, capabilities, mqtt_version):
    """A server that does not support wildcard subscriptions must refuse every filter that holds one
    (3.1.1: SUBACK 0x80 or a close; 5.0, where CONNACK said so: a protocol error, DISCONNECT 0xA2 and
    close, a SUBACK 0xA2 with the connection kept grades NON-STRICT). Servers with wildcard support:
    not applicable."""
    if capabilities.get("wildcard_subscriptions", True):
        raise Unsupported("the target supports wildcard subscriptions: there is no refusal to check")
    filters = [f"{topic_prefix}/+", f"{topic_prefix}/#", f"+/{topic_prefix}"]
    reactions = subscribe_reactions(make_probe, filters, close_codes={0xA2})
    if mqtt_version == "3.1.1":  # 3.1.1 defines no close for this: a failure code is the rejection it asks for
        reactions = [r for r in reactions if r.outcome != "refused"]
    judge(reactions, "a server without wildcard support must refuse wildcard filters")


@case(v5=["MQTT-4.13.1-1"])
def test_subscription_identifier_zero_is_a_protocol_error(make_probe, topic_prefix):
    """A Subscription Identifier of 0, or a second Subscription Identifier in one SUBSCRIBE, is a
    protocol error: the server closes the connection (DISCONNECT 0x81/0x82, or 0xA1 if it does not
    support Subscription Identifiers)."""
    codes = MALFORMED_OR_PROTOCOL | {0xA1}
    sub = (Subscription(f"{topic_prefix}/t", 0),)
    reactions = [
        react(make_probe().connect(), Subscribe(packet_id=5, subscriptions=sub,
                                                properties=Properties(subscription_identifier=0)),
              "SUBSCRIBE with Subscription Identifier 0", close_codes=codes),
        react(make_probe().connect(), Subscribe(packet_id=6, subscriptions=sub, properties=Properties.of(
            [("subscription_identifier", 1), ("subscription_identifier", 2)])),
              "SUBSCRIBE with two Subscription Identifiers", close_codes=codes),
    ]
    judge(reactions, "Subscription Identifier 0, or more than one, is a protocol error")


@case(v5=["MQTT-3.8.4-3"], requires=["subscription_identifiers"])
def test_resubscribe_replaces_the_subscription_identifier(make_probe, topic_prefix):
    """The Subscription Identifier belongs to the subscription: re-subscribing to the identical filter
    with another identifier, or with none, replaces it, so deliveries carry only the current one."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(sentinel, qos=1))
    pub = make_probe().connect()
    seen = []
    for identifier in (5, 70000, None):
        props = Properties(subscription_identifier=identifier) if identifier else Properties()
        granted(sub.subscribe(topic, qos=1, properties=props))
        pub.publish(topic, str(identifier).encode(), qos=1)
        got = delivered(pub, sub, sentinel)
        assert len(got) == 1, f"expected one copy after re-subscribing; received {shown(got)}"
        seen.append(got[0].properties.all("subscription_identifier"))
    assert seen == [[5], [70000], []], (
        f"Subscription Identifiers delivered after subscribing with 5, 70000, then none: {seen}"
    )


@case(v5=["MQTT-4.13.1-1"])
def test_subscription_identifier_refused_when_unsupported(make_probe, topic_prefix, capabilities):
    """A server that announced Subscription Identifiers Available = 0 treats a SUBSCRIBE carrying one as
    a protocol error: DISCONNECT 0xA1 and close. Servers that support them: not applicable."""
    if capabilities.get("subscription_identifiers", True):
        raise Unsupported("the target supports Subscription Identifiers: there is no refusal to check")
    sub = (Subscription(f"{topic_prefix}/t", 0),)
    judge([react(make_probe().connect(), Subscribe(packet_id=5, subscriptions=sub,
                                                   properties=Properties(subscription_identifier=7)),
                 "SUBSCRIBE with Subscription Identifier 7", close_codes={0xA1})],
          "Subscription Identifiers are not supported")




@case(v5=["MQTT-3.9.2-1", "MQTT-3.9.2-2", "MQTT-3.8.4-1"])
def test_suback_properties_dropped_to_fit_maximum_packet_size(make_probe, topic_prefix, capabilities):
    """With a client Maximum Packet Size that leaves no room for a property, the SUBACK to a
    200-filter SUBSCRIBE still comes, one code per filter, without a Reason String or User
    Property that would make it too big (filters under the profile's denied topic when it has one)."""
    limit = tight_ack_limit(MANY_FILTERS)
    probe = make_probe().connect(properties=Properties(maximum_packet_size=limit))
    filters = many_filters(topic_prefix, capabilities)
    probe.send(Subscribe(packet_id=0x0D0D, subscriptions=tuple(Subscription(f, 1) for f in filters)))
    suback = probe.expect(Suback, packet_id=0x0D0D)
    size = wire_size(probe, suback)
    assert size <= limit, f"SUBACK of {size} bytes exceeds the client's Maximum Packet Size {limit}"
    assert len(suback.reason_codes) == MANY_FILTERS, f"{len(suback.reason_codes)} codes for {MANY_FILTERS} filters"
