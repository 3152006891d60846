"""3.8 SUBSCRIBE and 3.9 SUBACK: codes per filter, their order, packet ids, empty payload."""

from conformance import Subscribe, Subscription, case, craft
from conformance.codec import Suback


@case("MQTT-3.8.3-3", "MQTT-4.8.0-1", v5=["MQTT-4.13.1-1"])
def test_subscribe_without_payload_closes_the_connection(probe):
    """A SUBSCRIBE with no topic filter is a protocol violation: the server closes the connection."""
    probe.send(Subscribe(packet_id=7, subscriptions=()))
    probe.expect_closed(reason_codes={0x81, 0x82})


@case("MQTT-3.9.3-1", "MQTT-3.8.4-5", "MQTT-3.8.4-4", "MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-3.9.3-2",
      v5=["MQTT-3.9.3-1", "MQTT-3.8.4-6", "MQTT-3.8.4-7", "MQTT-3.8.4-5", "MQTT-3.8.4-1", "MQTT-3.8.4-2",
          "MQTT-2.2.1-6", "MQTT-3.9.3-2"])
def test_suback_codes_follow_filter_order(probe, topic_prefix):
    """One SUBSCRIBE with several filters gets one SUBACK with the same packet id and one code per
    filter, in order: the granted QoS (at most the requested one) or a failure code (0x80 or more).
    Requested QoS values alternate so that a reordering shows as a code above its request."""
    requested = [(f"{topic_prefix}/q2", 2), (f"{topic_prefix}/q0", 0), (f"{topic_prefix}/q1", 1),
                 (f"{topic_prefix}/q0b/+", 0), (f"{topic_prefix}/q2b/#", 2), (f"{topic_prefix}/q0c", 0)]
    probe.send(Subscribe(packet_id=0x4242, subscriptions=tuple(Subscription(f, q) for f, q in requested)))
    suback = probe.expect(Suback, packet_id=0x4242)
    codes = suback.reason_codes
    assert len(codes) == len(requested), f"{len(codes)} codes for {len(requested)} filters"
    for (topic_filter, qos), code in zip(requested, codes, strict=True):
        assert code <= qos or code >= 0x80, (
            f"filter {topic_filter!r} asked QoS {qos}, got code 0x{code:02X} (codes out of order?)"
        )


@case("MQTT-3.8.3-4", "MQTT-4.8.0-1", v5=["MQTT-3.8.3-5", "MQTT-4.13.1-1"])
def test_subscribe_with_qos_3_closes_the_connection(probe, topic_prefix):
    """A requested QoS of 3 in SUBSCRIBE is malformed: the server closes the connection."""
    packet = Subscribe(packet_id=3, subscriptions=(Subscription(f"{topic_prefix}/x", 0),))
    probe.send(craft(packet, replace={"options[0]": b"\x03"}))
    probe.expect_closed(reason_codes={0x81})
