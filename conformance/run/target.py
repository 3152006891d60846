"""The broker under test at run time: where it is per version, who we are, what it can do."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..codec import Connack, Connect, Disconnect
from ..codec.decode import Parser
from ..codec.encode import encode
from ..codec.version import Version
from ..errors import ConfigError
from ..net import Endpoint, TlsOptions, open_transport, parse_url
from .profile import CAPABILITIES, Identity, Profile


@dataclass
class Target:
    name: str
    urls: dict[str, str]
    profile: Profile = field(default_factory=Profile)
    embedded: bool = False
    tls: TlsOptions = field(default_factory=TlsOptions)
    credentials: Identity = field(default_factory=Identity)
    # versions the pre-flight found the broker refuses, with the reason (their cases are UNSUPPORTED)
    unsupported_versions: dict[str, str] = field(default_factory=dict)
    # cluster targets (see cluster.py): node name -> URL ("" = the URL of the case's version), and how a
    # managed cluster stops and starts one node
    nodes: dict[str, str] = field(default_factory=dict)
    node_control: dict[str, Any] = field(default_factory=dict)

    def endpoint(self, version: str) -> Endpoint:
        return parse_url(self.urls[version])

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(v for v in (Version.V311, Version.V50) if v in self.urls)

    def to_json(self) -> dict[str, Any]:
        """The target as results.json shows it (no secret)."""
        return {"name": self.name, "urls": self.urls, "embedded": self.embedded, "profile": self.profile.path,
                "capability_overrides": self.profile.capabilities,
                "unsupported_versions": self.unsupported_versions,
                "nodes": self.nodes, "node_control": self.node_control}

    def to_data(self) -> dict[str, Any]:
        """Everything resolved, as builtin values (execnet carries nothing else), credentials included: for
        the processes of this run only (xdist workers, a private file), never for a report or a log."""
        data = {"name": self.name, "urls": self.urls, "embedded": self.embedded, "profile": self.profile.to_data(),
                "tls": asdict(self.tls), "credentials": asdict(self.credentials),
                "unsupported_versions": self.unsupported_versions, "nodes": self.nodes,
                "node_control": self.node_control}
        return json.loads(json.dumps(data))  # plain str for the Version keys and values, lists for tuples

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Target:
        """The target ``to_data`` gave: resolved once, nothing is loaded or checked again."""
        return cls(data["name"], dict(data["urls"]), Profile.from_data(data["profile"]), data["embedded"],
                   TlsOptions(**data["tls"]), Identity(**data["credentials"]), dict(data["unsupported_versions"]),
                   dict(data["nodes"]), dict(data["node_control"]))


def write_target(target: Target, folder: Path) -> Path:
    """``target`` in a file only this user can read, in ``folder`` (a private temporary directory)."""
    path = folder / "target.json"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        json.dump(target.to_data(), handle)
    return path


def read_target(path: str) -> Target:
    """The target ``write_target`` handed on."""
    try:
        return Target.from_data(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--mqtt-target-file {path}: not a target the harness wrote ({exc})") from None


_CONNACK_CAPS = {
    "maximum_qos": "maximum_qos",
    "retain_available": "retain_available",
    "wildcard_subscription_available": "wildcard_subscriptions",
    "subscription_identifier_available": "subscription_identifiers",
    "shared_subscription_available": "shared_subscriptions",
    "topic_alias_maximum": "topic_alias_maximum",
    "receive_maximum": "receive_maximum",
    "maximum_packet_size": "maximum_packet_size",
    "server_keep_alive": "server_keep_alive",
}


def probe_capabilities(target: Target, version: str, timeout: float = 3.0) -> dict[str, Any]:
    """Capabilities for ``version``: defaults, then what a 5.0 CONNACK advertises, then the profile."""
    caps = dict(CAPABILITIES)
    if version == Version.V50:
        connack = _first_connack(target, timeout)
        if connack is not None:
            for prop, cap in _CONNACK_CAPS.items():
                if prop in connack.properties:
                    value = connack.properties.get(prop)
                    caps[cap] = bool(value) if isinstance(CAPABILITIES[cap], bool) else value
    caps.update(target.profile.capabilities)
    return caps


def _first_connack(target: Target, timeout: float) -> Connack | None:
    creds = target.credentials
    connect = Connect(
        client_id=f"mqttc-caps-{uuid.uuid4().hex[:10]}", clean_start=True, keep_alive=30,
        username=creds.username, password=creds.password.encode() if creds.password else None,
    )
    transport = open_transport(target.endpoint(Version.V50), timeout, target.tls)
    try:
        transport.send(encode(connect, Version.V50))
        parser = Parser(Version.V50)
        for _ in range(50):
            data = transport.recv(timeout)
            if not data:
                return None
            for _raw, packet in parser.feed(data):
                if isinstance(packet, Connack):
                    if packet.reason_code == 0:
                        transport.send(encode(Disconnect(), Version.V50))
                    return packet
                return None
        return None
    finally:
        transport.close()
