"""Brokers the harness starts itself: free loopback ports, a readiness wait, a guaranteed stop."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from string import Template
from typing import TypeVar

from ..codec.errors import HarnessError
from ..codec.version import Version
from ..resources import PROFILES_DIR


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BrokerExited(HarnessError):
    """The broker process ended before it listened."""


PORT_ATTEMPTS = 3  # a free port can be taken by another process before the broker binds it


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Block until ``host:port`` accepts a TCP connection; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise BrokerExited(f"broker exited with code {process.returncode} before it listened on {host}:{port}")
        if time.monotonic() > deadline:
            raise HarnessError(f"broker did not listen on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.01)  # polling interval of a readiness wait, not a proof of absence


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the broker when the harness dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class EmbeddedBroker:
    """A broker process on free loopback ports.

    Subclasses set ``name`` and ``versions`` and implement ``command()``, which may write config files
    into ``self.workdir`` and must set ``self.ports`` (version -> port).
    """

    name = "broker"
    versions: tuple[str, ...] = (Version.V311, Version.V50)
    host = "127.0.0.1"
    start_timeout = 20.0
    credentials: tuple[str, str] | None = None  # (username, password) every CONNECT must carry
    # A known fault that hits arbitrary cases from run to run (no [[deviations]] entry can pin it to a
    # case): its evidence file, which tools/differential.py names next to cases not reproduced alone.
    nondeterministic_evidence: str | None = None

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"mqtt-conformance-{self.name}-"))
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "broker.log"
        self.launch_command: list[str] = []

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def profile_path(cls) -> Path:
        """The target profile of this broker: fixtures/targets/NAME.toml."""
        return PROFILES_DIR / f"{cls.name}.toml"

    def command(self) -> list[str]:
        raise NotImplementedError

    def one_port(self) -> int:
        """A free port that every version of this broker listens on (``self.ports`` set)."""
        port = free_port(self.host)
        self.ports = {version: port for version in self.versions}
        return port

    def write_config(self, template: Path, **values: object) -> Path:
        """``template`` (a fixture with ``$name`` placeholders) filled in, written into the workdir."""
        path = self.workdir / template.name
        path.write_text(Template(template.read_text()).substitute(host=self.host, **values))
        return path

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def extra_capabilities(self) -> dict[str, object]:
        """Capabilities the profile cannot know in advance (e.g. the URL of a second listener)."""
        return {}

    def url(self, version: str) -> str:
        return f"mqtt://{self.host}:{self.ports[version]}"

    def start(self) -> EmbeddedBroker:
        """Start on free ports and wait until every listener accepts. A broker that exits because one of
        its ports was taken in the meantime (another process bound it after ``free_port`` released it)
        is started again on fresh ports, up to ``PORT_ATTEMPTS`` times."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start_once()
            except BrokerExited as exc:
                if attempt == PORT_ATTEMPTS or "in use" not in str(exc).lower():
                    raise
                self.workdir = Path(tempfile.mkdtemp(prefix=f"mqtt-conformance-{self.name}-"))
                self.log_path = self.workdir / "broker.log"
        raise AssertionError("unreachable")

    def _start_once(self) -> EmbeddedBroker:
        try:
            cmd = self.command()
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.launch_command = cmd
        self._spawn("wb")
        atexit.register(self.stop)
        try:
            self._wait_listening()
        except HarnessError as exc:
            tail = self.log_tail()  # before stop() removes the workdir
            self.stop()
            raise type(exc)(f"{self.name}: {exc}; log: {tail}") from None
        return self

    def _spawn(self, log_mode: str) -> None:
        log = open(self.log_path, log_mode)  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            self.launch_command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, cwd=self.run_dir(),
            env=self.env(), start_new_session=True,  # so that stop() can end the whole process group
            preexec_fn=_die_with_parent,
        )

    def _wait_listening(self) -> None:
        for port in sorted(set(self.ports.values())):
            wait_for_port(self.host, port, self.start_timeout, self.process)

    def run_dir(self) -> Path:
        """The broker's working directory."""
        return self.workdir

    def relaunch(self) -> None:
        """After a crash: the same command again, on the same ports and config, appending to the log.
        A port still held (TIME_WAIT, a dying child) gets a few bounded attempts."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._spawn("ab")
            try:
                self._wait_listening()
                return
            except BrokerExited:
                if attempt == PORT_ATTEMPTS:
                    raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process.stdin:
            process.stdin.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


Launcher = TypeVar("Launcher", bound=type[EmbeddedBroker])
_LAUNCHERS: list[type[EmbeddedBroker]] = []


def launcher(cls: Launcher) -> Launcher:
    """Class decorator: ``--embedded NAME`` starts this broker (NAME is ``cls.name``, its profile
    fixtures/targets/NAME.toml). conformance.brokers imports every module of the package and builds
    its REGISTRY from these, so a new broker is its module and its profile."""
    _LAUNCHERS.append(cls)
    return cls


def launchers() -> list[type[EmbeddedBroker]]:
    """The classes decorated with ``launcher`` in the modules imported so far."""
    return list(_LAUNCHERS)
