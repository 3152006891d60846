"""Brokers the harness can start itself, by name.

    from conformance.brokers import REGISTRY, get_broker, default_broker

    cls = get_broker("rumqttd")          # or default_broker(): mosquitto if installed, else rumqttd
    if cls.available():
        with cls() as broker:            # free loopback ports, readiness wait, guaranteed stop
            broker.url(Version.V50)      # "mqtt://127.0.0.1:PORT"
            broker.credentials           # None, or (username, password) that every CONNECT must carry

REGISTRY (name -> class, sorted by name) holds every class of this package's modules decorated with
``base.launcher``, under its own ``name``: a new broker is one module here plus its profile
fixtures/targets/NAME.toml (``cls.profile_path()``). Each class has ``name``, ``versions``,
``credentials``, ``start_timeout`` and ``available()``. Install the brokers with
``.ci/install-brokers [NAME...]``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..codec.errors import HarnessError
from .base import EmbeddedBroker, free_port, launchers, wait_for_port
from .mosquitto import Mosquitto
from .rumqttd import Rumqttd


class UnknownBroker(HarnessError, KeyError):
    """No broker is registered under that name (a KeyError too, for callers that catch that)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown embedded broker"


def _registry() -> dict[str, type[EmbeddedBroker]]:
    """Import every module of this package, then the launchers they declare, by name."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    registry: dict[str, type[EmbeddedBroker]] = {}
    for cls in launchers():
        if registry.setdefault(cls.name, cls) is not cls:
            raise HarnessError(f"two embedded brokers are named {cls.name!r}: {registry[cls.name]} and {cls}")
    return dict(sorted(registry.items()))


REGISTRY = _registry()


def get_broker(name: str) -> type[EmbeddedBroker]:
    """The broker class registered under ``name`` (case-insensitive); UnknownBroker (a KeyError) if none."""
    try:
        return REGISTRY[name.strip().lower()]
    except KeyError:
        raise UnknownBroker(f"unknown embedded broker {name!r}; known: {', '.join(REGISTRY)}") from None


def default_broker() -> type[EmbeddedBroker]:
    """Mosquitto when it is installed, else rumqttd (always there: iotcore is a dependency)."""
    return Mosquitto if Mosquitto.available() else Rumqttd


__all__ = [
    "REGISTRY", "EmbeddedBroker", "Mosquitto", "Rumqttd", "UnknownBroker",
    "default_broker", "free_port", "get_broker", "wait_for_port",
]
