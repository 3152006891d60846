"""Setup steps: the part of a case that only prepares the behaviour the case checks.

A broker violation raised while a setup step runs (an answer that never came, a session the broker
dropped, a subscription it refused) is a *failed precondition*: the case never reached what its own
statements describe. The verdict stays FAIL, but it names the step and the statement the step relies
on, and the per-statement roll-up charges that statement instead of the ones the case cites.

Steps are marked in two ways:

* ``with setup("retained message stored", "MQTT-3.3.1-5"):`` in a case or a step helper;
* automatically by the Probe, for the answers its own well-formed requests need (CONNACK, SUBACK,
  UNSUBACK, PUBACK, PUBREC, PUBREL, PUBCOMP) when one never comes while the connection stays open
  and carried no crafted bytes (a close is the broker's reaction to the request, and what follows a
  crafted packet is what the case is about): ``ANSWER_STEPS``.

When the case itself cites the step's statement, or any statement of the step's chapters (a case about
SUBSCRIBE tests the SUBACK too), the failure is the case's own, exactly as if no step were marked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import catalogue
from .codec.errors import HarnessError
from .verdicts import BrokerViolation

V3, V5 = catalogue.VERSIONS
SAME_ID = object()  # setup(..., v5=SAME_ID): the 5.0 statement has the 3.1.1 ID


@dataclass(frozen=True)
class Step:
    """A setup step: what it does, the statement (per version) its success relies on, and the chapters
    whose cases test the step itself."""

    name: str
    statements: dict[str, str | None]
    chapters: tuple[str, ...] = ()

    def statement(self, version: str) -> str | None:
        return self.statements.get(version)

    def tested_by(self, cited: tuple[str, ...], version: str) -> bool:
        """Whether a case citing ``cited`` checks this step itself (then a failure here is its own)."""
        mine = self.statement(version)
        if mine is not None and mine in cited:
            return True
        return any(_chapter(sid, version) in self.chapters for sid in cited)


def _chapter(statement_id: str | None, version: str) -> str:
    if statement_id is None:
        return ""
    stmt = catalogue.get(statement_id, version)
    return stmt.chapter if stmt else ""


def step(name: str, v3: str | None, v5: str | None, *chapters: str) -> Step:
    return Step(name, {V3: v3, V5: v5}, tuple(chapters))


# The answers the Probe waits for after sending a well-formed request, by packet name.
ANSWER_STEPS: dict[str, Step] = {
    "CONNACK": step("connect: CONNACK accepting the connection", "MQTT-3.1.4-4", "MQTT-3.1.4-5", "3.1", "3.2"),
    "SUBACK": step("subscribe: SUBACK", "MQTT-3.8.4-1", "MQTT-3.8.4-1", "3.8", "3.9"),
    "UNSUBACK": step("unsubscribe: UNSUBACK", "MQTT-3.10.4-4", "MQTT-3.10.4-4", "3.10", "3.11"),
    # The QoS flows: only a case citing the very statement tests the answer itself (a case about the
    # PUBREC's properties, or about the server as a QoS 2 sender, needs the PUBREC as a precondition).
    "PUBACK": step("QoS 1 publish: PUBACK", "MQTT-4.3.2-2", "MQTT-4.3.2-4"),
    "PUBREC": step("QoS 2 publish: PUBREC", "MQTT-4.3.3-2", "MQTT-4.3.3-8"),
    "PUBCOMP": step("QoS 2 publish: PUBCOMP answering PUBREL", "MQTT-4.3.3-2", "MQTT-4.3.3-11"),
    "PUBREL": step("QoS 2 delivery: PUBREL answering PUBREC", "MQTT-4.3.3-1", "MQTT-4.3.3-4"),
}
SUBACK_COUNT = step("subscribe: one SUBACK code per topic filter", "MQTT-3.8.4-5", "MQTT-3.8.4-6", "3.8", "3.9")
UNSUBACK_COUNT = step("unsubscribe: one UNSUBACK code per topic filter", None, "MQTT-3.11.3-1", "3.10", "3.11")
SESSION_RESUMED = step("resume the stored session (Session Present 1)", "MQTT-3.2.2-2", "MQTT-3.2.2-3", "3.2", "4.1")
SUBSCRIPTION_GRANTED = step("subscription granted", None, None, "3.8", "3.9")


class PreconditionFailed(BrokerViolation):
    """A broker violation inside setup steps; ``steps`` runs from the outermost to the innermost.
    Its text is the original violation's, so that code catching BrokerViolation is unaffected."""

    def __init__(self, message: str, steps: list[Step]) -> None:
        super().__init__(message)
        self.message = message
        self.steps = steps


@contextmanager
def setup(name: str | Step, statement: str | None = None, *, v5: str | None | object = SAME_ID) -> Iterator[None]:
    """Mark a block as a setup step relying on ``statement`` (3.1.1 ID, or the only one; ``v5=`` gives the
    5.0 ID when it differs). A broker violation inside becomes a failed precondition (see the module)."""
    marked = name if isinstance(name, Step) else _explicit(name, statement, v5)
    try:
        yield
    except PreconditionFailed as exc:
        exc.steps.insert(0, marked)
        raise
    except AssertionError as exc:
        raise PreconditionFailed(_text(exc), [marked]) from exc


def _explicit(name: str, statement: str | None, v5: str | None | object) -> Step:
    """A step from a case: an ID unknown to both catalogues is a typo (ERROR); one unknown to a single
    version is dropped for that version (the same ID may exist in one version only)."""
    ids: dict[str, str | None] = {V3: statement, V5: statement if v5 is SAME_ID else v5}  # type: ignore[dict-item]
    for sid in {i for i in ids.values() if i is not None}:
        if not isinstance(sid, str) or all(catalogue.get(sid, v) is None for v in catalogue.VERSIONS):
            raise HarnessError(f"setup step {name!r}: {sid!r} is not an MQTT statement ID")
    known = {v: sid if sid is not None and catalogue.get(sid, v) else None for v, sid in ids.items()}
    return Step(name, known)


def _text(exc: AssertionError) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if len(text) > 500 else text or "assertion failed in a setup step"


def failed_answer(kind: str, message: str) -> BrokerViolation:
    """The violation for an answer that never came to a request the Probe encoded itself."""
    marked = ANSWER_STEPS.get(kind)
    return PreconditionFailed(message, [marked]) if marked else BrokerViolation(message)


def precondition(exc: BaseException, cited: tuple[str, ...], version: str | None) -> dict[str, Any] | None:
    """The results.json ``precondition`` record for ``exc``, or None when the failure is the case's own:
    not raised in a setup step, or in one the case tests itself (it cites that step's statements)."""
    if not isinstance(exc, PreconditionFailed) or version not in catalogue.VERSIONS:
        return None
    if any(marked.tested_by(cited, version) for marked in exc.steps):
        return None
    charged = next((m for m in reversed(exc.steps) if m.statement(version)), exc.steps[-1])
    return {"step": charged.name, "statement": charged.statement(version), "message": exc.message}


def precondition_text(record: dict[str, Any]) -> str:
    needs = f" (it needs {record['statement']})" if record["statement"] else ""
    return f"precondition failed in setup step '{record['step']}'{needs}: {record['message']}"
