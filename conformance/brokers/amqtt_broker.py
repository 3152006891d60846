"""amqtt, the asyncio broker from PyPI (3.1.1 only)."""

from __future__ import annotations

import importlib.util
import sys

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, launcher

TEMPLATE = BROKER_FIXTURES / "amqtt" / "amqtt.yaml"


@launcher
class Amqtt(EmbeddedBroker):
    """``amqtt -c amqtt.yaml``, run with this interpreter (``python -m amqtt.scripts.broker_script``)."""

    name = "amqtt"
    versions = (Version.V311,)
    # now and then a new subscriber first receives a retained message of another topic
    nondeterministic_evidence = "fixtures/evidence/amqtt/MQTT-3.3.1-5-3.1.1-retained-leak.txt"

    @classmethod
    def available(cls) -> bool:
        try:
            return importlib.util.find_spec("amqtt.scripts.broker_script") is not None
        except ModuleNotFoundError:
            return False

    def command(self) -> list[str]:
        conf = self.write_config(TEMPLATE, port=self.one_port())
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
