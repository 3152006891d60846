"""6 Using WebSocket as a network transport: binary frames only, no frame alignment, the "mqtt"
subprotocol. Runs over the target's WebSocket listener (capability ``websocket_url``)."""

from __future__ import annotations

import pytest

from conformance import Connack, Pingresp, Publish, Suback, Subscribe, Subscription, Unsupported, case, encode
from conformance.codec import Pingreq
from conformance.net.websocket import OP_BINARY, OP_TEXT, WebSocketTransport
from conformance.transcript import OUT


@pytest.fixture
def websocket_url(capabilities) -> str:  # noqa: ANN001
    url = capabilities.get("websocket_url")
    if not url:
        raise Unsupported("the target names no WebSocket listener (capability websocket_url)")
    return url


def _transport(probe) -> WebSocketTransport:  # noqa: ANN001
    transport = probe.open().transport
    assert isinstance(transport, WebSocketTransport), "websocket_url is not a ws:// or wss:// URL"
    return transport


@case("MQTT-6.0.0-4", v5=["MQTT-6.0.0-4"])
def test_server_selects_the_mqtt_subprotocol(make_probe, websocket_url):
    """The client offers the WebSocket subprotocol "mqtt"; the server's handshake answer selects it."""
    probe = make_probe(url=websocket_url)
    transport = _transport(probe)
    assert transport.subprotocol == "mqtt", f"server selected subprotocol {transport.subprotocol!r}"
    probe.connect().ping()


@case("MQTT-6.0.0-2", v5=["MQTT-6.0.0-2"])
def test_packets_need_not_align_with_websocket_frames(make_probe, websocket_url, topic_prefix):
    """A CONNECT split over three binary frames, then SUBSCRIBE, PUBLISH and PINGREQ in one frame with
    the first bytes of another PUBLISH, are all understood: packets and frames need not line up."""
    probe = make_probe(url=websocket_url)
    transport = _transport(probe)
    connect = encode(probe.connect_packet(), probe.level)
    for start, end in ((0, 2), (2, 9), (9, len(connect))):
        transport.send_frame(OP_BINARY, connect[start:end])
    probe.expect(Connack, reason_code=0)
    topic = f"{topic_prefix}/ws"
    batch = b"".join(encode(p, probe.level) for p in (
        Subscribe(packet_id=5, subscriptions=(Subscription(topic, 0),)),
        Publish(topic=topic, payload=b"same frame"),
        Pingreq(),
    ))
    tail = encode(Publish(topic=topic, payload=b"split frames"), probe.level)
    transport.send_frame(OP_BINARY, batch + tail[:3])
    transport.send_frame(OP_BINARY, tail[3:])
    probe.expect(Suback, packet_id=5)
    probe.wait_for(Publish, topic=topic, payload=b"same frame")
    probe.wait_for(Pingresp)
    probe.wait_for(Publish, topic=topic, payload=b"split frames")


@case("MQTT-6.0.0-1", v5=["MQTT-6.0.0-1"])
def test_text_frame_closes_the_connection(make_probe, websocket_url):
    """MQTT travels in binary frames only: a text frame (here carrying a PINGREQ) makes the server
    close the connection."""
    probe = make_probe(url=websocket_url).connect()
    data = encode(Pingreq(), probe.level)
    _transport(probe).send_frame(OP_TEXT, data)
    probe.transcript.add(probe.name, OUT, data, Pingreq(), note="in a WebSocket TEXT frame", level=probe.level)
    # A broker that still answers has read the text frame as MQTT: wait no longer than for a reply.
    probe.expect_closed(barrier=False)
