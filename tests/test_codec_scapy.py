"""Cross-check the 3.1.1 encoder against scapy's independent MQTT dissector (used as a library)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.codec import (
    Connack,
    Connect,
    Disconnect,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    encode,
)

mqtt = pytest.importorskip("scapy.contrib.mqtt")

from strategies import by_type  # noqa: E402

from conformance.codec.wire import decode_varint  # noqa: E402

pytestmark = pytest.mark.unit

# scapy's dissector predates 5.0; it reads 3.1.1 packets only.
CHECKED = [t for t in PacketType if t != PacketType.AUTH]


def dissect(wire: bytes):  # noqa: ANN201
    layer = mqtt.MQTT(wire)
    assert layer.type == wire[0] >> 4
    length, used = decode_varint(wire, 1, 4, "Remaining Length")
    assert layer.len == length == len(wire) - 1 - used
    return layer


def check(packet, layer) -> None:  # noqa: ANN001
    """Every field scapy decodes must equal what the packet says."""
    if isinstance(packet, Connect):
        assert layer.protoname == b"MQTT" and layer.protolevel == 4
        assert layer.clientId == packet.client_id.encode()
        assert layer.cleansess == packet.clean_start
        assert layer.klive == packet.keep_alive
        assert layer.willflag == (packet.will is not None)
        if packet.will:
            assert layer.willtopic == packet.will.topic.encode()
            assert layer.willmsg == packet.will.payload
            assert layer.willQOSflag == packet.will.qos
            assert layer.willretainflag == packet.will.retain
        assert layer.usernameflag == (packet.username is not None)
        if packet.username is not None:
            assert layer.username == packet.username.encode()
        if packet.password is not None:
            assert layer.password == packet.password
    elif isinstance(packet, Connack):
        assert layer.sessPresentFlag == packet.session_present
        assert layer.retcode == packet.reason_code
    elif isinstance(packet, Publish):
        assert packet.qos == layer.QOS and packet.retain == layer.RETAIN and packet.dup == layer.DUP
        assert layer.topic == packet.topic.encode()
        assert layer.value == packet.payload
        if packet.qos:
            assert layer.msgid == packet.packet_id
    elif isinstance(packet, Puback | Pubrec | Pubrel | Pubcomp | Unsuback):
        assert layer.msgid == packet.packet_id
    elif isinstance(packet, Subscribe):
        assert layer.msgid == packet.packet_id
        assert [(t.topic, t.QOS) for t in layer.topics] == [
            (s.topic_filter.encode(), s.qos) for s in packet.subscriptions
        ]
    elif isinstance(packet, Suback):
        assert layer.msgid == packet.packet_id
        assert list(layer.retcodes) == list(packet.reason_codes)
    elif isinstance(packet, Unsubscribe):
        assert layer.msgid == packet.packet_id
        assert [t.topic for t in layer.topics] == [f.encode() for f in packet.topic_filters]
    else:
        assert isinstance(packet, Pingreq | Pingresp | Disconnect)


@pytest.mark.parametrize("ptype", CHECKED, ids=[t.name for t in CHECKED])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_scapy_reads_what_we_encode(ptype, data):
    packet = data.draw(by_type(4)[ptype])
    check(packet, dissect(encode(packet, 4)))
