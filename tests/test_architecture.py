"""The package's shape holds: no import circle, no layer importing one above it, no function over the limit
(tools/architecture.py, which CONTRIBUTING.md describes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TOOL = Path(__file__).resolve().parents[1] / "tools" / "architecture.py"


def _architecture():  # noqa: ANN202 - the tool's module
    spec = importlib.util.spec_from_file_location("architecture", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("architecture", module)
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_circle_no_upward_import_and_no_long_function() -> None:
    assert _architecture().problems() == []


def test_the_check_sees_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    tool = _architecture()
    package = tmp_path / "conformance"
    (package / "codec").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "codec" / "__init__.py").write_text("from .. import probe\n")  # codec imports upward
    (package / "probe.py").write_text("from . import transcript\n")
    (package / "transcript.py").write_text("def later():\n    from . import probe\n")  # a deferred circle
    found = tool.problems(tmp_path)
    assert any("circle" in line and "conformance.probe" in line for line in found)
    assert any(line.startswith("upward import: conformance.codec") for line in found)
