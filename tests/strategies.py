"""Hypothesis strategies for every MQTT packet, in 3.1.1 and 5.0 shapes."""

from __future__ import annotations

from hypothesis import strategies as st

from conformance.codec import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from conformance.codec.properties import SPECS, WILL

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
topic_name = text.filter(lambda t: t and "+" not in t and "#" not in t)
topic_filter = text.filter(bool)
binary = st.binary(max_size=24)
packet_id = st.integers(1, 65535)
u8 = st.integers(0, 255)

KIND_VALUES = {
    "byte": st.integers(0, 1),
    "u16": st.integers(1, 65535),
    "u32": st.integers(0, 2**32 - 1),
    "varint": st.integers(1, 268_435_455),
    "str": text,
    "bin": binary,
    "pair": st.tuples(text, text),
}


def properties(packet: str, version: int) -> st.SearchStrategy[Properties]:
    """Properties allowed in ``packet``; each non-repeatable one at most once (5.0 only)."""
    if version != 5:
        return st.just(Properties())
    specs = [s for s in SPECS if packet in s.packets]

    items = st.lists(
        st.sampled_from(specs).flatmap(lambda s: st.tuples(st.just(s.name), KIND_VALUES[s.kind])),
        max_size=5,
    ).map(lambda pairs: [p for i, p in enumerate(pairs)
                         if p[0] in ("user_property",) or (p[0] == "subscription_identifier" and packet == "PUBLISH")
                         or p[0] not in [q[0] for q in pairs[:i]]])
    return items.map(Properties.of)


def _strategies(version: int) -> list[st.SearchStrategy]:
    v5 = version == 5
    codes = u8 if v5 else st.just(0)
    will = st.builds(Will, topic=topic_name, payload=binary, qos=st.integers(0, 2), retain=st.booleans(),
                     properties=properties(WILL, version))
    connect = st.builds(
        Connect, client_id=text, clean_start=st.booleans(), keep_alive=st.integers(0, 65535),
        will=st.none() | will, username=st.none() | text,
        password=(st.none() | binary) if v5 else st.none(), properties=properties("CONNECT", version),
        protocol_name=st.just("MQTT"), protocol_level=st.just(version),
    )
    connect_with_password = st.builds(
        Connect, client_id=text, username=text, password=binary, protocol_name=st.just("MQTT"),
        protocol_level=st.just(version),
    )
    publish = st.integers(0, 2).flatmap(lambda qos: st.builds(
        Publish, topic=topic_name, payload=binary, qos=st.just(qos), retain=st.booleans(),
        dup=st.booleans() if qos else st.just(False), packet_id=packet_id if qos else st.none(),
        properties=properties("PUBLISH", version),
    ))

    def ack(cls, name):  # noqa: ANN001, ANN202
        return st.builds(cls, packet_id=packet_id, reason_code=codes, properties=properties(name, version))

    sub_options = st.builds(
        Subscription, topic_filter=topic_filter, qos=st.integers(0, 2),
        no_local=st.booleans() if v5 else st.just(False),
        retain_as_published=st.booleans() if v5 else st.just(False),
        retain_handling=st.integers(0, 2) if v5 else st.just(0),
    )
    suback_codes = st.lists(u8 if v5 else st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=5).map(tuple)
    strategies = [
        connect | connect_with_password,
        st.builds(Connack, session_present=st.booleans(), reason_code=u8, properties=properties("CONNACK", version)),
        publish,
        ack(Puback, "PUBACK"), ack(Pubrec, "PUBREC"), ack(Pubrel, "PUBREL"), ack(Pubcomp, "PUBCOMP"),
        st.builds(Subscribe, packet_id=packet_id, subscriptions=st.lists(sub_options, min_size=1, max_size=4).map(tuple),
                  properties=properties("SUBSCRIBE", version)),
        st.builds(Suback, packet_id=packet_id, reason_codes=suback_codes, properties=properties("SUBACK", version)),
        st.builds(Unsubscribe, packet_id=packet_id, topic_filters=st.lists(topic_filter, min_size=1, max_size=4).map(tuple),
                  properties=properties("UNSUBSCRIBE", version)),
        st.builds(Unsuback, packet_id=packet_id,
                  reason_codes=st.lists(u8, min_size=1, max_size=4).map(tuple) if v5 else st.just(()),
                  properties=properties("UNSUBACK", version)),
        st.just(Pingreq()), st.just(Pingresp()),
        st.builds(Disconnect, reason_code=codes, properties=properties("DISCONNECT", version)),
    ]
    if v5:
        strategies.append(st.builds(Auth, reason_code=u8, properties=properties("AUTH", version)))
    return strategies


def by_type(version: int) -> dict:
    """PacketType -> strategy for that type."""
    from conformance.codec import PacketType

    return dict(zip([t for t in PacketType if version == 5 or t != PacketType.AUTH], _strategies(version), strict=True))


def packets(version: int) -> st.SearchStrategy:
    return st.one_of(_strategies(version))
