"""3.14.4 DISCONNECT and the Will: a normal DISCONNECT (0x00) discards the Will for good; 5.0's
"Disconnect with Will Message" (0x04) and error codes leave it to be published, Will Delay included."""

import time

import pytest

from conformance import Disconnect, case, craft
from conformance.steps.common import publisher
from conformance.steps.will import (
    assert_no_will,
    close_after,
    connect_with_will,
    disconnect_and_wait,
    judge_timing,
    receive_will,
    take_over,
    timed_will,
    watch_will,
    will_for,
)

LONG = 600


@case("MQTT-3.14.4-3", "MQTT-3.1.2-8", "MQTT-3.1.2-10", v5=["MQTT-3.14.4-3", "MQTT-3.1.2-8", "MQTT-3.1.2-10"])
def test_disconnect_discards_the_will(make_probe, topic_prefix):
    """After a normal DISCONNECT (5.0: Reason Code 0x00, here left implicit) the server discards the
    Will: it is not published when the connection closes."""
    watch = watch_will(make_probe, topic_prefix)
    owner = connect_with_will(make_probe, will_for(watch))
    disconnect_and_wait(owner)
    assert_no_will(watch, publisher(make_probe), "the client sent DISCONNECT, so its Will must not be published")


@case(v5=["MQTT-3.14.4-3", "MQTT-3.1.2-8", "MQTT-3.1.2-10"])
def test_disconnect_with_explicit_reason_0_discards_the_will(make_probe, topic_prefix):
    """A DISCONNECT that spells out Reason Code 0x00 (Normal disconnection) discards the Will like the
    short form does."""
    watch = watch_will(make_probe, topic_prefix)
    owner = connect_with_will(make_probe, will_for(watch))
    owner.send(craft(Disconnect(), append=b"\x00\x00", label="DISCONNECT reason 0x00, empty properties"))
    close_after(owner)
    assert_no_will(watch, publisher(make_probe), "DISCONNECT 0x00 must discard the Will")


@case("MQTT-3.1.2-10", "MQTT-3.1.2-12", v5=["MQTT-3.1.2-10", "MQTT-3.14.4-3"])
def test_discarded_will_is_not_published_later(make_probe, topic_prefix, client_id):
    """A Will discarded by DISCONNECT is gone from the session: when the client reconnects to the same
    session without a Will (Will Flag 0) and then drops the connection, nothing is published."""
    watch = watch_will(make_probe, topic_prefix)
    owner = connect_with_will(make_probe, will_for(watch), client_id, clean_start=False, session_expiry=LONG)
    disconnect_and_wait(owner)
    take_over(make_probe, client_id, clean_start=False, session_expiry=LONG).close()
    settled = take_over(make_probe, client_id, clean_start=True)
    assert_no_will(watch, settled, "the Will was discarded by DISCONNECT and the next connection had none")


@pytest.mark.parametrize("reason_code", [0x04, 0x80, 0x83], ids=["0x04", "0x80", "0x83"])
@case(v5=["MQTT-3.1.2-8"])
def test_disconnect_other_than_normal_publishes_the_will(make_probe, topic_prefix, reason_code):
    """Only Reason Code 0x00 discards the Will: after DISCONNECT with 0x04 (Disconnect with Will Message)
    or an error code (0x80, 0x83) the Will is published."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    owner = connect_with_will(make_probe, will)
    disconnect_and_wait(owner, reason_code)
    receive_will(watch, will)


@case(v5=["MQTT-3.1.2-8"], timer=True)
def test_disconnect_with_will_message_keeps_the_will_delay(make_probe, topic_prefix, target):
    """DISCONNECT 0x04 asks for the Will, but the Will Delay Interval still applies: it is published
    1 s after the connection closes, not before."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch, will_delay_interval=1)
    owner = connect_with_will(make_probe, will, clean_start=False, session_expiry=LONG)
    disconnect_and_wait(owner, 0x04)
    closed_at = time.monotonic()  # the Will Delay runs from the close, not from the DISCONNECT
    _, elapsed = timed_will(watch, will, closed_at, 1 + target.profile.limits["timer_late_window"])
    judge_timing(elapsed, 1, 1, "the Will after DISCONNECT 0x04 came")


@case(v5=["MQTT-3.1.2-8"])
def test_invalid_disconnect_does_not_discard_the_will(make_probe, topic_prefix):
    """A DISCONNECT that sets a non-zero Session Expiry Interval after the CONNECT had none is a Protocol
    Error, not a valid DISCONNECT: the Will is not discarded and is published when the connection
    closes."""
    watch = watch_will(make_probe, topic_prefix)
    will = will_for(watch)
    owner = connect_with_will(make_probe, will, clean_start=True)
    disconnect_and_wait(owner, 0x00, session_expiry_interval=LONG)
    receive_will(watch, will)
