"""3.1 CONNECT: keep-alive, protocol level, second CONNECT."""

import time

from conformance import Connack, NonStrict, case
from conformance.codec import Disconnect

# Keep Alive 1 s is the smallest the spec allows; the close must come within 1.5 x Keep Alive.
KEEP_ALIVE = 1
SCHEDULING_SLACK = 0.25  # network and scheduler latency on loopback, not a widening of the bound


@case("MQTT-3.1.2-24", v5=["MQTT-3.1.2-22"], timer=True,
      expectation="closed within 1.5 x Keep Alive of silence; later is NON-STRICT with the measured time")
def test_silent_client_is_disconnected_after_one_and_a_half_keep_alive(make_probe, mqtt_version, target):
    """A client that sends nothing for 1.5 x Keep Alive is disconnected by the server."""
    probe = make_probe()
    probe.connect(keep_alive=KEEP_ALIVE)
    assert probe.connack is not None
    keep_alive = probe.connack.properties.get("server_keep_alive", KEEP_ALIVE) if mqtt_version == "5.0" else KEEP_ALIVE
    if keep_alive == 0:
        raise NonStrict("the server set Server Keep Alive 0 and will not disconnect idle clients")
    bound = 1.5 * keep_alive
    started = time.monotonic()
    late_window = target.profile.limits["timer_late_window"]
    closed = probe.expect_closed(timeout=bound + late_window, reason_codes={0x8D})
    elapsed = time.monotonic() - started
    if elapsed > bound + SCHEDULING_SLACK:
        raise NonStrict(f"closed {elapsed:.2f} s after the last packet; the spec's bound is {bound:.1f} s")
    assert closed is not None


@case("MQTT-3.1.2-24", v5=["MQTT-3.1.2-22"], timer=True,
      expectation="a client that pings within Keep Alive stays connected")
def test_pinging_client_stays_connected(make_probe):
    """A client that sends PINGREQ within every Keep Alive period is not disconnected."""
    probe = make_probe().connect(keep_alive=KEEP_ALIVE)
    deadline = time.monotonic() + 2.5 * KEEP_ALIVE
    while time.monotonic() < deadline:
        probe.ping()
        # Idle for half a Keep Alive; anything the broker sends meanwhile (a close) is caught here.
        assert probe.next(timeout=KEEP_ALIVE / 2) is None, "unexpected packet while idle"
        assert probe.closed is None, "the broker closed a client that kept pinging"
    probe.ping()


@case("MQTT-3.1.0-2", "MQTT-4.8.0-1", v5=["MQTT-3.1.0-2", "MQTT-4.13.1-1"])
def test_second_connect_closes_the_connection(probe):
    """A second CONNECT on the same connection is a protocol violation: the server closes it."""
    probe.send(probe.connect_packet())
    probe.expect_closed(reason_codes={0x82})


@case("MQTT-3.1.4-4", v5=["MQTT-3.1.4-5"])
def test_valid_connect_is_accepted(make_probe, client_id):
    """A well-formed CONNECT with a 23 character alphanumeric ClientId gets CONNACK 0x00."""
    probe = make_probe((client_id + "ABCDEFGHIJKLMNOPQRSTUVW")[:23])
    probe.send(probe.connect_packet(clean_start=True))
    probe.expect(Connack, reason_code=0)
    probe.send(Disconnect())
