"""Cluster targets: one logical broker reached through several nodes (see docs/clusters.md).

Each case runs its clients on different nodes of the target's ``[cluster]`` and checks that the broker
behaves as one server: deliveries, stored sessions, takeover, retained messages, shared subscriptions,
ordering, and (managed clusters only) a node that goes down while messages are in flight. A target without
a cluster section makes these cases UNSUPPORTED; a single broker given as a cluster of one endpoint must
pass them (all "nodes" are then the same server). The node names a case used are in its record.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from conformance import NonStrict, Publish, Subscription, case
from conformance.setup_steps import setup
from conformance.steps.common import PERSISTENT, delivered, shown, until_sentinel
from conformance.steps.topics import granted
from conformance.steps.will import receive_will, watch_will, will_for

# publisher node index > subscriber node index; with three nodes every node publishes and subscribes once
ROUTES = ["0>1", "1>2", "2>0"]
NODE_STOP_CLOSE = 30.0  # seconds a stopped node may take to close its clients' connections


def _route(cluster, route: str) -> tuple[str, str]:
    first, second = route.split(">")
    return cluster.node(int(first)), cluster.node(int(second))


def on(cluster, node: str) -> Callable:
    """A ``make_probe``-like factory whose probes reach ``node`` (for the shared steps)."""
    def make(client_id: str | None = None, *, name: str | None = None) -> object:
        return cluster.probe(node, client_id, role=name or "")
    return make


@pytest.mark.parametrize("route", ROUTES)
@case("MQTT-4.5.0-1", "MQTT-3.8.4-6", v5=["MQTT-4.5.0-1", "MQTT-3.8.4-8"])
def test_cluster_publish_on_one_node_reaches_a_subscriber_on_another(cluster, topic_prefix, capabilities, route):
    """A message published through one node reaches a subscription made through another node, for every
    QoS up to the target's maximum, at the lower of the published and the granted QoS."""
    pub_node, sub_node = _route(cluster, route)
    top = min(2, capabilities["maximum_qos"])
    sub = cluster.probe(sub_node, role="sub").connect()
    filters = [Subscription(f"{topic_prefix}/q{qos}", qos) for qos in range(top + 1)]
    grants = granted(sub.subscribe(*filters), "the per-QoS topics")
    pub = cluster.probe(pub_node, role="pub").connect()
    for qos in range(top + 1):
        pub.publish(f"{topic_prefix}/q{qos}", f"via {pub_node} at {qos}".encode(), qos=qos)
        sub.receive(topic=f"{topic_prefix}/q{qos}", payload=f"via {pub_node} at {qos}".encode(),
                    qos=min(qos, grants[qos]))


@case("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.2.2-2", v5=["MQTT-3.1.2-5", "MQTT-3.1.2-23", "MQTT-3.2.2-3"])
def test_cluster_session_left_on_one_node_resumes_on_another(cluster, client_id, topic_prefix, capabilities):
    """A stored session (Clean Session 0; 5.0: Clean Start 0 with a Session Expiry) left through one node
    is resumed through another with Session Present 1, gets the QoS 1/2 messages published meanwhile
    through a third node, and its subscriptions still match."""
    home, away, source = cluster.node(0), cluster.node(1), cluster.node(2)
    q1, q2 = f"{topic_prefix}/q1", f"{topic_prefix}/q2"
    top = min(2, capabilities["maximum_qos"])
    with cluster.probe(home, client_id, role="left").connect(**PERSISTENT) as first:
        first.subscribe(q1, q2, qos=top)
    with cluster.probe(source, role="pub").connect() as pub:
        pub.publish(q1, b"offline 1", qos=1)
        pub.publish(q2, b"offline 2", qos=top)
    back = cluster.probe(away, client_id, role="resumed").connect(**PERSISTENT)
    assert back.connack is not None and back.connack.session_present, (
        f"the session left through node {home} was not found through node {away} (Session Present 0)")
    back.ack(back.wait_for(Publish, topic=q1, payload=b"offline 1"))
    back.ack(back.wait_for(Publish, topic=q2, payload=b"offline 2"))
    with cluster.probe(source, role="pub2").connect() as pub:
        pub.publish(q1, b"online", qos=1)
    back.receive(topic=q1, payload=b"online")


@case("MQTT-3.1.4-2", "MQTT-3.2.2-2", v5=["MQTT-3.1.4-3", "MQTT-3.2.2-3"])
def test_cluster_takeover_across_nodes_closes_the_old_connection(cluster, client_id, topic_prefix, mqtt_version):
    """A CONNECT through another node with the ClientId of a connected client takes over: the server closes
    the old connection (5.0: after DISCONNECT 0x8E), and the new one continues the stored session (Session
    Present 1, its subscription still matches messages published through a third node)."""
    old_node, new_node, pub_node = cluster.node(0), cluster.node(1), cluster.node(2)
    topic = f"{topic_prefix}/t"
    old = cluster.probe(old_node, client_id, role="old").connect(**PERSISTENT)
    old.subscribe(topic, qos=1)
    new = cluster.probe(new_node, client_id, role="new").connect(**PERSISTENT)
    closed = old.expect_closed(reason_codes={0x8E})
    assert new.connack is not None and new.connack.session_present, (
        f"the session of the connection on node {old_node} was not continued on node {new_node}")
    with cluster.probe(pub_node, role="pub").connect() as pub:
        pub.publish(topic, b"after takeover", qos=1)
    new.receive(topic=topic, payload=b"after takeover")
    if mqtt_version == "5.0" and closed.disconnect is None:
        raise NonStrict("the older connection was closed without the DISCONNECT 0x8E (Session taken over)")


@case("MQTT-3.1.2-8", "MQTT-3.1.4-2")
def test_cluster_takeover_across_nodes_publishes_the_will(cluster, client_id, topic_prefix):
    """3.1.1: a connection taken over through another node ends without a DISCONNECT from its client, so
    its Will is published (Clean Session 1 on both sides: the session ends too); an observer on a third
    node receives it. (5.0 ties the Will on takeover to the Will Delay: see test_3_01_will.)"""
    old_node, new_node, watch_node = cluster.node(0), cluster.node(1), cluster.node(2)
    watch = watch_will(on(cluster, watch_node), topic_prefix, qos=1)
    will = will_for(watch, qos=1)
    old = cluster.probe(old_node, client_id, role="old").connect(will=will)
    cluster.probe(new_node, client_id, role="new").connect()
    old.expect_closed()
    receive_will(watch, will)


@case("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-10", v5=["MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-9"],
      requires=["retain_available"])
def test_cluster_retained_set_on_one_node_cleared_on_another(cluster, topic_prefix):
    """A retained message set through node A is sent to a new subscription made through node C; a
    zero-byte retained message through node B clears it, so a later subscription through C (and through
    A) gets nothing."""
    a, b, c = cluster.node(0), cluster.node(1), cluster.node(2)
    topic = f"{topic_prefix}/r"
    with cluster.probe(a, role="set").connect() as setter:
        setter.publish(topic, b"kept", qos=1, retain=True)
    seen = cluster.probe(c, role="sub1").connect()
    seen.subscribe(topic, qos=1)
    seen.receive(topic=topic, payload=b"kept", retain=True)
    with cluster.probe(b, role="clear").connect() as clearer:
        clearer.publish(topic, b"", qos=1, retain=True)
    seen.receive(topic=topic, payload=b"")  # forwarded like any message to the existing subscription
    for node in dict.fromkeys((c, a)):
        later = cluster.probe(node, role=f"sub-{node}").connect()
        later.subscribe(topic, qos=1)
        later.expect_nothing()


@case(v5=["MQTT-4.8.2-3"], requires=["shared_subscriptions"])
def test_cluster_shared_subscription_over_nodes_delivers_each_message_once(cluster, topic_prefix):
    """Members of one share group on different nodes: each message published through another node goes
    to exactly one member (none lost, none duplicated)."""
    topic, sentinel = f"{topic_prefix}/t", f"{topic_prefix}/sentinel"
    share = f"$share/g{topic_prefix.rsplit('/', 1)[-1]}/{topic}"
    members = []
    for index in range(max(2, cluster.distinct)):
        member = cluster.probe(cluster.node(index), role=f"m{index}").connect()
        granted(member.subscribe(Subscription(share, 1), Subscription(sentinel, 1)), share)
        members.append(member)
    pub = cluster.probe(cluster.node(cluster.distinct - 1), role="pub").connect()
    payloads = [f"m{i}".encode() for i in range(12)]
    for payload in payloads:
        pub.publish(topic, payload, qos=1)
    got = delivered(pub, members[0], sentinel)
    for member in members[1:]:
        got += until_sentinel(member, sentinel)
    assert sorted(m.payload for m in got) == sorted(payloads), (
        f"each message must reach exactly one member; the members got {shown(got)}")


@case("MQTT-4.6.0-5", "MQTT-4.6.0-6", v5=["MQTT-4.6.0-5", "MQTT-4.6.0-6"])
def test_cluster_keeps_the_order_of_one_topic_across_nodes(cluster, topic_prefix):
    """Messages of one publisher on one topic, at QoS 0 and at QoS 1, reach a subscriber on another node
    in the order they were published."""
    pub_node, sub_node = cluster.node(0), cluster.node(1)
    sub = cluster.probe(sub_node, role="sub").connect()
    granted(sub.subscribe(f"{topic_prefix}/+", qos=1))
    pub = cluster.probe(pub_node, role="pub").connect()
    for qos in (0, 1):
        sent = [f"q{qos}-{i}".encode() for i in range(10)]
        for payload in sent:
            pub.publish(f"{topic_prefix}/q{qos}", payload, qos=qos)
        got = [sub.receive(topic=f"{topic_prefix}/q{qos}").payload for _ in sent]
        assert got == sent, f"QoS {qos} messages came out of order: {got}"


@case("MQTT-3.1.2-5", "MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-3.2.2-2",
      v5=["MQTT-3.1.2-5", "MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-3.2.2-3"])
def test_cluster_node_down_loses_nothing_acknowledged(cluster_exclusive, client_id, topic_prefix):
    """Managed clusters only. A stored session's client is connected through node V; messages the server
    acknowledged to their publisher (through node S) are in flight to it when V goes down. Resumed through
    S, the session has every acknowledged message (also those published while V was down), and the ones
    it had already been sent come again with DUP 1."""
    cluster = cluster_exclusive
    victim, survivor = cluster.victim(), cluster.node(0)
    topic = f"{topic_prefix}/t"
    sub = cluster.probe(victim, client_id, role="sub").connect(**PERSISTENT)
    sub.subscribe(topic, qos=1)
    pub = cluster.probe(survivor, role="pub").connect()
    sent = [f"m{i}".encode() for i in range(5)]
    for payload in sent:
        pub.publish(topic, payload, qos=1)
    with setup("messages delivered to the subscriber before the node goes down", "MQTT-4.5.0-1",
               v5="MQTT-4.5.0-1"):
        unacked = [sub.wait_for(Publish, topic=topic, payload=payload) for payload in sent[:2]]
    try:
        cluster.stop_node(victim)
        unacked += _sent_until_closed(sub)
        for payload in (b"while down 1", b"while down 2"):
            pub.publish(topic, payload, qos=1)
        sent += [b"while down 1", b"while down 2"]
        _judge_resumed(cluster, survivor, client_id, topic, sent, {p.payload for p in unacked})
    finally:
        cluster.start_node(victim)


def _sent_until_closed(sub) -> list[Publish]:
    """The PUBLISHes (left unacknowledged) that reach the client before its stopped node closes the link."""
    got: list[Publish] = []
    deadline = time.monotonic() + NODE_STOP_CLOSE
    while sub.closed is None and time.monotonic() < deadline:
        packet = sub.next(timeout=max(0.1, deadline - time.monotonic()), strict=False)
        if isinstance(packet, Publish):
            got.append(packet)
    assert sub.closed is not None, f"the stopped node kept the client's connection open for {NODE_STOP_CLOSE:g} s"
    return got


def _judge_resumed(cluster, node: str, client_id: str, topic: str, sent: list[bytes], resent: set[bytes]) -> None:
    back = cluster.probe(node, client_id, role="resumed").connect(**PERSISTENT)
    assert back.connack is not None and back.connack.session_present, (
        f"the session of the client on the stopped node was not found through node {node} (Session Present 0)")
    got: list[Publish] = []
    deadline = time.monotonic() + 10 * back.timing.response
    while {p.payload for p in got} < set(sent) and time.monotonic() < deadline:
        publish = back.wait_for(Publish, topic=topic)
        back.ack(publish)
        got.append(publish)
    missing = [p for p in sent if p not in {m.payload for m in got}]
    assert not missing, f"acknowledged messages lost with the node: {missing!r}; got {shown(got)}"
    undup = [p for p in got if p.payload in resent and not p.dup]
    assert not undup, f"messages sent before the node went down came again without DUP 1: {shown(undup)}"
