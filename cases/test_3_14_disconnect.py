"""3.14 DISCONNECT: reserved bits of a client's DISCONNECT, and what a server's DISCONNECT may carry."""

from conformance import BrokerViolation, Informational, Properties, Publish, Will, case, craft
from conformance.codec import Disconnect
from conformance.steps.common import subscriber
from conformance.steps.connect import SMALL_MAXIMUM_PACKET_SIZE, check_server_disconnect
from conformance.steps.v5 import assert_within


@case("MQTT-3.14.1-1", v5=["MQTT-3.14.1-1"])
def test_disconnect_with_reserved_bits_is_not_a_normal_disconnect(make_probe, topic_prefix):
    """A DISCONNECT whose reserved header bits are not 0 is malformed: the server closes the connection
    (5.0: optionally after DISCONNECT 0x81) and, since no valid DISCONNECT ended it, publishes the Will."""
    topic = f"{topic_prefix}/will"
    watcher = subscriber(make_probe, topic, qos=1)
    probe = make_probe(name="client").connect(will=Will(topic=topic, payload=b"gone", qos=1))
    probe.send(craft(Disconnect(), flags=0x01, label="DISCONNECT with reserved bits 0001"))
    probe.expect_closed(reason_codes={0x81})
    try:
        watcher.receive(topic=topic, payload=b"gone")
    except BrokerViolation as exc:
        raise BrokerViolation(f"the Will was not published ({exc}): the server took a DISCONNECT with "
                              "reserved bits set for a valid one") from None


def _malformed_publish(probe, make_probe, topic):  # noqa: ANN001, ANN202
    publish = Publish(topic=topic, payload=b"x", qos=1, packet_id=1)
    probe.send(craft(publish, qos_bits=0b11, label="PUBLISH QoS 3"))


def _topic_alias_0(probe, make_probe, topic):  # noqa: ANN001, ANN202
    probe.send(Publish(topic=topic, payload=b"x", properties=Properties(topic_alias=0)))


def _second_connect(probe, make_probe, topic):  # noqa: ANN001, ANN202
    probe.send(probe.connect_packet())


def _takeover(probe, make_probe, topic):  # noqa: ANN001, ANN202
    make_probe(probe.client_id, name="takeover").connect()


PROVOCATIONS = {
    "malformed PUBLISH (QoS 3)": _malformed_publish,
    "Topic Alias 0": _topic_alias_0,
    "second CONNECT": _second_connect,
    "session taken over": _takeover,
}


@case(v5=["MQTT-3.14.2-1", "MQTT-3.14.2-2", "MQTT-3.14.2-3", "MQTT-3.14.2-4", "MQTT-3.14.4-1",
          "MQTT-3.14.4-2", "MQTT-3.14.0-1"])
def test_server_disconnect_is_well_formed_and_final(make_probe, topic_prefix):
    """Where the server ends a connection with DISCONNECT (after a malformed PUBLISH, a Topic Alias of 0, a
    second CONNECT, a session takeover), that DISCONNECT carries a defined reason code, no Session Expiry
    Interval, fits the client's Maximum Packet Size (a Reason String or User Property that does not fit is
    left out), is the last packet, and the server closes the connection after it."""
    sent = []
    limits = Properties(maximum_packet_size=SMALL_MAXIMUM_PACKET_SIZE, request_problem_information=1)
    for n, (what, provoke) in enumerate(PROVOCATIONS.items()):
        probe = make_probe(name=f"p{n}").connect(properties=limits)
        provoke(probe, make_probe, f"{topic_prefix}/p{n}")
        try:
            closed = probe.expect_closed()
            assert_within(probe, SMALL_MAXIMUM_PACKET_SIZE)
            if closed.disconnect is not None:
                check_server_disconnect(closed.disconnect)
                sent.append(what)
        except BrokerViolation as exc:
            raise BrokerViolation(f"after a {what}: {exc}") from None
    if not sent:
        raise Informational(f"the server closed the connection without DISCONNECT after each of: "
                            f"{', '.join(PROVOCATIONS)}; nothing to judge")
