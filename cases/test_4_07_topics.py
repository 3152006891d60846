"""4.7 Topic names and topic filters: wildcards and where they may stand, topics beginning with '$',
empty names, U+0000, literal matching."""

from conformance import BrokerViolation, Informational, Publish, case
from conformance.steps.common import delivered, shown, until_barrier, until_sentinel
from conformance.steps.topics import (
    BAD_FILTER_CODES,
    dollar_topic,
    granted,
    judge,
    publish_reactions,
    subscribe_reactions,
    unsubscribe_reactions,
)


def _topics(packets: list[Publish]) -> list[str]:
    return sorted(p.topic for p in packets)


def _check_matches(make_probe, topic_prefix: str, filters: list[str], should: list[str], should_not: list[str]):
    """One subscriber holds ``filters``; a publisher sends to every topic in ``should`` and ``should_not``;
    exactly the ``should`` topics must arrive, each once (the filters' subtrees do not overlap)."""
    sentinel = f"{topic_prefix}/sentinel"
    sub = make_probe().connect()
    granted(sub.subscribe(*filters, sentinel, qos=1))
    pub = make_probe().connect()
    for topic in should + should_not:
        pub.publish(topic, topic.encode(), qos=1)
    got = delivered(pub, sub, sentinel)
    assert _topics(got) == sorted(should), (
        f"filters {filters}: expected exactly {sorted(should)}, received {_topics(got)}"
    )


@case("MQTT-4.7.1-1", "MQTT-4.8.0-1", v5=["MQTT-4.7.0-1", "MQTT-4.13.1-1"])
def test_wildcard_in_topic_name_closes_the_connection(make_probe, topic_prefix):
    """Wildcard characters belong in topic filters only: a PUBLISH whose topic name holds '+' or '#' is a
    protocol violation, on which the server closes the connection (5.0: a DISCONNECT naming a malformed
    packet, a protocol error or an invalid topic name may come first)."""
    judge(publish_reactions(make_probe, [f"{topic_prefix}/+", f"{topic_prefix}/#", f"{topic_prefix}/+/x",
                                         f"{topic_prefix}/a+b", f"{topic_prefix}/a#b"]),
          "a topic name must not contain wildcard characters")


@case("MQTT-4.7.1-2", "MQTT-4.7.1-1", v5=["MQTT-4.7.1-1", "MQTT-4.7.0-1"])
def test_multi_level_wildcard_matches_parent_and_all_descendants(make_probe, topic_prefix):
    """A filter ending in '/#' is accepted and matches its parent level itself and any number of levels
    below it (including an empty level), but not a sibling that merely shares the prefix."""
    p = topic_prefix
    _check_matches(make_probe, p, [f"{p}/s/#"],
                   should=[f"{p}/s", f"{p}/s/a", f"{p}/s/a/b/c", f"{p}/s/"],
                   should_not=[f"{p}/sx", f"{p}/x/s", f"{p}/sx/a"])


@case("MQTT-4.7.1-2", "MQTT-4.8.0-1", v5=["MQTT-4.7.1-1", "MQTT-4.13.1-1"])
def test_misplaced_multi_level_wildcard_is_refused(make_probe, topic_prefix):
    """'#' must be a whole level and the last character of the filter. A filter that breaks this is a
    protocol violation: the server closes the connection (a SUBACK failure code for it, with the
    connection kept, grades NON-STRICT; granting it is a FAIL)."""
    p = topic_prefix
    judge(subscribe_reactions(make_probe, [f"{p}/s#", f"{p}/#/x", f"{p}/s/##", f"{p}/#/"]),
          "'#' must stand alone as the last level of a filter")


@case("MQTT-4.7.1-3", "MQTT-4.7.1-1", v5=["MQTT-4.7.1-2", "MQTT-4.7.0-1"])
def test_single_level_wildcard_matches_exactly_one_level(make_probe, topic_prefix):
    """'+' matches exactly one whole level, empty levels included, at the first, a middle or the last
    level, several times in one filter and together with '#'; it never matches zero or two levels."""
    p = topic_prefix
    base = p.split("/", 1)[1]
    _check_matches(
        make_probe, p,
        [f"{p}/s/+", f"+/{base}/f/+", f"{p}/g/+/x/+", f"{p}/h/+/#"],
        should=[f"{p}/s/a", f"{p}/s/", f"{p}/f/a", f"{p}/g/a/x/b", f"{p}/g//x/", f"{p}/h/a", f"{p}/h/a/b/c"],
        should_not=[f"{p}/s", f"{p}/s/a/b", f"{p}/f", f"{p}/f/a/b", f"{p}/g/a/y/b", f"{p}/g/a/x",
                    f"{p}/h"],
    )


@case("MQTT-4.7.1-3", "MQTT-4.8.0-1", v5=["MQTT-4.7.1-2", "MQTT-4.13.1-1"])
def test_partial_level_single_level_wildcard_is_refused(make_probe, topic_prefix):
    """'+' must occupy a whole level. A filter with '+' next to other characters in a level is a protocol
    violation: the server closes the connection (SUBACK failure with the connection kept: NON-STRICT)."""
    p = topic_prefix
    judge(subscribe_reactions(make_probe, [f"{p}/s+", f"{p}/+s/x", f"{p}/s/x+", f"{p}/++"]),
          "'+' must occupy an entire level of a filter")


@case("MQTT-4.7.2-1", v5=["MQTT-4.7.2-1"])
def test_leading_wildcards_do_not_match_dollar_topics(make_probe, topic_prefix):
    """A filter starting with '#' or '+' never matches a topic name starting with '$'. A message on a
    '$' topic of this case reaches a subscriber of that exact topic, but not one holding '#', '+/...' or
    '+/#'. (The spec lets a server stop clients exchanging messages on '$' topics; such a broker gives
    nothing to observe here: INFORMATIONAL.)"""
    topic, unique = dollar_topic(topic_prefix)
    sentinel = f"{topic_prefix}/sentinel"
    control = make_probe(name="exact").connect()
    try:
        control_codes = control.subscribe(topic, qos=1).reason_codes
    except BrokerViolation:
        control_codes = (0x80,)
    if control.closed is not None or control_codes[0] >= 0x80:
        raise Informational(f"the broker refuses a subscription to {topic!r}: nothing to observe here (a server may "
                            "keep '$' topics to itself, section 4.7.2)")
    wild = make_probe(name="wild").connect()
    granted(wild.subscribe("#", f"+/{unique}", "+/#", qos=1), "leading-wildcard filters")
    pub = make_probe(name="pub").connect()
    try:
        ack = pub.publish(topic, b"dollar", qos=1)
    except BrokerViolation:
        ack = None
    if pub.closed is not None or ack is None or getattr(ack, "reason_code", 0) >= 0x80:
        raise Informational(f"the broker does not let clients publish to {topic!r} (it may: section 4.7.2); "
                            "see the $SYS case")
    try:
        control.wait_for(Publish, topic=topic)
    except BrokerViolation:
        raise Informational(f"a message published to {topic!r} reached no subscriber, not even of that exact "
                            "topic: the broker keeps clients from exchanging messages on '$' topics") from None
    got = delivered(pub, wild, sentinel, wide=True)  # '#' also catches what other cases publish
    leaked = [p for p in got if p.topic.startswith("$")]
    assert not leaked, f"filters '#', '+/{unique}', '+/#' received {shown(leaked)}"


@case("MQTT-4.7.2-1", v5=["MQTT-4.7.2-1"])
def test_leading_wildcards_do_not_match_sys_topics(make_probe, topic_prefix):
    """Where the broker keeps retained '$SYS' topics, a subscription to '#' or to '+/<rest of a $SYS
    topic>' receives none of them (a subscription to '$SYS/#' does)."""
    sys_probe = make_probe(name="sys").connect()
    try:
        granted(sys_probe.subscribe("$SYS/#", qos=0), "$SYS/#")
        sample = sys_probe.wait_for(Publish)
    except BrokerViolation:
        raise Informational("the broker refused '$SYS/#' or sent nothing for it: no retained $SYS topic to "
                            "test with") from None
    sys_probe.close()
    if not sample.topic.startswith("$SYS"):
        raise BrokerViolation(f"'$SYS/#' received {sample.topic!r}")
    levels = sample.topic.split("/")
    plus_filter = "/".join(["+", *levels[1:]])
    control = f"{topic_prefix}/ctl"
    make_probe(name="pub").connect().publish(control, b"ctl", qos=1, retain=True)
    wild = make_probe(name="wild").connect()
    granted(wild.subscribe(plus_filter, "#", qos=0), "leading-wildcard filters")
    # '#' also catches what other cases publish (wide: their malformed packets are passed over). The
    # retained control message is the sentinel; other retained messages may trail it: a barrier follows.
    before = until_sentinel(wild, control, payload=b"ctl", wide=True)
    after = until_barrier(wild, wide=True)
    leaked = [p for p in before + after if p.topic.startswith("$")]
    assert not leaked, f"filters {plus_filter!r} and '#' received {shown(leaked[:5])}"
    make_probe(name="clean").connect().publish(control, b"", qos=1, retain=True)


@case("MQTT-4.7.3-1", "MQTT-4.8.0-1", v5=["MQTT-4.7.3-1", "MQTT-4.13.1-1"])
def test_empty_topic_filter_or_name_is_refused(make_probe):
    """Topic names and filters are at least one character long: SUBSCRIBE or UNSUBSCRIBE with an empty
    filter, or PUBLISH with an empty topic name (and, in 5.0, no Topic Alias), is a protocol violation
    on which the server closes the connection."""
    reactions = subscribe_reactions(make_probe, [""])
    reactions += unsubscribe_reactions(make_probe, [""])
    reactions += publish_reactions(make_probe, [""])
    judge(reactions, "topic names and filters must not be empty")


@case("MQTT-4.7.3-2", "MQTT-4.8.0-1", v5=["MQTT-4.7.3-2", "MQTT-4.13.1-1"])
def test_null_character_in_topic_is_refused(make_probe, topic_prefix):
    """A topic filter (SUBSCRIBE, UNSUBSCRIBE) or topic name (PUBLISH) holding U+0000 is malformed: the
    server closes the connection."""
    bad = f"{topic_prefix}/a\x00b"
    reactions = subscribe_reactions(make_probe, [bad])
    reactions += unsubscribe_reactions(make_probe, [bad])
    reactions += publish_reactions(make_probe, [bad], close_codes=BAD_FILTER_CODES | {0x90})
    judge(reactions, "topic names and filters must not contain U+0000")


@case("MQTT-4.7.3-4", v5=["MQTT-4.7.3-4"])
def test_topic_matching_is_literal(make_probe, topic_prefix):
    """Matching compares levels character for character, with no normalisation: letter case, a trailing
    '/', a doubled or missing space, and a Unicode canonically-equivalent spelling (e + combining acute
    accent for U+00E9) all make a different topic; only the exact spelling is delivered."""
    p = topic_prefix
    exact = f"{p}/Accounts payable/caf\u00e9"
    _check_matches(
        make_probe, p, [exact],
        should=[exact],
        should_not=[f"{p}/accounts payable/caf\u00e9", f"{p}/ACCOUNTS PAYABLE/CAF\u00c9",
                    f"{exact}/", f"{p}/Accounts  payable/caf\u00e9", f"{p}/Accountspayable/caf\u00e9",
                    f"{p}/Accounts payable/cafe\u0301", f"{p}/Accounts payable/cafe", f"{p}//Accounts payable/caf\u00e9"],
    )
