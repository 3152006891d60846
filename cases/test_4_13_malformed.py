"""4.8 (3.1.1) / 4.13 (5.0) Handling errors: protocol violations close the connection. A packet before
CONNECT, packets only a server sends, Packet Identifier 0, wildcards in a Topic Name; and in 5.0 the
close that must follow any CONNACK or DISCONNECT with an error code."""

import pytest

from conformance import (
    Connack,
    Disconnect,
    Informational,
    Pingreq,
    Pingresp,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Unsupported,
    case,
    craft,
)
from conformance.codec import Properties
from conformance.steps.common import subscriber
from conformance.steps.malformed import (
    MALFORMED,
    PROTOCOL_ERROR,
    SURROGATE,
    TOPIC_NAME_INVALID,
    reject,
    rejected,
    string_with,
)
from conformance.transcript import describe

# -- a packet before CONNECT -------------------------------------------------------------------------
BEFORE_CONNECT = {
    "PINGREQ": lambda probe, prefix: Pingreq(),
    "SUBSCRIBE": lambda probe, prefix: Subscribe(packet_id=1, subscriptions=(Subscription(f"{prefix}/#"),)),
    "PUBLISH": lambda probe, prefix: Publish(topic=f"{prefix}/early", payload=b"before CONNECT", qos=1, packet_id=1),
}


@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("first", list(BEFORE_CONNECT))
def test_packet_before_connect_closes_the_connection(make_probe, topic_prefix, first):
    """The first packet on a connection must be CONNECT. A server that gets anything else first closes
    the connection without answering it: no PINGRESP, no SUBACK, no PUBACK, and a PUBLISH sent that way
    reaches no subscriber."""
    watcher = subscriber(make_probe, f"{topic_prefix}/#", qos=1)
    probe = make_probe()
    probe.send(BEFORE_CONNECT[first](probe, topic_prefix))
    with rejected(probe, PROTOCOL_ERROR, connecting=True):
        watcher.expect_nothing()


# -- packets only a server sends ------------------------------------------------------------------------
SERVER_ONLY = {
    "CONNACK": Connack(),
    "SUBACK": Suback(packet_id=1, reason_codes=(0,)),
    "UNSUBACK": Unsuback(packet_id=1, reason_codes=(0,)),
    "PINGRESP": Pingresp(),
}


@case("MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("kind", list(SERVER_ONLY))
def test_client_sending_a_server_packet_is_closed(probe, kind):
    """CONNACK, SUBACK, UNSUBACK and PINGRESP only travel from server to client; a client that sends one
    breaks the protocol and the server closes the connection (5.0 names no code: 0x81 or 0x82)."""
    reject(probe, SERVER_ONLY[kind], PROTOCOL_ERROR, MALFORMED)


# -- Packet Identifier 0 -----------------------------------------------------------------------------
def _zero_id(probe, prefix, what):
    if what == "SUBSCRIBE":
        return craft(Subscribe(packet_id=1, subscriptions=(Subscription(f"{prefix}/z"),)), packet_id=0)
    if what == "UNSUBSCRIBE":
        return craft(Unsubscribe(packet_id=1, topic_filters=(f"{prefix}/z",)), packet_id=0)
    qos = int(what[-1])
    return craft(Publish(topic=f"{prefix}/z", payload=b"zero id", qos=qos, packet_id=1), packet_id=0)


@case("MQTT-2.3.1-1", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
@pytest.mark.parametrize("what", ["SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH-QoS1", "PUBLISH-QoS2"])
def test_packet_identifier_0_closes_the_connection(make_probe, topic_prefix, capabilities, what):
    """SUBSCRIBE, UNSUBSCRIBE and QoS 1 or 2 PUBLISH carry a non-zero Packet Identifier. One with 0 is
    refused by closing the connection, with no acknowledgement and, for a PUBLISH, no delivery."""
    if what.startswith("PUBLISH") and capabilities.get("maximum_qos", 2) < int(what[-1]):
        raise Unsupported(f"the target's Maximum QoS is {capabilities.get('maximum_qos')}")
    watcher = subscriber(make_probe, f"{topic_prefix}/z", qos=1)
    probe = make_probe().connect()
    probe.send(_zero_id(probe, topic_prefix, what))
    with rejected(probe, PROTOCOL_ERROR, MALFORMED):
        watcher.expect_nothing()


# -- wildcards in a Topic Name -----------------------------------------------------------------------
WILDCARD_TOPICS = {
    "plus-level": "{p}/+/x",
    "hash-last-level": "{p}/#",
    "plus-inside-level": "{p}/a+b",
    "hash-inside-level": "{p}/a#b",
    "plus-alone": "+",
    "hash-alone": "#",
}


@case("MQTT-3.3.2-2", "MQTT-4.7.1-1", "MQTT-4.8.0-1", v5=["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.13.1-1"])
@pytest.mark.parametrize("shape", list(WILDCARD_TOPICS))
def test_wildcard_in_a_topic_name_closes_the_connection(make_probe, topic_prefix, shape):
    """'+' and '#' belong in Topic Filters only: a PUBLISH whose Topic Name contains either (as a whole
    level or inside one) breaks the protocol. The server closes the connection, without PUBACK, and
    delivers nothing (5.0: 0x82, or the more specific 0x90 Topic Name invalid)."""
    watcher = subscriber(make_probe, f"{topic_prefix}/#", qos=1)
    probe = make_probe().connect()
    topic = WILDCARD_TOPICS[shape].format(p=topic_prefix)
    probe.send(Publish(topic=topic, payload=b"wildcard", qos=1, packet_id=probe.packet_id()))
    with rejected(probe, PROTOCOL_ERROR, TOPIC_NAME_INVALID):
        watcher.expect_nothing()


# -- 5.0: an error code on CONNACK or DISCONNECT means the connection closes ----------------------------
def _protocol_error_in_connect(probe):
    probe.send(probe.connect_packet(properties=Properties(receive_maximum=0)))


def _unknown_authentication_method(probe):
    probe.send(probe.connect_packet(properties=Properties(authentication_method="mqttc-no-such-method")))


def _error_after_connect(probe):
    probe.connect()
    probe.send(craft(Publish(topic="mqttc/x", payload=b"x"), topic=string_with(SURROGATE, "mqttc/bad")))


TRIGGERS = {
    "connack-receive-maximum-0": _protocol_error_in_connect,
    "connack-unknown-authentication-method": _unknown_authentication_method,
    "disconnect-surrogate-in-topic": _error_after_connect,
}


@case(v5=["MQTT-4.13.2-1"])
@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_error_reason_code_is_followed_by_the_close(make_probe, trigger):
    """A CONNACK or DISCONNECT from the server with a reason code of 0x80 or more means the connection
    is over: the server closes it and answers nothing more on it. (A server that closes without
    sending such a packet does not exercise this statement: INFORMATIONAL.)"""
    probe = make_probe()
    TRIGGERS[trigger](probe)
    error = None
    while error is None:
        packet = probe.next()
        if packet is None:
            break
        if isinstance(packet, Connack | Disconnect) and packet.reason_code >= 0x80:
            error = packet
        elif not (isinstance(packet, Connack) and packet.reason_code == 0):
            raise Informational(f"the server answered the error with {describe(packet, probe.level)}: "
                                "no error reason code to judge here")
    if error is None:
        raise Informational("the server sent no CONNACK/DISCONNECT with an error code (it "
                            + ("closed the connection silently)" if probe.closed else "kept the connection open)"))
    probe.send(Pingreq(), note="after the error: must go unanswered")
    probe.expect_closed()
