"""A real 3-node RabbitMQ cluster on this machine (``--embedded rabbitmq-cluster``).

Each node is a private RabbitMQ node as in rabbitmq.py (its own node name, distribution and MQTT ports,
config, Mnesia and log directories); the three share one Erlang cookie (one HOME holding
``.erlang.cookie``). The nodes boot in parallel, then b and c join a (``stop_app``, ``join_cluster``,
``start_app``). Node a's listener is the target's main URL; every node's listener is a cluster node.

The launcher also exposes stopping and starting one node's RabbitMQ application (``node_control``): the
Erlang VM stays up, so the process stays owned (and stopped) by the harness, while the peers and the MQTT
clients see the node go away (its listener and connections close).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..codec.errors import HarnessError
from ..codec.version import Version
from .base import EmbeddedBroker, launcher, wait_for_port
from .rabbitmq import RabbitMQ

NODE_NAMES = ("a", "b", "c")
CTL_TIMEOUT = 60.0  # one rabbitmqctl call: escript boot plus the operation, on a loaded 2-core machine
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class ClusterNode(RabbitMQ):
    """One node of the cluster: a RabbitMQ node whose Erlang cookie lives in the cluster's shared HOME."""

    def __init__(self, home: Path) -> None:
        super().__init__()
        self.home = home
        self.mqtt_port = 0

    def command(self) -> list[str]:
        # start() then returns once the process runs, without waiting for the listener, so that the
        # three nodes boot in parallel from the calling thread (the kernel's parent-death signal is
        # tied to the thread that forked the node: no worker threads here)
        argv = super().command()
        self.mqtt_port, self.ports = self.ports[Version.V311], {}
        return argv

    def wait_ready(self, timeout: float) -> None:
        try:
            wait_for_port(self.host, self.mqtt_port, timeout, self.process)
        except HarnessError as exc:
            raise type(exc)(f"rabbitmq-cluster node {self.nodename}: {exc}; log: {self.log_tail()}") from None
        self.ports = {Version.V311: self.mqtt_port}

    def env(self) -> dict[str, str]:
        env = super().env()
        env["HOME"] = str(self.home)
        return env

    def ctl_env(self) -> dict[str, str]:
        """Enough for rabbitmqctl to reach this node: the shared cookie (HOME) and loopback epmd."""
        return {"HOME": str(self.home), "ERL_EPMD_ADDRESS": "127.0.0.1"}

    def ctl_argv(self, *args: str) -> list[str]:
        """rabbitmqctl against this node; ``{cookie}`` stands for the cookie, read at call time (the CLI
        did not pick the shared HOME's cookie up reliably, and the cookie stays out of results.json)."""
        return [RABBITMQCTL, "-q", "-n", self.nodename, "--erlang-cookie", "{cookie}", *args]

    @property
    def cookie_file(self) -> Path:
        return self.home / ".erlang.cookie"

    def ctl(self, *args: str) -> str:
        """Run rabbitmqctl against this node, bounded; a failure is a harness error with its output."""
        env = {**{k: v for k, v in self.env().items() if not k.startswith("RABBITMQ_")}, **self.ctl_env()}
        try:
            argv = [self.cookie_file.read_text().strip() if a == "{cookie}" else a for a in self.ctl_argv(*args)]
            done = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=CTL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"rabbitmqctl {' '.join(args)} on {self.nodename}: no answer in "
                               f"{CTL_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            raise HarnessError(f"rabbitmqctl {' '.join(args)} on {self.nodename} failed "
                               f"({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout


@launcher
class RabbitMQCluster(EmbeddedBroker):
    name = "rabbitmq-cluster"
    versions = (Version.V311,)
    credentials: tuple[str, str] | None = ("guest", "guest")
    start_timeout = 240.0  # three boots in parallel on 2 cores, then two joins

    def __init__(self) -> None:
        super().__init__()
        self.home = self.workdir / "home"
        self.nodes: dict[str, ClusterNode] = {}

    @classmethod
    def available(cls) -> bool:
        return RabbitMQ.available() and Path(RABBITMQCTL).exists()

    def start(self) -> RabbitMQCluster:
        self.home.mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie file others can read
        self.nodes = {name: ClusterNode(self.home) for name in NODE_NAMES}
        try:
            for node in self.nodes.values():
                node.start()
            for node in self.nodes.values():
                node.wait_ready(self.start_timeout)
            self._join()
        except BaseException:
            self.stop()
            raise
        self.ports = {Version.V311: self.nodes["a"].mqtt_port}
        return self

    def _join(self) -> None:
        first = self.nodes["a"]
        for node in list(self.nodes.values())[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.nodename)
            node.ctl("start_app")
            node.wait_ready(self.start_timeout)
        running = first.ctl("eval", "length(rabbit_nodes:all_running()).").strip()
        if running != str(len(self.nodes)):
            raise HarnessError(f"rabbitmq-cluster: {running} of {len(self.nodes)} nodes running after the joins")

    def alive(self) -> bool:
        return bool(self.nodes) and all(node.alive() for node in self.nodes.values())

    def stop(self) -> None:
        nodes, self.nodes = list(self.nodes.values()), {}
        if nodes:
            with ThreadPoolExecutor(len(nodes)) as pool:
                list(pool.map(lambda node: node.stop(), nodes))
        shutil.rmtree(self.workdir, ignore_errors=True)  # the shared HOME with the cookie

    def node_urls(self) -> dict[str, str]:
        """Cluster node name -> MQTT URL of that node."""
        return {name: f"mqtt://{node.host}:{node.mqtt_port}" for name, node in self.nodes.items()}

    def node_control(self) -> dict[str, Any]:
        """How any process of the run stops and starts one node's application (plain JSON data)."""
        return {
            "lock": str(self.workdir / "cluster.lock"),
            "nodes": {name: {"stop": node.ctl_argv("stop_app"), "start": node.ctl_argv("start_app"),
                             "env": node.ctl_env(), "cookie_file": str(node.cookie_file), "url": f"mqtt://{node.host}:{node.mqtt_port}"}
                      for name, node in self.nodes.items()},
        }

    def log_tail(self, lines: int = 5) -> str:
        return " || ".join(f"{name}: {node.log_tail(lines)}" for name, node in self.nodes.items())
