"""Codec properties: every packet type round-trips in both versions, under any TCP segmentation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import by_type, packets

from conformance.codec import (
    Connack,
    Connect,
    MalformedPacket,
    Parser,
    Publish,
    Subscribe,
    Subscription,
    craft,
    decode,
    encode,
    encode_varint,
)
from conformance.codec.packets import PacketType
from conformance.codec.wire import decode_varint

pytestmark = pytest.mark.unit

VERSIONS = [4, 5]


CASES = [(v, t) for v in VERSIONS for t in PacketType if v == 5 or t != PacketType.AUTH]


@pytest.mark.parametrize(("version", "ptype"), CASES, ids=[f"{'5.0' if v == 5 else '3.1.1'}-{t.name}" for v, t in CASES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_packet_type_round_trips(version, ptype, data):
    packet = data.draw(by_type(version)[ptype])
    assert ptype == packet.TYPE
    wire = encode(packet, version)
    assert decode(wire, version) == packet


@pytest.mark.parametrize("version", VERSIONS, ids=["3.1.1", "5.0"])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_parser_copes_with_any_segmentation(version, data):
    batch = data.draw(st.lists(packets(version), min_size=1, max_size=6))
    stream = b"".join(encode(p, version) for p in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = Parser(version)
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += parser.feed(stream[start:end])
    assert [p for _, p in out] == batch
    assert b"".join(raw for raw, _ in out) == stream


@given(st.integers(0, 268_435_455))
def test_varint_round_trips_and_is_minimal(value):
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0, 5, "x") == (value, len(encoded))
    assert len(encoded) == 1 + sum(value >= limit for limit in (128, 16384, 2097152))


def test_varint_non_minimal_is_malformed_in_5_only():
    padded = encode_varint(5, min_bytes=2)
    assert padded == b"\x85\x00"
    with pytest.raises(MalformedPacket) as err:
        decode_varint(padded, 0, 5, "Remaining Length")
    assert err.value.statement == "MQTT-1.5.5-1"
    assert decode_varint(padded, 0, 4, "Remaining Length") == (5, 2)


def test_varint_of_five_bytes_loses_framing():
    parser = Parser(5)
    (raw, error), = parser.feed(b"\x30\x80\x80\x80\x80\x01")
    assert isinstance(error, MalformedPacket) and error.fatal


@pytest.mark.parametrize(("data", "statement"), [
    (b"\x60\x02\x00\x01", "MQTT-2.2.2-1"),  # PUBREL must carry flags 0010
    (b"\x36\x05\x00\x01a\x00\x01", "MQTT-3.3.1-4"),  # QoS 3
    (b"\x30\x05\x00\x03a/+", "MQTT-3.3.2-2"),  # wildcard in topic name
    (b"\x30\x04\x00\x02\xc3\x28", "MQTT-1.5.3-1"),  # invalid UTF-8
    (b"\x30\x04\x00\x02a\x00", "MQTT-1.5.3-2"),  # U+0000
    (b"\x32\x05\x00\x01a\x00\x00", "MQTT-2.3.1-1"),  # packet id 0
    (b"\x90\x03\x00\x01\x03", "MQTT-3.9.3-2"),  # SUBACK code 3 in 3.1.1
])
def test_decoder_names_the_rule_broken(data, statement):
    with pytest.raises(MalformedPacket) as err:
        decode(data, 4)
    assert err.value.statement == statement


def test_decoder_rejects_duplicate_and_misplaced_properties():
    # content_type twice
    body = b"\x00\x01t" + b"\x08" + b"\x03\x00\x01a" + b"\x03\x00\x01b"
    with pytest.raises(MalformedPacket, match="more than once"):
        decode(bytes([0x30, len(body)]) + body, 5)
    # session expiry is not allowed in PUBLISH
    body = b"\x00\x01t" + b"\x05" + b"\x11\x00\x00\x00\x01"
    with pytest.raises(MalformedPacket, match="not allowed"):
        decode(bytes([0x30, len(body)]) + body, 5)


def test_crafting_forces_any_field():
    connect = Connect(client_id="c")
    assert craft(connect, connect_flags=0x03).encode(4)[9] == 0x03
    assert craft(connect, protocol_level=6).encode(4)[8] == 6
    publish = Publish("t", b"x", qos=1, packet_id=1)
    assert craft(publish, qos_bits=3).encode(4)[0] == 0x36
    assert craft(publish, dup_bit=1, retain_bit=1).encode(4)[0] == 0x3B
    assert craft(publish, remaining_length=200).encode(4)[1:3] == encode_varint(200)
    assert craft(publish, remaining_length_bytes=b"\x86\x00").encode(4)[1:3] == b"\x86\x00"
    assert craft(publish, append=b"zz").encode(4).endswith(b"xzz")
    assert craft(publish, truncate=3).encode(4) == encode(publish, 4)[:3]
    assert craft(publish, packet_id=0).encode(4)[5:7] == b"\x00\x00"
    sub = Subscribe(packet_id=2, subscriptions=(Subscription("a", 1),))
    assert craft(sub, replace={"options[0]": b"\x03"}).encode(4)[-1] == 3
    assert craft(sub, flags=0).encode(4)[0] == 0x80
    assert craft(Connack(), packet_type=1).encode(4)[0] == 0x10


def test_craft_names_missing_segments():
    from conformance.codec import HarnessError

    with pytest.raises(HarnessError, match="no segment"):
        craft(Publish("t"), replace={"nope": b""}).encode(4)
