"""RabbitMQ's MQTT plugin (3.1.1 only in RabbitMQ 3.10), Debian package ``rabbitmq-server``.

A private node per instance: its own node name, config, enabled-plugins file, Mnesia and log
directories and Erlang cookie (HOME) in the workdir; the MQTT listener and the distribution port on
free loopback ports; no AMQP listener. epmd is shared with any other Erlang node on the machine
(RabbitMQ starts it if it is not running, and it stays after the node stops, as epmd does).
"""

from __future__ import annotations

import glob
import os

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, free_port, launcher

FIXTURES = BROKER_FIXTURES / "rabbitmq"
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/lib/rabbitmq/sbin/rabbitmq-server")
PLUGIN_GLOBS = ("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_mqtt-*",)


def server_script() -> str | None:
    return next((path for path in SERVER_SCRIPTS if os.access(path, os.X_OK)), None)


@launcher
class RabbitMQ(EmbeddedBroker):
    name = "rabbitmq"
    versions = (Version.V311,)
    # guest may only log in from loopback (loopback_users.guest); anonymous CONNECTs are mapped to it.
    credentials: tuple[str, str] | None = ("guest", "guest")  # (username, password)
    start_timeout = 90.0  # Erlang boot, Mnesia schema, feature flags, plugins (times: docs/measurements.md)
    # now and then a CONNECT that reuses a ClientId right after its previous connection closed is dropped
    nondeterministic_evidence = "fixtures/evidence/rabbitmq/MQTT-3.1.2-6-3.1.1-reconnect-dropped.txt"

    def __init__(self) -> None:
        super().__init__()
        self.dist_port = 0
        self.nodename = ""

    @classmethod
    def available(cls) -> bool:
        return server_script() is not None and any(glob.glob(p) for p in PLUGIN_GLOBS)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        work = self.workdir
        env.update({
            "HOME": str(work),  # the Erlang cookie goes here, not into /root or /var/lib/rabbitmq
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(work / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(work / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(work / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(work / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(work / "mnesia"),
            "RABBITMQ_LOG_BASE": str(work / "log"),
            "RABBITMQ_PID_FILE": str(work / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",  # only used if this node is the one that starts epmd
            "ERL_CRASH_DUMP_BYTES": "0",
        })
        return env

    def command(self) -> list[str]:
        port = self.one_port()
        self.dist_port = free_port(self.host)
        while self.dist_port == port:
            self.dist_port = free_port(self.host)
        self.nodename = f"mqttconf{os.getpid()}x{port}@localhost"
        work = self.workdir
        self.write_config(FIXTURES / "rabbitmq.conf", port=port)  # RABBITMQ_CONFIG_FILE
        (work / "enabled_plugins").write_text((FIXTURES / "enabled_plugins").read_text())
        (work / "rabbitmq-env.conf").write_text("")
        for sub in ("mnesia", "log"):
            (work / sub).mkdir()
        return [server_script() or "rabbitmq-server"]

