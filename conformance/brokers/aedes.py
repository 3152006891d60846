"""aedes, the Node.js broker from npm (3.1.1), run by fixtures/brokers/aedes/server.js."""

from __future__ import annotations

import shutil

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, launcher

RUNNER_DIR = BROKER_FIXTURES / "aedes"


def node_binary() -> str | None:
    return shutil.which("node") or shutil.which("nodejs")


@launcher
class Aedes(EmbeddedBroker):
    """``node server.js PORT HOST``; the runner exits when its stdin closes or on SIGTERM.

    Install with ``npm ci`` in fixtures/brokers/aedes (``.ci/install-brokers aedes``).
    """

    name = "aedes"
    versions = (Version.V311,)

    @classmethod
    def available(cls) -> bool:
        return node_binary() is not None and (RUNNER_DIR / "node_modules" / "aedes" / "package.json").is_file()

    def command(self) -> list[str]:
        port = self.one_port()
        return [node_binary() or "node", str(RUNNER_DIR / "server.js"), str(port), self.host]
