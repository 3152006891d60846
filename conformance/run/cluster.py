"""Cluster targets: several node endpoints of one logical broker (see docs/clusters.md).

A profile declares the nodes in a ``[cluster]`` table: ``nodes = {a = "mqtt://h1:1883", b = "..."}``, or
``nodes = ["a", "b"]`` for nodes that all sit at the target's own URL (a single-node broker given as a
cluster, which must pass the same cases). A managed cluster (``--embedded rabbitmq-cluster``) brings its
own node URLs and a way to stop and start one node.

Cases reach a node through the ``cluster`` fixture; a target without nodes makes them UNSUPPORTED.
The node names each case used go into its record (``"nodes"``) for the per-node-pair report section.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..codec.errors import HarnessError
from ..errors import ConfigError
from ..net import parse_url
from ..transcript import NOTE
from ..verdicts import Unsupported

NODES_USED = pytest.StashKey[list]()
LOCK_TIMEOUT = 120.0  # a node stop waits for the running cluster cases (seconds each) to finish
CONTROL_TIMEOUT = 60.0
NODE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def parse_cluster(where: str, table: Any) -> dict[str, str]:
    """The ``[cluster]`` table: node name -> URL ("" = the target's URL for the case's version)."""
    if not isinstance(table, dict) or set(table) - {"nodes"} or "nodes" not in table:
        raise ConfigError(f"{where}: [cluster] must hold exactly one key, nodes (a table name = URL or a list of names)")
    nodes = table["nodes"]
    if isinstance(nodes, list):
        nodes = {name: "" for name in nodes}
    if not isinstance(nodes, dict) or not nodes:
        raise ConfigError(f"{where}: [cluster] nodes must be a non-empty table (name = URL) or list of names")
    for name, url in nodes.items():
        if not isinstance(name, str) or not NODE_NAME.match(name):
            raise ConfigError(f"{where}: [cluster] node name {name!r} must be 1-20 letters, digits, _ or -")
        if not isinstance(url, str):
            raise ConfigError(f"{where}: [cluster] node {name} must be a URL string")
        if url:
            parse_url(url)
    return dict(nodes)


def resolve_nodes(profile_nodes: dict[str, str], broker: object | None) -> tuple[dict[str, str], dict[str, Any]]:
    """(node URLs, node control) of the run: a managed cluster's own, else the profile's."""
    node_urls = getattr(broker, "node_urls", None)
    if callable(node_urls):
        return node_urls(), broker.node_control()  # type: ignore[union-attr]
    return dict(profile_nodes), {}


def nodes_used(item: pytest.Item) -> list[str] | None:
    """For the case record: the nodes the case ran clients on, in first-use order (None: no cluster case)."""
    return item.stash.get(NODES_USED, None)


class Cluster:
    """The nodes of the target, seen from one case."""

    def __init__(self, ctx: Any, item: pytest.Item) -> None:
        self.ctx = ctx
        self.target = ctx.target
        self.names: list[str] = list(self.target.nodes)
        self.used: list[str] = item.stash.setdefault(NODES_USED, [])
        self._count = 0

    def node(self, index: int) -> str:
        """The index-th node, wrapping around: a cluster of one answers the same node for every index."""
        return self.names[index % len(self.names)]

    @property
    def distinct(self) -> int:
        return len(set(self.names))

    def url(self, name: str) -> str:
        return self.target.nodes[name] or self.target.urls[self.ctx.version]

    def probe(self, name: str, client_id: str | None = None, *, role: str = "") -> Any:
        """An unconnected probe on node ``name``; its transcript name says the node (e.g. ``b:sub``)."""
        if name not in self.used:
            self.used.append(name)
        self._count += 1
        return self.ctx.make_probe(client_id, url=self.url(name), name=f"{name}:{role or self._count}")

    # -- managed clusters: stopping one node ------------------------------------------------------
    @property
    def managed(self) -> bool:
        return bool(self.target.node_control.get("nodes"))

    def victim(self) -> str:
        """The node a node-failure case stops: never the first (the target's main URL other cases use)."""
        if not self.managed or len(self.names) < 2:
            raise Unsupported("stopping a node needs a managed cluster of two or more nodes")
        return self.names[-1]

    def stop_node(self, name: str) -> None:
        self._control(name, "stop")

    def start_node(self, name: str) -> None:
        self._control(name, "start")
        endpoint = parse_url(self.url(name))
        _wait_listening(endpoint.host, endpoint.port, CONTROL_TIMEOUT)

    def _control(self, name: str, action: str) -> None:
        spec = self.target.node_control["nodes"][name]
        cookie = _read(spec.get("cookie_file"))
        argv = [cookie if arg == "{cookie}" else arg for arg in spec[action]]
        env = {**os.environ, **spec.get("env", {})}
        self.ctx.transcript.add("cluster", NOTE, note=f"{action} node {name}")
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=CONTROL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"cluster: {action} of node {name} took over {CONTROL_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            raise HarnessError(f"cluster: {action} of node {name} failed: {(done.stderr or done.stdout)[-300:]}")


def _read(path: str | None) -> str:
    if not path:
        return ""
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()


def _wait_listening(host: str, port: int, timeout: float) -> None:
    from ..brokers.base import wait_for_port

    wait_for_port(host, port, timeout)


@contextlib.contextmanager
def _locked(path: str | None, mode: int) -> Iterator[None]:
    """Cluster cases hold the managed cluster's lock shared, a node-stopping case exclusively, so that no
    other cluster case runs (in any xdist worker) while a node is down. Bounded wait."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"cluster lock {path} not obtained within {LOCK_TIMEOUT:.0f} s") from None
                time.sleep(0.05)  # polling a lock, not proving an absence
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cluster(request: pytest.FixtureRequest, exclusive: bool) -> Iterator[Cluster]:
    ctx = request.getfixturevalue("case_context")
    if not ctx.target.nodes:
        raise Unsupported("not a cluster target (the profile has no [cluster] nodes)")
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    with _locked(ctx.target.node_control.get("lock"), mode):
        yield Cluster(ctx, request.node)


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The target's cluster nodes (UNSUPPORTED when the target is not a cluster)."""
    yield from _cluster(request, exclusive=False)


@pytest.fixture
def cluster_exclusive(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """As ``cluster``, alone among the cluster cases: for a case that stops a node."""
    yield from _cluster(request, exclusive=True)


# -- reports: verdicts per node pair -----------------------------------------------------------------
WORST_FIRST = ("ERROR", "FAIL", "NON-STRICT", "INFORMATIONAL", "PASS", "UNSUPPORTED")


def nodes_label(nodes: list[str]) -> str:
    """``["b", "a"]`` -> ``"b·a"`` (first-use order: in the cases, the subscriber's node comes first)."""
    return "·".join(nodes)


def node_pair_matrix(records: list[dict[str, Any]]) -> tuple[list[str], dict[tuple[str, str], dict[str, str]]]:
    """(node labels, {(case name, MQTT version): {label: worst verdict}}) of the cluster cases that ran
    clients on some node; empty when the run has none."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    labels: list[str] = []
    for record in records:
        nodes = record.get("nodes") or []
        if not isinstance(nodes, list) or not nodes:
            continue
        label = nodes_label([str(n) for n in nodes])
        if label not in labels:
            labels.append(label)
        cells = rows.setdefault((str(record.get("name") or record.get("id")), str(record.get("mqtt_version"))), {})
        verdict = str(record.get("verdict"))
        old = cells.get(label)
        rank = WORST_FIRST.index
        if old is None or (verdict in WORST_FIRST and old in WORST_FIRST and rank(verdict) < rank(old)):
            cells[label] = verdict
    return sorted(labels), rows
