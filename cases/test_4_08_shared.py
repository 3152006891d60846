"""4.8.2 Shared Subscriptions (5.0): the $share/{ShareName}/{filter} form, one member per message at
its own granted QoS, interrupted and rejected deliveries, No Local, UNSUBSCRIBE, and the refusal by a
server without shared subscriptions."""

from conformance import Packet, Puback, Publish, Pubrec, Subscription, Unsupported, Will, case
from conformance.steps.common import delivered, shown, until_barrier, until_sentinel
from conformance.steps.topics import (
    BAD_FILTER_CODES,
    MALFORMED_OR_PROTOCOL,
    first_receiver,
    granted,
    judge,
    subscribe_reactions,
)

SHARED = ["shared_subscriptions"]


def share_name(topic_prefix: str) -> str:
    """A ShareName only this case uses (some brokers key share groups on the name alone)."""
    return "g" + topic_prefix.rsplit("/", 1)[-1]


def _members(make_probe, share_filter: str, qos: int, count: int = 2):
    members = []
    for i in range(count):
        member = make_probe(name=f"m{i}").connect()
        granted(member.subscribe(share_filter, qos=qos), share_filter)
        members.append(member)
    return members


@case(v5=["MQTT-4.8.2-1", "MQTT-4.8.2-2"], requires=SHARED)
def test_shared_filter_matches_without_its_prefix(make_probe, topic_prefix):
    """A well-formed $share/{ShareName}/{filter} subscription (a ShareName may hold '-' and '.') is
    granted and matches what {filter} alone would: the delivered topic is the publication's own,
    without the $share part."""
    p = topic_prefix
    sentinel = f"{p}/sentinel"
    sub = make_probe(name="sub").connect()
    group = f"{share_name(p)}-1.x"
    granted(sub.subscribe(f"$share/{group}/{p}/t/+", sentinel, qos=1))
    pub = make_probe(name="pub").connect()
    for topic in (f"{p}/t/a", f"{p}/t", f"{p}/t/a/b", f"{group}/{p}/t/a"):
        pub.publish(topic, b"live", qos=1)
    got = delivered(pub, sub, sentinel)
    assert [m.topic for m in got] == [f"{p}/t/a"], (
        f"expected only the message on {p}/t/a (what {p}/t/+ matches); received {shown(got)}"
    )


@case(v5=["MQTT-3.3.1-9"], requires=SHARED + ["retain_available"])
def test_shared_subscription_gets_no_retained_messages(make_probe, topic_prefix):
    """Retained messages are sent when a subscription is made (MQTT-3.3.1-9), except to a shared one: the
    unnumbered text of sections 3.8.4 and 4.8.2 says a session joining a shared subscription, as first or
    later member, is sent no retained message (MQTT-4.8.2-1 is only about the filter's form). Later
    publications arrive as usual."""
    p = topic_prefix
    stored, sentinel = f"{p}/t/stored", f"{p}/sentinel"
    pub = make_probe(name="pub").connect()
    pub.publish(stored, b"stored", qos=1, retain=True)
    first = make_probe(name="first").connect()
    granted(first.subscribe(f"$share/{share_name(p)}/{p}/t/+", sentinel, qos=1))
    second = make_probe(name="second").connect()
    granted(second.subscribe(f"$share/{share_name(p)}/{p}/t/+", sentinel, qos=1))
    got_first = delivered(pub, first, sentinel)
    got_second = until_sentinel(second, sentinel)
    pub.publish(stored, b"", qos=1, retain=True)
    assert not got_first and not got_second, (
        f"joining a shared subscription sent retained messages: first member {shown(got_first)}, "
        f"second member {shown(got_second)}"
    )


@case(v5=["MQTT-4.8.2-1", "MQTT-4.8.2-2", "MQTT-4.13.1-1"], requires=SHARED)
def test_malformed_shared_filters_are_refused(make_probe, topic_prefix):
    """A filter starting with $share/ must go on with a non-empty ShareName free of '/', '+' and '#',
    then '/' and a topic filter. One that does not is a protocol error and the server closes the
    connection (refusing it with a SUBACK failure code and staying connected grades NON-STRICT;
    granting it is a FAIL)."""
    p = topic_prefix
    g = share_name(p)
    filters = [f"$share//{p}/t", f"$share/{g}+/{p}/t", f"$share/{g}#/{p}/t", f"$share/{g}", f"$share/{g}/"]
    judge(subscribe_reactions(make_probe, filters, close_codes=BAD_FILTER_CODES),
          "a shared subscription filter is $share/{ShareName}/{filter} with a non-empty, wildcard-free ShareName "
          "and a non-empty filter")


@case(v5=["MQTT-3.8.3-4", "MQTT-4.13.1-1"], requires=SHARED)
def test_no_local_on_shared_subscription_is_a_protocol_error(make_probe, topic_prefix):
    """Setting No Local on a shared subscription is a protocol error: the server closes the connection."""
    judge(subscribe_reactions(make_probe, [Subscription(f"$share/{share_name(topic_prefix)}/{topic_prefix}/t", 1, no_local=True)],
                              close_codes=MALFORMED_OR_PROTOCOL),
          "No Local must not be set on a shared subscription")


@case(v5=["MQTT-4.8.2-3"], requires=SHARED)
def test_each_message_goes_to_one_member_at_its_granted_qos(make_probe, topic_prefix, capabilities):
    """Each message on a shared subscription goes to exactly one member, and at no more than the QoS
    granted to that member's subscription (one member asks QoS 0, the other QoS 2)."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    share = f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"
    low = make_probe(name="qos0").connect()
    (low_grant, _) = granted(low.subscribe(Subscription(share, 0), Subscription(sentinel, 1)))
    high = make_probe(name="qos2").connect()
    (high_grant, _) = granted(high.subscribe(Subscription(share, 2), Subscription(sentinel, 1)))
    pub = make_probe(name="pub").connect()
    pub_qos = min(2, capabilities.get("maximum_qos", 2))
    payloads = [f"m{i}".encode() for i in range(8)]
    for payload in payloads:
        pub.publish(topic, payload, qos=pub_qos)
    got_low = delivered(pub, low, sentinel)
    got_high = until_sentinel(high, sentinel)
    everything = sorted(m.payload for m in got_low + got_high)
    assert everything == sorted(payloads), (
        f"each message must reach exactly one member: QoS 0 member got {shown(got_low)}, QoS 2 member got "
        f"{shown(got_high)}"
    )
    too_high = [m for m in got_low if m.qos > min(pub_qos, low_grant)]
    too_high += [m for m in got_high if m.qos > min(pub_qos, high_grant)]
    assert not too_high, f"delivered above the member's granted QoS ({low_grant} / {high_grant}): {shown(too_high)}"


def _will_watcher(make_probe, topic_prefix):
    watcher = make_probe(name="watch").connect()
    granted(watcher.subscribe(f"{topic_prefix}/will/#", qos=1))
    return watcher


def _connect_member(make_probe, topic_prefix, index, share, qos, **session):
    member = make_probe(name=f"m{index}")
    member.connect(will=Will(topic=f"{topic_prefix}/will/{index}", payload=b"gone", qos=1), **session)
    granted(member.subscribe(share, qos=qos), share)
    return member


@case(v5=["MQTT-4.8.2-4"], requires=["shared_subscriptions", "qos2"])
def test_interrupted_shared_qos2_delivery_resumes_to_the_same_client(make_probe, topic_prefix):
    """When the connection of the member chosen for a QoS 2 message breaks before the flow completes,
    the message goes to that member again when it reconnects to its session, and not to the other
    member meanwhile. (The member's Will marks when the broker has seen the break.)"""
    topic, share = f"{topic_prefix}/t", f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"
    watcher = _will_watcher(make_probe, topic_prefix)
    members = [_connect_member(make_probe, topic_prefix, i, share, 2, clean_start=False, session_expiry=300)
               for i in range(2)]
    make_probe(name="pub").connect().publish(topic, b"exactly-once", qos=2)
    chosen, first = first_receiver(members, members[0].timing.response, topic=topic)
    assert first.qos == 2, f"delivered at QoS {first.qos}, expected 2"
    other = members[1 - members.index(chosen)]
    chosen.close()
    watcher.ack(watcher.wait_for(Publish, topic=f"{topic_prefix}/will/{members.index(chosen)}"))
    leaked = until_barrier(other)
    other.disconnect(session_expiry_interval=0)
    assert not leaked, f"the other member got {shown(leaked)} while the chosen one was away"
    again = make_probe(chosen.client_id, name="back").connect(clean_start=False, session_expiry=0)
    assert again.connack.session_present, "the chosen member's session was not kept"
    resent = again.wait_for(Publish, topic=topic, payload=b"exactly-once")
    again.ack(resent)


@case(v5=["MQTT-4.8.2-5"], requires=["shared_subscriptions", "qos2"])
def test_shared_qos2_message_not_redirected_after_session_ends(make_probe, topic_prefix):
    """When the member chosen for a QoS 2 message loses its connection and its session ends with it
    (Session Expiry 0), the message is not sent to the other member."""
    topic, share = f"{topic_prefix}/t", f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"
    watcher = _will_watcher(make_probe, topic_prefix)
    members = [_connect_member(make_probe, topic_prefix, i, share, 2) for i in range(2)]
    make_probe(name="pub").connect().publish(topic, b"exactly-once", qos=2)
    chosen, first = first_receiver(members, members[0].timing.response, topic=topic)
    assert first.qos == 2, f"delivered at QoS {first.qos}, expected 2"
    other = members[1 - members.index(chosen)]
    chosen.close()
    watcher.ack(watcher.wait_for(Publish, topic=f"{topic_prefix}/will/{members.index(chosen)}"))
    leaked = until_barrier(other)
    assert not leaked, f"the other member got {shown(leaked)} after the chosen member's session ended"


@case(v5=["MQTT-4.8.2-6"], requires=SHARED)
def test_shared_message_rejected_by_member_is_not_redirected(make_probe, topic_prefix, capabilities):
    """A member that answers a shared message with PUBACK (QoS 1) or PUBREC (QoS 2) carrying a failure
    code makes the server discard the message: no other member receives it."""
    topic, share = f"{topic_prefix}/t", f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"
    qos_levels = [1, 2] if capabilities.get("maximum_qos", 2) >= 2 else [1]
    members = _members(make_probe, share, qos=max(qos_levels))
    pub = make_probe(name="pub").connect()
    for qos in qos_levels:
        payload = f"rejected-qos{qos}".encode()
        pub.publish(topic, payload, qos=qos)
        chosen, publish = first_receiver(members, members[0].timing.response, topic=topic, payload=payload)
        reply = Puback if publish.qos == 1 else Pubrec
        chosen.send(reply(packet_id=publish.packet_id or 0, reason_code=0x80))
        chosen.expect_nothing(allow=(Packet,))  # the broker has handled the rejection (what else it sends is not judged here)
        other = members[1 - members.index(chosen)]
        leaked = [m for m in until_barrier(other) if m.payload == payload]
        assert not leaked, f"QoS {qos}: after a 0x80 reply the message went to the other member: {shown(leaked)}"


@case(v5=["MQTT-3.10.4-1", "MQTT-3.11.3-1"], requires=SHARED)
def test_unsubscribe_detaches_only_with_the_full_shared_filter(make_probe, topic_prefix):
    """Only UNSUBSCRIBE with the full $share/{ShareName}/{filter} detaches a member (the bare filter or
    another ShareName removes nothing: 0x11); afterwards every message goes to the remaining member."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    share = f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"
    leaving = make_probe(name="leaving").connect()
    granted(leaving.subscribe(share, sentinel, qos=1))
    staying = make_probe(name="staying").connect()
    granted(staying.subscribe(share, sentinel, qos=1))
    unsuback = leaving.unsubscribe(topic, f"$share/{share_name(topic_prefix)}x/{topic_prefix}/t", share)
    assert list(unsuback.reason_codes) == [0x11, 0x11, 0x00], (
        f"UNSUBACK codes {[hex(c) for c in unsuback.reason_codes]}, expected [0x11, 0x11, 0x0]"
    )
    pub = make_probe(name="pub").connect()
    for i in range(4):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    got_leaving = delivered(pub, leaving, sentinel)
    got_staying = until_sentinel(staying, sentinel)
    assert not got_leaving, f"the detached member still received {shown(got_leaving)}"
    assert len(got_staying) == 4, f"the remaining member received {shown(got_staying)}, expected all 4"


@case(v5=["MQTT-4.13.1-1"])
def test_shared_subscription_refused_when_unsupported(make_probe, topic_prefix, capabilities):
    """A server that announced Shared Subscription Available = 0 treats a $share/ filter as a protocol
    error: DISCONNECT 0x9E and close. Servers with shared subscriptions: not applicable."""
    if capabilities.get("shared_subscriptions", True):
        raise Unsupported("the target supports shared subscriptions: there is no refusal to check")
    judge(subscribe_reactions(make_probe, [f"$share/{share_name(topic_prefix)}/{topic_prefix}/t"], close_codes={0x9E}),
          "shared subscriptions are not supported")

