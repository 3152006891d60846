"""3.10 UNSUBSCRIBE and 3.11 UNSUBACK: literal comparison, an answer even when nothing is removed,
several filters as a sequence, the empty payload, in-flight deliveries, reason codes (5.0)."""

from conformance import NonStrict, Properties, Publish, Pubrel, Unsuback, Unsubscribe, case
from conformance.codec import Pubrec
from conformance.steps.common import delivered, shown
from conformance.steps.topics import MANY_FILTERS, granted, many_filters, tight_ack_limit, wire_size

SUCCESS, NO_SUBSCRIPTION = 0x00, 0x11


def _unsuback_codes(probe, unsuback: Unsuback, expected: list[int]) -> None:
    """5.0: the UNSUBACK codes must be ``expected`` (one per filter, in order). 0x00 where 0x11 was due is
    graded NON-STRICT (the spec defines 0x11 for 'nothing was there'; 0x00 claims a deletion)."""
    if not probe.v5:
        return
    codes = list(unsuback.reason_codes)
    assert len(codes) == len(expected), f"UNSUBACK has {len(codes)} reason codes for {len(expected)} filters"
    if codes == expected:
        return
    loose = [SUCCESS if c == NO_SUBSCRIPTION else c for c in expected]
    if codes == loose:
        raise NonStrict(f"UNSUBACK codes {[hex(c) for c in codes]}: 0x00 (deleted) where no subscription existed, "
                        f"expected {[hex(c) for c in expected]}")
    raise AssertionError(f"UNSUBACK codes {[hex(c) for c in codes]}, expected {[hex(c) for c in expected]} "
                         "(in the order of the filters)")


@case("MQTT-3.10.4-1", "MQTT-3.10.4-5", v5=["MQTT-3.10.4-1", "MQTT-3.10.4-5", "MQTT-3.11.3-1", "MQTT-3.11.3-2"])
def test_unsubscribe_compares_filters_literally(make_probe, topic_prefix):
    """UNSUBSCRIBE removes a subscription only when a filter equals it character for character: a topic
    the subscription matches, a different letter case or an overlapping wildcard removes nothing (and
    still gets an UNSUBACK; 5.0: code 0x11 for each of those and 0x00 for the exact one)."""
    p = topic_prefix
    sentinel = f"{p}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(f"{p}/a/+", f"{p}/b/#", sentinel, qos=1))
    pub = make_probe().connect()

    near_misses = [f"{p}/a/x", f"{p}/A/+", f"{p}/a/#", f"{p}/b/+", f"{p}/b"]
    unsuback = sub.unsubscribe(*near_misses)
    _unsuback_codes(sub, unsuback, [NO_SUBSCRIPTION] * len(near_misses))
    pub.publish(f"{p}/a/x", b"still-a", qos=1)
    pub.publish(f"{p}/b/y", b"still-b", qos=1)
    got = delivered(pub, sub, sentinel)
    assert sorted(m.payload for m in got) == [b"still-a", b"still-b"], (
        f"after UNSUBSCRIBE of non-identical filters the subscriptions must stay; received {shown(got)}"
    )

    unsuback = sub.unsubscribe(f"{p}/a/+")
    _unsuback_codes(sub, unsuback, [SUCCESS])
    pub.publish(f"{p}/a/x", b"gone-a", qos=1)
    pub.publish(f"{p}/b/y", b"still-b", qos=1)
    got = delivered(pub, sub, sentinel)
    assert [m.payload for m in got] == [b"still-b"], (
        f"after UNSUBSCRIBE of {p}/a/+ only {p}/b/# may deliver; received {shown(got)}"
    )


@case("MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.3.1-7", v5=["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.2.1-6"])
def test_unsuback_echoes_packet_id_even_when_nothing_was_removed(probe, topic_prefix):
    """Every UNSUBSCRIBE gets an UNSUBACK with its Packet Identifier, also when the client held no
    subscription at all and when it held the filter."""
    probe.send(Unsubscribe(packet_id=0x7A31, topic_filters=(f"{topic_prefix}/never",)))
    probe.expect(Unsuback, packet_id=0x7A31)
    granted(probe.subscribe(f"{topic_prefix}/held", qos=1))
    probe.send(Unsubscribe(packet_id=0x0102, topic_filters=(f"{topic_prefix}/held",)))
    probe.expect(Unsuback, packet_id=0x0102)
    probe.expect_nothing()


@case("MQTT-3.10.4-6", "MQTT-3.10.4-2",
      v5=["MQTT-3.10.4-6", "MQTT-3.10.4-2", "MQTT-3.11.3-1", "MQTT-3.11.3-2"])
def test_multi_filter_unsubscribe_is_a_sequence_with_one_unsuback(make_probe, topic_prefix):
    """Several filters in one UNSUBSCRIBE act like consecutive UNSUBSCRIBEs answered by a single
    UNSUBACK: all listed subscriptions go, the others stay, and (5.0) a filter repeated in the packet is
    reported 0x11 the second time, since the first occurrence already removed it."""
    p = topic_prefix
    sentinel = f"{p}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(f"{p}/one", f"{p}/two/#", f"{p}/three", sentinel, qos=1))
    filters = (f"{p}/one", f"{p}/none", f"{p}/two/#", f"{p}/one")
    sub.send(Unsubscribe(packet_id=0x0BB8, topic_filters=filters))
    unsuback = sub.expect(Unsuback, packet_id=0x0BB8)
    sub.expect_nothing()  # one UNSUBACK only
    _unsuback_codes(sub, unsuback, [SUCCESS, NO_SUBSCRIPTION, SUCCESS, NO_SUBSCRIPTION])
    pub = make_probe().connect()
    for topic in (f"{p}/one", f"{p}/two/x", f"{p}/three"):
        pub.publish(topic, topic.encode(), qos=1)
    got = delivered(pub, sub, sentinel)
    assert [m.topic for m in got] == [f"{p}/three"], (
        f"only {p}/three is still subscribed; received {shown(got)}"
    )


@case("MQTT-3.10.3-2", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_unsubscribe_without_payload_closes_the_connection(probe):
    """An UNSUBSCRIBE with no topic filter is a protocol violation: the server closes the connection."""
    probe.send(Unsubscribe(packet_id=9, topic_filters=()))
    probe.expect_closed(reason_codes={0x81, 0x82})


@case("MQTT-3.10.4-3", v5=["MQTT-3.10.4-3"], requires=["qos2"])
def test_unsubscribe_completes_qos2_delivery_in_flight(make_probe, topic_prefix):
    """A QoS 2 delivery the server has started still completes after the client unsubscribes: the
    client's PUBREC, sent after the UNSUBACK, is answered with PUBREL."""
    topic = f"{topic_prefix}/q2"
    sub = make_probe().connect()
    assert granted(sub.subscribe(topic, qos=2)) == (2,), "the case needs QoS 2 granted"
    make_probe().connect().publish(topic, b"in-flight", qos=2)
    publish = sub.wait_for(Publish, topic=topic)
    assert publish.qos == 2, f"delivered at QoS {publish.qos}, expected 2"
    sub.unsubscribe(topic)
    sub.send(Pubrec(packet_id=publish.packet_id or 0))
    sub.expect(Pubrel, packet_id=publish.packet_id)


@case("MQTT-3.10.4-2", v5=["MQTT-3.10.4-2"])
def test_no_new_messages_after_unsubscribe(make_probe, topic_prefix):
    """Once the UNSUBACK is back, messages published to the removed filter's topics are no longer queued
    for the client (with a persistent session they do not show up after a reconnect either)."""
    p = topic_prefix
    sentinel = f"{p}/sentinel"
    sub = make_probe().connect(clean_start=False, session_expiry=300)
    granted(sub.subscribe(f"{p}/t/#", sentinel, qos=1))
    sub.unsubscribe(f"{p}/t/#")
    pub = make_probe().connect()
    pub.publish(f"{p}/t/x", b"late", qos=1)
    got = delivered(pub, sub, sentinel)
    assert not got, f"received after unsubscribing: {shown(got)}"
    sub.close()
    pub.publish(f"{p}/t/y", b"offline", qos=1)
    again = make_probe(sub.client_id).connect(clean_start=False, session_expiry=0)
    granted(again.subscribe(f"{p}/sentinel2", qos=1))
    got = delivered(pub, again, f"{p}/sentinel2")
    assert not [m for m in got if m.topic.startswith(f"{p}/t/")], f"received after reconnect: {shown(got)}"


@case(v5=["MQTT-3.11.2-1", "MQTT-3.11.2-2", "MQTT-3.10.4-4"])
def test_unsuback_properties_dropped_to_fit_maximum_packet_size(make_probe, topic_prefix, capabilities):
    """With a client Maximum Packet Size that leaves no room for a property, the UNSUBACK to a 200-filter
    UNSUBSCRIBE of filters the client never held still comes, one code per filter, without a Reason
    String or User Property that would make it too big."""
    limit = tight_ack_limit(MANY_FILTERS)
    probe = make_probe().connect(properties=Properties(maximum_packet_size=limit))
    filters = many_filters(topic_prefix, capabilities)
    probe.send(Unsubscribe(packet_id=0x0E0E, topic_filters=tuple(filters)))
    unsuback = probe.expect(Unsuback, packet_id=0x0E0E)
    size = wire_size(probe, unsuback)
    assert size <= limit, f"UNSUBACK of {size} bytes exceeds the client's Maximum Packet Size {limit}"
    assert len(unsuback.reason_codes) == MANY_FILTERS, (
        f"{len(unsuback.reason_codes)} codes for {MANY_FILTERS} filters"
    )
