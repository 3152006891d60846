"""Selecting cases by the statements they cite or by spec section (as h2spec does): ``run MQTT-3.1.2-24``,
``run 3.8``, ``list --statement ...``, ``pytest cases --mqtt-statement ... --mqtt-section ...``.

A case run (one version) is selected when it cites a selected statement for that version, or when one of
the statements it cites for that version lies in a selected section (``3.8`` takes 3.8, 3.8.1, 3.8.3.1...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .. import catalogue
from ..case import CaseSpec

STATEMENT_ID = re.compile(r"^MQTT-\d+(\.\d+)+-\d+$", re.IGNORECASE)
SECTION = re.compile(r"^\d+(\.\d+){1,4}$")  # "3.8", "3.1.2"; a bare "3" would clash with pytest arguments


def looks_like_statement(arg: str) -> bool:
    return bool(STATEMENT_ID.match(arg))


def looks_like_section(arg: str) -> bool:
    return bool(SECTION.match(arg))


def normalize_statement(arg: str) -> str:
    return "MQTT-" + arg[5:]


def in_section(section: str, wanted: str) -> bool:
    return section == wanted or section.startswith(wanted + ".")


def selects(spec: CaseSpec, version: str, statements: Iterable[str], sections: Iterable[str]) -> bool:
    """Whether the case's run for ``version`` is selected (no statement and no section: every run)."""
    statements, sections = set(statements), list(sections)
    if not statements and not sections:
        return True
    cited = spec.statements.get(version, ())
    if statements & set(cited):
        return True
    for statement_id in cited:
        found = catalogue.get(statement_id, version)
        if found is not None and any(in_section(found.section, s) for s in sections):
            return True
    return False


def check_known(statements: Iterable[str], sections: Iterable[str], versions: Iterable[str]) -> str | None:
    """A one-line problem with a statement ID or section no selected version has, else None."""
    versions = list(versions)
    for statement_id in statements:
        if not any(catalogue.get(statement_id, v) for v in versions):
            return (f"statement {statement_id} is not in the MQTT {' or '.join(versions)} catalogue "
                    "(IDs look like MQTT-3.1.2-24)")
    for section in sections:
        if not any(in_section(s.section, section) for v in versions for s in catalogue.load(v).values()):
            return f"section {section} has no normative statement in MQTT {' or '.join(versions)}"
    return None


def describe(statements: Iterable[str], sections: Iterable[str]) -> str:
    parts = [*(f"statement {s}" for s in statements), *(f"section {s}" for s in sections)]
    return ", ".join(parts)


def split_arguments(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The CLI's positional arguments: (statement IDs, sections, everything else for pytest)."""
    statements = [normalize_statement(a) for a in args if looks_like_statement(a)]
    sections = [a for a in args if looks_like_section(a)]
    rest = [a for a in args if not looks_like_statement(a) and not looks_like_section(a)]
    return statements, sections, rest

