"""Mosquitto with every transport: plain TCP, TLS, WebSocket, TLS WebSocket, and a TLS listener that
requires a client certificate; a password file for credential cases. For transport self-tests."""

from __future__ import annotations

import subprocess

from .base import free_port, wait_for_port
from .certs import CertSet, make_certs
from .mosquitto import Mosquitto

USERS = {"alice": "wonderland-7", "bob": "builder-42"}


class MosquittoTransports(Mosquitto):
    name = "mosquitto-transports"

    def __init__(self) -> None:
        super().__init__()
        self.certs: CertSet | None = None
        self.listeners: dict[str, int] = {}

    def url_for(self, transport: str) -> str:
        scheme = {"mqtt": "mqtt", "mqtts": "mqtts", "ws": "ws", "wss": "wss", "mqtts-client-cert": "mqtts"}[transport]
        path = "/mqtt" if scheme in ("ws", "wss") else ""
        return f"{scheme}://127.0.0.1:{self.listeners[transport]}{path}"

    def config(self, port: int) -> str:
        certs = self.certs
        assert certs is not None
        tls = f"cafile {certs.ca}\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"
        self.listeners = {"mqtt": port, **{t: free_port() for t in ("mqtts", "ws", "wss", "mqtts-client-cert")}}
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            f"password_file {self.workdir / 'passwd'}",
            "persistence false",
            "max_queued_messages 10000",
            "log_dest stdout",
            "log_type error",
            f"listener {port} {self.host}",
            f"listener {self.listeners['mqtts']} {self.host}\n{tls}",
            f"listener {self.listeners['ws']} {self.host}\nprotocol websockets",
            f"listener {self.listeners['wss']} {self.host}\nprotocol websockets\n{tls}",
            f"listener {self.listeners['mqtts-client-cert']} {self.host}\n{tls}require_certificate true",
        ]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        self.certs = make_certs(self.workdir / "certs")
        passwd = self.workdir / "passwd"
        passwd.touch()
        for user, password in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
        # Started as root, mosquitto drops to its own user: it must be able to read these throw-away files.
        for path in [self.workdir, self.workdir / "certs", *self.workdir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return super().command()

    def start(self) -> MosquittoTransports:
        super().start()
        for port in self.listeners.values():
            wait_for_port(self.host, port, self.start_timeout, self.process)
        return self
