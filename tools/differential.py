#!/usr/bin/env python3
"""Run the whole suite against every real broker that is installed here and compare them.

    python tools/differential.py [--out reports/differential] [--brokers mosquitto rumqttd ...]
                                 [--docs docs] [-n N]

The brokers are the registered embedded ones (conformance.brokers.REGISTRY) whose profile extends no
other: one per implementation (mosquitto-limited, say, is mosquitto configured otherwise, and its
profile extends mosquitto.toml). Each is started by the harness (``--embedded NAME``) with its
checked-in profile (``fixtures/targets/NAME.toml``); each run writes its reports under ``OUT/NAME/``.
Then:

- ``OUT/matrix.html`` and ``OUT/matrix.md``: the statements x brokers matrix (``mqtt-conformance compare``);
- ``OUT/summary.json`` and a table on stdout: per broker the verdict counts, the known deviations that
  showed, the FAIL/ERROR verdicts that no deviation explains, and the wall time. Those unexplained
  verdicts are run once more in isolation (a fresh broker, serially; ``OUT/NAME/isolated/``): one that
  comes again is a finding, one that does not is listed as not reproduced (a nondeterministic fault of
  the broker, or one case disturbing another through a broker that mixes sessions up);
- with ``--docs DIR``: the matrix is also written to ``DIR/matrix.html`` and ``DIR/matrix.md`` (the copy
  checked in and linked from the README).

Exit code 1 when a run did not complete (no results.json) or has an unexplained FAIL or ERROR that the
isolated re-run confirms; 0 otherwise. Brokers that are not installed are listed and left out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.brokers import REGISTRY  # noqa: E402
from conformance.run.records import load_results, summarize  # noqa: E402

RUN_TIMEOUT = 1800.0


def implementations() -> list[str]:
    """The registered brokers whose profile extends no other profile (a variant's profile does)."""
    return [name for name, cls in REGISTRY.items()
            if "extends" not in tomllib.loads(cls.profile_path().read_text(encoding="utf-8"))]


BROKERS = implementations()


def _run(name: str, report_dir: Path, workers: str, keyword: str | None) -> tuple[dict[str, Any] | None, int | None, str]:
    shutil.rmtree(report_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--embedded", name,
           "--profile", str(REGISTRY[name].profile_path()), "--report-dir", str(report_dir), "-n", workers]
    if keyword:
        cmd += ["-k", keyword]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT)
        code, tail = proc.returncode, (proc.stderr or proc.stdout)[-1500:]
    except subprocess.TimeoutExpired:
        code, tail = None, f"did not finish within {RUN_TIMEOUT:.0f} s"
    results_file = report_dir / "results.json"
    return (load_results(results_file) if results_file.is_file() else None), code, tail


def run_broker(name: str, out: Path, workers: str) -> dict[str, Any]:
    """One whole-suite run, then the unexplained FAIL/ERROR verdicts once more in isolation (a fresh
    broker, one case at a time); returns the summary (``results`` is None when the run did not complete)."""
    began = time.monotonic()
    doc, code, tail = _run(name, out / name, workers, None)
    unexplained = [] if doc is None else _unexplained(doc)
    rerun = None
    if unexplained:
        names = sorted({c["name"] for c in unexplained})
        rerun, _, _ = _run(name, out / name / "isolated", "0", " or ".join(names))
    return summarise(name, doc, code, time.monotonic() - began, tail, rerun)


def _unexplained(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in doc["cases"] if c["verdict"] in ("FAIL", "ERROR") and not c["known_deviation"]]


def summarise(name: str, doc: dict[str, Any] | None, code: int | None, wall: float, tail: str,
              rerun: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts of the whole run; an unexplained verdict is a finding only when it comes again in the
    isolated re-run, otherwise it is listed as not reproduced (a nondeterministic fault of the broker,
    or interference between cases that a broker mixing sessions up lets through)."""
    summary: dict[str, Any] = {"broker": name, "exit_code": code, "wall_s": round(wall, 1)}
    if doc is None:
        summary.update(results=None, error=tail.strip())
        return summary
    unexplained = _unexplained(doc)
    again = {(c["id"], c["mqtt_version"]) for c in _unexplained(rerun)} if rerun is not None else None
    confirmed = [c for c in unexplained if again is None or (c["id"], c["mqtt_version"]) in again]
    summary.update(
        results=True,
        target=doc["target"]["name"],
        cases=len(doc["cases"]),
        counts=summarize(doc["cases"]),
        known_deviations=sum(1 for c in doc["cases"] if c["known_deviation"]),
        unexplained=[_line(c) for c in confirmed],
        nondeterministic=[_line(c) for c in unexplained if c not in confirmed],
    )
    return summary


def _line(case: dict[str, Any]) -> str:
    return f"{case['id']}: {case['verdict']} {case['message'][:160]}"


def compare(out: Path, names: list[str], docs: Path | None) -> None:
    runs = [str(out / n) for n in names if (out / n / "results.json").is_file()]
    if len(runs) < 2:
        return
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "compare", *runs,
                           "--output", str(out / "matrix.html")], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(f"compare failed: {proc.stderr[-500:]}", file=sys.stderr)
        return
    (out / "matrix.md").write_text(proc.stdout, encoding="utf-8")
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "matrix.html", docs / "matrix.html")
        shutil.copyfile(out / "matrix.md", docs / "matrix.md")


def table(summaries: list[dict[str, Any]]) -> str:
    lines = [f"{'broker':10} {'cases':>5} {'PASS':>5} {'FAIL':>5} {'N-S':>4} {'INFO':>4} {'UNSUP':>5} "
             f"{'ERROR':>5} {'known':>5} {'nondet.':>7} {'unexpl.':>7} {'wall s':>7}"]
    for s in summaries:
        if not s["results"]:
            lines.append(f"{s['broker']:10} no results: {s['error'][:120]}")
            continue
        c = s["counts"]
        lines.append(
            f"{s['broker']:10} {s['cases']:>5} {c.get('PASS', 0):>5} {c.get('FAIL', 0):>5} {c.get('NON-STRICT', 0):>4} "
            f"{c.get('INFORMATIONAL', 0):>4} {c.get('UNSUPPORTED', 0):>5} {c.get('ERROR', 0):>5} "
            f"{s['known_deviations']:>5} {len(s['nondeterministic']):>7} {len(s['unexplained']):>7} {s['wall_s']:>7.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "reports" / "differential"), metavar="DIR")
    parser.add_argument("--brokers", nargs="+", default=BROKERS, choices=BROKERS, metavar="NAME")
    parser.add_argument("--docs", metavar="DIR", help="also write matrix.html and matrix.md here (e.g. docs)")
    parser.add_argument("-n", dest="workers", default="auto", help="workers per run (default: auto)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.brokers if REGISTRY[n].available()]
    missing = [n for n in args.brokers if n not in names]
    if missing:
        print(f"not installed (left out): {', '.join(missing)}; install with .ci/install-brokers {' '.join(missing)}")
    summaries = []
    for name in names:
        print(f"== {name}", flush=True)
        summaries.append(run_broker(name, out, args.workers))
    compare(out, names, Path(args.docs) if args.docs else None)
    (out / "summary.json").write_text(json.dumps(summaries, indent=2), encoding="utf-8")
    text = [table(summaries)]
    bad = False
    for s in summaries:
        if not s["results"]:
            bad = True
            continue
        if s["nondeterministic"]:
            evidence = REGISTRY[s["broker"]].nondeterministic_evidence
            text.append(f"\n{s['broker']}: {len(s['nondeterministic'])} FAIL/ERROR not reproduced in isolation"
                        + (f" (its nondeterministic fault: {evidence})" if evidence else "") + ":")
            text += [f"  {line}" for line in s["nondeterministic"]]
        if s["unexplained"]:
            bad = True
            text.append(f"\n{s['broker']}: {len(s['unexplained'])} FAIL/ERROR not explained by its profile:")
            text += [f"  {line}" for line in s["unexplained"]]
    (out / "summary.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
