"""4.3 Quality of Service levels and protocol flows: packet identifiers the server allocates, packet
identifier reuse, duplicate QoS 2 PUBLISHes, 4.5 message receipt."""


from conformance import Properties, Puback, Pubcomp, Publish, Pubrec, Pubrel, Unsupported, case
from conformance.steps.common import SENTINEL, delivered, subscriber, until_sentinel
from conformance.steps.publish import OpenFlows, note, persistent_subscriber, resume

IN_FLIGHT = 6  # messages per QoS and wave


@case("MQTT-2.3.1-1", "MQTT-2.3.1-4", "MQTT-4.3.2-1", "MQTT-4.3.3-1",
      v5=["MQTT-2.2.1-4", "MQTT-4.3.2-1", "MQTT-4.3.3-1"], requires=["qos1"])
def test_server_gives_each_in_flight_message_a_distinct_nonzero_id(make_probe, topic_prefix, capabilities):
    """Messages the server sends at QoS 1 and 2 carry non-zero packet identifiers, and none takes an
    identifier still in use: not that of an unacknowledged QoS 1 message, nor that of a QoS 2 message
    before its PUBCOMP (also after PUBREL). The subscriber keeps as many flows open as the server
    allows."""
    levels = list(range(1, capabilities["maximum_qos"] + 1))
    sub = subscriber(make_probe, *(f"{topic_prefix}/q/{qos}" for qos in levels), qos=max(levels))
    pub = make_probe().connect()
    flows = OpenFlows(sub)
    # Wave 1: QoS 1 and 2 interleaved; the QoS 2 flows are then held at the PUBREL stage.
    for i in range(IN_FLIGHT):
        for qos in levels:
            pub.publish(f"{topic_prefix}/q/{qos}", f"a{i}", qos=qos)
    flows.receive(IN_FLIGHT * len(levels))
    flows.settle()
    held = sorted(i for i, stage in flows.in_use.items() if stage == "pubrel")
    note(sub, f"identifiers held at the PUBREL stage: {held}")
    # Wave 2: QoS 1 messages, sent while those identifiers are still in use.
    for i in range(IN_FLIGHT):
        pub.publish(f"{topic_prefix}/q/1", f"b{i}", qos=1)
    flows.receive(IN_FLIGHT)
    flows.finish()
    ids = [p.packet_id for p in flows.received if p.qos]
    assert all(ids), f"a QoS > 0 PUBLISH without a non-zero packet identifier: {ids}"
    assert not flows.reused, (
        "PUBLISHes took identifiers still in use: "
        + ", ".join(f"{p.payload.decode(errors='replace')} with {p.packet_id}" for p in flows.reused))


@case("MQTT-4.3.2-2", v5=["MQTT-4.3.2-5", "MQTT-4.3.2-4"])
def test_qos1_packet_id_reused_after_puback_is_a_new_message(make_probe, topic_prefix):
    """After the server has sent PUBACK, a PUBLISH reusing the packet identifier is a new message,
    even with DUP 1: it is acknowledged and delivered too."""
    topic = f"{topic_prefix}/reuse1"
    sub = subscriber(make_probe, topic, qos=1)
    pub = make_probe().connect()
    pub.send(Publish(topic=topic, payload=b"first", qos=1, packet_id=7))
    pub.expect(Puback, packet_id=7)
    pub.send(Publish(topic=topic, payload=b"second", qos=1, packet_id=7, dup=True))
    pub.expect(Puback, packet_id=7)
    sub.receive(topic=topic, payload=b"first")
    sub.receive(topic=topic, payload=b"second")


@case("MQTT-4.3.3-2", requires=["qos2"])
def test_qos2_duplicate_before_pubrel_is_acknowledged_but_delivered_once(make_probe, topic_prefix):
    """Until PUBREL, every repeat of a QoS 2 PUBLISH with the same packet identifier gets another PUBREC
    but is not delivered again; PUBREL is answered by PUBCOMP with the same identifier. (3.1.1 lets a
    client retransmit on the same connection; 5.0 forbids it, so its version of this case resends after
    reconnecting: test_publisher_resending_after_reconnect_is_delivered_once.)"""
    topic = f"{topic_prefix}/twice"
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=2)
    pub = make_probe().connect()
    pub.send(Publish(topic=topic, payload=b"only once", qos=2, packet_id=0x0202))
    pub.expect(Pubrec, packet_id=0x0202)
    pub.send(Publish(topic=topic, payload=b"only once", qos=2, packet_id=0x0202, dup=True))
    pub.expect(Pubrec, packet_id=0x0202)
    pub.send(Publish(topic=topic, payload=b"only once", qos=2, packet_id=0x0202, dup=True))
    pub.expect(Pubrec, packet_id=0x0202)
    pub.send(Pubrel(packet_id=0x0202))
    pub.expect(Pubcomp, packet_id=0x0202)
    got = [p.payload for p in delivered(pub, sub, sentinel)]
    assert got == [b"only once"], f"the subscriber got {got}"


@case("MQTT-4.3.3-2", v5=["MQTT-4.3.3-12"], requires=["qos2"])
def test_qos2_packet_id_reused_after_pubcomp_is_a_new_message(make_probe, topic_prefix):
    """After the server has sent PUBCOMP, a QoS 2 PUBLISH reusing the packet identifier is a new
    message: it is acknowledged and delivered as well."""
    topic = f"{topic_prefix}/reuse2"
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=2)
    pub = make_probe().connect()
    for payload in (b"first", b"second"):
        pub.send(Publish(topic=topic, payload=payload, qos=2, packet_id=9))
        pub.expect(Pubrec, packet_id=9)
        pub.send(Pubrel(packet_id=9))
        pub.expect(Pubcomp, packet_id=9)
    got = [p.payload for p in delivered(pub, sub, sentinel)]
    assert got == [b"first", b"second"], f"the subscriber got {got}"


@case("MQTT-4.3.3-2", v5=["MQTT-4.3.3-11", "MQTT-3.7.2-1"], requires=["qos2"])
def test_pubrel_for_an_unknown_id_is_answered_with_pubcomp(probe):
    """The server answers every PUBREL with a PUBCOMP carrying the same packet identifier, even when it
    holds no QoS 2 state for that identifier (5.0: Reason Code 0x00 or 0x92 Packet Identifier not found)."""
    probe.send(Pubrel(packet_id=0x3131))
    probe.expect(Pubcomp, packet_id=0x3131, reason_code={0x00, 0x92})


@case(v5=["MQTT-4.3.3-9", "MQTT-3.5.2-1"], requires=["denied_topic", "qos2"])
def test_qos2_packet_id_reused_after_error_pubrec_is_a_new_message(make_probe, topic_prefix, capabilities):
    """After a PUBREC with a Reason Code of 0x80 or more (here: a topic the client may not publish to),
    a PUBLISH reusing that packet identifier is a new message: acknowledged afresh and delivered."""
    topic = f"{topic_prefix}/after-error"
    sentinel = f"{topic_prefix}/sentinel"
    sub = subscriber(make_probe, topic, sentinel, qos=2)
    pub = make_probe().connect()
    denied = f"{capabilities['denied_topic'].rstrip('/')}/{topic_prefix}"
    pub.send(Publish(topic=denied, payload=b"refused", qos=2, packet_id=0x0909))
    refused = pub.next()
    if refused is None and pub.closed is not None:
        raise Unsupported("the server closed the connection on an unauthorised QoS 2 PUBLISH: "
                          "no error PUBREC to reuse a packet identifier after")
    assert isinstance(refused, Pubrec) and refused.packet_id == 0x0909, (
        f"expected PUBREC for packet identifier 0x0909 (or a close), got {refused}")
    if refused.reason_code < 0x80:
        raise Unsupported(f"the server accepted the unauthorised PUBLISH (PUBREC 0x{refused.reason_code:02X}): "
                          "no error PUBREC to reuse a packet identifier after")
    pub.expect_nothing()  # the refused flow is over: no PUBREL is expected from us, nothing from the server
    pub.send(Publish(topic=topic, payload=b"fresh", qos=2, packet_id=0x0909))
    pub.expect(Pubrec, packet_id=0x0909, reason_code={0x00})
    pub.send(Pubrel(packet_id=0x0909))
    pub.expect(Pubcomp, packet_id=0x0909, reason_code=0x00)
    got = [p.payload for p in delivered(pub, sub, sentinel)]
    assert got == [b"fresh"], f"the subscriber got {got}"


EXPIRY = 1  # seconds: the smallest Message Expiry Interval that can lapse


@case(v5=["MQTT-4.3.3-13"], timer=True, requires=["qos2"])
def test_qos2_handshake_continues_after_the_message_expired(make_probe, topic_prefix):
    """The server keeps answering a QoS 2 flow after the message's expiry interval has passed: a late
    PUBREL still gets PUBCOMP (Reason Code Success) with the same packet identifier."""
    pub = make_probe().connect()
    pub.send(Publish(topic=f"{topic_prefix}/exp", payload=b"short-lived", qos=2, packet_id=0x0D0D,
                     properties=_expiry(EXPIRY)))
    pub.expect(Pubrec, packet_id=0x0D0D)
    _let_expire(pub, EXPIRY)
    pub.send(Pubrel(packet_id=0x0D0D))
    pub.expect(Pubcomp, packet_id=0x0D0D, reason_code=0x00)


@case(v5=["MQTT-4.3.3-7", "MQTT-4.4.0-1"], timer=True, requires=["qos2"])
def test_sent_qos2_message_is_not_expired(make_probe, client_id, topic_prefix):
    """Once the server has sent a QoS 2 PUBLISH it does not apply the message's expiry to it: the
    unacknowledged PUBLISH is resent on session resumption even after its expiry interval has passed."""
    topic = f"{topic_prefix}/sent"
    sub = persistent_subscriber(make_probe, client_id, topic, qos=2)
    pub = make_probe().connect()
    pub.publish(topic, b"in flight", qos=2, properties=_expiry(EXPIRY))
    first = sub.expect(Publish, topic=topic, payload=b"in flight", qos=2, dup=False)
    sub.close()
    _let_expire(pub, EXPIRY)
    again = resume(make_probe, client_id)
    again.expect(Publish, topic=topic, payload=b"in flight", qos=2, dup=True, packet_id=first.packet_id)
    again.ack(first)


def _expiry(seconds: int) -> Properties:
    return Properties(message_expiry_interval=seconds)


def _let_expire(probe, seconds: float) -> None:
    """Wait until an expiry interval of ``seconds`` has certainly lapsed (a timer, not an absence
    proof); ``probe`` then proves its connection is still up."""
    note(probe, f"waiting {seconds + 1.0:.1f} s for a {seconds} s expiry interval to lapse")
    # A bounded wait on the probe's own connection: it also catches anything the broker sends meanwhile.
    unexpected = probe.next(timeout=seconds + 1.0)
    assert unexpected is None, f"unexpected packet while waiting for the expiry: {unexpected}"
    probe.ping()


@case("MQTT-4.5.0-1", v5=["MQTT-4.5.0-1"])
def test_message_goes_to_every_matching_session(make_probe, client_id, topic_prefix):
    """An accepted message is added to every session with a matching subscription: each connected
    subscriber gets it exactly once, and a disconnected persistent session gets it when it resumes."""
    topic = f"{topic_prefix}/fan/out"
    sentinel = f"{topic_prefix}/sentinel"
    persistent_subscriber(make_probe, client_id, topic, qos=1).disconnect()
    subs = [subscriber(make_probe, topic, sentinel, qos=1) for _ in range(3)]
    pub = make_probe().connect()
    pub.publish(topic, b"to all", qos=1)
    pub.publish(sentinel, SENTINEL, qos=1)
    for sub in subs:
        got = [p.payload for p in until_sentinel(sub, sentinel)]
        assert got == [b"to all"], f"{sub.name} got {got} before the sentinel"
    resume(make_probe, client_id).receive(topic=topic, payload=b"to all")
