"""The broker under test at run time: where it is per version, who we are, what it can do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..codec import Connack, Connect, Disconnect
from ..codec.decode import Parser
from ..codec.encode import encode
from ..codec.version import Version
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
        return {"name": self.name, "urls": self.urls, "embedded": self.embedded, "profile": self.profile.path,
                "capability_overrides": self.profile.capabilities,
                "unsupported_versions": self.unsupported_versions,
                "nodes": self.nodes, "node_control": self.node_control}

    @classmethod
    def from_json(cls, data: dict[str, Any], profile: Profile, tls: TlsOptions, credentials: Identity) -> Target:
        profile.capabilities.update(data.get("capability_overrides", {}))
        return cls(data["name"], data["urls"], profile, data["embedded"], tls, credentials,
                   dict(data.get("unsupported_versions", {})),
                   nodes=dict(data.get("nodes", {})), node_control=dict(data.get("node_control", {})))


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
