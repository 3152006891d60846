"""3.1.2.5-3.1.2.7 and 3.1.3.2-3.1.3.3 Will: published on every kind of abnormal end of the connection,
at its QoS, retained or not, once; the Will Delay Interval; Will Properties; malformed Will flags and
Will Topics."""

import time

import pytest

from conformance import Connect, Probe, Publish, Unsupported, Will, case, craft, raw_string
from conformance.steps.common import delivered
from conformance.steps.malformed import MALFORMED, PROTOCOL_ERROR, expect_rejected
from conformance.steps.will import (
    ON_TIME,
    WILL_PAYLOAD,
    assert_no_will,
    connect_flags,
    connect_outcome,
    connect_with_will,
    judge_timing,
    quiet_for,
    receive_will,
    take_over,
    timed_will,
    watch_will,
    will_for,
)
from conformance.verdicts import BrokerViolation, Informational, NonStrict

# The smallest delay the wire allows is 1 s; suppression cases need time to reconnect inside it.
WILL_DELAY = 1
SUPPRESSED_DELAY = 2
LONG = 600  # a Will Delay / Session Expiry that never runs out during a case


def _needs_qos(capabilities, qos: int) -> None:
    if qos > capabilities["maximum_qos"]:
        raise Unsupported(f"the target's Maximum QoS is {capabilities['maximum_qos']}")


# -- published on an abnormal close ------------------------------------------------------------------
@pytest.mark.parametrize("will_qos", [0, 1, 2])
@case("MQTT-3.1.2-8", "MQTT-3.1.2-16", "MQTT-3.8.4-6", v5=["MQTT-3.1.2-7", "MQTT-3.1.2-8", "MQTT-3.1.2-14", "MQTT-3.8.4-8"])
def test_will_is_published_when_the_connection_drops(make_probe, topic_prefix, mqtt_version, capabilities, will_qos):
    """A client that drops its network connection without DISCONNECT has its Will published to the Will
    Topic with its payload, at the Will QoS (a QoS 2 subscriber receives it at that QoS), as a
    non-retained message (a later subscriber finds nothing retained); 5.0: with no Message Expiry
    Interval, since the Will had none."""
    _needs_qos(capabilities, will_qos)
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, qos=will_qos)
    connect_with_will(make_probe, will).close()
    publish = receive_will(watch, will, qos=watch.delivered_qos(will))
    if mqtt_version == "5.0":
        assert "message_expiry_interval" not in publish.properties, (
            f"the Will had no Message Expiry Interval, the publication carries {publish.properties}"
        )
    later = make_probe().connect()
    later.subscribe(watch.topic, qos=1)
    later.expect_nothing()


@case("MQTT-3.1.2-17", "MQTT-3.1.2-8", v5=["MQTT-3.1.2-15", "MQTT-3.1.2-8"], requires=["retain_available"])
def test_retained_will_is_published_as_retained(make_probe, topic_prefix, mqtt_version):
    """A Will with Will Retain 1 is published as a retained message: a subscriber that arrives after the
    owner is gone receives it with RETAIN 1 (5.0: a Retain As Published subscriber sees RETAIN 1 live)."""
    watch = watch_will(make_probe, topic_prefix, retain_as_published=True)
    will = will_for(watch, b"retained will", qos=1, retain=True)
    connect_with_will(make_probe, will).close()
    receive_will(watch, will, **({"retain": True} if mqtt_version == "5.0" else {}))
    later = make_probe().connect()
    later.subscribe(watch.topic, qos=1)
    later.receive(topic=watch.topic, payload=will.payload, retain=True)
    later.publish(watch.topic, b"", qos=1, retain=True)  # leave no retained message behind


def _closed_by_server(owner: Probe, timeout: float | None, when: str) -> None:
    """The broker must close the owner's connection for the Will to be due; whether it does is judged by
    the cases of that rule, so a broker that does not is INFORMATIONAL here."""
    try:
        owner.expect_closed(timeout)
    except BrokerViolation as exc:
        raise Informational(f"the broker did not close the Will owner's connection {when} ({exc}); "
                            "whether it publishes the Will then cannot be observed") from None


@case("MQTT-3.1.2-8", v5=["MQTT-3.1.2-8"])
def test_will_is_published_when_the_server_closes_for_a_protocol_error(make_probe, topic_prefix):
    """The server closing the connection because the client broke the protocol (here a PUBLISH with
    QoS 3) is an abnormal end: the Will is published."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    owner = connect_with_will(make_probe, will)
    owner.send(craft(Publish(topic=f"{topic_prefix}/q3", payload=b"x", qos=1, packet_id=1), qos_bits=0b11))
    _closed_by_server(owner, None, "on a PUBLISH with QoS 3")
    receive_will(watch, will)


@case("MQTT-3.1.2-8", v5=["MQTT-3.1.2-8"], timer=True)
def test_will_is_published_when_keep_alive_expires(make_probe, topic_prefix, mqtt_version, target):
    """A client that stays silent past 1.5 x its Keep Alive is disconnected by the server, and its Will
    is published."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    owner = connect_with_will(make_probe, will, keep_alive=1)
    keep_alive = owner.connack.properties.get("server_keep_alive", 1) if mqtt_version == "5.0" else 1
    if keep_alive == 0:
        raise Unsupported("the server set Server Keep Alive 0 and does not disconnect idle clients")
    late_window = target.profile.limits["timer_late_window"]
    if 1.5 * keep_alive > late_window:  # e.g. 65535 s: the wait would outlast any run (a hang, not a verdict)
        raise Informational(f"the server replaced Keep Alive 1 with Server Keep Alive {keep_alive} s, "
                            "too long to wait for here")
    _closed_by_server(owner, 1.5 * keep_alive + late_window,
                      f"within 1.5 x its {keep_alive} s Keep Alive")
    receive_will(watch, will)


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean-session-1", "clean-session-0"])
@case("MQTT-3.1.2-8", "MQTT-3.1.4-2")
def test_will_is_published_when_a_new_connection_takes_over(make_probe, topic_prefix, client_id, clean_session):
    """3.1.1: a second connection with the same ClientId makes the server close the first one, which sent
    no DISCONNECT: its Will is published, whether the sessions are Clean Session 1 or 0."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    old = connect_with_will(make_probe, will, client_id, clean_start=clean_session)
    take_over(make_probe, client_id, clean_start=clean_session)
    old.expect_closed()
    receive_will(watch, will)


@pytest.mark.parametrize(("clean_start", "will_delay"), [(False, 0), (True, LONG)],
                         ids=["continue-delay-0", "clean-start-delay-long"])
@case(v5=["MQTT-3.1.2-8"], expectation="INFORMATIONAL where the Will is not published: see the docstring")
def test_will_on_takeover(make_probe, topic_prefix, client_id, clean_start, will_delay):
    """5.0: a second connection with the same ClientId takes over a live one whose client sent no
    DISCONNECT. The spec's note on the Will Delay says the old Will is then published unless the new
    connection continues the session (Clean Start 0) and the Will Delay is above 0: so with Will Delay 0,
    and when Clean Start 1 ends the session. Its normative text is less clear, since the new connection
    opens before the Will Delay (counted from the close it causes) has passed: a missing Will is
    INFORMATIONAL, and so is a published one in the Will Delay 0 variant (MQTT-3.1.3-9 read literally
    forbids it); a Will published when Clean Start 1 ended the session is a PASS."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=will_delay)
    old = connect_with_will(make_probe, will, client_id, clean_start=False, session_expiry=LONG)
    new = take_over(make_probe, client_id, clean_start=clean_start, session_expiry=LONG)
    old.expect_closed()
    before = delivered(new, watch.observer, watch.sentinel)
    published = [p for p in before if isinstance(p, Publish) and p.topic == will.topic]
    if published and published[0].payload != will.payload:
        raise BrokerViolation(f"the Will was published with payload {published[0].payload!r}, not {will.payload!r}")
    flags = f"Clean Start {int(clean_start)}, Will Delay {will_delay} s"
    if not published:
        raise Informational(f"takeover with {flags}: the Will of the replaced connection was not published")
    if not clean_start:
        raise Informational(f"takeover with {flags}: the Will of the replaced connection was published")


@case("MQTT-3.1.2-10", v5=["MQTT-3.1.2-10", "MQTT-3.1.2-8"])
def test_will_is_published_only_once(make_probe, topic_prefix, client_id):
    """Once published, the Will is removed from the session: when the client reconnects to the same
    session without a Will and drops again, nothing is published."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    connect_with_will(make_probe, will, client_id, clean_start=False, session_expiry=LONG).close()
    receive_will(watch, will)
    take_over(make_probe, client_id, clean_start=False, session_expiry=LONG).close()
    settled = take_over(make_probe, client_id, clean_start=True)
    assert_no_will(watch, settled, "the Will was published already and must not be published again")


# -- 5.0 Will Delay Interval ---------------------------------------------------------------------------
@case(v5=["MQTT-3.1.2-7", "MQTT-3.1.2-8"], timer=True)
def test_will_waits_for_the_will_delay(make_probe, topic_prefix, target):
    """With a Will Delay Interval shorter than the Session Expiry Interval, the Will is published once
    the delay has passed after the close, not before (the spec sets no deadline after that: late is NON-STRICT)."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=WILL_DELAY)
    owner = connect_with_will(make_probe, will, clean_start=False, session_expiry=LONG)
    closed_at = time.monotonic()
    owner.close()
    _, elapsed = timed_will(watch, will, closed_at, WILL_DELAY + target.profile.limits["timer_late_window"])
    judge_timing(elapsed, WILL_DELAY, WILL_DELAY, "the Will was published")


@case(v5=["MQTT-3.1.2-8"], timer=True)
def test_will_goes_when_the_session_ends_before_the_will_delay(make_probe, topic_prefix, target):
    """With a Will Delay Interval longer than the Session Expiry Interval, the Will is published when
    the session ends (1 s after the close), not after the Will Delay."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=LONG)
    owner = connect_with_will(make_probe, will, clean_start=False, session_expiry=1)
    expiry = owner.connack.properties.get("session_expiry_interval", 1)
    if expiry >= LONG:
        raise Unsupported(f"the server set Session Expiry Interval {expiry} s, not shorter than the Will Delay")
    closed_at = time.monotonic()
    owner.close()
    _, elapsed = timed_will(watch, will, closed_at, expiry + target.profile.limits["timer_late_window"])
    judge_timing(elapsed, expiry, expiry, "the Will was published")


@case(v5=["MQTT-3.1.2-8"], timer=True)
def test_will_delay_does_not_outlive_a_session_that_ends_at_close(make_probe, topic_prefix, target):
    """With Session Expiry 0 the session ends when the connection closes, so the Will is due at once: the
    Will Delay only holds a Will back while its session lives. Publishing only after the Will Delay is
    NON-STRICT (3.1.2-8 sets no deadline for a due Will); never publishing it is a FAIL."""
    delay = 3
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=delay)
    owner = connect_with_will(make_probe, will, clean_start=True)
    if owner.connack.properties.get("session_expiry_interval", 0) != 0:
        raise Unsupported("the server set a non-zero Session Expiry Interval for a client that asked for none")
    closed_at = time.monotonic()
    owner.close()
    _, elapsed = timed_will(watch, will, closed_at, delay + target.profile.limits["timer_late_window"])
    if elapsed > ON_TIME:
        raise NonStrict(f"the Will came {elapsed:.2f} s after the close: the broker waited for the {delay} s "
                        f"Will Delay although the session (Session Expiry 0) ended at the close")


@case(v5=["MQTT-3.1.3-9", "MQTT-3.1.2-8"], timer=True)
def test_reconnecting_within_the_will_delay_suppresses_the_will(make_probe, topic_prefix, client_id):
    """A client that drops and reconnects to its session before the Will Delay has passed has its Will
    dropped: it is not published, then or later."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=SUPPRESSED_DELAY)
    owner = connect_with_will(make_probe, will, client_id, clean_start=False, session_expiry=LONG)
    closed_at = time.monotonic()
    owner.close()
    back = take_over(make_probe, client_id, clean_start=False, session_expiry=LONG)
    if time.monotonic() - closed_at >= SUPPRESSED_DELAY:
        raise Informational("the reconnection took longer than the Will Delay here; the case cannot judge")
    quiet_for(watch.observer, SUPPRESSED_DELAY + ON_TIME, "The client reconnected within the Will Delay")
    assert_no_will(watch, back, "the client reconnected within the Will Delay, so its Will must not be published")


@case(v5=["MQTT-3.1.3-9", "MQTT-3.1.2-8"], timer=True)
def test_takeover_continuing_the_session_suppresses_a_delayed_will(make_probe, topic_prefix, client_id):
    """A new connection with the same ClientId and Clean Start 0 that takes over a live connection whose
    Will has a Will Delay continues the session before the delay has passed: the Will is not published."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=SUPPRESSED_DELAY)
    old = connect_with_will(make_probe, will, client_id, clean_start=False, session_expiry=LONG)
    new = take_over(make_probe, client_id, clean_start=False, session_expiry=LONG)
    old.expect_closed()
    quiet_for(watch.observer, SUPPRESSED_DELAY + ON_TIME, "The session was taken over within the Will Delay")
    assert_no_will(watch, new, "the session continued within the Will Delay, so the Will must not be published")


# -- 5.0 Will Properties -------------------------------------------------------------------------------
WILL_USER_PROPERTIES = [("zeta", "1"), ("alpha", "2"), ("zeta", "3"), ("mid", ""), ("alpha", "4")]


@case(v5=["MQTT-3.1.3-10"])
def test_will_user_properties_keep_their_order(make_probe, topic_prefix):
    """The published Will carries every Will User Property, repeated names included, in the order the
    client gave them."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, user_property=WILL_USER_PROPERTIES)
    connect_with_will(make_probe, will).close()
    receive_will(watch, will, user_property=WILL_USER_PROPERTIES)


@case(v5=["MQTT-3.1.2-8"])
def test_will_properties_are_published_with_the_will(make_probe, topic_prefix):
    """The Will Message is made of its Will Properties too: Payload Format Indicator, Content Type,
    Response Topic and Correlation Data arrive unchanged, the Message Expiry Interval as at most the
    given lifetime; the Will Delay Interval is not a PUBLISH property and is not forwarded."""
    watch = watch_will(make_probe, topic_prefix)
    expiry = 3600
    will = will_for(
        watch, "état final".encode(), payload_format_indicator=1, content_type="text/plain; charset=utf-8",
        response_topic=f"{topic_prefix}/reply", correlation_data=b"\x00\x01corr\xff", message_expiry_interval=expiry,
        will_delay_interval=0,
    )
    connect_with_will(make_probe, will).close()
    receive_will(
        watch, will, payload_format_indicator=1, content_type="text/plain; charset=utf-8",
        response_topic=f"{topic_prefix}/reply", correlation_data=b"\x00\x01corr\xff",
        message_expiry_interval=lambda v: v is not None and 0 < v <= expiry,
    )


# -- malformed Will flags and Will fields: the server must not accept the CONNECT ----------------------
def _send_variant(make_probe, client_id, packet: Connect, **craft_args) -> Probe:
    probe = make_probe(client_id)
    probe.send(craft(packet, **craft_args))
    return probe


def _plain_connect(make_probe, client_id, will: Will | None = None) -> tuple[Connect, int]:
    """A well-formed CONNECT (target credentials included) and its Connect Flags byte."""
    template = make_probe(client_id, name="tpl")
    packet = template.connect_packet(client_id, will=will)
    return packet, connect_flags(template, packet)


@case("MQTT-3.1.4-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_qos_3_is_refused(make_probe, client_id, topic_prefix):
    """A CONNECT with Will Flag 1 and Will QoS 3 is malformed: the server closes the connection
    (3.1.1 without CONNACK; 5.0 a CONNACK of 0x80 or more may come first)."""
    packet, flags = _plain_connect(make_probe, client_id, Will(topic=f"{topic_prefix}/will", payload=WILL_PAYLOAD))
    probe = _send_variant(make_probe, client_id, packet, connect_flags=flags | 0x18, label="CONNECT with Will QoS 3")
    expect_rejected(probe, MALFORMED, connecting=True)


@pytest.mark.parametrize("will_qos", [1, 2])
@case("MQTT-3.1.4-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_qos_without_will_flag_is_refused(make_probe, client_id, will_qos):
    """A CONNECT with Will Flag 0 must have Will QoS 0; with Will QoS 1 or 2 it does not match the CONNECT
    format and the server closes the connection."""
    packet, flags = _plain_connect(make_probe, client_id)
    probe = _send_variant(make_probe, client_id, packet, connect_flags=flags | will_qos << 3,
                          label=f"CONNECT with Will Flag 0 and Will QoS {will_qos}")
    expect_rejected(probe, MALFORMED, PROTOCOL_ERROR, connecting=True)


@case("MQTT-3.1.4-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_retain_without_will_flag_is_refused(make_probe, client_id):
    """A CONNECT with Will Flag 0 must have Will Retain 0; with Will Retain 1 it does not match the
    CONNECT format and the server closes the connection."""
    packet, flags = _plain_connect(make_probe, client_id)
    probe = _send_variant(make_probe, client_id, packet, connect_flags=flags | 0x20,
                          label="CONNECT with Will Flag 0 and Will Retain 1")
    expect_rejected(probe, MALFORMED, PROTOCOL_ERROR, connecting=True)


@case("MQTT-3.1.4-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_flag_without_will_fields_is_refused(make_probe, client_id, topic_prefix, mqtt_version):
    """A CONNECT with Will Flag 1 whose payload lacks the Will fields (5.0: Will Properties, Topic and
    Payload) does not match the CONNECT format: the server closes the connection."""
    packet, _ = _plain_connect(make_probe, client_id, Will(topic=f"{topic_prefix}/will", payload=WILL_PAYLOAD))
    fields = ["will_topic", "will_payload"] + (["will_properties"] if mqtt_version == "5.0" else [])
    probe = _send_variant(make_probe, client_id, packet, drop=fields, label="CONNECT with Will Flag 1, no Will fields")
    expect_rejected(probe, MALFORMED, connecting=True)


@case("MQTT-3.1.4-1", v5=["MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_fields_without_will_flag_are_refused(make_probe, client_id, topic_prefix):
    """A CONNECT with Will Flag 0 that still carries Will fields in its payload does not match the
    CONNECT format: the server closes the connection."""
    packet, flags = _plain_connect(make_probe, client_id, Will(topic=f"{topic_prefix}/will", payload=WILL_PAYLOAD))
    probe = _send_variant(make_probe, client_id, packet, connect_flags=flags & ~0x04,
                          label="CONNECT with Will Flag 0 carrying Will fields")
    expect_rejected(probe, MALFORMED, PROTOCOL_ERROR, connecting=True)


def _send_will_topic(make_probe, client_id, topic: bytes, label: str) -> Probe:
    packet, _ = _plain_connect(make_probe, client_id, Will(topic="placeholder", payload=WILL_PAYLOAD, qos=1))
    return _send_variant(make_probe, client_id, packet, will_topic=raw_string(topic), label=label)


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\x80", b"\xc3", b"\xff"], ids=["surrogate", "continuation",
                                                                                 "truncated", "ff"])
@case("MQTT-1.5.3-1", "MQTT-3.1.4-1",
      v5=["MQTT-1.5.4-1", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_topic_with_ill_formed_utf8_is_refused(make_probe, client_id, topic_prefix, bad):
    """A Will Topic is a UTF-8 Encoded String: one with ill-formed UTF-8 (an encoded surrogate, a stray
    continuation byte, a truncated sequence, a byte UTF-8 never uses) makes the CONNECT malformed and the
    server closes the connection."""
    probe = _send_will_topic(make_probe, client_id, f"{topic_prefix}/".encode() + bad,
                             f"CONNECT whose Will Topic ends in ill-formed UTF-8 {bad.hex()}")
    expect_rejected(probe, MALFORMED, connecting=True)


@case("MQTT-1.5.3-2", "MQTT-4.7.3-2", "MQTT-3.1.4-1", v5=["MQTT-1.5.4-2", "MQTT-4.7.3-2", "MQTT-3.1.4-1", "MQTT-4.13.1-1"])
def test_will_topic_with_null_character_is_refused(make_probe, client_id, topic_prefix):
    """A Will Topic containing U+0000 is not a valid string: the CONNECT is malformed and the server closes
    the connection."""
    probe = _send_will_topic(make_probe, client_id, f"{topic_prefix}/a\x00b".encode(), "CONNECT with U+0000 in Will Topic")
    expect_rejected(probe, MALFORMED, connecting=True)


def _refused_or_informational(probe: Probe, accepted: str) -> None:
    """PASS if the broker refused the CONNECT just sent (with or without a refusing CONNACK)."""
    answer = connect_outcome(probe)
    if answer is None or answer.reason_code:
        if answer is not None:
            probe.expect_closed()
        return
    raise Informational(accepted)


@pytest.mark.parametrize("suffix", ["+", "#", "a/+/b"], ids=["plus", "hash", "inner-plus"])
@case("MQTT-4.7.1-1", v5=["MQTT-4.7.0-1"])
def test_will_topic_with_wildcard_is_never_published(make_probe, client_id, topic_prefix, suffix):
    """A Will Topic is a Topic Name and may not contain wildcards. The server refuses such a CONNECT
    (closing the connection, with or without a refusing CONNACK); if it accepts it, it must never
    publish the Will under that name (FAIL), and accepting it at all is INFORMATIONAL."""
    watch = watch_will(make_probe, topic_prefix, topic=f"{topic_prefix}/#")
    will_topic = f"{topic_prefix}/w/{suffix}"
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(will=Will(topic=will_topic, payload=WILL_PAYLOAD, qos=1)))
    try:
        _refused_or_informational(probe, f"the broker accepted a CONNECT with the Will Topic {will_topic!r}")
    except Informational:
        probe.close()
        assert_no_will(watch, take_over(make_probe, client_id), "a Will Topic with a wildcard is no Topic Name")
        raise


@case("MQTT-4.7.3-1", v5=["MQTT-4.7.3-1"])
def test_empty_will_topic_is_refused(make_probe, client_id):
    """A Will Topic is a Topic Name and may not be empty: the server refuses the CONNECT (closing the
    connection, with or without a refusing CONNACK). Accepting it is INFORMATIONAL: where such a Will
    would go cannot be watched without subscribing to everything."""
    probe = make_probe(client_id)
    probe.send(probe.connect_packet(will=Will(topic="", payload=WILL_PAYLOAD)))
    _refused_or_informational(probe, "the broker accepted a CONNECT with an empty Will Topic")
