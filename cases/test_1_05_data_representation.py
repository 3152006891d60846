"""1.5 Data representation: UTF-8 strings (ill-formed, surrogates, U+0000, the BOM), string pairs and
Variable Byte Integers, field by field, as the server receives them."""

import pytest

from conformance import Publish, Subscribe, Subscription, Unsubscribe, Will, case, craft, raw_string
from conformance.codec import Pingreq, Properties, encode, encode_varint
from conformance.codec.utf8 import ILL_FORMED_UTF8, SURROGATES
from conformance.steps.common import delivered, subscriber
from conformance.steps.malformed import (
    BOM,
    MALFORMED,
    NULL,
    SURROGATE,
    expect_rejected,
    property_bytes,
    raw_properties,
    reject,
    string_with,
)

# -- where a string can be broken -------------------------------------------------------------------
# Each builder returns the packet with the string field replaced by ``raw`` (length-prefixed bytes).


def _publish_topic(probe, prefix, raw):
    return craft(Publish(topic=f"{prefix}/t", payload=b"x"), topic=raw)


def _subscribe_filter(probe, prefix, raw):
    packet = Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{prefix}/t"),))
    return craft(packet, replace={"topic_filter[0]": raw})


def _unsubscribe_filter(probe, prefix, raw):
    packet = Unsubscribe(packet_id=probe.packet_id(), topic_filters=(f"{prefix}/t",))
    return craft(packet, replace={"topic_filter[0]": raw})


SESSION_FIELDS = {
    "publish-topic": _publish_topic,
    "subscribe-filter": _subscribe_filter,
    "unsubscribe-filter": _unsubscribe_filter,
}


def _client_id(probe, prefix, raw):
    return craft(probe.connect_packet(), client_id=raw)


def _will_topic(probe, prefix, raw):
    return craft(probe.connect_packet(will=Will(topic=f"{prefix}/will", payload=b"w")), will_topic=raw)


def _username(probe, prefix, raw):
    return craft(probe.connect_packet(username=probe.username or "mqttc"), username=raw)


CONNECT_FIELDS = {"client-id": _client_id, "will-topic": _will_topic, "username": _username}


def _text(prefix: str, field: str) -> str:
    """The well-formed text the bad bytes go into: a client id stays short and alphanumeric."""
    return "mqttcbad" if field == "client-id" else f"{prefix}/bad"


# -- ill-formed UTF-8, surrogates, U+0000 ------------------------------------------------------------
@case("MQTT-1.5.3-1", "MQTT-4.8.0-1", v5=["MQTT-1.5.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("bad", [pytest.param(v, id=k) for k, v in {**ILL_FORMED_UTF8, **SURROGATES}.items()])
def test_ill_formed_utf8_in_topic_name_closes_the_connection(probe, topic_prefix, bad):
    """A Topic Name that is not well-formed UTF-8 (a stray continuation byte, 0xFF, a cut sequence, an
    overlong form, a code point above U+10FFFF, an encoded surrogate) is a malformed packet: the server
    closes the connection (5.0: reason 0x81 if it says why)."""
    reject(probe, _publish_topic(probe, topic_prefix, string_with(bad, f"{topic_prefix}/bad")), MALFORMED)


@case("MQTT-1.5.3-1", "MQTT-4.8.0-1", v5=["MQTT-1.5.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("field", list(SESSION_FIELDS))
def test_surrogate_in_a_string_field_closes_the_connection(probe, topic_prefix, field):
    """The encoding of a surrogate code point (U+D800) in any UTF-8 string the client sends after
    connecting (Topic Name, Topic Filter of SUBSCRIBE or UNSUBSCRIBE) makes the packet malformed: the
    server closes the connection."""
    raw = string_with(SURROGATE, _text(topic_prefix, field))
    reject(probe, SESSION_FIELDS[field](probe, topic_prefix, raw), MALFORMED)


@case("MQTT-1.5.3-2", "MQTT-4.8.0-1", v5=["MQTT-1.5.4-2", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("field", list(SESSION_FIELDS))
def test_null_character_in_a_string_field_closes_the_connection(probe, topic_prefix, field):
    """A UTF-8 string carrying U+0000 (Topic Name, Topic Filter of SUBSCRIBE or UNSUBSCRIBE) makes the
    packet malformed: the server closes the connection."""
    raw = string_with(NULL, _text(topic_prefix, field))
    reject(probe, SESSION_FIELDS[field](probe, topic_prefix, raw), MALFORMED)


@case("MQTT-1.5.3-1", "MQTT-3.1.4-1", v5=["MQTT-1.5.4-1", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("field", list(CONNECT_FIELDS))
def test_surrogate_in_a_connect_string_closes_without_connack(make_probe, topic_prefix, field):
    """A surrogate code point in a CONNECT string (Client Identifier, Will Topic, User Name) makes the
    CONNECT malformed: the server closes the connection, in 3.1.1 without any CONNACK (5.0 may send a
    CONNACK 0x81 first)."""
    probe = make_probe()
    raw = string_with(SURROGATE, _text(topic_prefix, field))
    reject(probe, CONNECT_FIELDS[field](probe, topic_prefix, raw), MALFORMED, connecting=True)


@case("MQTT-1.5.3-2", "MQTT-3.1.4-1", v5=["MQTT-1.5.4-2", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("field", list(CONNECT_FIELDS))
def test_null_character_in_a_connect_string_closes_without_connack(make_probe, topic_prefix, field):
    """U+0000 in a CONNECT string (Client Identifier, Will Topic, User Name) makes the CONNECT
    malformed: the server closes the connection, in 3.1.1 without any CONNACK."""
    probe = make_probe()
    raw = string_with(NULL, _text(topic_prefix, field))
    reject(probe, CONNECT_FIELDS[field](probe, topic_prefix, raw), MALFORMED, connecting=True)


@case(v5=["MQTT-1.5.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("prop", [pytest.param(0x03, id="content-type"), pytest.param(0x08, id="response-topic")])
def test_ill_formed_utf8_in_a_string_property_closes_the_connection(probe, topic_prefix, prop):
    """A string property (Content Type, Response Topic) of a PUBLISH carrying a surrogate code point
    makes the packet malformed: the server closes the connection."""
    props = raw_properties((prop, string_with(SURROGATE, f"{topic_prefix}/p")))
    reject(probe, Publish(topic=f"{topic_prefix}/t", payload=b"x", properties=props), MALFORMED)


@case(v5=["MQTT-1.5.7-1", "MQTT-1.5.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("packet", ["publish", "subscribe"])
@pytest.mark.parametrize("half", ["name", "value"])
def test_user_property_with_ill_formed_half_closes_the_connection(probe, topic_prefix, half, packet):
    """Both strings of a User Property must be well-formed UTF-8: a surrogate in either the name or the
    value makes the packet malformed, and the server closes the connection."""
    name = string_with(SURROGATE, "name") if half == "name" else raw_string(b"name")
    value = string_with(SURROGATE, "value") if half == "value" else raw_string(b"value")
    props = raw_properties((0x26, name + value))
    if packet == "publish":
        item = Publish(topic=f"{topic_prefix}/t", payload=b"x", properties=props)
    else:
        item = Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{topic_prefix}/t"),),
                         properties=props)
    reject(probe, item, MALFORMED)


@case(v5=["MQTT-1.5.7-1", "MQTT-1.5.4-2", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_user_property_with_null_in_connect_closes_without_accepting(make_probe):
    """A User Property of CONNECT whose value carries U+0000 makes the CONNECT malformed: the server
    closes the connection (a CONNACK, if any, refuses with 0x81)."""
    probe = make_probe()
    props = raw_properties((0x26, raw_string(b"name") + string_with(NULL, "value")))
    reject(probe, probe.connect_packet(properties=props), MALFORMED, connecting=True)


# -- well-formed strings pass unchanged ----------------------------------------------------------------
@case("MQTT-1.5.3-1", v5=["MQTT-1.5.4-1"])
def test_well_formed_multibyte_utf8_is_accepted_and_kept(make_probe, topic_prefix):
    """Well-formed UTF-8 of every length (2, 3 and 4 byte sequences, a code point beyond the BMP) is
    not an error: a Topic Name made of them is accepted and delivered unchanged."""
    topic = f"{topic_prefix}/\u00e9/\u20ac/A\U0002a6d4"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.publish(topic, b"utf8", qos=1)
    sub.receive(topic=topic, payload=b"utf8")


BOM_TOPICS = {
    "topic-start": lambda prefix: f"{BOM}{prefix}/bom",
    "level-start": lambda prefix: f"{prefix}/{BOM}bom",
    "level-end": lambda prefix: f"{prefix}/bom{BOM}",
}


@case("MQTT-1.5.3-3", v5=["MQTT-1.5.4-3"])
@pytest.mark.parametrize("where", list(BOM_TOPICS))
def test_bom_in_a_topic_is_kept_not_stripped(make_probe, topic_prefix, where):
    """The bytes EF BB BF are the character U+FEFF wherever they stand and the receiver never drops
    them: a subscription to a topic holding U+FEFF gets the publications to exactly that topic, with
    U+FEFF in the delivered Topic Name, and none of those to the same topic without it."""
    topic = BOM_TOPICS[where](topic_prefix)
    stripped = topic.replace(BOM, "")
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=1)
    pub = make_probe().connect()
    pub.publish(stripped, b"without", qos=1)
    pub.publish(topic, b"with", qos=1)
    got = [(p.topic, p.payload) for p in delivered(pub, sub, sentinel)]
    assert got == [(topic, b"with")], (
        f"subscribed to {topic!r} (U+FEFF kept); expected only the publication to that topic, got {got}"
    )


@case(v5=["MQTT-1.5.4-3"])
def test_bom_in_properties_is_kept_not_stripped(make_probe, topic_prefix):
    """U+FEFF at the start of a User Property name and value and of a Content Type is kept: the
    subscriber receives those strings byte for byte as published."""
    topic = f"{topic_prefix}/bomprops"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pair = (f"{BOM}name", f"{BOM}value")
    pub.publish(topic, b"x", qos=1, content_type=f"{BOM}text/plain", user_property=[pair])
    sub.receive(topic=topic, content_type=f"{BOM}text/plain", user_property=[pair])


# -- Variable Byte Integers (5.0: minimal encoding) ---------------------------------------------------
def _padded_remaining_length(probe, prefix):
    body = encode(Publish(topic=f"{prefix}/t", payload=b"x"), probe.level)[2:]
    return craft(Publish(topic=f"{prefix}/t", payload=b"x"), remaining_length_bytes=_pad(len(body)))


def _pad(value: int) -> bytes:
    return encode_varint(value, min_bytes=2)


VARINTS = {
    # PINGREQ's Remaining Length 0 written as 80 00: a lenient reader would answer PINGRESP.
    "remaining-length-pingreq": lambda probe, prefix: craft(Pingreq(), remaining_length_bytes=_pad(0)),
    "remaining-length-publish": _padded_remaining_length,
    "property-length": lambda probe, prefix: craft(Publish(topic=f"{prefix}/t", payload=b"x"),
                                                   properties=_pad(0)),
    # Payload Format Indicator (0x01) with its identifier written as 81 00.
    "property-identifier": lambda probe, prefix: craft(Publish(topic=f"{prefix}/t", payload=b"x"),
                                                       properties=b"\x03" + _pad(0x01) + b"\x00"),
    # Subscription Identifier 1 written as 81 00 (a server without them may say 0xA1 instead).
    "subscription-identifier": lambda probe, prefix: craft(
        Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{prefix}/t"),)),
        properties=property_bytes((0x0B, _pad(1)))),
}


@case(v5=["MQTT-1.5.5-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("where", list(VARINTS))
def test_non_minimal_variable_byte_integer_is_malformed(probe, topic_prefix, where):
    """A Variable Byte Integer must use as few bytes as its value needs: one padded with a 0x80 byte and
    a trailing 0x00 (Remaining Length, Property Length, a property identifier, a Subscription Identifier)
    makes the packet malformed and the server closes the connection."""
    codes = (MALFORMED, 0xA1) if where == "subscription-identifier" else (MALFORMED,)
    probe.send(VARINTS[where](probe, topic_prefix))
    expect_rejected(probe, *codes)


@case(v5=["MQTT-1.5.5-1", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_non_minimal_property_length_in_connect_is_malformed(make_probe):
    """CONNECT's Property Length 0 written in two bytes (80 00) makes the CONNECT malformed: the server
    closes the connection without accepting it."""
    probe = make_probe()
    reject(probe, craft(probe.connect_packet(properties=Properties()), properties=_pad(0)), MALFORMED,
           connecting=True)
