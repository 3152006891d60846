"""3.3.2.3 PUBLISH properties (5.0): what the server forwards unaltered (Payload Format Indicator,
Response Topic, Correlation Data, User Property, Content Type), Request/Response, and how it treats
a publisher that breaks the property rules (wildcard Response Topic, ill-formed UTF-8, Subscription
Identifier from a client, invalid payload format)."""

from conformance import Informational, NonStrict, Properties, Puback, Publish, case
from conformance.steps.common import delivered, subscriber
from conformance.steps.v5 import (
    CONTENT_TYPE,
    CORRELATION_DATA,
    RESPONSE_TOPIC_SUFFIX,
    USER_PROPERTIES,
    codes_text,
    judge_refusal,
    refusal,
)

FORWARDED = ["MQTT-3.3.2-4", "MQTT-3.3.2-15", "MQTT-3.3.2-16", "MQTT-3.3.2-17", "MQTT-3.3.2-18",
             "MQTT-3.3.2-20"]


def _application_properties(topic_prefix: str) -> Properties:
    return Properties(
        payload_format_indicator=1,
        response_topic=f"{topic_prefix}/{RESPONSE_TOPIC_SUFFIX}",
        correlation_data=CORRELATION_DATA,
        content_type=CONTENT_TYPE,
        user_property=USER_PROPERTIES,
    )


def _assert_forwarded(got: Publish, sent: Properties, who: str) -> None:
    for name in ("payload_format_indicator", "response_topic", "correlation_data", "content_type"):
        assert got.properties.get(name) == sent.get(name), (
            f"{who}: {name} forwarded as {got.properties.get(name)!r}, published as {sent.get(name)!r}"
        )
    forwarded = got.properties.all("user_property")
    assert forwarded == sent.all("user_property"), (
        f"{who}: User Properties forwarded as {forwarded}, published as {sent.all('user_property')} (all of them, "
        f"in the same order, are required)"
    )


@case(v5=FORWARDED)
def test_application_properties_reach_every_subscriber_unaltered(make_probe, topic_prefix):
    """Payload Format Indicator, Response Topic, Correlation Data, Content Type and every User Property
    (repeated names, an empty name, non-ASCII text, an order sorting would change) reach each
    subscriber exactly as published: at QoS 0, at QoS 1 and through a wildcard subscription."""
    topic = f"{topic_prefix}/props/a"
    sent = _application_properties(topic_prefix)
    at_qos0 = subscriber(make_probe, topic, qos=0)
    at_qos1 = subscriber(make_probe, f"{topic_prefix}/props/+", f"{topic_prefix}/sentinel", qos=1)
    pub = make_probe().connect()
    pub.publish(topic, "données ✓", qos=1, properties=sent)
    got = delivered(pub, at_qos1, f"{topic_prefix}/sentinel")
    assert [p.topic for p in got] == [topic], f"QoS 1 subscriber received {got}"
    _assert_forwarded(got[0], sent, "QoS 1 wildcard subscriber")
    assert got[0].payload == "données ✓".encode()
    _assert_forwarded(at_qos0.expect(Publish, topic=topic, qos=0), sent, "QoS 0 subscriber")


@case(v5=["MQTT-3.3.2-4"])
def test_payload_format_indicator_zero_is_forwarded_as_unspecified(make_probe, topic_prefix):
    """A Payload Format Indicator of 0 (unspecified bytes) reaches the subscriber as 0; the spec makes 0
    equivalent to no indicator, so an absent one is accepted too. It must never turn into 1."""
    topic = f"{topic_prefix}/pfi0"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.publish(topic, b"\x00\xff\xfe binary", qos=1, payload_format_indicator=0)
    got = sub.receive(topic=topic, payload=b"\x00\xff\xfe binary")
    assert got.properties.get("payload_format_indicator", 0) == 0, (
        f"Payload Format Indicator 0 forwarded as {got.properties.get('payload_format_indicator')}"
    )


@case(v5=["MQTT-3.3.2-4"],
      expectation="forwarded unaltered (PASS), or refused with Reason Code 0x99 (INFORMATIONAL: the server "
                  "validates payloads); any other refusal is NON-STRICT")
def test_payload_format_indicator_with_ill_formed_utf8_payload(make_probe, topic_prefix):
    """A payload flagged as UTF-8 (Payload Format Indicator 1) that is not well-formed UTF-8: the server
    may validate it and refuse it with 0x99 (Payload format invalid) in the PUBACK or a DISCONNECT;
    if it does not validate, it forwards payload and indicator unaltered."""
    topic = f"{topic_prefix}/pfi1"
    sub = subscriber(make_probe, topic, f"{topic_prefix}/sentinel", qos=1)
    pub = make_probe().connect()
    bad = b"caf\xc3 \xed\xa0\x80 \xff"  # truncated sequence, a surrogate, a byte UTF-8 never uses
    pub.send(Publish(topic=topic, payload=bad, qos=1, packet_id=7, properties=Properties(payload_format_indicator=1)))
    result = refusal(pub, accepted_by=(Puback,))
    if result.closed:
        if result.code in (None, 0x99):
            how = "closed the connection" + ("" if result.code is None else " after DISCONNECT 0x99")
            raise Informational(f"the server validates payloads: it {how}")
        raise NonStrict(f"the server refused the payload with DISCONNECT {codes_text([result.code])}; "
                        f"0x99 (Payload format invalid) is the Reason Code for it")
    answer = result.answers[-1]
    assert answer.packet_id == 7, f"PUBACK for packet id {answer.packet_id}, expected 7"
    before = delivered(pub, sub, f"{topic_prefix}/sentinel")
    if answer.reason_code >= 0x80:
        assert not before, f"the server refused the message (PUBACK 0x{answer.reason_code:02X}) but delivered it"
        if answer.reason_code == 0x99:
            raise Informational("the server validates payloads: PUBACK 0x99 (Payload format invalid)")
        raise NonStrict(f"the server refused the payload with PUBACK {codes_text([answer.reason_code], 'PUBACK')}; "
                        f"0x99 (Payload format invalid) is the Reason Code for it")
    assert len(before) == 1, f"the subscriber received {len(before)} messages, expected the one published"
    got = before[0]
    assert got.payload == bad, f"payload forwarded as {got.payload!r}, published as {bad!r}"
    assert got.properties.get("payload_format_indicator") == 1, (
        f"Payload Format Indicator 1 forwarded as {got.properties.get('payload_format_indicator')}"
    )


@case(v5=["MQTT-3.3.2-15", "MQTT-3.3.2-16"])
def test_request_response_round_trip(make_probe, topic_prefix):
    """Request/Response: the responder receives the request's Response Topic and Correlation Data
    unaltered, publishes its answer to that Response Topic with the same Correlation Data, and the
    requester receives the answer with the Correlation Data unaltered."""
    request_topic = f"{topic_prefix}/service/request"
    response_topic = f"{topic_prefix}/client/{RESPONSE_TOPIC_SUFFIX}"
    requester = subscriber(make_probe, response_topic, qos=1)
    responder = subscriber(make_probe, request_topic, qos=1)
    requester.publish(request_topic, b"what time is it?", qos=1,
                      response_topic=response_topic, correlation_data=CORRELATION_DATA)
    request = responder.receive(topic=request_topic, payload=b"what time is it?")
    assert request.properties.get("response_topic") == response_topic, (
        f"Response Topic forwarded as {request.properties.get('response_topic')!r}, published as {response_topic!r}"
    )
    assert request.properties.get("correlation_data") == CORRELATION_DATA, (
        f"Correlation Data forwarded as {request.properties.get('correlation_data')!r}"
    )
    responder.publish(request.properties.get("response_topic"), b"noon", qos=1,
                      correlation_data=request.properties.get("correlation_data"))
    answer = requester.receive(topic=response_topic, payload=b"noon")
    assert answer.properties.get("correlation_data") == CORRELATION_DATA, (
        f"Correlation Data of the response forwarded as {answer.properties.get('correlation_data')!r}"
    )
    assert "response_topic" not in answer.properties, "the response gained a Response Topic on the way"


@case(v5=FORWARDED, requires=["retain_available"])
def test_retained_message_keeps_its_properties(make_probe, topic_prefix):
    """A retained message sent to a later subscriber carries the properties it was published with."""
    topic = f"{topic_prefix}/retained"
    sent = _application_properties(topic_prefix)
    pub = make_probe().connect()
    pub.publish(topic, b"stored", qos=1, retain=True, properties=sent)
    sub = make_probe().connect()
    sub.subscribe(topic, qos=1)
    _assert_forwarded(sub.receive(topic=topic, payload=b"stored", retain=True), sent, "retained delivery")
    pub.publish(topic, b"", qos=1, retain=True)  # clear the retained message


@case(v5=FORWARDED)
def test_queued_message_keeps_its_properties(make_probe, client_id, topic_prefix):
    """A message queued for a disconnected client with a persistent session carries the properties it
    was published with when the session resumes."""
    topic = f"{topic_prefix}/queued"
    sent = _application_properties(topic_prefix)
    with make_probe(client_id).connect(clean_start=False, session_expiry=300) as first:
        first.subscribe(topic, qos=1)
    make_probe().connect().publish(topic, b"waited", qos=1, properties=sent)
    resumed = make_probe(client_id).connect(clean_start=False, session_expiry=0)
    _assert_forwarded(resumed.receive(topic=topic, payload=b"waited"), sent, "queued delivery")


@case(v5=["MQTT-4.13.1-1"],
      expectation="connection closed (DISCONNECT 0x82 if any); a server that forwards it is NON-STRICT")
def test_response_topic_with_wildcard_is_a_protocol_error(make_probe, topic_prefix):
    """A Response Topic is a Topic Name: a wildcard in it is a Protocol Error, which the server answers
    by closing the connection (with DISCONNECT 0x82 Protocol Error if it sends one)."""
    topic = f"{topic_prefix}/rt"
    probe = make_probe().connect()
    probe.send(Publish(topic=topic, payload=b"x", qos=1, packet_id=1,
                       properties=Properties(response_topic=f"{topic_prefix}/+/reply")))
    judge_refusal(refusal(probe), {0x82}, "Response Topic with a '+' wildcard")


@case(v5=["MQTT-1.5.4-1", "MQTT-4.13.1-1"])
def test_ill_formed_utf8_in_string_properties_is_malformed(make_probe, topic_prefix):
    """Response Topic and Content Type are UTF-8 Encoded Strings: ill-formed UTF-8 in either makes the
    PUBLISH a Malformed Packet, and the server closes the connection (DISCONNECT 0x81 if any)."""
    for name in ("response_topic", "content_type"):
        probe = make_probe().connect()
        probe.send(Publish(topic=f"{topic_prefix}/utf8", payload=b"x", qos=1, packet_id=1,
                           properties=Properties(**{name: b"bad\xed\xa0\x80utf8"})))  # an encoded surrogate
        judge_refusal(refusal(probe), {0x81}, f"{name} with an encoded surrogate (ill-formed UTF-8)")


@case(v5=["MQTT-4.13.1-1"],
      expectation="connection closed (DISCONNECT 0x82 if any); a server that accepts it is NON-STRICT")
def test_subscription_identifier_from_a_client_is_a_protocol_error(make_probe, topic_prefix):
    """Only the server puts Subscription Identifiers in a PUBLISH: one sent by a client is a Protocol
    Error, which the server answers by closing the connection."""
    probe = make_probe().connect()
    probe.send(Publish(topic=f"{topic_prefix}/sid", payload=b"x", qos=1, packet_id=1,
                       properties=Properties(subscription_identifier=5)))
    judge_refusal(refusal(probe), {0x82}, "PUBLISH from a client with a Subscription Identifier")
