#!/usr/bin/env python3
"""Print the evidence text of one or more cases of a run, for a deviation's evidence file.

    python tools/evidence.py RESULTS.json CASE_SUBSTRING [CASE_SUBSTRING ...] [options] > fixtures/evidence/...

RESULTS.json is a run's results.json (or its report directory). Every case whose id contains one of
the substrings is printed (by default only FAIL, NON-STRICT and ERROR cases; ``--all`` prints any
verdict): the case id, target, version, statements, verdict, message and the wire transcript, each
entry with its summary and the hex of the bytes on the wire. ``--version`` keeps one MQTT version,
``--note`` adds a line saying why this is a deviation, ``--max`` caps the number of cases printed.
Exit code 1 when nothing matched, so a typo in the substring does not write an empty file unnoticed.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conformance.codec.version import Version  # noqa: E402
from conformance.run.records import ResultsFileError, load_results  # noqa: E402
from conformance.transcript import TEXT_ARROWS  # noqa: E402

BAD = {"FAIL", "NON-STRICT", "ERROR"}
HEX_WIDTH = 96  # hex digits per line (48 bytes)


def load(path: str) -> dict[str, Any]:
    try:
        return load_results(path)
    except ResultsFileError as exc:
        sys.exit(f"evidence.py: {exc}")


def select(doc: dict[str, Any], needles: list[str], version: str | None, every: bool) -> list[dict[str, Any]]:
    cases = [c for c in doc.get("cases", []) if any(n in c["id"] for n in needles)]
    if version:
        cases = [c for c in cases if c["mqtt_version"] == version]
    if not every:
        cases = [c for c in cases if c["verdict"] in BAD]
    return cases


def transcript_lines(entries: list[dict[str, Any]]) -> list[str]:
    lines = []
    for entry in entries:
        arrow = TEXT_ARROWS.get(entry.get("dir", ""), "??")
        lines.append(f"{entry.get('t', 0.0):9.4f}s {entry.get('probe', ''):>4} {arrow} {entry.get('summary', '')}")
        hexdump = entry.get("hex") or ""
        for chunk in textwrap.wrap(hexdump, HEX_WIDTH):
            lines.append(f"{'':21}hex {chunk}")
    return lines


def render(doc: dict[str, Any], case: dict[str, Any], note: str | None) -> str:
    target = doc.get("target", {})
    lines = [
        f"case:        {case['id']}",
        f"target:      {target.get('name', '?')} (run {doc.get('started_at', '?')})",
        f"version:     MQTT {case['mqtt_version']}",
        f"statements:  {', '.join(case['statements'])} ({case.get('level', 'MUST')})",
        f"verdict:     {case['verdict']}" + (" (known deviation)" if case.get("known_deviation") else ""),
        "message:     " + "\n             ".join((case.get("message") or "").splitlines() or [""]),
    ]
    if note:
        lines.append("why:         " + "\n             ".join(textwrap.wrap(note, 96)))
    lines.append("transcript:")
    lines.extend(transcript_lines(case.get("transcript", [])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results.json of a run (or its report directory)")
    parser.add_argument("case", nargs="+", help="substring(s) of the case id (any of them matches)")
    parser.add_argument("--version", choices=list(Version), help="only this MQTT version")
    parser.add_argument("--all", action="store_true", help="print cases of any verdict, not only FAIL/NON-STRICT/ERROR")
    parser.add_argument("--note", help="one line on why the broker deviates, printed with every case")
    parser.add_argument("--max", type=int, default=0, help="print at most this many cases (0: all)")
    args = parser.parse_args(argv)
    doc = load(args.results)
    cases = select(doc, args.case, args.version, args.all)
    if args.max:
        cases = cases[: args.max]
    if not cases:
        print(f"evidence.py: no {'' if args.all else 'FAIL/NON-STRICT/ERROR '}case matches {args.case}", file=sys.stderr)
        return 1
    print("\n\n".join(render(doc, case, args.note) for case in cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
