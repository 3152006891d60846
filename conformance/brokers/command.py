"""A user's own broker, started by the harness from a command line (``--broker-command``).

    mqtt-conformance run --broker-command "./mybroker --port {port}"

``{port}`` becomes a free loopback port (all versions share it), ``{host}`` the loopback address and
``{workdir}`` a fresh scratch folder (the command's working directory). The harness waits until the
port accepts connections, supervises the process (restarting it after a crash) and stops it at the end.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..codec.version import Version
from ..errors import ConfigError
from .base import EmbeddedBroker


class CommandBroker(EmbeddedBroker):
    """The broker a command line starts; the command must listen on ``{port}``."""

    name = "broker-command"

    def __init__(self, template: str, ready_timeout: float = 10.0,
                 versions: tuple[str, ...] = (Version.V311, Version.V50)) -> None:
        check_template(template)
        self.template = template
        self.start_timeout = ready_timeout
        self.versions = versions
        self.cwd = Path.cwd()
        super().__init__()

    def run_dir(self) -> Path:
        return self.cwd  # relative paths in the command mean what they mean on the user's command line

    def start(self) -> CommandBroker:
        try:
            super().start()
        except OSError as exc:
            raise ConfigError(f"--broker-command {self.template!r} cannot be started: {exc}") from None
        return self

    def command(self) -> list[str]:
        port = self.one_port()
        return shlex.split(self.template.format(port=port, host=self.host, workdir=self.workdir))


def check_template(template: str) -> None:
    """A one-line error for a command that names no port, or a placeholder the harness does not fill."""
    try:
        words = shlex.split(template.format(port=1, host="h", workdir="w"))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"--broker-command {template!r}: {exc}; placeholders are {{port}}, {{host}}, "
                          "{workdir}") from None
    if not words:
        raise ConfigError("--broker-command is empty")
    if "{port}" not in template:
        raise ConfigError(f"--broker-command {template!r} must contain {{port}}: the harness picks the port")
