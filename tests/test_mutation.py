"""Self-validation by mutation: every mutant broker (tests/mutation/mutants.py: a real mosquitto behind a
proxy that breaks one normative statement) must be caught by at least one case that passes on the
unmutated mosquitto. Takes a few minutes: deselect locally with ``-m "not mutation"``.

The table and the mutation score are printed to the terminal (run without xdist, or with ``-rP``, to see
them on a passing run); a failure message carries them too.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from conftest import require_broker

from conformance.brokers.mosquitto import Mosquitto

with warnings.catch_warnings():
    # Registered here without a conftest or pyproject entry; the warning for an unregistered mark is moot.
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = pytest.mark.mutation

from mutation import run_mutants  # noqa: E402 - tests/ is on sys.path, as for conftest
from mutation.mutants import MUTANTS  # noqa: E402


def test_mutant_catalogue_is_well_formed():
    """At least 30 distinct mutants over both versions, each citing catalogue statement IDs."""
    from conformance import catalogue

    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)) and len(names) >= 30
    assert {v for m in MUTANTS for v in m.versions} == {"3.1.1", "5.0"}
    for m in MUTANTS:
        assert m.modules and m.description, m.name
        for version, ids in m.statements.items():
            for statement in ids:
                assert catalogue.get(statement, version) is not None, f"{m.name}: unknown {statement} ({version})"


def test_every_mutant_is_killed(tmp_path, capsys):
    require_broker(Mosquitto)
    lines: list[str] = []
    summary = run_mutants.run(workdir=tmp_path / "runs", log=lines.append)
    run_mutants.report(summary, log=lines.append)
    (tmp_path / "mutation.json").write_text(json.dumps(summary.to_json(), indent=1))
    text = "\n".join(lines)
    # Under xdist a worker's output is not shown: .ci/run prints this file after the self-tests.
    shown = Path(__file__).resolve().parents[1] / "reports" / "mutation" / "summary.txt"
    shown.parent.mkdir(parents=True, exist_ok=True)
    shown.write_text(text + "\n")
    with capsys.disabled():
        print("\n" + text)
    assert not summary.baseline_problems, text
    assert summary.score == 1.0, f"mutation score {summary.score:.0%} below 100 %\n{text}"
