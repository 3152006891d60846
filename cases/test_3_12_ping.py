"""3.12 PINGREQ and 3.13 PINGRESP: one answer for every request."""

from conformance import Pingreq, Pingresp, Raw, case, encode

BURST = 5


@case("MQTT-3.12.4-1", v5=["MQTT-3.12.4-1"])
def test_every_pingreq_gets_a_pingresp(probe):
    """The server answers each PINGREQ with a PINGRESP, also when several arrive in one TCP segment."""
    probe.send(Raw(encode(Pingreq(), probe.level) * BURST, label=f"{BURST} PINGREQ in one write"))
    for _ in range(BURST):
        probe.expect(Pingresp)
    probe.expect_nothing()
