"""The ``@case`` decorator: a conformance case cites the statements it checks, per version.

    @case("MQTT-3.2.2-1", v5="MQTT-3.2.2-2")          # 3.1.1 statement, 5.0 statement
    @case(v5=["MQTT-3.3.2-7", "MQTT-3.3.2-8"])         # 5.0 only
    @case("MQTT-3.8.4-5", v5=SAME)                     # same IDs in both versions

IDs are checked against the catalogue when the module is imported, so a typo fails collection, and so
does a statement that obliges only the client (a case judges the server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from . import catalogue
from .codec.errors import HarnessError
from .codec.version import Version
from .verdicts import MAY, MUST, SHOULD

SAME = object()  # v5=SAME: the 5.0 IDs are the 3.1.1 ones


@dataclass(frozen=True)
class CaseSpec:
    statements: dict[str, tuple[str, ...]]  # version -> IDs
    level: str = MUST
    expectation: str = ""
    requires: tuple[str, ...] = ()  # capability names; the case is UNSUPPORTED when one is off
    timer: bool = False  # waits for a broker timer: scheduled first so that the wait overlaps the rest
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(v for v in catalogue.VERSIONS if self.statements.get(v))


def _ids(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def case(
    *v3_ids: str,
    v5: str | Iterable[str] | object | None = None,
    level: str = MUST,
    expectation: str = "",
    requires: Iterable[str] = (),
    timer: bool = False,
) -> Callable[[Callable], Callable]:
    """Mark a test function as a conformance case citing statement IDs for 3.1.1 and/or 5.0."""
    if level not in (MUST, SHOULD, MAY):
        raise HarnessError(f"level must be MUST, SHOULD or MAY, not {level!r}")
    ids3 = tuple(v3_ids)
    ids5 = ids3 if v5 is SAME else _ids(v5)  # type: ignore[arg-type]

    def decorate(fn: Callable) -> Callable:
        statements: dict[str, tuple[str, ...]] = {v: ids for v, ids in ((Version.V311, ids3), (Version.V50, ids5))
                                                  if ids}
        if not statements:
            raise HarnessError(f"case {fn.__name__} cites no statement")
        for version, ids in statements.items():
            known = catalogue.load(version)
            for sid in ids:
                if sid not in known:
                    raise HarnessError(f"case {fn.__name__} cites {sid}, which is not an MQTT {version} statement")
                if known[sid].constrains == "client":  # a case judges the server: cite what obliges it
                    raise HarnessError(f"case {fn.__name__} cites {sid} (MQTT {version}), which obliges only the "
                                       "client; cite the server statement the case judges (docs/grading.md)")
        fn.mqtt_case = CaseSpec(statements, level, expectation, tuple(requires), timer)  # type: ignore[attr-defined]
        return pytest.mark.mqtt_case(fn)

    return decorate
