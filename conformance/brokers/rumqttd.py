"""rumqttd through the PyPI package iotcore (3.1.1 and 5.0, one listener per version)."""

from __future__ import annotations

import importlib.util
import sys

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, free_port, launcher

FIXTURES = BROKER_FIXTURES / "rumqttd"
TEMPLATE = FIXTURES / "rumqttd.toml"
# Like ``python -m iotcore --config FILE``, minus rumqttd's per-packet tracing, and exiting when
# rumqttd's router thread panics (the process would otherwise live on, closing every connection).
SERVE = FIXTURES / "serve.py"


@launcher
class Rumqttd(EmbeddedBroker):
    """rumqttd 0.20 as bundled by iotcore, run by fixtures/brokers/rumqttd/serve.py (iotcore.Broker).

    rumqttd has a separate listener per protocol version ([v4.*] = 3.1.1, [v5.*] = 5.0), so
    ``ports`` holds two different ports.
    """

    name = "rumqttd"
    versions = (Version.V311, Version.V50)
    # now and then a freshly accepted connection is dropped just after another client disconnected
    nondeterministic_evidence = "fixtures/evidence/rumqttd/nondeterministic-connection-drop.txt"

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("iotcore") is not None

    def command(self) -> list[str]:
        port_v4 = free_port(self.host)
        port_v5 = free_port(self.host)
        while port_v5 == port_v4:
            port_v5 = free_port(self.host)
        self.ports = {Version.V311: port_v4, Version.V50: port_v5}
        conf = self.write_config(TEMPLATE, port_v4=port_v4, port_v5=port_v5)
        return [sys.executable, str(SERVE), str(conf)]
