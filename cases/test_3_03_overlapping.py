"""3.3.5 (3.1.1) / 3.3.4 (5.0): a message matching several subscriptions of one client.

The server must deliver it at the highest QoS granted among the matching subscriptions; it may send
further copies, one per other matching subscription at that subscription's QoS. In 5.0 each copy
carries the Subscription Identifiers of the subscriptions it stands for. The cases read every copy off
the wire and accept any grouping of the subscriptions into copies that the spec allows.
"""

from conformance import Properties, case
from conformance.steps.common import SENTINEL, until_sentinel
from conformance.steps.publish import Sub, describe_copies, explain_copies, note


def _overlap(make_probe, topic_prefix, subs, publish_qos, with_ids):  # noqa: ANN001, ANN202
    """Subscribe one client to ``subs`` (one SUBSCRIBE each, so each may carry its own identifier),
    publish one message matching all of them, and return the copies the client got."""
    topic = f"{topic_prefix}/o/x"
    sentinel = f"{topic_prefix}/sentinel"
    client = make_probe().connect()
    granted = []
    for sub in subs:
        props = Properties(subscription_identifier=sub.identifier) if sub.identifier is not None else None
        code = client.subscribe(sub.topic_filter, qos=sub.granted, properties=props).reason_codes[0]
        assert code < 0x80, f"SUBSCRIBE {sub.topic_filter!r} was refused with 0x{code:02X}"
        granted.append(Sub(sub.topic_filter, code, sub.identifier))  # the server may grant less
    subs = granted
    client.subscribe(sentinel, qos=2)
    pub = make_probe().connect()
    pub.publish(topic, b"overlap", qos=publish_qos)
    pub.publish(sentinel, SENTINEL, qos=publish_qos)
    copies = until_sentinel(client, sentinel)
    assert all(p.topic == topic and p.payload == b"overlap" for p in copies), (
        f"unexpected publications: {[(p.topic, p.payload) for p in copies]}")
    note(client, f"{len(copies)} cop{'y' if len(copies) == 1 else 'ies'} for {len(subs)} matching "
                 f"subscriptions: {describe_copies(copies)}")
    grouping = explain_copies(copies, subs, publish_qos, with_ids)
    wanted = min(publish_qos, max(s.granted for s in subs))
    assert copies, "the message matching the client's subscriptions was not delivered"
    assert any(p.qos == wanted for p in copies), (
        f"no copy at QoS {wanted}, the highest granted QoS of the matching subscriptions "
        f"(capped by the publication's QoS {publish_qos}); got {describe_copies(copies)}")
    return copies, grouping, subs


OVERLAP = ("o/+", "o/#", "o/x")  # three filters, all matching <prefix>/o/x


@case("MQTT-3.3.5-1", v5=["MQTT-3.3.4-2"], requires=["wildcard_subscriptions", "qos2"])
def test_overlapping_subscriptions_deliver_at_the_highest_qos(make_probe, topic_prefix):
    """Subscriptions granted QoS 0, 1 and 2 all match a QoS 2 publication: the client gets a copy at
    QoS 2, and any further copies at most one per other subscription, each at that one's QoS.
    (With a server that grants less than requested, the highest QoS actually granted counts.)"""
    subs = [Sub(f"{topic_prefix}/{f}", qos) for f, qos in zip(OVERLAP, (0, 1, 2), strict=True)]
    copies, grouping, subs = _overlap(make_probe, topic_prefix, subs, 2, with_ids=False)
    assert grouping is not None, (
        f"the copies ({describe_copies(copies)}) cannot be matched to the subscriptions: more copies "
        "than subscriptions, or a copy at a QoS no subscription justifies")


@case("MQTT-3.3.5-1", v5=["MQTT-3.3.4-2"], requires=["wildcard_subscriptions", "qos1"])
def test_overlapping_delivery_qos_is_capped_by_the_publication(make_probe, topic_prefix):
    """A QoS 1 publication matching subscriptions granted QoS 2 and 0 reaches the client at QoS 1 (the
    highest granted QoS, capped by the publication's); a further copy may come at QoS 0."""
    subs = [Sub(f"{topic_prefix}/o/#", 2), Sub(f"{topic_prefix}/o/+", 0)]
    copies, grouping, subs = _overlap(make_probe, topic_prefix, subs, 1, with_ids=False)
    assert grouping is not None, (
        f"the copies ({describe_copies(copies)}) cannot be matched to the subscriptions: more copies "
        "than subscriptions, or a copy at a QoS no subscription justifies")


@case(v5=["MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5", "MQTT-3.3.4-2"],
      requires=["wildcard_subscriptions", "subscription_identifiers", "qos2"])
def test_overlapping_delivery_carries_the_subscription_identifiers(make_probe, topic_prefix):
    """Overlapping subscriptions with Subscription Identifiers: a single copy carries all of them (in
    any order); separate copies each carry the identifier of the subscription they stand for."""
    subs = [Sub(f"{topic_prefix}/{f}", qos, ident)
            for f, qos, ident in zip(OVERLAP, (0, 1, 2), (11, 22, 33), strict=True)]
    copies, grouping, subs = _overlap(make_probe, topic_prefix, subs, 2, with_ids=True)
    carried = sorted(i for p in copies for i in p.properties.all("subscription_identifier"))
    assert carried == [11, 22, 33], (
        f"the copies carry Subscription Identifiers {carried}; every matching subscription's identifier "
        f"(11, 22, 33) must be sent, once: {describe_copies(copies)}")
    assert grouping is not None, (
        f"the copies ({describe_copies(copies)}) do not each carry the identifiers of the subscriptions "
        "they stand for at the QoS those subscriptions were granted")


@case(v5=["MQTT-3.3.4-5", "MQTT-3.3.4-3", "MQTT-3.3.4-4"],
      requires=["wildcard_subscriptions", "subscription_identifiers", "qos1"])
def test_copy_for_a_subscription_without_identifier_carries_none(make_probe, topic_prefix):
    """One overlapping subscription has a Subscription Identifier, the other has none: the identifier is
    delivered (once), and a separate copy for the subscription without identifier carries none."""
    subs = [Sub(f"{topic_prefix}/o/+", 1, 7), Sub(f"{topic_prefix}/o/#", 0)]
    copies, grouping, subs = _overlap(make_probe, topic_prefix, subs, 1, with_ids=True)
    carried = sorted(i for p in copies for i in p.properties.all("subscription_identifier"))
    assert carried == [7], f"the copies carry Subscription Identifiers {carried}, expected [7] once"
    assert grouping is not None, (
        f"the copies ({describe_copies(copies)}) do not each carry the identifiers of the subscriptions "
        "they stand for at the QoS those subscriptions were granted")
