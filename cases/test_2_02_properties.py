"""2.2.2 Properties (MQTT 5.0): the Property Length, identifiers unknown or out of place, properties
given twice, and values outside their range, in CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and the
acknowledgements the client sends.

Which reason code the spec gives: an identifier not valid for the packet type, or a value not of its
data type, makes the packet malformed (0x81, 2.2.2.2); a property given twice where that is not allowed,
or a value the property does not allow, is a protocol error (0x82)."""

import pytest

from conformance import (
    SHOULD,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
    case,
    craft,
    raw_string,
)
from conformance.codec import Properties
from conformance.steps.malformed import (
    MALFORMED,
    PROTOCOL_ERROR,
    ack_due,
    expect_rejected,
    property_bytes,
    raw_properties,
    reject,
)

SUB_IDS_UNSUPPORTED = 0xA1  # a server without Subscription Identifiers may give this reason first


# -- packets to carry the properties ---------------------------------------------------------------
def _publish(probe, prefix, props):
    return Publish(topic=f"{prefix}/t", payload=b"x", properties=props)


def _subscribe(probe, prefix, props):
    return Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{prefix}/t"),), properties=props)


def _unsubscribe(probe, prefix, props):
    return Unsubscribe(packet_id=probe.packet_id(), topic_filters=(f"{prefix}/t",), properties=props)


CARRIERS = {"PUBLISH": _publish, "SUBSCRIBE": _subscribe, "UNSUBSCRIBE": _unsubscribe}
ACKS = {"PUBACK": Puback, "PUBREC": Pubrec, "PUBREL": Pubrel, "PUBCOMP": Pubcomp}


def _carry(probe, prefix, capabilities, packet: str, props: Properties):
    """``packet`` (a name) carrying ``props``; an acknowledgement is sent where one is due."""
    if packet in ACKS:
        kind = ACKS[packet]
        # With properties the acknowledgement is written in full: Reason Code 0x00, then the properties.
        return kind(packet_id=ack_due(probe, f"{prefix}/ack", kind, capabilities), properties=props)
    return CARRIERS[packet](probe, prefix, props)


# -- Property Length --------------------------------------------------------------------------------
@case(v5=["MQTT-2.2.2-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("packet", list(CARRIERS))
def test_missing_property_length_is_malformed(probe, topic_prefix, packet):
    """A packet with no properties still carries a Property Length of 0. Without it the bytes that
    follow are read as the Property Length and what comes after, and the packet is malformed: the
    server closes the connection. (The PUBLISH has an empty payload, so it simply ends too early.)"""
    item = CARRIERS[packet](probe, topic_prefix, Properties())
    if packet == "PUBLISH":
        item = Publish(topic=f"{topic_prefix}/t", payload=b"")
    reject(probe, craft(item, drop=["properties"]), MALFORMED)


@case(v5=["MQTT-2.2.2-1", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("where", ["properties", "will_properties"])
def test_connect_without_property_length_is_malformed(make_probe, topic_prefix, where):
    """A CONNECT (or its Will Properties) without a Property Length does not conform: the server closes
    the connection without accepting it."""
    probe = make_probe()
    connect = probe.connect_packet(will=Will(topic=f"{topic_prefix}/will", payload=b"w"))
    reject(probe, craft(connect, drop=[where]), MALFORMED, connecting=True)


LENGTHS = {
    # Property Length 5 with no property bytes behind it: it runs past the end of the packet.
    "length-beyond-packet": property_bytes(length=5),
    # Message Expiry Interval (a Four Byte Integer) cut after three bytes by the Property Length.
    "length-cuts-a-value": property_bytes((0x02, b"\x00\x00\x00\x3c"), length=4),
    # Content Type whose string length says 50 bytes inside a property block of 7.
    "string-beyond-length": property_bytes((0x03, raw_string(b"text", length=50))),
    # A Property Length that ends in the middle of the identifier's Variable Byte Integer.
    "identifier-cut": b"\x01\x80",
}


@case(v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("shape", list(LENGTHS))
def test_property_block_that_disagrees_with_its_length_is_malformed(probe, topic_prefix, shape):
    """The Property Length must cover the properties exactly: a length that runs past the packet, one
    that cuts a value short, or a value whose own length runs past the block makes the PUBLISH
    malformed, and the server closes the connection."""
    item = craft(Publish(topic=f"{topic_prefix}/t", payload=b""), properties=LENGTHS[shape])
    reject(probe, item, MALFORMED)


# -- identifiers ------------------------------------------------------------------------------------
UNKNOWN_IDS = {
    "0x00": (0x00, b"\x00"),
    "0x04": (0x04, b"\x00"),
    "0x2B": (0x2B, b"\x00"),
    "0x7F": (0x7F, b"\x00"),
    "0x80-two-byte-id": (0x80, b"\x00"),
}


@case(v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("ident", list(UNKNOWN_IDS))
def test_unknown_property_identifier_is_malformed(probe, topic_prefix, ident):
    """A property identifier that MQTT 5.0 does not define cannot be parsed (its type, and so its
    length, is unknown): the PUBLISH is malformed and the server closes the connection."""
    reject(probe, _publish(probe, topic_prefix, raw_properties(UNKNOWN_IDS[ident])), MALFORMED)


@case(v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("packet", ["SUBSCRIBE", "UNSUBSCRIBE", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP"])
def test_unknown_property_identifier_in_other_packets_is_malformed(probe, topic_prefix, capabilities, packet):
    """An undefined property identifier (0x2B) makes any packet malformed, not only PUBLISH: in
    SUBSCRIBE, UNSUBSCRIBE and each acknowledgement the server closes the connection."""
    reject(probe, _carry(probe, topic_prefix, capabilities, packet, raw_properties((0x2B, b"\x00"))), MALFORMED)


MISPLACED = {
    "PUBLISH-session-expiry-interval": ("PUBLISH", "session_expiry_interval", 10),
    "PUBLISH-receive-maximum": ("PUBLISH", "receive_maximum", 10),
    "PUBLISH-assigned-client-identifier": ("PUBLISH", "assigned_client_identifier", "x"),
    "PUBLISH-reason-string": ("PUBLISH", "reason_string", "x"),
    "PUBLISH-will-delay-interval": ("PUBLISH", "will_delay_interval", 10),
    "SUBSCRIBE-message-expiry-interval": ("SUBSCRIBE", "message_expiry_interval", 10),
    "SUBSCRIBE-topic-alias": ("SUBSCRIBE", "topic_alias", 1),
    "UNSUBSCRIBE-subscription-identifier": ("UNSUBSCRIBE", "subscription_identifier", 1),
    "UNSUBSCRIBE-content-type": ("UNSUBSCRIBE", "content_type", "x"),
    "PUBACK-session-expiry-interval": ("PUBACK", "session_expiry_interval", 10),
    "PUBREL-topic-alias": ("PUBREL", "topic_alias", 1),
}


@case(v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("where", list(MISPLACED))
def test_property_not_allowed_in_the_packet_is_malformed(probe, topic_prefix, capabilities, where):
    """Each property belongs to certain packet types; one in a packet it does not belong to (Session
    Expiry Interval in PUBLISH, Topic Alias in SUBSCRIBE ...) makes the packet malformed: the server
    closes the connection."""
    packet, name, value = MISPLACED[where]
    reject(probe, _carry(probe, topic_prefix, capabilities, packet, Properties.of([(name, value)])), MALFORMED)


CONNECT_MISPLACED = {
    "server-keep-alive": ("properties", "server_keep_alive", 10),
    "maximum-qos": ("properties", "maximum_qos", 1),
    "topic-alias": ("properties", "topic_alias", 1),
    "subscription-identifier": ("properties", "subscription_identifier", 1),
    "payload-format-indicator": ("properties", "payload_format_indicator", 1),
    "will-delay-interval-outside-will": ("properties", "will_delay_interval", 10),
    "will-session-expiry-interval": ("will_properties", "session_expiry_interval", 10),
    "will-receive-maximum": ("will_properties", "receive_maximum", 10),
}


@case(v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("where", list(CONNECT_MISPLACED))
def test_property_not_allowed_in_connect_is_malformed(make_probe, topic_prefix, where):
    """A CONNECT carrying a property that does not belong to it (a CONNACK-only one, a PUBLISH-only
    one, a Will property outside the Will, a CONNECT property inside the Will) does not conform: the
    server closes the connection without accepting it."""
    block, name, value = CONNECT_MISPLACED[where]
    probe = make_probe()
    will = Will(topic=f"{topic_prefix}/will", payload=b"w")
    props = Properties.of([(name, value)])
    if block == "will_properties":
        will = Will(topic=will.topic, payload=will.payload, properties=props)
        props = Properties()
    reject(probe, probe.connect_packet(will=will, properties=props), MALFORMED, connecting=True)


# -- properties given twice -------------------------------------------------------------------------
DUPLICATES = {
    "PUBLISH-payload-format-indicator": ("PUBLISH", "payload_format_indicator", 1, 0),
    "PUBLISH-message-expiry-interval": ("PUBLISH", "message_expiry_interval", 60, 120),
    "PUBLISH-content-type": ("PUBLISH", "content_type", "a", "b"),
    "PUBLISH-response-topic": ("PUBLISH", "response_topic", "r/a", "r/b"),
    "PUBLISH-correlation-data": ("PUBLISH", "correlation_data", b"a", b"b"),
    "SUBSCRIBE-subscription-identifier": ("SUBSCRIBE", "subscription_identifier", 1, 2),
    "PUBACK-reason-string": ("PUBACK", "reason_string", "a", "b"),
    "PUBREC-reason-string": ("PUBREC", "reason_string", "a", "b"),
    "PUBREL-reason-string": ("PUBREL", "reason_string", "a", "b"),
    "PUBCOMP-reason-string": ("PUBCOMP", "reason_string", "a", "b"),
}


@case(v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("where", list(DUPLICATES))
def test_property_given_twice_is_a_protocol_error(probe, topic_prefix, capabilities, where):
    """Only User Property (and Subscription Identifier in a PUBLISH to a client) may appear more than
    once; any other property given twice is a protocol error, and the server closes the connection
    (reason 0x82; a server without Subscription Identifiers may answer a SUBSCRIBE with 0xA1)."""
    packet, name, first, second = DUPLICATES[where]
    props = Properties.of([(name, first), (name, second)])
    codes = (PROTOCOL_ERROR, SUB_IDS_UNSUPPORTED) if name == "subscription_identifier" else (PROTOCOL_ERROR,)
    reject(probe, _carry(probe, topic_prefix, capabilities, packet, props), *codes)


CONNECT_DUPLICATES = {
    "session-expiry-interval": ("properties", "session_expiry_interval", 10, 20),
    "receive-maximum": ("properties", "receive_maximum", 10, 20),
    "maximum-packet-size": ("properties", "maximum_packet_size", 1000, 2000),
    "topic-alias-maximum": ("properties", "topic_alias_maximum", 1, 2),
    "request-response-information": ("properties", "request_response_information", 0, 1),
    "request-problem-information": ("properties", "request_problem_information", 1, 0),
    "will-delay-interval": ("will_properties", "will_delay_interval", 1, 2),
    "will-payload-format-indicator": ("will_properties", "payload_format_indicator", 0, 1),
    "will-message-expiry-interval": ("will_properties", "message_expiry_interval", 60, 120),
    "will-content-type": ("will_properties", "content_type", "a", "b"),
    "will-response-topic": ("will_properties", "response_topic", "r/a", "r/b"),
    "will-correlation-data": ("will_properties", "correlation_data", b"a", b"b"),
}


@case(v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1", "MQTT-4.13.2-1"])
@pytest.mark.parametrize("where", list(CONNECT_DUPLICATES))
def test_connect_property_given_twice_is_a_protocol_error(make_probe, topic_prefix, where):
    """A CONNECT or Will property given twice is a protocol error: the server closes the connection
    without accepting it (a CONNACK, if it sends one, carries 0x82 and the close follows)."""
    block, name, first, second = CONNECT_DUPLICATES[where]
    probe = make_probe()
    props = Properties.of([(name, first), (name, second)])
    will = Will(topic=f"{topic_prefix}/will", payload=b"w")
    if block == "will_properties":
        will = Will(topic=will.topic, payload=will.payload, properties=props)
        props = Properties()
    reject(probe, probe.connect_packet(will=will, properties=props), PROTOCOL_ERROR, connecting=True)


# -- values a property does not allow ----------------------------------------------------------------
CONNECT_VALUES = {
    "receive-maximum-0": Properties(receive_maximum=0),
    "maximum-packet-size-0": Properties(maximum_packet_size=0),
    "request-problem-information-2": Properties(request_problem_information=2),
    "request-response-information-2": Properties(request_response_information=2),
    "authentication-data-without-method": Properties(authentication_data=b"secret"),
}


@case(v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1", "MQTT-4.13.2-1"])
@pytest.mark.parametrize("value", list(CONNECT_VALUES))
def test_connect_property_value_not_allowed_is_a_protocol_error(make_probe, value):
    """Some CONNECT property values are protocol errors: Receive Maximum 0, Maximum Packet Size 0,
    Request Problem / Response Information other than 0 or 1, Authentication Data without an
    Authentication Method. The server closes the connection without accepting it."""
    probe = make_probe()
    reject(probe, probe.connect_packet(properties=CONNECT_VALUES[value]), PROTOCOL_ERROR, connecting=True)


@case(v5=["MQTT-4.13.1-1"])
def test_subscription_identifier_0_is_a_protocol_error(probe, topic_prefix):
    """A Subscription Identifier runs from 1 to 268,435,455; a SUBSCRIBE with 0 is a protocol error and
    the server closes the connection (a server without Subscription Identifiers may say 0xA1)."""
    item = _subscribe(probe, topic_prefix, Properties(subscription_identifier=0))
    reject(probe, item, PROTOCOL_ERROR, SUB_IDS_UNSUPPORTED)


@case(v5=["MQTT-4.13.1-1"], level=SHOULD,
      expectation="the spec defines only 0 and 1 but names no error for other values: accepting is NON-STRICT")
@pytest.mark.parametrize("where", ["publish", "will"])
def test_payload_format_indicator_other_than_0_or_1_is_rejected(make_probe, topic_prefix, where):
    """The Payload Format Indicator is 0 (bytes) or 1 (UTF-8); the value 2 is not defined. A server
    should treat it as an error and close the connection."""
    probe = make_probe()
    if where == "will":
        will = Will(topic=f"{topic_prefix}/will", payload=b"w", properties=Properties(payload_format_indicator=2))
        reject(probe, probe.connect_packet(will=will), PROTOCOL_ERROR, MALFORMED, connecting=True)
        return
    probe.connect()
    probe.send(_publish(probe, topic_prefix, Properties(payload_format_indicator=2)))
    expect_rejected(probe, PROTOCOL_ERROR, MALFORMED)
