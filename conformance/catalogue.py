"""The statement catalogue: every normative statement of 3.1.1 and 5.0, with whom it binds and
whether a client-side harness can observe it. Built from the project's CSV files in ``data/``
(summaries are paraphrases, never spec text)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .codec.version import Version

VERSIONS = (Version.V311, Version.V50)


@dataclass(frozen=True)
class Statement:
    id: str
    version: str
    section: str
    section_title: str
    constrains: str  # server | client | both
    observable: str  # yes | partial | no
    summary: str
    area: str = ""  # 5.0 feature area (Enhanced Authentication, Topic Alias, ...)

    @property
    def in_scope(self) -> bool:
        """Counted by the coverage yardstick: binds the server and can be observed."""
        return self.constrains in ("server", "both") and self.observable in ("yes", "partial")

    @property
    def chapter(self) -> str:
        """Top-level section, e.g. '3.2' for 3.2.2.1."""
        return ".".join(self.section.split(".")[:2])

    @property
    def url(self) -> str:
        urls: dict[str, str] = {
            Version.V311: "https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html",
            Version.V50: "https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html",
        }
        return urls[self.version]  # the OASIS pages have no per-statement anchors


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("conformance.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def load(version: str) -> dict[str, Statement]:
    """All statements of ``version`` ('3.1.1' or '5.0'), by ID, in spec order."""
    if version not in VERSIONS:
        raise ValueError(f"no catalogue for MQTT {version!r}")
    areas = {row["id"]: row["area"] for row in _read("areas-5.0.csv")} if version == Version.V50 else {}
    return {
        row["id"]: Statement(
            id=row["id"], version=version, section=row["section"], section_title=row["section_title"],
            constrains=row["constrains"], observable=row["observable"], summary=row["summary"],
            area=areas.get(row["id"], ""),
        )
        for row in _read(f"statements-{version}.csv")
    }


def get(statement_id: str, version: str) -> Statement | None:
    return load(version).get(statement_id)
