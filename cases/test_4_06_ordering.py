"""4.6 Message ordering: per publisher, topic and QoS, subscribers get messages in publication order,
also across a resumed session."""

from conformance import BrokerViolation, Publish, Pubrel, case
from conformance.steps.common import subscriber
from conformance.steps.publish import (
    OpenFlows,
    collect_publishes,
    persistent_subscriber,
    publish_pipelined,
    resume,
    take_available,
)

PER_QOS = 15


def _stream(topic: str, levels: list[int]) -> list[tuple[str, bytes, int]]:
    """PER_QOS messages at each QoS of ``levels``, interleaved; payload 'q<qos>-<n>' keeps the order."""
    return [(topic, f"q{qos}-{n:03d}".encode(), qos) for n in range(PER_QOS) for qos in levels]


def _by_qos(payloads: list[bytes]) -> dict[int, list[bytes]]:
    """Payloads grouped by the QoS they were published at (from the payload, not the delivery QoS)."""
    out: dict[int, list[bytes]] = {}
    for payload in payloads:
        out.setdefault(int(payload[1:2]), []).append(payload)
    return out


@case("MQTT-4.6.0-5", "MQTT-4.6.0-6", v5=["MQTT-4.6.0-5", "MQTT-4.6.0-6"])
def test_messages_from_one_publisher_keep_their_order(make_probe, topic_prefix, capabilities):
    """Messages one client publishes back to back on one topic reach a (non-shared) subscriber in the
    order they were published, for each QoS; checked for a subscription at the highest QoS the server
    supports and one at QoS 0."""
    topic = f"{topic_prefix}/ordered"
    levels = list(range(capabilities["maximum_qos"] + 1))
    full = subscriber(make_probe, topic, qos=max(levels))
    low = subscriber(make_probe, topic, qos=0)
    messages = _stream(topic, levels)
    publish_pipelined(make_probe().connect(), messages)
    sent = _by_qos([payload for _, payload, _ in messages])
    for sub in (full, low):
        got = collect_publishes(sub, len(messages))
        stray = [p for p in got if p.topic != topic]
        if stray:
            raise BrokerViolation(f"{sub.name}: received a PUBLISH on {stray[0].topic!r}, which none of its "
                                  "subscriptions matches")
        received = _by_qos([p.payload for p in got])
        for qos in levels:
            assert received.get(qos, []) == sent[qos], (
                f"{sub.name}: QoS {qos} messages arrived as {[p.decode(errors='replace') for p in received.get(qos, [])]}")
    for sub in (full, low):
        sub.expect_nothing()


@case("MQTT-4.6.0-6", "MQTT-4.4.0-1", v5=["MQTT-4.6.0-5", "MQTT-4.4.0-1"], requires=["qos1"])
def test_resent_messages_keep_their_order(make_probe, client_id, topic_prefix):
    """When a resumed session gets its unacknowledged messages again, they come in their original
    order with their original packet identifiers and DUP 1, followed by the messages queued while the
    client was away, still in publication order."""
    topic = f"{topic_prefix}/resend"
    sub = persistent_subscriber(make_probe, client_id, topic, qos=1)
    pub = make_probe().connect()
    for i in range(5):
        pub.publish(topic, f"m{i}", qos=1)
    first = take_available(sub, topic=topic, qos=1)  # all five, or as many as the server sends unacked
    assert [p.payload for p in first] == [f"m{i}".encode() for i in range(len(first))], (
        f"first delivery order {[p.payload.decode(errors='replace') for p in first]}")
    sub.close()
    for i in range(5, 8):
        pub.publish(topic, f"m{i}", qos=1)
    again = resume(make_probe, client_id)
    resent = collect_publishes(again, 8)
    assert [p.payload for p in resent] == [f"m{i}".encode() for i in range(8)], (
        f"after resuming, messages arrived as {[p.payload.decode(errors='replace') for p in resent]}")
    assert [(p.packet_id, p.dup) for p in resent[: len(first)]] == [(p.packet_id, True) for p in first], (
        f"resent messages carry (id, DUP) {[(p.packet_id, p.dup) for p in resent[: len(first)]]}, expected "
        f"the original identifiers {[p.packet_id for p in first]} with DUP 1")
    again.expect_nothing()


@case("MQTT-4.6.0-6", requires=["qos2"])
def test_pubrels_follow_the_order_of_pubrecs(make_probe, topic_prefix):
    """Delivering QoS 2 messages, the server sends its PUBRELs in the order of the PUBRECs it got
    (3.1.1 applies the client's ordering rules to the server's deliveries)."""
    topic = f"{topic_prefix}/rel"
    sub = subscriber(make_probe, topic, qos=2)
    publish_pipelined(make_probe().connect(), [(topic, f"r{i}".encode(), 2) for i in range(6)])
    flows = OpenFlows(sub)
    flows.receive(6)
    flows.finish()
    pubrecs = [p.packet_id for p in flows.trace if isinstance(p, Publish)]  # answered in arrival order
    pubrels = [p.packet_id for p in flows.trace if isinstance(p, Pubrel)]
    assert pubrels == pubrecs, f"PUBRELs came for {pubrels} after PUBRECs for {pubrecs}"
    assert [p.payload for p in flows.received] == [f"r{i}".encode() for i in range(6)], (
        f"messages arrived as {[p.payload.decode(errors='replace') for p in flows.received]}")

