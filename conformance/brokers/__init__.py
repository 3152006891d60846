"""Brokers the harness can start itself, by name.

    from conformance.brokers import REGISTRY, get_broker, default_broker

    cls = get_broker("rumqttd")          # or default_broker(): mosquitto if installed, else rumqttd
    if cls.available():
        with cls() as broker:            # free loopback ports, readiness wait, guaranteed stop
            broker.url("5.0")            # "mqtt://127.0.0.1:PORT"
            broker.credentials           # None, or (username, password) that every CONNECT must carry

Each class has ``name``, ``versions``, ``profile`` (file name in fixtures/targets/), ``credentials``,
``start_timeout`` and ``available()``. Install the brokers with ``.ci/install-brokers [NAME...]``.
"""

from __future__ import annotations

from ..codec.errors import HarnessError
from .aedes import Aedes
from .amqtt_broker import Amqtt
from .base import EmbeddedBroker, free_port, wait_for_port
from .ejabberd import Ejabberd
from .mosquitto import Mosquitto, MosquittoLimited
from .mosquitto_auth import MosquittoAuth
from .rabbitmq import RabbitMQ
from .rabbitmq_cluster import RabbitMQCluster
from .rumqttd import Rumqttd


class UnknownBroker(HarnessError, KeyError):
    """No broker is registered under that name (a KeyError too, for callers that catch that)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown embedded broker"


REGISTRY: dict[str, type[EmbeddedBroker]] = {
    "mosquitto": Mosquitto,
    "mosquitto-limited": MosquittoLimited,
    "mosquitto-auth": MosquittoAuth,
    "rumqttd": Rumqttd,
    "amqtt": Amqtt,
    "aedes": Aedes,
    "ejabberd": Ejabberd,
    "rabbitmq": RabbitMQ,
    "rabbitmq-cluster": RabbitMQCluster,
}


def get_broker(name: str) -> type[EmbeddedBroker]:
    """The broker class registered under ``name`` (case-insensitive); UnknownBroker (a KeyError) if none."""
    try:
        return REGISTRY[name.strip().lower()]
    except KeyError:
        raise UnknownBroker(f"unknown embedded broker {name!r}; known: {', '.join(REGISTRY)}") from None


def default_broker() -> type[EmbeddedBroker]:
    """Mosquitto when it is installed, else rumqttd (always there: iotcore is a dependency)."""
    return Mosquitto if Mosquitto.available() else Rumqttd


def available_brokers() -> list[str]:
    """Names of the registered brokers installed on this machine."""
    return [name for name, cls in REGISTRY.items() if cls.available()]


__all__ = [
    "REGISTRY", "Aedes", "Amqtt", "EmbeddedBroker", "Ejabberd", "Mosquitto", "RabbitMQ", "RabbitMQCluster", "Rumqttd",
    "UnknownBroker",
    "available_brokers", "default_broker", "free_port", "get_broker", "wait_for_port",
]
