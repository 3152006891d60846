"""The pure judge of a broker's reaction to a bad packet (conformance.judge), fed packet lists as the
fuzzer feeds it: every outcome in both versions, without a broker."""

from __future__ import annotations

import pytest

from conformance.codec import (
    Connack,
    Disconnect,
    MalformedPacket,
    Pingresp,
    Puback,
    Pubrec,
    Suback,
    Unsuback,
)
from conformance.codec.version import Version
from conformance.judge import (
    ACCEPTED,
    CLOSED,
    FORBIDDEN,
    LEGACY_REFUSAL,
    REFUSED,
    REQUIRED,
    VIOLATION,
    Expected,
    Item,
    Reaction,
    classify,
    sealed,
)

pytestmark = pytest.mark.unit

BOTH = [Version.V311, Version.V50]
MALFORMED = frozenset({0x81})


def judged(version: Version, packets: list, closed: bool, expected: Expected | None = None, **reaction):
    return classify(Reaction(version, tuple(packets), closed, **reaction), expected or Expected(MALFORMED))


def malformed(raw: bytes = b"\x90\x02\x00\x00") -> MalformedPacket:
    packet = MalformedPacket("SUBACK packet identifier is 0")
    packet.raw = raw
    return packet


# -- after an accepted connection ---------------------------------------------------------------------
@pytest.mark.parametrize("version", BOTH)
def test_a_silent_close_is_closed_with_no_code_to_judge(version):
    judgement = judged(version, [], True)
    assert (judgement.outcome, judgement.code_ok, judgement.disconnect) == (CLOSED, True, None)


def test_a_disconnect_then_the_close_is_closed_and_its_code_judged():
    right = judged(Version.V50, [Disconnect(reason_code=0x81)], True)
    assert (right.outcome, right.code_ok, right.disconnect) == (CLOSED, True, Disconnect(reason_code=0x81))
    wrong = judged(Version.V50, [Disconnect(reason_code=0x82)], True)
    assert (wrong.outcome, wrong.code_ok) == (CLOSED, False)
    assert "0x81 (Malformed Packet)" in wrong.message
    anything = judged(Version.V50, [Disconnect(reason_code=0x82)], True, Expected(None))
    assert anything.code_ok


@pytest.mark.parametrize("version", BOTH)
def test_a_connection_kept_is_accepted_and_says_how_long_or_that_the_barrier_was_answered(version):
    waited = judged(version, [], False, waited=0.3)
    assert waited.outcome == ACCEPTED and "no close within 0.3 s" in waited.message
    answered = judged(version, [], False, barrier_answered=True)
    assert answered.outcome == ACCEPTED and "answered a PINGREQ" in answered.message


@pytest.mark.parametrize("version", BOTH)
def test_an_answer_is_accepted_while_open_and_a_violation_before_the_close(version):
    assert judged(version, [Puback(packet_id=1)], False).outcome == ACCEPTED
    closed = judged(version, [Puback(packet_id=1)], True)
    assert closed.outcome == VIOLATION and "answered with PUBACK" in closed.message


@pytest.mark.parametrize("version", BOTH)
@pytest.mark.parametrize("closed", [True, False])
def test_a_malformed_packet_is_a_violation(version, closed):
    judgement = judged(version, [malformed()], closed)
    assert judgement.outcome == VIOLATION and "malformed" in judgement.message


@pytest.mark.parametrize(("packets", "closed", "words"), [
    ([Disconnect(reason_code=0x81)], False, "kept the connection open"),
    ([Disconnect(reason_code=0x81), Puback(packet_id=1)], True, "nothing may follow a DISCONNECT"),
    ([Disconnect(reason_code=0x81), Disconnect(reason_code=0x81)], True, "at most one DISCONNECT"),
])
def test_a_disconnect_must_be_the_last_packet_and_the_close_must_follow(packets, closed, words):
    judgement = judged(Version.V50, packets, closed)
    assert judgement.outcome == VIOLATION and words in judgement.message


def test_a_disconnect_in_3_1_1_is_an_answer_like_any_other():
    assert judged(Version.V311, [Disconnect()], True).outcome == VIOLATION


@pytest.mark.parametrize("version", BOTH)
def test_allowed_packets_are_passed_over(version):
    expected = Expected(None, allow=(Puback,))
    assert judged(version, [Puback(packet_id=3)], True, expected).outcome == CLOSED


# -- a CONNECT to refuse --------------------------------------------------------------------------------
def connecting(codes=(0x81,), connack=None, **more) -> Expected:
    return Expected(frozenset(codes), connecting=True, **({"connack": connack} if connack else {}), **more)


def test_5_0_a_refusing_connack_then_the_close_is_closed_and_its_code_judged():
    right = judged(Version.V50, [Connack(reason_code=0x81)], True, connecting())
    assert (right.outcome, right.code_ok, right.connack) == (CLOSED, True, Connack(reason_code=0x81))
    wrong = judged(Version.V50, [Connack(reason_code=0x87)], True, connecting())
    assert (wrong.outcome, wrong.code_ok) == (CLOSED, False)
    required = judged(Version.V50, [Connack(reason_code=0x87)], True, connecting(connack=REQUIRED))
    assert required.outcome == VIOLATION


@pytest.mark.parametrize("version", BOTH)
def test_a_refusing_connack_with_the_connection_kept_is_refused(version):
    code = 0x87 if version.v5 else 0x05
    assert judged(version, [Connack(reason_code=code)], False, connecting([code])).outcome == REFUSED


@pytest.mark.parametrize("version", BOTH)
def test_an_accepting_connack_is_accepted_while_open_and_a_violation_before_the_close(version):
    kept = judged(version, [Connack()], False, connecting())
    assert (kept.outcome, kept.connack) == (ACCEPTED, Connack())
    assert judged(version, [Connack()], True, connecting()).outcome == VIOLATION


@pytest.mark.parametrize(("version", "packets", "expected", "words"), [
    (Version.V50, [Disconnect(reason_code=0x81)], connecting(), "MQTT-3.14.0-1"),
    (Version.V311, [Connack(reason_code=0x02)], connecting(connack=FORBIDDEN), "without a CONNACK"),
    (Version.V50, [Connack(reason_code=0x81, session_present=True)], connecting(), "Session Present 1"),
    (Version.V50, [Connack(reason_code=0x81), Connack(reason_code=0x81)], connecting(), "at most one CONNACK"),
    (Version.V311, [Puback(packet_id=1)], connecting(), "a CONNACK or the close"),
])
def test_what_a_server_must_never_send_on_a_refused_connect(version, packets, expected, words):
    for closed in (True, False):
        judgement = judged(version, packets, closed, expected)
        assert judgement.outcome == VIOLATION and words in judgement.message


@pytest.mark.parametrize("version", BOTH)
def test_a_required_connack_must_come(version):
    assert judged(version, [], True, connecting(connack=REQUIRED)).outcome == VIOLATION
    assert judged(version, [], True, connecting()).outcome == CLOSED


def test_5_0_the_3_1_1_protocol_refusal_counts_as_a_refusing_connack_where_allowed():
    legacy = malformed(LEGACY_REFUSAL)
    judgement = judged(Version.V50, [legacy], True, connecting([0x84], legacy_ok=True))
    assert (judgement.outcome, judgement.code_ok, judgement.connack.reason_code) == (CLOSED, True, 0x01)
    assert judged(Version.V50, [legacy], True, connecting([0x84])).outcome == VIOLATION


# -- a SUBSCRIBE, UNSUBSCRIBE or PUBLISH whose item is refused ------------------------------------------
ITEM = Expected(frozenset({0x8F}), item=Item(7, index=1))


@pytest.mark.parametrize("version", BOTH)
def test_a_failure_code_for_the_item_is_refused_while_open_and_closed_after_the_close(version):
    suback = Suback(packet_id=7, reason_codes=(0x00, 0x80))
    assert judged(version, [suback], False, ITEM).outcome == REFUSED
    assert judged(version, [suback], True, ITEM).outcome == CLOSED
    granted = Suback(packet_id=7, reason_codes=(0x80, 0x01))  # the code at the item's index decides
    assert judged(version, [granted], False, ITEM).outcome == ACCEPTED


def test_5_0_unsuback_puback_and_pubrec_refuse_by_their_code():
    for ack in (Unsuback(packet_id=7, reason_codes=(0x00, 0x8F)), Puback(packet_id=7, reason_code=0x90),
                Pubrec(packet_id=7, reason_code=0x90)):
        assert judged(Version.V50, [ack], False, ITEM).outcome == REFUSED, ack
    assert judged(Version.V50, [Puback(packet_id=7)], False, ITEM).outcome == ACCEPTED


def test_3_1_1_acknowledgements_without_codes_accept():
    assert judged(Version.V311, [Unsuback(packet_id=7)], False, ITEM).outcome == ACCEPTED
    assert judged(Version.V311, [Puback(packet_id=7)], False, ITEM).outcome == ACCEPTED
    other = Suback(packet_id=8, reason_codes=(0x80, 0x80))  # not the answer to our packet
    assert judged(Version.V311, [other], False, ITEM).outcome == ACCEPTED


@pytest.mark.parametrize("version", BOTH)
def test_a_suback_without_reason_codes_is_a_violation(version):
    assert judged(version, [Suback(packet_id=7)], False, ITEM).outcome == VIOLATION


# -- offline reactions and early decisions --------------------------------------------------------------
def test_received_takes_the_first_pingresp_as_the_barriers_answer():
    reaction = Reaction.received("5.0", [Pingresp(), Pingresp()], False, barrier=True)
    assert reaction.barrier_answered and reaction.packets == (Pingresp(),)
    plain = Reaction.received("3.1.1", [Pingresp()], True)
    assert not plain.barrier_answered and plain.packets == (Pingresp(),)
    assert classify(plain, Expected()).outcome == VIOLATION  # a PINGRESP answering the bad packet itself


def test_sealed_only_when_no_close_could_change_the_outcome():
    expected = Expected(MALFORMED)
    assert sealed(Reaction(Version.V50, (malformed(),)), expected)
    assert sealed(Reaction(Version.V50, (Disconnect(reason_code=0x81), Puback(packet_id=1))), expected)
    assert not sealed(Reaction(Version.V50, (Disconnect(reason_code=0x81),)), expected)
    assert not sealed(Reaction(Version.V311, (Puback(packet_id=1),)), expected)  # open: ACCEPTED
