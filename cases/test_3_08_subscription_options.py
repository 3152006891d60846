"""3.8.3.1 Subscription Options: reserved bits, No Local, Retain As Published, Retain Handling (with the
RETAIN rules of 3.3.1.3 they drive)."""

from conformance import Publish, Subscribe, Subscription, case, craft
from conformance.steps.common import delivered, shown, until_barrier, until_sentinel
from conformance.steps.topics import MALFORMED_OR_PROTOCOL, granted, judge, react


def _options_reactions(make_probe, topic_prefix, option_bytes):
    reactions = []
    for value in option_bytes:
        packet = Subscribe(packet_id=0x0C0C, subscriptions=(Subscription(f"{topic_prefix}/x", 0),))
        reactions.append(react(make_probe().connect(), craft(packet, replace={"options[0]": bytes([value])}),
                               f"SUBSCRIBE with options byte 0x{value:02X}", close_codes=MALFORMED_OR_PROTOCOL))
    return reactions


@case("MQTT-3.8.3-4", "MQTT-4.8.0-1", v5=["MQTT-3.8.3-5", "MQTT-4.13.1-1"])
def test_reserved_option_bits_close_the_connection(make_probe, topic_prefix, mqtt_version):
    """The reserved bits of the options byte after each filter must be 0, or the SUBSCRIBE is malformed
    and the server closes the connection. 3.1.1 reserves bits 2-7 (so a 5.0 No Local or Retain As
    Published bit is malformed there); 5.0 reserves bits 6-7."""
    reserved = [0x04, 0x08, 0x10, 0x40, 0x80] if mqtt_version == "3.1.1" else [0x40, 0x80, 0xC1]
    judge(_options_reactions(make_probe, topic_prefix, reserved), "reserved subscription option bits must be 0")


@case(v5=["MQTT-4.13.1-1"])
def test_retain_handling_3_is_a_protocol_error(make_probe, topic_prefix):
    """Retain Handling 3 is not defined: a SUBSCRIBE using it is a protocol error and the server closes
    the connection."""
    judge(_options_reactions(make_probe, topic_prefix, [0x30, 0x31]), "Retain Handling 3 is a protocol error")


@case(v5=["MQTT-3.8.3-3"])
def test_no_local_keeps_own_messages_away(make_probe, topic_prefix):
    """With No Local = 1 the server never forwards a client's own publications back to it, while other
    clients' publications on the same topic still arrive; a No Local = 0 subscription of the same client
    does get its own messages."""
    quiet, loud, sentinel = f"{topic_prefix}/nl", f"{topic_prefix}/echo", f"{topic_prefix}/sentinel"
    me = make_probe(name="self").connect()
    granted(me.subscribe(Subscription(quiet, 1, no_local=True), Subscription(loud, 1), Subscription(sentinel, 1)))
    me.publish(quiet, b"mine", qos=1)
    me.publish(loud, b"echoed", qos=1)
    other = make_probe(name="other").connect()
    other.publish(quiet, b"theirs", qos=1)
    got = delivered(other, me, sentinel)
    seen = sorted((m.topic, m.payload) for m in got)
    assert seen == sorted([(loud, b"echoed"), (quiet, b"theirs")]), (
        f"expected only {loud!r} 'echoed' and {quiet!r} 'theirs'; received {shown(got)}"
    )


@case(v5=["MQTT-3.8.4-3", "MQTT-3.8.3-3"])
def test_resubscribing_replaces_the_subscription_options(make_probe, topic_prefix):
    """A SUBSCRIBE with a filter identical to an existing subscription replaces it, options included:
    after re-subscribing with No Local = 1 the client no longer gets its own messages, and after
    re-subscribing with No Local = 0 it gets them again."""
    topic, sentinel = f"{topic_prefix}/renl", f"{topic_prefix}/sentinel"
    me = make_probe(name="self").connect()
    other = make_probe(name="other").connect()
    granted(me.subscribe(Subscription(topic, 1), Subscription(sentinel, 1)))
    granted(me.subscribe(Subscription(topic, 1, no_local=True)))
    me.publish(topic, b"after no-local on", qos=1)
    got = delivered(other, me, sentinel)
    assert not got, f"No Local = 1 set by re-subscribing did not take effect: received {shown(got)}"
    granted(me.subscribe(Subscription(topic, 1, no_local=False)))
    me.publish(topic, b"after no-local off", qos=1)
    got = delivered(other, me, sentinel)
    assert [(m.topic, m.payload) for m in got] == [(topic, b"after no-local off")], (
        f"No Local = 0 set by re-subscribing did not take effect: received {shown(got)}"
    )


@case(v5=["MQTT-3.3.1-12", "MQTT-3.3.1-13"], requires=["retain_available"])
def test_retain_as_published_keeps_or_clears_the_retain_flag(make_probe, topic_prefix):
    """Retain As Published = 1 forwards a live message with the RETAIN flag it was published with;
    Retain As Published = 0 always clears it. Retained messages sent because of the subscription carry
    RETAIN = 1 either way."""
    topic, sentinel = f"{topic_prefix}/rap", f"{topic_prefix}/sentinel"
    pub = make_probe(name="pub").connect()
    pub.publish(topic, b"stored", qos=1, retain=True)
    keep = make_probe(name="rap1").connect()
    granted(keep.subscribe(Subscription(topic, 1, retain_as_published=True), Subscription(sentinel, 1)))
    clear = make_probe(name="rap0").connect()
    granted(clear.subscribe(Subscription(topic, 1, retain_as_published=False), Subscription(sentinel, 1)))
    for probe in (keep, clear):
        probe.ack(probe.wait_for(Publish, topic=topic, payload=b"stored", retain=True))
    pub.publish(topic, b"live-retained", qos=1, retain=True)
    pub.publish(topic, b"live-plain", qos=1, retain=False)
    got_keep = delivered(pub, keep, sentinel)
    got_clear = until_sentinel(clear, sentinel)
    assert [(m.payload, m.retain) for m in got_keep] == [(b"live-retained", True), (b"live-plain", False)], (
        f"Retain As Published 1 received {shown(got_keep)}"
    )
    assert [(m.payload, m.retain) for m in got_clear] == [(b"live-retained", False), (b"live-plain", False)], (
        f"Retain As Published 0 received {shown(got_clear)}"
    )
    pub.publish(topic, b"", qos=1, retain=True)


def _retained_setup(make_probe, topic_prefix):
    topic = f"{topic_prefix}/rh"
    pub = make_probe(name="pub").connect()
    pub.publish(topic, b"stored", qos=1, retain=True)
    return pub, topic


def _retained_on_subscribe(probe, subscription) -> list[Publish]:
    """Subscribe and collect what arrives up to a PINGRESP barrier (the retained messages, if any)."""
    granted(probe.subscribe(subscription))
    return until_barrier(probe)


@case(v5=["MQTT-3.3.1-9", "MQTT-3.8.4-4"], requires=["retain_available"])
def test_retain_handling_0_sends_retained_on_every_subscribe(make_probe, topic_prefix):
    """Retain Handling 0: the matching retained message is sent (RETAIN = 1) when the subscription is
    made, and again when an identical subscription is made over it."""
    pub, topic = _retained_setup(make_probe, topic_prefix)
    sub = make_probe(name="sub").connect()
    for attempt in ("new", "existing"):
        got = _retained_on_subscribe(sub, Subscription(topic, 1, retain_handling=0))
        assert [(m.payload, m.retain) for m in got] == [(b"stored", True)], (
            f"Retain Handling 0, {attempt} subscription: received {shown(got)}"
        )
    pub.publish(topic, b"", qos=1, retain=True)


@case(v5=["MQTT-3.3.1-10"], requires=["retain_available"])
def test_retain_handling_1_sends_retained_only_for_a_new_subscription(make_probe, topic_prefix):
    """Retain Handling 1: the retained message is sent when the subscription did not exist, and not when
    the same filter is subscribed again while the subscription exists."""
    pub, topic = _retained_setup(make_probe, topic_prefix)
    sub = make_probe(name="sub").connect()
    got = _retained_on_subscribe(sub, Subscription(topic, 1, retain_handling=1))
    assert [(m.payload, m.retain) for m in got] == [(b"stored", True)], (
        f"Retain Handling 1, new subscription: received {shown(got)}"
    )
    got = _retained_on_subscribe(sub, Subscription(topic, 1, retain_handling=1))
    assert not got, f"Retain Handling 1, existing subscription: received {shown(got)}"
    pub.publish(topic, b"", qos=1, retain=True)


@case(v5=["MQTT-3.3.1-11"], requires=["retain_available"])
def test_retain_handling_2_sends_no_retained(make_probe, topic_prefix):
    """Retain Handling 2: no retained message is sent when subscribing, for a new or an existing
    subscription; messages published afterwards are delivered as usual."""
    pub, topic = _retained_setup(make_probe, topic_prefix)
    sub = make_probe(name="sub").connect()
    for attempt in ("new", "existing"):
        got = _retained_on_subscribe(sub, Subscription(topic, 1, retain_handling=2))
        assert not got, f"Retain Handling 2, {attempt} subscription: received {shown(got)}"
    pub.publish(topic, b"live", qos=1)
    sub.receive(topic=topic, payload=b"live", retain=False)
    pub.publish(topic, b"", qos=1, retain=True)
