"""What the fuzzer's parts share: the rule table (oracle rule -> statement IDs per version), findings,
the target description, and the exceptions that steer a hypothesis run.

A *rule* names one oracle, e.g. ``malformed/publish-qos3`` or ``model/missing``. Findings carry their
rule, so that a known deviation can be silenced with ``--ignore RULE`` (fnmatch patterns, optionally
prefixed by a version: ``3.1.1:model/overlap-qos``) without losing the other oracles of the same
statement.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..codec.errors import HarnessError
from ..codec.version import Version
from ..errors import ConfigError
from ..net import Endpoint, SocketTransport, parse_url

V311, V50 = Version.V311, Version.V50
GENERIC = {V311: "MQTT-4.8.0-1", V50: "MQTT-4.13.1-1"}


def _both(ids: list[str], generic: bool = True) -> dict[str, list[str]]:
    return {V311: ids + ([GENERIC[V311]] if generic else []), V50: ids + ([GENERIC[V50]] if generic else [])}


# rule -> version -> statement IDs cited by a finding of that rule (validated against the catalogue by
# the self-tests). A rule missing for a version cites the generic error-handling statement.
RULES: dict[str, dict[str, list[str]]] = {
    # -- malformed or forbidden input: the connection must be closed ----------------------------------
    "malformed/flags": {V311: ["MQTT-2.2.2-2", "MQTT-4.8.0-1"], V50: ["MQTT-2.1.3-1", "MQTT-4.13.1-1"]},
    "malformed/publish-qos3": _both(["MQTT-3.3.1-4"]),
    "malformed/utf8": {V311: ["MQTT-1.5.3-1", "MQTT-4.8.0-1"], V50: ["MQTT-1.5.4-1", "MQTT-4.13.1-1"]},
    "malformed/null-char": {V311: ["MQTT-1.5.3-2", "MQTT-4.7.3-2", "MQTT-4.8.0-1"],
                            V50: ["MQTT-1.5.4-2", "MQTT-4.7.3-2", "MQTT-4.13.1-1"]},
    "malformed/topic-wildcard": {V311: ["MQTT-4.7.1-1", "MQTT-4.8.0-1"],
                                 V50: ["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.13.1-1"]},
    "malformed/filter-hash": {V311: ["MQTT-4.7.1-2", "MQTT-4.8.0-1"], V50: ["MQTT-4.7.1-1", "MQTT-4.13.1-1"]},
    "malformed/filter-plus": {V311: ["MQTT-4.7.1-3", "MQTT-4.8.0-1"], V50: ["MQTT-4.7.1-2", "MQTT-4.13.1-1"]},
    "malformed/empty-topic": _both(["MQTT-4.7.3-1"]),
    "malformed/packet-id-zero": {V311: ["MQTT-2.3.1-1", "MQTT-4.8.0-1"], V50: ["MQTT-2.2.1-3", "MQTT-4.13.1-1"]},
    "malformed/subscribe-empty": {V311: ["MQTT-3.8.3-3", "MQTT-4.8.0-1"], V50: ["MQTT-3.8.3-2", "MQTT-4.13.1-1"]},
    "malformed/unsubscribe-empty": _both(["MQTT-3.10.3-2"]),
    "malformed/subscribe-options/reserved": {V311: ["MQTT-3.8.3-4", "MQTT-4.8.0-1"],
                                             V50: ["MQTT-3.8.3-5", "MQTT-4.13.1-1"]},
    "malformed/subscribe-options/qos3": {V311: ["MQTT-3.8.3-4", "MQTT-4.8.0-1"], V50: ["MQTT-4.13.1-1"]},
    "malformed/subscribe-options/retain-handling-3": {V50: ["MQTT-4.13.1-1"]},
    "malformed/remaining-length/five-bytes": _both([]),
    "malformed/remaining-length/non-minimal": {V50: ["MQTT-1.5.5-1", "MQTT-4.13.1-1"]},
    "malformed/trailing-bytes": _both([]),
    "malformed/reserved-type": _both([]),
    "malformed/second-connect": _both(["MQTT-3.1.0-2"]),
    "malformed/first-packet-not-connect": _both(["MQTT-3.1.0-1"]),
    "malformed/property/duplicate": {V50: ["MQTT-4.13.1-1"]},
    "malformed/property/unknown": {V50: ["MQTT-4.13.1-1"]},
    "malformed/property/misplaced": {V50: ["MQTT-4.13.1-1"]},
    "malformed/property/non-minimal": {V50: ["MQTT-1.5.5-1", "MQTT-4.13.1-1"]},
    "malformed/property/length": {V50: ["MQTT-4.13.1-1"]},
    "malformed/property/topic-alias-zero": {V50: ["MQTT-3.3.2-8", "MQTT-4.13.1-1"]},
    "malformed/property/topic-alias-above-maximum": {V50: ["MQTT-3.3.2-9", "MQTT-3.2.2-17", "MQTT-4.13.1-1"]},
    "malformed/property/subscription-identifier-zero": {V50: ["MQTT-4.13.1-1"]},
    "malformed/property/value": {V50: ["MQTT-4.13.1-1"]},
    "malformed/auth-without-method": {V50: ["MQTT-4.12.0-7", "MQTT-4.13.1-1"]},
    "malformed/connect/reserved-flag": _both(["MQTT-3.1.2-3", "MQTT-3.1.4-1"], generic=False),
    "malformed/connect/will-flags": {V311: ["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.2-15", "MQTT-3.1.4-1"],
                                     V50: ["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.4-1"]},
    "malformed/connect/will-qos3": {V311: ["MQTT-3.1.2-14", "MQTT-3.1.4-1"], V50: ["MQTT-3.1.2-12", "MQTT-3.1.4-1"]},
    "malformed/connect/password-without-username": {V311: ["MQTT-3.1.2-22", "MQTT-3.1.4-1"]},
    "malformed/connect/protocol-level": _both(["MQTT-3.1.2-2"], generic=False),
    "malformed/connect/empty-client-id-persistent": {V311: ["MQTT-3.1.3-8"]},
    "malformed/connect/utf8": {V311: ["MQTT-1.5.3-1", "MQTT-3.1.4-1"], V50: ["MQTT-1.5.4-1", "MQTT-3.1.4-1"]},
    "malformed/connect/null-char": {V311: ["MQTT-1.5.3-2", "MQTT-3.1.4-1"], V50: ["MQTT-1.5.4-2", "MQTT-3.1.4-1"]},
    "malformed/connect/length": _both(["MQTT-3.1.4-1"]),
    "malformed/connect/flags": {V311: ["MQTT-2.2.2-2", "MQTT-3.1.4-1"], V50: ["MQTT-2.1.3-1", "MQTT-3.1.4-1"]},
    "malformed/connect/non-minimal": {V50: ["MQTT-1.5.5-1", "MQTT-3.1.4-1"]},
    "malformed/connect/property": {V50: ["MQTT-3.1.4-1", "MQTT-4.13.1-1"]},
    # -- well-formed input: the normal answer --------------------------------------------------------
    "valid/pingreq": _both(["MQTT-3.12.4-1"], generic=False),
    "valid/publish-qos1": {V311: ["MQTT-3.3.4-1", "MQTT-4.3.2-2", "MQTT-2.3.1-6"],
                           V50: ["MQTT-3.3.4-1", "MQTT-4.3.2-4", "MQTT-2.2.1-5"]},
    "valid/publish-qos2": {V311: ["MQTT-3.3.4-1", "MQTT-4.3.3-2", "MQTT-2.3.1-6"],
                           V50: ["MQTT-3.3.4-1", "MQTT-4.3.3-8", "MQTT-2.2.1-5"]},
    "valid/publish": {V311: ["MQTT-3.3.4-1"], V50: ["MQTT-3.3.4-1"]},
    "valid/subscribe": {V311: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-5", "MQTT-2.3.1-7"],
                        V50: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-6", "MQTT-3.8.4-7"]},
    "valid/unsubscribe": {V311: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.3.1-7"],
                          V50: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.11.3-1", "MQTT-3.11.3-2"]},
    "valid/connect": {V311: ["MQTT-3.1.4-4", "MQTT-3.2.0-1"], V50: ["MQTT-3.1.4-5", "MQTT-3.2.0-1"]},
    "valid/connect/session-present": {V311: ["MQTT-3.2.2-1", "MQTT-3.2.2-3"], V50: ["MQTT-3.2.2-2", "MQTT-3.2.2-3"]},
    "valid/connect/refusal-session-present": {V311: ["MQTT-3.2.2-4"], V50: ["MQTT-3.2.2-6"]},
    "valid/connect/refusal-not-closed": {V311: ["MQTT-3.2.2-5"], V50: ["MQTT-3.2.2-7", "MQTT-4.13.2-1"]},
    "broker/malformed-packet": _both([]),
    # -- the broker stays usable -----------------------------------------------------------------------
    "liveness/connect": {V311: ["MQTT-3.1.4-4"], V50: ["MQTT-3.1.4-5"]},
    "liveness/subscribe": {V311: ["MQTT-3.8.4-1"], V50: ["MQTT-3.8.4-1"]},
    "liveness/publish": {V311: ["MQTT-3.3.4-1"], V50: ["MQTT-3.3.4-1"]},
    "liveness/delivery": {V311: ["MQTT-4.5.0-1"], V50: ["MQTT-4.5.0-1"]},
    # -- the stateful model ------------------------------------------------------------------------------
    "model/connack": {V311: ["MQTT-3.1.4-4"], V50: ["MQTT-3.1.4-5"]},
    "model/session-present": {V311: ["MQTT-3.2.2-1", "MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-3.1.2-4", "MQTT-3.1.2-6"],
                              V50: ["MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-3.1.2-4", "MQTT-3.1.2-5",
                                    "MQTT-3.1.2-23"]},
    "model/suback": {V311: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-5"],
                    V50: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-6", "MQTT-3.8.4-7"]},
    "model/unsuback": {V311: ["MQTT-3.10.4-4", "MQTT-3.10.4-5"],
                       V50: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.11.3-1", "MQTT-3.11.3-2"]},
    "model/publish-ack": {V311: ["MQTT-3.3.4-1"], V50: ["MQTT-3.3.4-1"]},
    "model/missing": {V311: ["MQTT-4.5.0-1"], V50: ["MQTT-4.5.0-1"]},
    "model/missing-queued": {V311: ["MQTT-3.1.2-5", "MQTT-4.5.0-1"], V50: ["MQTT-3.1.2-5", "MQTT-4.5.0-1"]},
    "model/missing-retained": {V311: ["MQTT-3.3.1-6", "MQTT-3.8.4-3"], V50: ["MQTT-3.3.1-9", "MQTT-3.8.4-4"]},
    "model/retained-on-existing": {V50: ["MQTT-3.3.1-10", "MQTT-3.3.1-11"]},
    "model/unexpected": {V311: ["MQTT-3.3.2-3", "MQTT-3.10.4-2"], V50: ["MQTT-3.3.2-3", "MQTT-3.10.4-2"]},
    "model/no-local": {V50: ["MQTT-3.8.3-3"]},
    "model/subscription-replacement": {V50: ["MQTT-3.8.4-3", "MQTT-3.8.3-3", "MQTT-3.3.1-13"]},
    "model/duplicate": {V311: ["MQTT-4.3.3-2", "MQTT-3.3.5-1"], V50: ["MQTT-4.3.3-10", "MQTT-3.3.4-2"]},
    "model/qos": {V311: ["MQTT-3.8.4-6"], V50: ["MQTT-3.8.4-8"]},
    "model/overlap-qos": {V311: ["MQTT-3.3.5-1"], V50: ["MQTT-3.3.4-2"]},
    "model/retain-flag": {V311: ["MQTT-3.3.1-8", "MQTT-3.3.1-9"], V50: ["MQTT-3.3.1-12", "MQTT-3.3.1-13"]},
    "model/retained-stored": {V311: ["MQTT-3.3.1-5", "MQTT-3.3.1-10", "MQTT-3.3.1-12"],
                              V50: ["MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"]},
    "model/dup": {V311: ["MQTT-3.3.1-1", "MQTT-3.3.1-2", "MQTT-4.3.2-1"],
                  V50: ["MQTT-3.3.1-2", "MQTT-4.3.2-2", "MQTT-4.3.3-2"]},
    "model/order": {V311: ["MQTT-4.6.0-6"], V50: ["MQTT-4.6.0-5", "MQTT-4.6.0-6"]},
    "model/closed": _both([]),
}


def statements_for(rule: str, version: str) -> list[str]:
    """Statement IDs a finding of ``rule`` cites in ``version`` (most specific first)."""
    for key in (rule, rule.rsplit("/", 1)[0]):
        if key in RULES and version in RULES[key]:
            return list(RULES[key][version])
    return [GENERIC[version]] if rule.startswith("malformed/") else []


def rule_family(rule: str) -> str:
    """The part of a rule the findings are grouped by (``malformed/flags/PINGREQ`` -> ``malformed/flags``)."""
    for key in (rule, rule.rsplit("/", 1)[0]):
        if key in RULES:
            return key
    return rule


@dataclass
class Problem:
    """One oracle that did not hold."""

    rule: str
    expected: str
    observed: str
    where: str = ""  # which input / step

    def signature(self) -> str:
        return self.rule


@dataclass
class Finding:
    """A minimal failing input, ready for the results file and the reproducer."""

    kind: str  # liveness | reaction | model
    mode: str  # packet | stateful
    version: str
    rule: str
    statements: list[str]
    expected: str
    observed: str
    steps: list[dict[str, Any]]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    found_at: float = 0.0  # seconds into the campaign
    examples_run: int = 0
    shrunk: bool = True
    note: str = ""

    @property
    def message(self) -> str:
        text = f"{self.rule}: expected {self.expected}; observed {self.observed}"
        return f"{text} ({self.note})" if self.note else text

    def size(self) -> tuple[int, int]:
        return (len(self.steps), sum(len(s.get("send", "")) for s in self.steps))


class FuzzFailure(AssertionError):
    """Raised (from one place only, so that hypothesis sees one bug) when an oracle fails."""


class BrokerDown(BaseException):  # noqa: N818 - a BaseException so that hypothesis does not shrink on it
    """The broker no longer answers and cannot be restarted: the campaign stops."""


@dataclass
class Limits:
    timeout: float = 3.0  # bound on every answer we wait for
    liveness_timeout: float = 3.0  # bound on the liveness round trip (retried once, twice as long)


@dataclass
class FuzzTarget:
    """Where the broker is, and what its 5.0 CONNACK says it can do."""

    url: str
    endpoint: Endpoint
    caps: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> tuple[str, int]:
        return self.endpoint.host, self.endpoint.port


def resolve_target(url: str, allow_remote: bool) -> FuzzTarget:
    """Parse ``url``; refuse non-loopback hosts unless ``allow_remote`` (before any packet is sent)."""
    endpoint = parse_url(url)
    if endpoint.scheme != "mqtt":
        raise ConfigError(f"fuzzing supports plain TCP targets (mqtt://) only, not {endpoint.scheme}://")
    if not allow_remote and not is_loopback(endpoint.host):
        raise ConfigError(
            f"refusing to fuzz {endpoint.url}: it is not a loopback address, and fuzzing can take a production "
            "broker down; pass --allow-remote if this broker is yours to crash"
        )
    return FuzzTarget(url=endpoint.url, endpoint=endpoint)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge at once (Linux TCP_QUICKACK): a broker without TCP_NODELAY otherwise holds its second small
    packet until our delayed ACK, 40 ms later. The kernel resets the flag, so it is set before each read."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


class QuickAckTransport(SocketTransport):
    """The harness's plain TCP transport, with ``quick_ack`` before every read."""

    def recv(self, timeout: float) -> bytes | None:
        quick_ack(self.sock)
        data = super().recv(timeout)
        quick_ack(self.sock)
        return data


def open_probe(target: FuzzTarget, version: str, transcript: Any, name: str, client_id: str, timeout: float) -> Any:
    """A ``Probe`` on a quick-ACK transport (the fuzzer's clients exchange many small packets)."""
    from ..probe import Probe

    probe = Probe(target.endpoint, version, transcript, name=name, client_id=client_id)
    probe.timing.response = probe.timing.connect = timeout
    try:
        sock = socket.create_connection(target.address, timeout=timeout)
    except OSError as exc:
        from ..verdicts import BrokerGone

        raise BrokerGone(f"cannot connect to {target.url}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    probe.transport = QuickAckTransport(sock)
    probe._opened_at = time.monotonic()
    return probe


class IgnoreList:
    """``--ignore`` patterns: ``RULE`` or ``VERSION:RULE``, fnmatch-style (``malformed/flags/*``)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: list[tuple[str | None, str]] = []
        for text in patterns:
            version, sep, pattern = text.partition(":")
            if sep and version in (V311, V50):
                self.patterns.append((version, pattern))
            elif sep and version not in (V311, V50) and "/" not in version:
                raise ConfigError(f"--ignore {text!r}: the version prefix must be 3.1.1 or 5.0")
            else:
                self.patterns.append((None, text))

    def __call__(self, rule: str, version: str) -> bool:
        return any((v is None or v == version) and (fnmatch.fnmatchcase(rule, p) or rule.startswith(p + "/"))
                   for v, p in self.patterns)

    def to_json(self) -> list[str]:
        return [f"{v}:{p}" if v else p for v, p in self.patterns]


def check_rules_against_catalogue() -> list[str]:
    """Statement IDs in ``RULES`` that the catalogue does not know (empty when all is well)."""
    from .. import catalogue

    bad = []
    for rule, per_version in RULES.items():
        for version, ids in per_version.items():
            bad += [f"{rule} [{version}] {i}" for i in ids if catalogue.get(i, version) is None]
    return bad


__all__ = [
    "GENERIC", "RULES", "V311", "V50", "BrokerDown", "Finding", "FuzzFailure", "FuzzTarget", "HarnessError",
    "IgnoreList", "Limits", "Problem", "check_rules_against_catalogue", "is_loopback", "resolve_target",
    "rule_family", "statements_for",
]
