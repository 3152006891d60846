"""3.1.2.11.2 Session Expiry Interval and 4.1 session lifetime (5.0): a session outlives its connection
exactly as long as its Session Expiry Interval, which DISCONNECT may change (but not from 0); the
Session Present flag tells whether one was found. 3.1.1: retained messages are not session state."""

import time

import pytest

from conformance import Disconnect, Informational, Probe, Properties, Unsupported, case
from conformance.grading import late_timer
from conformance.steps.common import publisher
from conformance.steps.connect import check_server_disconnect
from conformance.steps.malformed import PROTOCOL_ERROR, expect_rejected
from conformance.steps.will import ON_TIME, disconnect_and_wait, note, quiet_for
from conformance.verdicts import BrokerViolation

LONG = 600
UINT_MAX = 0xFFFFFFFF


def _leave(make_probe, client_id: str, topic: str, *, connect_expiry: int | None, **disconnect_props) -> int:
    """Connect to a persistent session (Clean Start 0) with ``connect_expiry``, subscribe to ``topic`` at
    QoS 1 and DISCONNECT (with ``disconnect_props``), waiting for the close. Returns the Session Expiry
    Interval the CONNACK gave (the requested one if it gave none)."""
    probe = make_probe(client_id).connect(clean_start=False, session_expiry=connect_expiry)
    granted = probe.connack.properties.get("session_expiry_interval", connect_expiry or 0)
    probe.subscribe(topic, qos=1)
    disconnect_and_wait(probe, **disconnect_props)
    return granted


def _resume(make_probe, client_id: str):
    """Connect with Clean Start 0 to whatever session ``client_id`` has; this connection's Session
    Expiry 0 ends the session when the case closes it."""
    return make_probe(client_id).connect(clean_start=False, session_expiry=0)


def _gone_at(make_probe, witness, ids: tuple[str, str], since: float, expiry: int, late_window: float
            ) -> tuple[float, Probe] | None:
    """Sample two sessions left at ``since`` with Session Expiry ``expiry``: the first one timer tick after
    the expiry, the second (only if the first was still there) at the end of the late window. Returns
    how long after ``since`` a session was found gone and the connection that found it, or None if both
    were still present."""
    for client_id, at in zip(ids, (expiry + ON_TIME, expiry + late_window), strict=True):
        quiet_for(witness, since + at - time.monotonic(), "While the Session Expiry Interval ran out")
        probe = _resume(make_probe, client_id)
        elapsed = time.monotonic() - since
        if not probe.connack.session_present:
            return elapsed, probe
        note(probe, f"session still present {elapsed:.2f} s after the {expiry} s Session Expiry Interval")
    return None


@case(v5=["MQTT-3.1.2-23", "MQTT-3.1.2-5", "MQTT-3.2.2-3"])
def test_session_with_expiry_is_kept_after_the_connection(make_probe, client_id, topic_prefix):
    """With a Session Expiry Interval above 0 the session outlives its connection: Clean Start 0 resumes
    it (Session Present 1) with its subscription, and a QoS 1 message published meanwhile is delivered."""
    topic = f"{topic_prefix}/kept"
    _leave(make_probe, client_id, topic, connect_expiry=LONG)
    publisher(make_probe).publish(topic, b"while away", qos=1)
    back = _resume(make_probe, client_id)
    assert back.connack.session_present, "Clean Start 0 within the Session Expiry Interval gave Session Present 0"
    back.receive(topic=topic, payload=b"while away", qos=1)


@case(v5=["MQTT-3.1.2-4", "MQTT-3.1.2-23", "MQTT-3.1.2-5"])
def test_clean_start_session_with_expiry_outlives_the_connection(make_probe, client_id, topic_prefix):
    """Clean Start 1 discards the old session and starts a new one, which a Session Expiry Interval above
    0 keeps after the connection: the next Clean Start 0 resumes the new session, not the old one."""
    old, new = f"{topic_prefix}/old", f"{topic_prefix}/new"
    _leave(make_probe, client_id, old, connect_expiry=LONG)
    fresh = make_probe(client_id).connect(clean_start=True, session_expiry=LONG)
    assert not fresh.connack.session_present, "Clean Start 1 gave Session Present 1"
    fresh.subscribe(new, qos=1)
    disconnect_and_wait(fresh)
    pub = publisher(make_probe)
    pub.publish(old, b"to the old session", qos=1)
    pub.publish(new, b"to the new session", qos=1)
    back = _resume(make_probe, client_id)
    assert back.connack.session_present, "the session started with Clean Start 1 and Session Expiry > 0 was not kept"
    back.receive(topic=new, payload=b"to the new session")
    back.expect_nothing()


@pytest.mark.parametrize("expiry", [None, 0], ids=["absent", "zero"])
@case(v5=["MQTT-3.1.2-6", "MQTT-4.1.0-2", "MQTT-3.2.2-3"])
def test_session_without_expiry_ends_with_the_connection(make_probe, client_id, topic_prefix, expiry):
    """With no Session Expiry Interval, or 0, the session ends when its connection closes, even with
    Clean Start 0: the next Clean Start 0 creates a new session (Session Present 0) without the old
    subscription or the message published meanwhile."""
    topic = f"{topic_prefix}/gone"
    granted = _leave(make_probe, client_id, topic, connect_expiry=expiry)
    if granted:
        raise Unsupported(f"the server set Session Expiry Interval {granted} s for a client that asked for 0")
    publisher(make_probe).publish(topic, b"nobody home", qos=1)
    back = _resume(make_probe, client_id)
    assert not back.connack.session_present, "the session of a Session Expiry 0 connection was kept after it closed"
    back.expect_nothing()


@case(v5=["MQTT-4.1.0-2", "MQTT-3.1.2-6", "MQTT-3.2.2-3"], timer=True,
      expectation="gone one timer tick after a 1 s expiry; later than the expiry plus the timer tolerance "
                  "(docs/grading.md) is FAIL")
def test_session_is_discarded_when_its_expiry_has_passed(make_probe, client_id, topic_prefix, target):
    """Once the connection is closed and the Session Expiry Interval (1 s) has passed, the server discards
    the session: Clean Start 0 then gets Session Present 0 and none of the messages published while the
    session still lived."""
    topic = f"{topic_prefix}/expiring"
    ids = (client_id, f"{client_id}b")
    expiries = {_leave(make_probe, one, topic, connect_expiry=1) for one in ids}
    closed_at = time.monotonic()
    expiry = expiries.pop()
    if expiries or not 0 < expiry <= 5:
        raise Unsupported(f"the server replaced the 1 s Session Expiry Interval with {sorted(expiries | {expiry})}")
    pub = publisher(make_probe)
    pub.publish(topic, b"before expiry", qos=1)
    late_window = target.profile.limits["timer_late_window"]
    found = _gone_at(make_probe, pub, ids, closed_at, expiry, late_window)
    if found is None:
        raise BrokerViolation(f"the session was still present {expiry + late_window:.1f} s after the connection "
                              f"closed with a {expiry} s Session Expiry Interval")
    gone, probe = found
    probe.expect_nothing()
    if probe.client_id != ids[0]:  # an explicit bound met late: FAIL past the timer tolerance, noted either way
        late_timer(probe, f"the session (gone at {gone:.2f} s) was still present after the close at", [expiry + ON_TIME],
                   expiry)


@case(v5=["MQTT-4.1.0-2", "MQTT-3.2.2-3"])
def test_disconnect_can_shorten_the_session_expiry_to_0(make_probe, client_id, topic_prefix):
    """A client that connected with a Session Expiry Interval may set it to 0 on DISCONNECT: the session
    then ends with the connection (Session Present 0 on the next Clean Start 0)."""
    _leave(make_probe, client_id, f"{topic_prefix}/s", connect_expiry=LONG, session_expiry_interval=0)
    back = _resume(make_probe, client_id)
    assert not back.connack.session_present, "DISCONNECT set Session Expiry 0, yet the session was kept"


@case(v5=["MQTT-3.1.2-23", "MQTT-4.1.0-2"], timer=True)
def test_disconnect_can_lengthen_the_session_expiry(make_probe, client_id, topic_prefix, target):
    """A client that connected with a 1 s Session Expiry Interval may lengthen it on DISCONNECT: its session
    is still there when sessions left with 1 s (the controls) are already gone."""
    topic = f"{topic_prefix}/s"
    controls = (f"{client_id}a", f"{client_id}b")
    for control in controls:
        _leave(make_probe, control, topic, connect_expiry=1)
    _leave(make_probe, client_id, topic, connect_expiry=1, session_expiry_interval=LONG)
    closed_at = time.monotonic()
    found = _gone_at(make_probe, publisher(make_probe), controls, closed_at, 1, target.profile.limits["timer_late_window"])
    if found is None:
        raise Informational("the control sessions (1 s Session Expiry) never expired, so whether DISCONNECT "
                            "lengthened the interval cannot be told")
    back = _resume(make_probe, client_id)
    assert back.connack.session_present, (
        f"the session was gone {found[0]:.2f} s after DISCONNECT had set its Session Expiry Interval to {LONG} s"
    )


@case(v5=["MQTT-4.13.1-1", "MQTT-3.14.2-2"])
def test_nonzero_expiry_on_disconnect_after_zero_is_a_protocol_error(make_probe):
    """Setting a non-zero Session Expiry Interval on DISCONNECT after connecting with 0 is a Protocol
    Error: the server closes the connection; a DISCONNECT it sends first carries 0x82 and no Session
    Expiry Interval."""
    probe = make_probe().connect(clean_start=True)
    probe.send(Disconnect(properties=Properties(session_expiry_interval=LONG)))
    closed = expect_rejected(probe, PROTOCOL_ERROR)
    if closed.disconnect is not None:
        check_server_disconnect(closed.disconnect)


@case(v5=["MQTT-4.1.0-2", "MQTT-3.2.2-3"])
def test_invalid_disconnect_does_not_keep_the_session(make_probe, client_id, topic_prefix):
    """The Session Expiry Interval a DISCONNECT tries to set after a CONNECT with 0 is not applied: the
    session still ends with the connection (Session Present 0 on the next Clean Start 0)."""
    _leave(make_probe, client_id, f"{topic_prefix}/s", connect_expiry=None, session_expiry_interval=LONG)
    back = _resume(make_probe, client_id)
    assert not back.connack.session_present, (
        "a DISCONNECT raising Session Expiry from 0 is a Protocol Error, yet the session was kept"
    )


@case(v5=["MQTT-3.1.2-23", "MQTT-3.1.2-5"])
def test_session_with_maximum_expiry_is_kept(make_probe, client_id, topic_prefix):
    """A Session Expiry Interval of 0xFFFFFFFF means the session never expires: it is there after the
    connection closes."""
    _leave(make_probe, client_id, f"{topic_prefix}/s", connect_expiry=UINT_MAX)
    back = _resume(make_probe, client_id)  # Session Expiry 0 on this connection ends the session for good
    assert back.connack.session_present, "a session with Session Expiry 0xFFFFFFFF was gone after its connection"


@case("MQTT-3.1.2-7", requires=["retain_available"])
def test_retained_messages_survive_the_end_of_a_session(make_probe, client_id, topic_prefix):
    """Retained messages are not session state: they stay when the session that published them ends,
    whether it was a Clean Session 1 session or a Clean Session 0 one discarded by a later Clean
    Session 1 connection."""
    clean, persistent = f"{topic_prefix}/clean", f"{topic_prefix}/persistent"
    with make_probe().connect(clean_start=True) as first:
        first.publish(clean, b"from a clean session", qos=1, retain=True)
    with make_probe(client_id).connect(clean_start=False) as second:
        second.publish(persistent, b"from a persistent session", qos=1, retain=True)
    make_probe(client_id).connect(clean_start=True).disconnect()
    sub = make_probe().connect()
    sub.subscribe(clean, qos=1)
    sub.receive(topic=clean, payload=b"from a clean session", retain=True)
    sub.subscribe(persistent, qos=1)
    sub.receive(topic=persistent, payload=b"from a persistent session", retain=True)
    for topic in (clean, persistent):
        sub.publish(topic, b"", qos=1, retain=True)  # leave no retained message behind
