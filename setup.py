"""The wheel's one build step beyond pyproject.toml: a copy of cases/ and fixtures/ goes into the package
(conformance/_bundle/), so that an installed mqtt-conformance finds its cases, target profiles, evidence
and broker fixtures without a checkout (conformance/resources.py looks there first). An editable install
reads them from the checkout instead and gets no copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("cases", "fixtures")
# node_modules: installed per machine by `npm ci` (.ci/install-brokers), not shipped.
SKIP = shutil.ignore_patterns("__pycache__", "*.py[co]", "node_modules", ".pytest_cache")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        bundle = Path(self.build_lib) / "conformance" / "_bundle"
        for name in BUNDLED:
            shutil.rmtree(bundle / name, ignore_errors=True)
            shutil.copytree(ROOT / name, bundle / name, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithData})
