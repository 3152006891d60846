"""Eclipse Mosquitto (3.1, 3.1.1 and 5.0 on one listener).

Anonymous clients are allowed, so cases without credentials run unchanged. For the credential and
authorisation cases the broker also knows one user and denies one topic tree to everybody; both are
described by fixtures/targets/mosquitto.toml ([identities], capabilities ``password_auth`` and
``denied_topic``) and configured from fixtures/brokers/mosquitto/:

- ``passwd``: the user ``mqttc-valid`` (made with ``mosquitto_passwd -c -b passwd mqttc-valid PASSWORD``;
  the password is the profile's ``[identities.valid]``). A known user with a wrong password is refused.
- ``dynamic-security.json``: the dynamic security plugin with every access allowed by default and
  publish, receive and subscribe denied below ``mqttc-denied/`` for anonymous clients and for
  ``mqttc-valid``. A plugin, not an ``acl_file``: an acl_file is an allow-list in which ``#`` does not
  match ``$``-topics, so it would also forbid the ``$``-topics other cases use.
- ``acl``: the same denial as an acl_file, used only where the plugin is not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, free_port, launcher

FIXTURES = BROKER_FIXTURES / "mosquitto"
DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/*/mosquitto_dynamic_security.so",
)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if shutil.which(p)), None
    )


def dynsec_plugin() -> str | None:
    """The dynamic security plugin shipped with mosquitto 2.x, if installed."""
    return next((path for pattern in DYNSEC_PLUGIN_GLOBS for path in sorted(glob.glob(pattern))), None)


@launcher
class Mosquitto(EmbeddedBroker):
    name = "mosquitto"
    versions = (Version.V311, Version.V50)

    def __init__(self, extra_config: str = "") -> None:
        super().__init__()
        self.extra_config = extra_config
        self.websocket_port = 0

    @classmethod
    def available(cls) -> bool:
        return mosquitto_binary() is not None

    def _private_copy(self, name: str) -> Path:
        """Copy a fixture into the workdir, readable by this user only (as mosquitto wants secrets)."""
        path = self.workdir / name
        shutil.copyfile(FIXTURES / name, path)
        path.chmod(0o600)
        return path

    def security_config(self) -> list[str]:
        lines = [f"password_file {self._private_copy('passwd')}"]
        if os.geteuid() == 0:
            # Started as root, mosquitto switches to the user "mosquitto" before it reads the password
            # and ACL files, which then cannot read our private workdir; "root" keeps the current user.
            lines.append("user root")
        plugin = dynsec_plugin()
        if plugin:
            dynsec = self._private_copy("dynamic-security.json")
            lines += [f"plugin {plugin}", f"plugin_opt_config_file {dynsec}"]
        else:
            lines.append(f"acl_file {self._private_copy('acl')}")
        return lines

    def extra_capabilities(self) -> dict[str, object]:
        if not self.websocket_port:
            return {}
        return {"websocket_url": f"ws://{self.host}:{self.websocket_port}/mqtt"}

    def config(self, port: int) -> str:
        # A WebSocket listener beside the TCP one, for the cases about MQTT over WebSocket (chapter 6).
        self.websocket_port = free_port(self.host)
        return "\n".join([
            f"listener {port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            # Cases exchange bursts of messages; default in-flight/queue limits would throttle them.
            "max_queued_messages 10000",
            *self.security_config(),
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            self.extra_config,
            f"listener {self.websocket_port} {self.host}",
            "protocol websockets",
        ]) + "\n"

    def command(self) -> list[str]:
        port = self.one_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config(port))
        if self.websocket_port:
            self.ports["websocket"] = self.websocket_port  # waited for like the others
        return [mosquitto_binary() or "mosquitto", "-c", str(conf)]


@launcher
class MosquittoLimited(Mosquitto):
    """Mosquitto with QoS 2 and retained messages switched off (``max_qos 1``, ``retain_available false``):
    the target for the cases about servers that lack those features (5.0 MQTT-3.2.2-12, -13)."""

    name = "mosquitto-limited"

    def __init__(self, extra_config: str = "") -> None:
        super().__init__("max_qos 1\nretain_available false\n" + extra_config)
