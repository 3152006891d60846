"""3.3.2.3.4 Topic Alias (5.0): aliases a client sends (up to the server's Topic Alias Maximum, never 0,
never carried to a new connection) and aliases the server sends (never above the client's Topic Alias
Maximum, none to a client that accepts none)."""

from conformance import Properties, Puback, Publish, Unsupported, case
from conformance.steps.common import delivered, subscriber
from conformance.steps.v5 import AliasResolver, judge_refusal, refusal


def _aliased(topic: str, alias: int, payload: bytes, packet_id: int) -> Publish:
    return Publish(topic=topic, payload=payload, qos=1, packet_id=packet_id, properties=Properties(topic_alias=alias))


def _topics_and_payloads(packets: list) -> list[tuple[str, bytes]]:
    return [(p.topic, p.payload) for p in packets if isinstance(p, Publish)]


@case(v5=["MQTT-3.3.2-12"], requires=["topic_alias_maximum"])
def test_server_accepts_aliases_up_to_its_maximum(make_probe, topic_prefix):
    """The server accepts every Topic Alias from 1 to the Topic Alias Maximum it sent in CONNACK: a PUBLISH
    with a Topic Name and an alias sets the mapping, one with an empty Topic Name uses it, and one with
    a new Topic Name remaps the alias. Subscribers see the real topics."""
    pub = make_probe().connect()
    maximum = pub.connack.properties.get("topic_alias_maximum", 0) if pub.connack else 0
    if not maximum:
        raise Unsupported("the server's CONNACK gives no Topic Alias Maximum on this connection")
    sub = subscriber(make_probe, f"{topic_prefix}/#", qos=1)
    low, high, other = f"{topic_prefix}/alias/low", f"{topic_prefix}/alias/high", f"{topic_prefix}/alias/other"
    sends = [
        (_aliased(low, 1, b"set 1", 1), (low, b"set 1")),
        (_aliased(high, maximum, b"set max", 2), (high, b"set max")),
        (_aliased("", 1, b"use 1", 3), (low, b"use 1")),
        (_aliased("", maximum, b"use max", 4), (high, b"use max")),
        (_aliased(other, 1, b"remap 1", 5), (other, b"remap 1")),
        (_aliased("", 1, b"use remapped 1", 6), (other, b"use remapped 1")),
    ]
    for packet, _ in sends:
        pub.send(packet)
        pub.expect(Puback, packet_id=packet.packet_id,
                   reason_code={0x00, 0x10})
    got = delivered(pub, sub, f"{topic_prefix}/sentinel")
    assert _topics_and_payloads(got) == [want for _, want in sends], (
        f"subscriber received {_topics_and_payloads(got)}; expected {[want for _, want in sends]}"
    )


@case(v5=["MQTT-3.3.2-8", "MQTT-4.13.1-1"])
def test_topic_alias_zero_is_refused(probe, topic_prefix):
    """Topic Alias 0 is never valid: the server closes the connection, with DISCONNECT 0x94 (Topic Alias
    invalid) if it sends one."""
    probe.send(_aliased(f"{topic_prefix}/zero", 0, b"x", 1))
    judge_refusal(refusal(probe), {0x94}, "PUBLISH with Topic Alias 0")


@case(v5=["MQTT-4.13.1-1"], requires=["topic_alias_maximum"])
def test_topic_alias_above_the_server_maximum_is_refused(probe, topic_prefix):
    """A Topic Alias above the Topic Alias Maximum the server sent in CONNACK is a Protocol Error: the
    server closes the connection, with DISCONNECT 0x94 (Topic Alias invalid) if it sends one."""
    maximum = probe.connack.properties.get("topic_alias_maximum", 0) if probe.connack else 0
    if not maximum:
        raise Unsupported("the server's CONNACK gives no Topic Alias Maximum on this connection")
    if maximum >= 0xFFFF:
        raise Unsupported("the server's Topic Alias Maximum is 65535: no alias can exceed it")
    probe.send(_aliased(f"{topic_prefix}/above", maximum + 1, b"x", 1))
    judge_refusal(refusal(probe), {0x94}, f"PUBLISH with Topic Alias {maximum + 1} (server maximum {maximum})")


@case(v5=["MQTT-4.13.1-1"])
def test_topic_alias_to_a_server_that_accepts_none_is_refused(probe, topic_prefix):
    """A server whose CONNACK has no Topic Alias Maximum (or 0) accepts no aliases: one is a Protocol
    Error and the server closes the connection (DISCONNECT 0x94 if it sends one)."""
    maximum = probe.connack.properties.get("topic_alias_maximum", 0) if probe.connack else 0
    if maximum:
        raise Unsupported(f"the server accepts Topic Aliases (maximum {maximum}); see the case for aliases above it")
    probe.send(_aliased(f"{topic_prefix}/none", 1, b"x", 1))
    judge_refusal(refusal(probe), {0x94}, "PUBLISH with Topic Alias 1 (server maximum 0)")


@case(v5=["MQTT-4.13.1-1"], requires=["topic_alias_maximum"])
def test_empty_topic_with_an_unmapped_alias_is_refused(probe, topic_prefix):
    """A PUBLISH with an empty Topic Name and an alias that has no mapping on this connection is a
    Protocol Error: the server closes the connection (DISCONNECT 0x82 if it sends one)."""
    probe.send(_aliased("", 1, b"x", 1))
    judge_refusal(refusal(probe), {0x82}, "PUBLISH with an empty Topic Name and unmapped Topic Alias 1")


@case(v5=["MQTT-3.3.2-7", "MQTT-4.13.1-1"], requires=["topic_alias_maximum"])
def test_alias_mapping_does_not_survive_a_reconnect(make_probe, client_id, topic_prefix):
    """Topic Alias mappings end with the Network Connection, even when the Session continues: after a
    reconnect, an empty Topic Name with the old alias is a Protocol Error (connection closed, DISCONNECT
    0x82 if any) and the message is not delivered to the old alias's topic."""
    topic = f"{topic_prefix}/mapped"
    sub = subscriber(make_probe, topic, f"{topic_prefix}/sentinel", qos=1)
    first = make_probe(client_id).connect(clean_start=False, session_expiry=300)
    first.send(_aliased(topic, 1, b"mapped", 1))
    first.wait_for(Puback, packet_id=1)
    sub.receive(topic=topic, payload=b"mapped")
    first.disconnect()

    second = make_probe(client_id).connect(clean_start=False, session_expiry=0)
    second.send(_aliased("", 1, b"stale alias", 1))
    result = refusal(second)
    witness = make_probe().connect()
    stale = [p for p in delivered(witness, sub, f"{topic_prefix}/sentinel")]
    assert not stale, (
        f"the server delivered {_topics_and_payloads(stale)}: it resolved Topic Alias 1 with a mapping from "
        f"the previous connection"
    )
    judge_refusal(result, {0x82}, "empty Topic Name with an alias mapped only on the previous connection")


def _receive_resolved(sub, resolver: AliasResolver, sent: list[tuple[str, bytes]]) -> None:
    """Receive one PUBLISH per message in ``sent`` and check each resolves to the topic it was published on."""
    for topic, payload in sent:
        publish = sub.receive()
        alias = publish.properties.get("topic_alias")
        resolved = resolver.resolve(publish)
        assert (resolved, publish.payload) == (topic, payload), (
            f"expected {payload!r} on {topic}; received {publish.payload!r} on {resolved}"
            + ("" if alias is None else f" (Topic Alias {alias}, Topic Name {publish.topic!r})")
        )


def _long_topics(topic_prefix: str, n: int) -> list[str]:
    # Long names make aliases worth using for a server that uses them.
    return [f"{topic_prefix}/{'long-topic-name-' * 6}{i}" for i in range(n)]


@case(v5=["MQTT-3.1.2-27", "MQTT-3.3.2-11"])
def test_no_aliases_to_a_client_that_accepts_none(make_probe, topic_prefix):
    """A client whose CONNECT has no Topic Alias Maximum, or 0, receives no Topic Aliases: every
    PUBLISH carries its full Topic Name, however often the topic repeats."""
    topics = _long_topics(topic_prefix, 3)
    absent = subscriber(make_probe, f"{topic_prefix}/#", qos=1)
    zero = subscriber(make_probe, f"{topic_prefix}/#", qos=1, properties=Properties(topic_alias_maximum=0))
    pub = make_probe().connect()
    sent = []
    for round_ in range(3):
        for topic in topics:
            payload = f"{round_}".encode()
            pub.publish(topic, payload, qos=1)
            sent.append((topic, payload))
    for sub in (absent, zero):
        _receive_resolved(sub, AliasResolver(0), sent)
        sub.expect_nothing()


@case(v5=["MQTT-3.1.2-26", "MQTT-3.3.2-11", "MQTT-3.3.2-8", "MQTT-3.3.2-7"])
def test_server_aliases_stay_within_the_client_maximum(make_probe, client_id, topic_prefix):
    """A client with Topic Alias Maximum 2 receives aliases (if the server uses any) only from 1 to 2,
    and an empty Topic Name only with an alias the server mapped on the same connection, including
    after a reconnect; every message resolves to the topic it was published on."""
    maximum = 2
    topics = _long_topics(topic_prefix, 4)
    connect = {"clean_start": False, "session_expiry": 300, "properties": Properties(topic_alias_maximum=maximum)}
    sub = make_probe(client_id).connect(**connect)
    sub.subscribe(f"{topic_prefix}/#", qos=1)
    pub = make_probe().connect()
    resolver = AliasResolver(maximum)

    def burst(tag: str) -> list[tuple[str, bytes]]:
        sent = []
        for round_ in range(3):
            for topic in topics:
                payload = f"{tag}{round_}".encode()
                pub.publish(topic, payload, qos=1)
                sent.append((topic, payload))
        return sent

    _receive_resolved(sub, resolver, burst("a"))
    sub.disconnect()
    queued = burst("b")  # queued in the session while the client is away
    sub = make_probe(client_id).connect(**{**connect, "session_expiry": 0})
    resolver.new_connection()
    _receive_resolved(sub, resolver, queued)
    _receive_resolved(sub, resolver, burst("c"))
