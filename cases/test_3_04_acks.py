"""3.4 PUBACK, 3.5 PUBREC, 3.6 PUBREL, 3.7 PUBCOMP: fixed-header flags, defined Reason Codes, and
optional properties left out when they would exceed the client's Maximum Packet Size."""

from conformance import Properties, Puback, Pubcomp, Publish, Pubrec, Pubrel, case, craft
from conformance.steps.common import subscriber
from conformance.steps.publish import defined_reason, wire_bytes, wire_size

# 5.0: MQTT-3.6.1-1 asks for a close; the DISCONNECT before it, if any, says Malformed Packet.
MALFORMED = {0x81}


@case("MQTT-3.6.1-1", "MQTT-4.8.0-1", v5=["MQTT-3.6.1-1", "MQTT-4.13.1-1"], requires=["qos2"])
def test_pubrel_with_wrong_flags_closes_the_connection(make_probe, topic_prefix):
    """A PUBREL whose fixed-header flags are not 0010 is malformed: the server closes the connection,
    even though the packet identifier names a QoS 2 flow waiting for its PUBREL."""
    for flags in (0b0000, 0b0011):
        pub = make_probe().connect()
        pub.send(Publish(topic=f"{topic_prefix}/rel", payload=b"x", qos=2, packet_id=0x0505))
        pub.expect(Pubrec, packet_id=0x0505)
        pub.send(craft(Pubrel(packet_id=0x0505), flags=flags))
        pub.expect_closed(reason_codes=MALFORMED)


@case("MQTT-3.6.1-1", v5=["MQTT-3.6.1-1", "MQTT-3.6.2-1"], requires=["qos2"])
def test_server_pubrel_has_flags_0010_and_a_defined_reason_code(make_probe, topic_prefix, mqtt_version):
    """The PUBREL the server sends after our PUBREC has fixed-header flags 0010 (5.0: and a Reason Code
    PUBREL defines)."""
    topic = f"{topic_prefix}/rel"
    sub = subscriber(make_probe, topic, qos=2)
    make_probe().connect().publish(topic, b"x", qos=2)
    got = sub.expect(Publish, topic=topic, qos=2)
    sub.send(Pubrec(packet_id=got.packet_id))
    pubrel = sub.expect(Pubrel, packet_id=got.packet_id)  # the decoder rejects any other flags
    first = wire_bytes(sub, pubrel)[0]
    assert first == 0x62, f"PUBREL fixed header byte is 0x{first:02X}, must be 0x62"
    if mqtt_version == "5.0":
        defined_reason(pubrel)
    sub.send(Pubcomp(packet_id=got.packet_id))
    sub.expect_nothing()


@case(v5=["MQTT-3.4.2-1", "MQTT-3.5.2-1", "MQTT-3.7.2-1"], requires=["qos2"])
def test_acknowledgements_carry_defined_reason_codes(make_probe, topic_prefix):
    """PUBACK, PUBREC and PUBCOMP the server sends carry Reason Codes their packet defines, and a
    success code (below 0x80) for an accepted publication, with or without matching subscribers
    (0x10 No matching subscribers is allowed only where none matched)."""
    topic = f"{topic_prefix}/matched"
    subscriber(make_probe, topic, qos=2)
    pub = make_probe().connect()
    for target, success in ((topic, {0x00}), (f"{topic_prefix}/nobody", {0x00, 0x10})):
        puback = pub.publish(target, b"one", qos=1)
        defined_reason(puback)
        assert puback.reason_code in success, (
            f"PUBACK for a publication to {target!r} has Reason Code 0x{puback.reason_code:02X}")
        pub.send(Publish(topic=target, payload=b"two", qos=2, packet_id=0x0202))
        pubrec = pub.expect(Pubrec, packet_id=0x0202)
        defined_reason(pubrec)
        assert pubrec.reason_code in success, (
            f"PUBREC for a publication to {target!r} has Reason Code 0x{pubrec.reason_code:02X}")
        pub.send(Pubrel(packet_id=0x0202))
        pubcomp = pub.expect(Pubcomp, packet_id=0x0202)
        defined_reason(pubcomp)
        assert pubcomp.reason_code == 0x00, (
            f"PUBCOMP for a PUBREL the server was waiting for has Reason Code 0x{pubcomp.reason_code:02X}")


@case(v5=["MQTT-3.4.2-1", "MQTT-3.5.2-1"], requires=["denied_topic", "qos1"])
def test_unauthorised_publish_is_refused_with_a_defined_reason_code(make_probe, topic_prefix, capabilities):
    """A QoS 1 or QoS 2 PUBLISH to a topic the client may not publish to is answered with a PUBACK or
    PUBREC carrying a Reason Code that packet defines (e.g. 0x87 Not authorized), or the connection is
    closed."""
    denied = f"{capabilities['denied_topic'].rstrip('/')}/{topic_prefix}"
    for qos, kind in ((1, Puback), (2, Pubrec))[: capabilities["maximum_qos"]]:
        pub = make_probe().connect()
        pub.send(Publish(topic=denied, payload=b"refused", qos=qos, packet_id=0x0808))
        answer = pub.next()
        if answer is None and pub.closed is not None:
            continue
        assert isinstance(answer, kind) and answer.packet_id == 0x0808, (
            f"expected {kind.__name__.upper()} for packet identifier 0x0808 (or a close), got {answer}")
        defined_reason(answer)
        if qos == 2 and answer.reason_code < 0x80:
            pub.send(Pubrel(packet_id=0x0808))
            defined_reason(pub.expect(Pubcomp, packet_id=0x0808))
        pub.expect_nothing()


SMALL = 24  # bytes: room for any acknowledgement without properties, little for a Reason String


@case(v5=["MQTT-3.4.2-2", "MQTT-3.4.2-3", "MQTT-3.5.2-2", "MQTT-3.5.2-3", "MQTT-3.7.2-2", "MQTT-3.7.2-3"],
      requires=["qos2"])
def test_acknowledgements_fit_the_client_maximum_packet_size(make_probe, topic_prefix, capabilities):
    """With a small Maximum Packet Size from the client, the server leaves out Reason String and User
    Properties rather than send a PUBACK, PUBREC or PUBCOMP larger than that size; checked on success
    and error paths (no subscribers, unknown packet identifier, an unauthorised topic if configured)."""
    pub = make_probe().connect(properties=Properties(maximum_packet_size=SMALL))
    acks = [pub.publish(f"{topic_prefix}/nobody", b"1", qos=1)]
    pub.send(Publish(topic=f"{topic_prefix}/nobody", payload=b"2", qos=2, packet_id=0x0202))
    acks.append(pub.expect(Pubrec, packet_id=0x0202))
    pub.send(Pubrel(packet_id=0x0202))
    acks.append(pub.expect(Pubcomp, packet_id=0x0202))
    pub.send(Pubrel(packet_id=0x7777))  # no such flow: a natural place for an explanatory string
    acks.append(pub.expect(Pubcomp, packet_id=0x7777))
    if capabilities.get("denied_topic"):
        denied = f"{capabilities['denied_topic'].rstrip('/')}/{topic_prefix}"
        for qos, packet_id in ((1, 0x0101), (2, 0x0303)):
            pub.send(Publish(topic=denied, payload=b"3", qos=qos, packet_id=packet_id))
            answer = pub.next()
            if answer is None:
                break  # the server closed the connection instead: nothing more to measure
            acks.append(answer)
            if isinstance(answer, Pubrec) and answer.reason_code < 0x80:
                pub.send(Pubrel(packet_id=packet_id))
                acks.append(pub.expect(Pubcomp, packet_id=packet_id))
    too_big = [(a.name, wire_size(pub, a)) for a in acks if wire_size(pub, a) > SMALL]
    assert not too_big, f"acknowledgements larger than the client's Maximum Packet Size {SMALL}: {too_big}"


@case(v5=["MQTT-3.6.2-2", "MQTT-3.6.2-3"], requires=["qos2"])
def test_server_pubrel_fits_the_client_maximum_packet_size(make_probe, topic_prefix):
    """The server's PUBREL stays within the subscriber's Maximum Packet Size (which leaves just room
    for the PUBLISH it receives): optional properties are left out rather than exceed it."""
    topic = f"{topic_prefix}/r"
    payload = b"p"
    # fixed header 2 + topic 2+len + packet id 2 + properties length 1 + payload; a little slack
    limit = 2 + 2 + len(topic.encode()) + 2 + 1 + len(payload) + 4
    sub = make_probe().connect(properties=Properties(maximum_packet_size=limit))
    sub.subscribe(topic, qos=2)
    make_probe().connect().publish(topic, payload, qos=2)
    got = sub.expect(Publish, topic=topic, qos=2)
    sub.send(Pubrec(packet_id=got.packet_id))
    pubrel = sub.expect(Pubrel, packet_id=got.packet_id)
    size = wire_size(sub, pubrel)
    assert size <= limit, f"PUBREL of {size} bytes exceeds the client's Maximum Packet Size {limit}"
    sub.send(Pubcomp(packet_id=got.packet_id))
