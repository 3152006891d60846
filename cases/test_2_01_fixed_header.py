"""2.1/2.2 Fixed header: packet types, the flag bits of every packet type, the Remaining Length, and
packets as a byte stream (split across writes or several in one)."""

import time

import pytest

from conformance import (
    Auth,
    Connack,
    Disconnect,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Raw,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    case,
    craft,
    encode,
    raw_string,
)
from conformance.codec.packets import REQUIRED_FLAGS, PacketType
from conformance.steps.common import subscriber
from conformance.steps.malformed import MALFORMED, PROTOCOL_ERROR, ack_due, reject, rejected
from conformance.transcript import IN


def _variants(kind: PacketType) -> list:
    """Two wrong flag nibbles per packet type: bit 1 flipped (the 0000/0010 mix-up) and bit 3 flipped."""
    required = REQUIRED_FLAGS[kind]
    return [pytest.param(kind, required ^ bad, id=f"{kind.name}-{required ^ bad:04b}") for bad in (0b0010, 0b1000)]


def _flags(*kinds: PacketType) -> list:
    return [variant for kind in kinds for variant in _variants(kind)]


ACKS = {PacketType.PUBACK: Puback, PacketType.PUBREC: Pubrec, PacketType.PUBCOMP: Pubcomp}


# -- flags ---------------------------------------------------------------------------------------------
@case("MQTT-2.2.2-1", "MQTT-2.2.2-2", "MQTT-4.8.0-1", v5=["MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBCOMP,
                                                   PacketType.PINGREQ))
def test_invalid_fixed_header_flags_close_the_connection(probe, topic_prefix, capabilities, kind, flags):
    """The flag bits of PUBACK, PUBREC, PUBCOMP and PINGREQ are reserved and must be 0000; a packet with
    any other value is malformed and the server closes the connection. The acknowledgements are sent
    where a good one is due, so only the flags are wrong."""
    if kind == PacketType.PINGREQ:
        packet = Pingreq()
    else:
        packet = ACKS[kind](packet_id=ack_due(probe, f"{topic_prefix}/ack", ACKS[kind], capabilities))
    reject(probe, craft(packet, flags=flags), MALFORMED)


@case("MQTT-3.6.1-1", "MQTT-2.2.2-2", "MQTT-4.8.0-1", v5=["MQTT-3.6.1-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.PUBREL))
def test_pubrel_with_flags_other_than_0010_closes_the_connection(probe, topic_prefix, capabilities, kind, flags):
    """PUBREL's flags must be 0010: a PUBREL with other flags, sent where one is due (after the server's
    PUBREC), is malformed and the server closes the connection."""
    packet_id = ack_due(probe, f"{topic_prefix}/rel", Pubrel, capabilities)
    reject(probe, craft(Pubrel(packet_id=packet_id), flags=flags), MALFORMED)


@case("MQTT-3.8.1-1", "MQTT-2.2.2-2", "MQTT-4.8.0-1", v5=["MQTT-3.8.1-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.SUBSCRIBE))
def test_subscribe_with_flags_other_than_0010_closes_the_connection(probe, topic_prefix, kind, flags):
    """SUBSCRIBE's flags must be 0010: a SUBSCRIBE with other flags is malformed, the server closes
    the connection and sends no SUBACK."""
    packet = Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{topic_prefix}/f"),))
    reject(probe, craft(packet, flags=flags), MALFORMED)


@case("MQTT-3.10.1-1", "MQTT-2.2.2-2", "MQTT-4.8.0-1", v5=["MQTT-3.10.1-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.UNSUBSCRIBE))
def test_unsubscribe_with_flags_other_than_0010_closes_the_connection(probe, topic_prefix, kind, flags):
    """UNSUBSCRIBE's flags must be 0010: an UNSUBSCRIBE with other flags is malformed, the server
    closes the connection and sends no UNSUBACK."""
    topic_filter = f"{topic_prefix}/f"
    probe.subscribe(topic_filter)
    reject(probe, craft(Unsubscribe(packet_id=probe.packet_id(), topic_filters=(topic_filter,)), flags=flags),
           MALFORMED)


@case("MQTT-3.1.4-1", "MQTT-2.2.2-2", v5=["MQTT-3.1.4-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.CONNECT))
def test_connect_with_reserved_flags_closes_without_connack(make_probe, kind, flags):
    """CONNECT's flags are reserved (0000): a CONNECT with others does not conform, and the server
    closes the connection without accepting it (3.1.1: without any CONNACK)."""
    probe = make_probe()
    reject(probe, craft(probe.connect_packet(), flags=flags), MALFORMED, connecting=True)


@case("MQTT-3.14.1-1", "MQTT-2.2.2-2", "MQTT-4.8.0-1", v5=["MQTT-3.14.1-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.DISCONNECT))
def test_disconnect_with_reserved_bits_is_an_error_so_the_will_is_published(make_probe, topic_prefix, kind, flags):
    """The server checks that DISCONNECT's reserved flag bits are zero. A DISCONNECT with a bit set is
    not a normal disconnection but an error: the connection closes and, as for any close that is not a
    normal DISCONNECT, the Will Message is published."""
    will_topic = f"{topic_prefix}/will"
    watcher = subscriber(make_probe, will_topic, qos=0)
    probe = make_probe().connect(will=Will(topic=will_topic, payload=b"gone"))
    probe.send(craft(Disconnect(), flags=flags))
    with rejected(probe, MALFORMED):
        watcher.expect(Publish, topic=will_topic, payload=b"gone")


@case(v5=["MQTT-3.15.1-1", "MQTT-2.1.3-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize(("kind", "flags"), _flags(PacketType.AUTH))
def test_auth_with_reserved_flags_closes_the_connection(probe, kind, flags):
    """AUTH's flags are reserved (0000): an AUTH with others is malformed and the server closes the
    connection. (This connection set no Authentication Method, so an AUTH at all is also a protocol
    error; either reason code is accepted.)"""
    reject(probe, craft(Auth(reason_code=0x19), flags=flags), MALFORMED, PROTOCOL_ERROR)


@case("MQTT-2.2.2-1", v5=["MQTT-2.1.3-1"])
def test_server_packets_carry_the_listed_flags(make_probe, topic_prefix, capabilities):
    """Every packet the server sends carries the fixed-header flags its type requires: 0000 for
    CONNACK, SUBACK, UNSUBACK, PINGRESP, PUBACK, PUBREC, PUBCOMP; 0010 for PUBREL; and PUBLISH flags
    that match the packet (QoS of the delivery, DUP 0 on a first delivery)."""
    top = min(2, capabilities.get("maximum_qos", 2))
    topic = f"{topic_prefix}/flags"
    probe = make_probe().connect()
    probe.subscribe(topic, qos=top)
    for qos in range(top + 1):  # our PUBLISH gets PUBACK / PUBREC+PUBCOMP; its delivery PUBLISH / PUBREL
        probe.publish(topic, f"q{qos}".encode(), qos=qos)
        probe.receive(topic=topic, payload=f"q{qos}".encode(), qos=qos)
    probe.unsubscribe(topic)
    probe.ping()
    wanted = {Connack, Suback, Unsuback, Pingresp, Publish, Puback} | ({Pubrec, Pubrel, Pubcomp} if top == 2 else set())
    seen: set[type] = set()
    for event in probe.transcript.events:
        if event.dir != IN or not event.data or event.packet is None:
            continue
        packet, flags = event.packet, event.data[0] & 0x0F
        seen.add(type(packet))
        if isinstance(packet, Publish):
            expected = (packet.qos << 1) | (0x01 if packet.retain else 0)
            assert flags & 0x06 == expected & 0x06 and not flags & 0x08, (
                f"delivery {packet.topic!r} at QoS {packet.qos} has flags {flags:04b} (DUP must be 0 on a first delivery)"
            )
        else:
            assert flags == REQUIRED_FLAGS[packet.TYPE], (
                f"{packet.name} carries flags {flags:04b}, its type requires {REQUIRED_FLAGS[packet.TYPE]:04b}"
            )
    missing = sorted(k.__name__ for k in wanted - seen)
    assert not missing, f"the flow should have produced {missing}"


# -- packet types ------------------------------------------------------------------------------------
@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_reserved_packet_type_0_closes_the_connection(probe):
    """Packet type 0 is reserved and never sent: the server closes the connection on receiving it (5.0
    names no code for it: Malformed Packet or Protocol Error)."""
    reject(probe, Raw(b"\x00\x00", "packet type 0 (reserved), Remaining Length 0"), MALFORMED, PROTOCOL_ERROR)


@case("MQTT-4.8.0-1")
def test_packet_type_15_is_forbidden_in_3_1_1(probe):
    """In MQTT 3.1.1 packet type 15 is reserved (5.0 made it AUTH): receiving it is a protocol violation
    and the server closes the connection."""
    reject(probe, Raw(b"\xf0\x00", "packet type 15 (reserved in 3.1.1), Remaining Length 0"))


# -- Remaining Length ---------------------------------------------------------------------------------
@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_remaining_length_of_five_bytes_closes_the_connection(probe):
    """The Remaining Length takes at most four bytes. A PINGREQ whose Remaining Length (zero) runs over
    five bytes is malformed: the server closes the connection instead of answering."""
    reject(probe, Raw(b"\xc0\x80\x80\x80\x80\x00", "PINGREQ, Remaining Length 0 written in five bytes"), MALFORMED)


def _subscribe(probe, prefix):
    return Subscribe(packet_id=probe.packet_id(), subscriptions=(Subscription(f"{prefix}/f", 0),))


def _body_length(packet, level) -> int:
    return len(encode(packet, level)) - 2  # one header byte, one Remaining Length byte for these small packets


def _longer_swallows_next_packet(probe, prefix):
    # Two bytes more than the SUBSCRIBE has: the PINGREQ behind it (C0 00) becomes a Topic Filter length.
    sub = _subscribe(probe, prefix)
    data = craft(sub, remaining_length=_body_length(sub, probe.level) + 2).encode(probe.level)
    return Raw(data + encode(Pingreq(), probe.level), "SUBSCRIBE whose Remaining Length swallows the PINGREQ behind it")


def _shorter_cuts_options(probe, prefix):
    # One byte less than the SUBSCRIBE has: it ends without its subscription options byte.
    sub = _subscribe(probe, prefix)
    return craft(sub, remaining_length=_body_length(sub, probe.level) - 1, truncate=len(encode(sub, probe.level)) - 1)


def _publish_packet_id_cut(probe, prefix):
    # A QoS 1 PUBLISH that ends one byte into its Packet Identifier.
    publish = Publish(topic=f"{prefix}/t", qos=1, packet_id=probe.packet_id())
    return craft(publish, drop=["packet_id", "properties"] if probe.v5 else ["packet_id"], append=b"\x00")


LENGTHS = {
    "longer-swallows-next-packet": _longer_swallows_next_packet,
    "shorter-cuts-options": _shorter_cuts_options,
    "pingreq-trailing-byte": lambda probe, prefix: Raw(b"\xc0\x01\x00", "PINGREQ with Remaining Length 1"),
    "subscribe-trailing-byte": lambda probe, prefix: craft(_subscribe(probe, prefix), append=b"\x00"),
    "publish-topic-beyond-packet": lambda probe, prefix: craft(
        Publish(topic=f"{prefix}/t", payload=b""), topic=raw_string(f"{prefix}/t".encode(), length=200)),
    "publish-packet-id-cut": _publish_packet_id_cut,
}


@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("shape", list(LENGTHS))
def test_remaining_length_that_disagrees_with_the_fields_closes_the_connection(probe, topic_prefix, shape):
    """The fields of a packet must fill its Remaining Length exactly: a length that runs past the
    fields, stops inside them, or leaves bytes over, or a field whose own length runs past the packet,
    makes the packet malformed and the server closes the connection without acting on it."""
    reject(probe, LENGTHS[shape](probe, topic_prefix), MALFORMED)


CONNECT_LENGTHS = {
    "last-field-cut": lambda c, level: craft(c, remaining_length=_body_length(c, level) - 3,
                                             truncate=len(encode(c, level)) - 3),
    "trailing-bytes": lambda c, level: craft(c, append=b"\x00\x00"),
    "protocol-name-cut": lambda c, level: craft(c, remaining_length=4, truncate=6),
}


@case("MQTT-3.1.4-1", "MQTT-4.8.0-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("shape", list(CONNECT_LENGTHS))
def test_connect_whose_length_disagrees_with_its_fields_closes_without_connack(make_probe, shape):
    """A CONNECT whose fields do not fill its Remaining Length exactly (the last field cut short,
    bytes left over after the last field, a length that ends inside the Protocol Name) does not conform:
    the server closes the connection without accepting it (3.1.1: without any CONNACK)."""
    probe = make_probe()
    connect = probe.connect_packet()
    reject(probe, CONNECT_LENGTHS[shape](connect, probe.level), MALFORMED, connecting=True)


# -- a byte stream --------------------------------------------------------------------------------------
PAUSE = 0.02  # lets each write leave as its own TCP segment; it proves nothing by itself


@case("MQTT-7.1.1-1", v5=["MQTT-4.2.0-1"])
def test_packets_are_read_from_a_byte_stream_however_it_is_cut(make_probe, topic_prefix):
    """The transport is an ordered, lossless byte stream and packet boundaries come from the packets
    themselves: a CONNECT written a few bytes at a time, then SUBSCRIBE, PUBLISH and PINGREQ written
    in one piece, are each understood and answered."""
    probe = make_probe()
    connect = encode(probe.connect_packet(), probe.level)
    cuts = [1, 2, 3, 8, len(connect) // 2, len(connect)]
    start = 0
    for cut in cuts:
        probe.send(Raw(connect[start:cut], f"CONNECT bytes {start}..{cut - 1} of {len(connect)}"))
        start = cut
        time.sleep(PAUSE)
    probe.connack = probe.expect(Connack, reason_code=0)
    topic = f"{topic_prefix}/stream"
    batch = b"".join(encode(p, probe.level) for p in (
        Subscribe(packet_id=7, subscriptions=(Subscription(topic, 0),)),
        Publish(topic=topic, payload=b"in one write"),
        Pingreq(),
    ))
    split = batch + encode(Publish(topic=topic, payload=b"split across writes"), probe.level)
    probe.send(Raw(split[: len(batch) + 3], "SUBSCRIBE + PUBLISH + PINGREQ + the first 3 bytes of a PUBLISH"))
    time.sleep(PAUSE)
    probe.send(Raw(split[len(batch) + 3 :], "the rest of that PUBLISH"))
    # Each request is answered; the order of answers to different requests (SUBACK vs PINGRESP) is
    # not prescribed, only that the two messages from one publisher on one topic stay in order.
    probe.collect_until(Suback, keep=True, packet_id=7)
    probe.collect_until(Pingresp, keep=True)
    probe.wait_for(Publish, topic=topic, payload=b"in one write")
    probe.wait_for(Publish, topic=topic, payload=b"split across writes")


@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1", "MQTT-3.14.4-1"])
def test_nothing_behind_a_malformed_packet_is_acted_on(make_probe, topic_prefix):
    """Once the server meets a malformed packet it closes the connection: a valid QoS 1 PUBLISH written
    right behind it, in the same segment, is neither acknowledged nor delivered (5.0: nor answered with a
    second DISCONNECT)."""
    topic = f"{topic_prefix}/after"
    watcher = subscriber(make_probe, topic, qos=1)
    probe = make_probe().connect()
    bad = Raw(b"\x00\x00", "packet type 0 (reserved)").data
    good = encode(Publish(topic=topic, payload=b"after the bad one", qos=1, packet_id=1), probe.level)
    probe.send(Raw(bad + good, "packet type 0, then a valid QoS 1 PUBLISH, in one write"))
    with rejected(probe, MALFORMED, PROTOCOL_ERROR):
        watcher.expect_nothing()
