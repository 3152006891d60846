"""Graded verdicts and the exceptions a case raises to reach them.

A case that returns normally PASSes. An ``AssertionError`` or ``BrokerViolation`` is the broker's
fault (FAIL, or NON-STRICT for a SHOULD-level statement). ``HarnessError`` and anything unexpected is
ours (ERROR).
"""

from __future__ import annotations

from enum import StrEnum

from .codec.errors import HarnessError


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NON_STRICT = "NON-STRICT"
    INFORMATIONAL = "INFORMATIONAL"
    UNSUPPORTED = "UNSUPPORTED"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


# For rolling several cases up into one statement's verdict: the first in this order wins.
SEVERITY = [Verdict.ERROR, Verdict.FAIL, Verdict.NON_STRICT, Verdict.PASS, Verdict.INFORMATIONAL, Verdict.UNSUPPORTED]


def worst(verdicts: list[Verdict | str]) -> Verdict | None:
    present = {Verdict(v) for v in verdicts}
    return next((v for v in SEVERITY if v in present), None)


MUST = "MUST"
SHOULD = "SHOULD"
MAY = "MAY"


class Outcome(Exception):
    """Base of the non-PASS outcomes a case can raise explicitly."""

    verdict: Verdict = Verdict.ERROR


class BrokerViolation(Outcome, AssertionError):
    """The broker broke the statement under test: FAIL."""

    verdict = Verdict.FAIL


class NonStrict(Outcome):
    """Permitted but discouraged behaviour, or a SHOULD met late: NON-STRICT (FAIL under --strict)."""

    verdict = Verdict.NON_STRICT


class Informational(Outcome):
    """Behaviour worth recording where the spec leaves a choice."""

    verdict = Verdict.INFORMATIONAL


class Unsupported(Outcome):
    """The target says the feature this case needs is off."""

    verdict = Verdict.UNSUPPORTED


class BrokerGone(Outcome):
    """The broker stopped accepting connections: the harness cannot judge (ERROR)."""

    verdict = Verdict.ERROR


__all__ = [
    "MAY", "MUST", "SHOULD", "SEVERITY", "BrokerGone", "BrokerViolation", "HarnessError", "Informational",
    "NonStrict", "Outcome", "Unsupported", "Verdict", "worst",
]
