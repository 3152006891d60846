"""Where the suite's data lives: the cases, the target profiles, the evidence and the broker fixtures.

In a source checkout they are the folders cases/ and fixtures/ next to the package. A wheel carries a
copy of both inside the package (``conformance/_bundle/``, made by setup.py's build step), since a
package installed into site-packages has no checkout around it.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(__file__).resolve().parent / "_bundle"
# Only an installed wheel has the bundle (the build writes it into build/, never into the checkout).
DATA_ROOT = BUNDLE if (BUNDLE / "cases").is_dir() else SOURCE_ROOT
CASES_DIR = DATA_ROOT / "cases"
FIXTURES_DIR = DATA_ROOT / "fixtures"
PROFILES_DIR = FIXTURES_DIR / "targets"
BROKER_FIXTURES = FIXTURES_DIR / "brokers"
