"""amqtt, the asyncio broker from PyPI (3.1.1 only)."""

from __future__ import annotations

import importlib.util
import sys
from string import Template

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, free_port

TEMPLATE = BROKER_FIXTURES / "amqtt" / "amqtt.yaml"


class Amqtt(EmbeddedBroker):
    """``amqtt -c amqtt.yaml``, run with this interpreter (``python -m amqtt.scripts.broker_script``)."""

    name = "amqtt"
    versions = (Version.V311,)
    profile = "amqtt.toml"
    credentials: tuple[str, str] | None = None
    start_timeout = 20.0

    @classmethod
    def available(cls) -> bool:
        try:
            return importlib.util.find_spec("amqtt.scripts.broker_script") is not None
        except ModuleNotFoundError:
            return False

    def config(self, port: int) -> str:
        return Template(TEMPLATE.read_text()).substitute(host=self.host, port=port)

    def command(self) -> list[str]:
        port = free_port(self.host)
        self.ports = {version: port for version in self.versions}
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(self.config(port))
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
