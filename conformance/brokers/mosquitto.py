"""Eclipse Mosquitto (3.1, 3.1.1 and 5.0 on one listener)."""

from __future__ import annotations

import shutil

from .base import EmbeddedBroker, free_port


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if shutil.which(p)), None
    )


class Mosquitto(EmbeddedBroker):
    name = "mosquitto"
    versions = ("3.1.1", "5.0")
    profile = "mosquitto.toml"

    def __init__(self, extra_config: str = "") -> None:
        super().__init__()
        self.extra_config = extra_config

    @classmethod
    def available(cls) -> bool:
        return mosquitto_binary() is not None

    def config(self, port: int) -> str:
        return "\n".join([
            f"listener {port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            # Cases exchange bursts of messages; default in-flight/queue limits would throttle them.
            "max_queued_messages 10000",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            self.extra_config,
        ]) + "\n"

    def command(self) -> list[str]:
        port = free_port(self.host)
        self.ports = {version: port for version in self.versions}
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config(port))
        return [mosquitto_binary() or "mosquitto", "-c", str(conf)]
