"""3.1.2.11.4 / 3.2.2.3.6 Maximum Packet Size (5.0): the server never sends a client a packet above the
client's Maximum Packet Size (it drops an oversized PUBLISH and carries on as if it had sent it), and it
refuses a packet above its own advertised Maximum Packet Size."""

from dataclasses import replace

from conformance import (
    Connack,
    NonStrict,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Unsupported,
    case,
    encode,
)
from conformance.steps.common import delivered
from conformance.steps.v5 import assert_within, judge_refusal, refusal, sized_publish

LIMIT = 256  # the client's Maximum Packet Size: room for CONNACK, acks and small PUBLISHes


def _limited(make_probe, limit: int = LIMIT, client_id: str | None = None, **connect):
    probe = make_probe(client_id)
    extra = connect.pop("properties", Properties())
    return probe.connect(properties=Properties.of([*extra, ("maximum_packet_size", limit)]), **connect)


def _publisher(make_probe, largest: int):
    """A connected publisher, if the server's own Maximum Packet Size lets it send ``largest`` bytes."""
    pub = make_probe().connect()
    server_limit = pub.connack.properties.get("maximum_packet_size") if pub.connack else None
    if server_limit is not None and server_limit < largest:
        raise Unsupported(f"the server's Maximum Packet Size ({server_limit}) is below the {largest} bytes needed")
    return pub


@case(v5=["MQTT-3.1.2-24", "MQTT-3.1.2-25"])
def test_server_drops_publish_far_above_the_client_maximum(make_probe, topic_prefix):
    """A subscriber with Maximum Packet Size 256 is never sent a PUBLISH of four times that size (QoS 0
    and QoS 1), gets a small one published after them, and its connection carries on. (The boundary,
    one byte over, is the case below: this one tells a broker that ignores the limit altogether.)"""
    topic, sentinel = f"{topic_prefix}/mps", f"{topic_prefix}/sentinel"
    sub = _limited(make_probe)
    sub.subscribe(topic, sentinel, qos=1)
    pub = _publisher(make_probe, 4 * LIMIT)
    huge0 = sized_publish(topic, 4 * LIMIT, qos=0, fill=b"h")
    huge1 = sized_publish(topic, 4 * LIMIT, qos=1, packet_id=1, fill=b"H")
    small = sized_publish(topic, LIMIT - 60, qos=1, packet_id=2, fill=b"s")
    for packet in (huge0, huge1, small):
        pub.send(packet)
        if packet.qos:
            pub.expect(Puback, packet_id=packet.packet_id, reason_code={0x00, 0x10})
    got = delivered(pub, sub, sentinel)
    assert_within(sub, LIMIT)
    payloads = [p.payload for p in got]
    assert small.payload in payloads, "the PUBLISH that fits was not delivered after the oversized ones"
    sub.ping()


@case(v5=["MQTT-3.1.2-24", "MQTT-3.1.2-25"])
def test_server_drops_publish_above_the_client_maximum(make_probe, topic_prefix):
    """A subscriber with Maximum Packet Size 256 gets the messages that fit (one of exactly 256 bytes
    included, when the server forwards PUBLISHes unchanged in size) and not the ones that do not, at
    QoS 0 and QoS 1; no packet it receives is larger than 256 bytes, and the connection carries on."""
    topic, sentinel = f"{topic_prefix}/mps", f"{topic_prefix}/sentinel"
    sub = _limited(make_probe)
    sub.subscribe(topic, sentinel, qos=1)
    pub = _publisher(make_probe, 4 * LIMIT)
    small = sized_publish(topic, LIMIT - 60, qos=1, packet_id=1, fill=b"s")
    exact = sized_publish(topic, LIMIT, qos=1, packet_id=2, fill=b"e")
    over = sized_publish(topic, LIMIT + 1, qos=1, packet_id=3, fill=b"o")
    huge = sized_publish(topic, 4 * LIMIT, qos=0, fill=b"h")
    for packet in (small, over, huge, exact):
        pub.send(packet)
        if packet.qos:
            pub.expect(Puback, packet_id=packet.packet_id, reason_code={0x00, 0x10})
    got = delivered(pub, sub, sentinel)
    assert_within(sub, LIMIT)
    payloads = [p.payload for p in got]
    assert small.payload in payloads, (
        f"a PUBLISH well under the limit was not delivered; received {[p[:12] for p in payloads]}"
    )
    assert over.payload not in payloads and huge.payload not in payloads  # assert_within already proved it
    forwarded_small = next(p for p in got if p.payload == small.payload)
    unchanged = len(encode(forwarded_small, "5.0")) == len(encode(small, "5.0"))
    if unchanged:
        assert exact.payload in payloads, (
            f"a PUBLISH of exactly the client's Maximum Packet Size ({LIMIT} bytes) was dropped; only larger "
            f"packets may be"
        )
    sub.ping()  # the connection is still up and answering


@case(v5=["MQTT-3.1.2-25", "MQTT-3.1.2-24"], requires=["qos1"])
def test_dropped_publish_does_not_hold_the_flow_control_quota(make_probe, topic_prefix):
    """A QoS 1 message too large for the subscriber is discarded as if it had been sent and acknowledged:
    with Receive Maximum 1 the next message still comes through, since no acknowledgement for the
    discarded one can ever arrive."""
    topic = f"{topic_prefix}/quota"
    sub = _limited(make_probe, properties=Properties(receive_maximum=1))
    sub.subscribe(topic, qos=1)
    pub = _publisher(make_probe, 2 * LIMIT)
    pub.send(sized_publish(topic, 2 * LIMIT, qos=1, packet_id=1, fill=b"o"))
    pub.expect(Puback, packet_id=1, reason_code={0x00, 0x10})
    pub.publish(topic, b"after", qos=1)
    got = sub.expect(Publish, topic=topic)
    assert_within(sub, LIMIT)
    assert got.payload == b"after", f"received {got.payload[:12]!r}..., expected the small message"
    sub.ack(got)


@case(v5=["MQTT-3.1.2-25", "MQTT-3.1.2-24"], requires=["qos1"])
def test_dropped_publish_is_not_sent_again_after_reconnect(make_probe, client_id, topic_prefix):
    """A QoS 1 message discarded because it was too large for the client counts as sent and done: when
    the session resumes on a new connection without the size limit, the message is not sent."""
    topic, sentinel = f"{topic_prefix}/again", f"{topic_prefix}/sentinel"
    sub = _limited(make_probe, client_id=client_id, clean_start=False, session_expiry=300)
    sub.subscribe(topic, sentinel, qos=1)
    pub = _publisher(make_probe, 2 * LIMIT)
    big = sized_publish(topic, 2 * LIMIT, qos=1, packet_id=1, fill=b"o")
    pub.send(big)
    pub.expect(Puback, packet_id=1, reason_code={0x00, 0x10})
    delivered(pub, sub, sentinel)
    assert_within(sub, LIMIT)
    sub.disconnect()
    resumed = make_probe(client_id).connect(clean_start=False, session_expiry=0)
    again = [p for p in delivered(pub, resumed, sentinel)]
    assert not again, (
        f"the discarded message was sent on the new connection ({len(encode(again[0], '5.0'))} bytes, "
        f"dup={again[0].dup}): the server did not treat it as sent"
    )


@case(v5=["MQTT-4.13.1-1"], requires=["maximum_packet_size"])
def test_packet_above_the_server_maximum_is_refused(probe, topic_prefix):
    """The server accepts a PUBLISH of exactly the Maximum Packet Size it advertised in CONNACK, and
    answers one byte more with a close (DISCONNECT 0x95 Packet too large if it sends one)."""
    limit = probe.connack.properties.get("maximum_packet_size") if probe.connack else None
    if not limit:
        raise Unsupported("the server's CONNACK gives no Maximum Packet Size")
    if limit > 16 * 1024 * 1024:
        raise Unsupported(f"the server's Maximum Packet Size ({limit} bytes) is too large to exceed in a test")
    topic = f"{topic_prefix}/big"
    probe.send(sized_publish(topic, limit, qos=1, packet_id=1))
    probe.expect(Puback, packet_id=1, reason_code=lambda c: c < 0x80)
    probe.send(sized_publish(topic, limit + 1, qos=1, packet_id=2))
    judge_refusal(refusal(probe), {0x95}, f"PUBLISH of {limit + 1} bytes (server Maximum Packet Size {limit})")


# -- optional properties the server leaves out rather than exceed the client's Maximum Packet Size ----
DROPPABLE = ("reason_string", "user_property")


def _bare_size(packet) -> int:
    """The packet's size without its Reason String and User Properties."""
    kept = Properties.of([(k, v) for k, v in packet.properties if k not in DROPPABLE])
    return len(encode(replace(packet, properties=kept), "5.0"))


def _responses(make_probe, topic_prefix: str, limit: int | None, outgoing: bool = True) -> tuple[object, list]:
    """Provoke the acknowledgements a server sends (PUBACK and PUBREC with 0x10 No matching subscribers,
    PUBCOMP, SUBACK, PUBREL of an outgoing QoS 2 message, UNSUBACK) on one
    connection; returns (probe, responses). With ``outgoing``, the last response is the PUBREL and the one
    before it the QoS 2 PUBLISH the server sent to provoke it (not an acknowledgement)."""
    probe = _limited(make_probe, limit) if limit else make_probe().connect()
    topic = f"{topic_prefix}/acks"
    out = [probe.connack]
    probe.send(Publish(topic=f"{topic_prefix}/nobody", payload=b"x", qos=1, packet_id=1))
    out.append(probe.expect(Puback, packet_id=1))
    probe.send(Publish(topic=f"{topic_prefix}/nobody", payload=b"x", qos=2, packet_id=2))
    out.append(probe.expect(Pubrec, packet_id=2))
    probe.send(Pubrel(packet_id=2))
    out.append(probe.expect(Pubcomp, packet_id=2))
    probe.send(Subscribe(packet_id=4, subscriptions=(Subscription(topic, 2),)))
    out.append(probe.expect(Suback, packet_id=4))
    if outgoing:
        probe.send(Publish(topic=topic, payload=b"x", qos=2, packet_id=6))  # comes back to us at QoS 2
        probe.wait_for(Pubrec, packet_id=6)
        probe.send(Pubrel(packet_id=6))
        probe.wait_for(Pubcomp, packet_id=6)
        got = probe.wait_for(Publish, topic=topic)
        out.append(got)
        probe.send(Pubrec(packet_id=got.packet_id or 0))
        out.append(probe.wait_for(Pubrel, packet_id=got.packet_id))
        probe.send(Pubcomp(packet_id=got.packet_id or 0))
    probe.send(Unsubscribe(packet_id=5, topic_filters=(topic,)))
    out.append(probe.wait_for(Unsuback, packet_id=5))
    probe.expect_nothing()
    return probe, out


@case(v5=["MQTT-3.1.2-24", "MQTT-3.4.2-2", "MQTT-3.4.2-3", "MQTT-3.5.2-2", "MQTT-3.5.2-3", "MQTT-3.6.2-2",
          "MQTT-3.6.2-3", "MQTT-3.7.2-2", "MQTT-3.7.2-3", "MQTT-3.9.2-1", "MQTT-3.9.2-2", "MQTT-3.11.2-1",
          "MQTT-3.11.2-2"], requires=["qos2"])
def test_ack_properties_are_left_out_rather_than_exceed_the_client_maximum(make_probe, topic_prefix):
    """Where the server adds a Reason String or User Properties to its PUBACK, PUBREC, PUBREL, PUBCOMP,
    SUBACK or UNSUBACK, a client whose Maximum Packet Size leaves no room for them still gets every
    acknowledgement, with the same Reason Codes, only without those properties."""
    control, full = _responses(make_probe, topic_prefix, None)
    control.disconnect()
    acks = [p for p in full[1:] if not isinstance(p, Publish)]
    decorated = [p for p in acks if any(k in p.properties for k in DROPPABLE)]
    if not decorated:
        raise Unsupported("the server adds no Reason String or User Property to these acknowledgements")
    limit = max(_bare_size(p) for p in [full[0], *acks])
    if all(len(encode(p, "5.0")) <= limit for p in decorated):
        raise Unsupported("the acknowledgements with a Reason String or User Property are no larger than the "
                          "server's CONNACK, so no limit can separate them")
    # The server's own QoS 2 PUBLISH (which provokes its PUBREL) has to fit as well.
    outgoing = len(encode(next(p for p in full if isinstance(p, Publish)), "5.0")) <= limit
    if not outgoing:
        full = [p for p in full if not isinstance(p, Publish | Pubrel)]
    probe, limited = _responses(make_probe, f"{topic_prefix}/limited", limit, outgoing)
    assert_within(probe, limit)
    codes = [(p.name, getattr(p, "reason_code", getattr(p, "reason_codes", None))) for p in limited]
    expected = [(p.name, getattr(p, "reason_code", getattr(p, "reason_codes", None))) for p in full]
    assert codes == expected, f"with Maximum Packet Size {limit} the answers were {codes}, without it {expected}"


@case(v5=["MQTT-3.14.2-3", "MQTT-3.14.2-4", "MQTT-3.1.2-24"],
      expectation="DISCONNECT without its Reason String / User Property (a close without DISCONNECT is NON-STRICT)")
def test_disconnect_properties_are_left_out_rather_than_exceed_the_client_maximum(make_probe, topic_prefix):
    """A server whose DISCONNECT for a protocol error (Topic Alias 0) carries a Reason String or User
    Properties leaves them out for a client whose Maximum Packet Size has no room for them, and still
    sends the DISCONNECT with its Reason Code."""
    bad = Publish(topic=f"{topic_prefix}/zero", payload=b"x", qos=1, packet_id=1,
                  properties=Properties(topic_alias=0))
    control = make_probe().connect()
    control.send(bad)
    full = refusal(control).disconnect
    if full is None or not any(k in full.properties for k in DROPPABLE):
        raise Unsupported("the server's DISCONNECT for a protocol error carries no Reason String or User Property")
    connack_size = _bare_size(control.connack)
    limit = max(connack_size, _bare_size(full))
    if len(encode(full, "5.0")) <= limit:
        raise Unsupported(f"the server's DISCONNECT ({len(encode(full, '5.0'))} bytes) is no larger than its "
                          f"CONNACK ({connack_size} bytes)")
    probe = _limited(make_probe, limit)
    probe.send(bad)
    result = refusal(probe)
    assert result.closed, "the server kept the connection open after the protocol error it closed before"
    assert_within(probe, limit)
    if result.disconnect is None:
        raise NonStrict(f"with Maximum Packet Size {limit} the server closed without DISCONNECT; it should have "
                        f"sent DISCONNECT 0x{full.reason_code:02X} without the Reason String / User Property")
    assert result.disconnect.reason_code == full.reason_code, (
        f"DISCONNECT 0x{result.disconnect.reason_code:02X} with the limit, 0x{full.reason_code:02X} without it"
    )


def _connack(make_probe, limit: int | None, method: str | None):
    props = [("authentication_method", method)] if method else []
    if limit:
        props.append(("maximum_packet_size", limit))
    probe = make_probe()
    probe.send(probe.connect_packet(properties=Properties.of(props)))
    return probe, probe.expect(Connack)


@case(v5=["MQTT-3.2.2-19", "MQTT-3.2.2-20", "MQTT-3.1.2-24"])
def test_connack_properties_are_left_out_rather_than_exceed_the_client_maximum(make_probe):
    """Where the server adds a Reason String or User Properties to its CONNACK (accepting a connection,
    or refusing an unknown Authentication Method), a client whose Maximum Packet Size has no room for
    them gets the same CONNACK without those properties."""
    method = "mqttc-no-such-method"
    full = {m: _connack(make_probe, None, m)[1] for m in (None, method)}
    decorated = {m: c for m, c in full.items() if any(k in c.properties for k in DROPPABLE)}
    if not decorated:
        raise Unsupported("the server adds no Reason String or User Property to its CONNACK")
    for m, connack in decorated.items():
        limit = _bare_size(connack)
        probe, limited = _connack(make_probe, limit, m)
        assert_within(probe, limit)
        assert limited.reason_code == connack.reason_code, (
            f"CONNACK 0x{limited.reason_code:02X} with Maximum Packet Size {limit}, 0x{connack.reason_code:02X} "
            f"without it"
        )
