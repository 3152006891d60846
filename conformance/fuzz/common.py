"""What the fuzzer's parts share: the rule table (oracle rule -> statement IDs per version), the
acknowledgement codes a server may send, findings, the target description and its probes, and the
exceptions that steer a hypothesis run.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..codec.version import VERSIONS, Version
from ..errors import ConfigError
from ..net import Endpoint, SocketTransport, parse_url
from ..probe import Probe, Timing
from ..transcript import Transcript
from ..verdicts import BrokerGone

GENERIC: dict[str, str] = {Version.V311: "MQTT-4.8.0-1", Version.V50: "MQTT-4.13.1-1"}


def _both(ids: list[str], generic: bool = True) -> dict[str, list[str]]:
    return {version: ids + ([GENERIC[version]] if generic else []) for version in VERSIONS}


# rule -> version -> statement IDs cited by a finding of that rule (validated against the catalogue by
# the self-tests). A rule missing for a version cites the generic error-handling statement.
RULES: dict[str, dict[str, list[str]]] = {
    # -- malformed or forbidden input: the connection must be closed ----------------------------------
    "malformed/flags": {Version.V311: ["MQTT-2.2.2-2", "MQTT-4.8.0-1"],
                        Version.V50: ["MQTT-2.1.3-1", "MQTT-4.13.1-1"]},
    "malformed/publish-qos3": _both(["MQTT-3.3.1-4"]),
    "malformed/utf8": {Version.V311: ["MQTT-1.5.3-1", "MQTT-4.8.0-1"],
                       Version.V50: ["MQTT-1.5.4-1", "MQTT-4.13.1-1"]},
    "malformed/null-char": {Version.V311: ["MQTT-1.5.3-2", "MQTT-4.7.3-2", "MQTT-4.8.0-1"],
                            Version.V50: ["MQTT-1.5.4-2", "MQTT-4.7.3-2", "MQTT-4.13.1-1"]},
    "malformed/topic-wildcard": {Version.V311: ["MQTT-4.7.1-1", "MQTT-4.8.0-1"],
                                 Version.V50: ["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.13.1-1"]},
    "malformed/filter-hash": {Version.V311: ["MQTT-4.7.1-2", "MQTT-4.8.0-1"],
                              Version.V50: ["MQTT-4.7.1-1", "MQTT-4.13.1-1"]},
    "malformed/filter-plus": {Version.V311: ["MQTT-4.7.1-3", "MQTT-4.8.0-1"],
                              Version.V50: ["MQTT-4.7.1-2", "MQTT-4.13.1-1"]},
    "malformed/empty-topic": _both(["MQTT-4.7.3-1"]),
    "malformed/packet-id-zero": {Version.V311: ["MQTT-2.3.1-1", "MQTT-4.8.0-1"],
                                 Version.V50: ["MQTT-2.2.1-3", "MQTT-4.13.1-1"]},
    "malformed/subscribe-empty": {Version.V311: ["MQTT-3.8.3-3", "MQTT-4.8.0-1"],
                                  Version.V50: ["MQTT-3.8.3-2", "MQTT-4.13.1-1"]},
    "malformed/unsubscribe-empty": _both(["MQTT-3.10.3-2"]),
    "malformed/subscribe-options/reserved": {Version.V311: ["MQTT-3.8.3-4", "MQTT-4.8.0-1"],
                                             Version.V50: ["MQTT-3.8.3-5", "MQTT-4.13.1-1"]},
    "malformed/subscribe-options/qos3": {Version.V311: ["MQTT-3.8.3-4", "MQTT-4.8.0-1"],
                                         Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/subscribe-options/retain-handling-3": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/remaining-length/five-bytes": _both([]),
    "malformed/remaining-length/non-minimal": {Version.V50: ["MQTT-1.5.5-1", "MQTT-4.13.1-1"]},
    "malformed/trailing-bytes": _both([]),
    "malformed/reserved-type": _both([]),
    "malformed/second-connect": _both(["MQTT-3.1.0-2"]),
    "malformed/first-packet-not-connect": _both(["MQTT-3.1.0-1"]),
    "malformed/property/duplicate": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/property/unknown": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/property/misplaced": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/property/non-minimal": {Version.V50: ["MQTT-1.5.5-1", "MQTT-4.13.1-1"]},
    "malformed/property/length": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/property/topic-alias-zero": {Version.V50: ["MQTT-3.3.2-8", "MQTT-4.13.1-1"]},
    "malformed/property/topic-alias-above-maximum": {Version.V50: ["MQTT-3.3.2-9", "MQTT-3.2.2-17",
                                                                   "MQTT-4.13.1-1"]},
    "malformed/property/subscription-identifier-zero": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/property/value": {Version.V50: ["MQTT-4.13.1-1"]},
    "malformed/auth-without-method": {Version.V50: ["MQTT-4.12.0-7", "MQTT-4.13.1-1"]},
    "malformed/connect/reserved-flag": _both(["MQTT-3.1.2-3", "MQTT-3.1.4-1"], generic=False),
    "malformed/connect/will-flags": {Version.V311: ["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.2-15",
                                                    "MQTT-3.1.4-1"],
                                     Version.V50: ["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.4-1"]},
    "malformed/connect/will-qos3": {Version.V311: ["MQTT-3.1.2-14", "MQTT-3.1.4-1"],
                                    Version.V50: ["MQTT-3.1.2-12", "MQTT-3.1.4-1"]},
    "malformed/connect/password-without-username": {Version.V311: ["MQTT-3.1.2-22", "MQTT-3.1.4-1"]},
    "malformed/connect/protocol-level": _both(["MQTT-3.1.2-2"], generic=False),
    "malformed/connect/empty-client-id-persistent": {Version.V311: ["MQTT-3.1.3-8"]},
    "malformed/connect/utf8": {Version.V311: ["MQTT-1.5.3-1", "MQTT-3.1.4-1"],
                               Version.V50: ["MQTT-1.5.4-1", "MQTT-3.1.4-1"]},
    "malformed/connect/null-char": {Version.V311: ["MQTT-1.5.3-2", "MQTT-3.1.4-1"],
                                    Version.V50: ["MQTT-1.5.4-2", "MQTT-3.1.4-1"]},
    "malformed/connect/length": _both(["MQTT-3.1.4-1"]),
    "malformed/connect/flags": {Version.V311: ["MQTT-2.2.2-2", "MQTT-3.1.4-1"],
                                Version.V50: ["MQTT-2.1.3-1", "MQTT-3.1.4-1"]},
    "malformed/connect/non-minimal": {Version.V50: ["MQTT-1.5.5-1", "MQTT-3.1.4-1"]},
    "malformed/connect/property": {Version.V50: ["MQTT-3.1.4-1", "MQTT-4.13.1-1"]},
    # -- well-formed input: the normal answer --------------------------------------------------------
    "valid/pingreq": _both(["MQTT-3.12.4-1"], generic=False),
    "valid/publish-qos1": {Version.V311: ["MQTT-3.3.4-1", "MQTT-4.3.2-2", "MQTT-2.3.1-6"],
                           Version.V50: ["MQTT-3.3.4-1", "MQTT-4.3.2-4", "MQTT-2.2.1-5"]},
    "valid/publish-qos2": {Version.V311: ["MQTT-3.3.4-1", "MQTT-4.3.3-2", "MQTT-2.3.1-6"],
                           Version.V50: ["MQTT-3.3.4-1", "MQTT-4.3.3-8", "MQTT-2.2.1-5"]},
    "valid/publish": {Version.V311: ["MQTT-3.3.4-1"], Version.V50: ["MQTT-3.3.4-1"]},
    "valid/subscribe": {Version.V311: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-5", "MQTT-2.3.1-7"],
                        Version.V50: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-6", "MQTT-3.8.4-7"]},
    "valid/unsubscribe": {Version.V311: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.3.1-7"],
                          Version.V50: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.11.3-1", "MQTT-3.11.3-2"]},
    "valid/connect": {Version.V311: ["MQTT-3.1.4-4", "MQTT-3.2.0-1"],
                      Version.V50: ["MQTT-3.1.4-5", "MQTT-3.2.0-1"]},
    "valid/connect/session-present": {Version.V311: ["MQTT-3.2.2-1", "MQTT-3.2.2-3"],
                                      Version.V50: ["MQTT-3.2.2-2", "MQTT-3.2.2-3"]},
    "valid/connect/refusal-session-present": {Version.V311: ["MQTT-3.2.2-4"], Version.V50: ["MQTT-3.2.2-6"]},
    "valid/connect/refusal-not-closed": {Version.V311: ["MQTT-3.2.2-5"],
                                         Version.V50: ["MQTT-3.2.2-7", "MQTT-4.13.2-1"]},
    "broker/malformed-packet": _both([]),
    # -- the broker stays usable -----------------------------------------------------------------------
    "liveness/connect": {Version.V311: ["MQTT-3.1.4-4"], Version.V50: ["MQTT-3.1.4-5"]},
    "liveness/subscribe": {Version.V311: ["MQTT-3.8.4-1"], Version.V50: ["MQTT-3.8.4-1"]},
    "liveness/publish": {Version.V311: ["MQTT-3.3.4-1"], Version.V50: ["MQTT-3.3.4-1"]},
    "liveness/delivery": {Version.V311: ["MQTT-4.5.0-1"], Version.V50: ["MQTT-4.5.0-1"]},
    # -- the stateful model ------------------------------------------------------------------------------
    "model/connack": {Version.V311: ["MQTT-3.1.4-4"], Version.V50: ["MQTT-3.1.4-5"]},
    "model/session-present": {Version.V311: ["MQTT-3.2.2-1", "MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-3.1.2-4",
                                             "MQTT-3.1.2-6"],
                              Version.V50: ["MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-3.1.2-4", "MQTT-3.1.2-5",
                                            "MQTT-3.1.2-23"]},
    "model/suback": {Version.V311: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-5"],
                     Version.V50: ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-6", "MQTT-3.8.4-7"]},
    "model/unsuback": {Version.V311: ["MQTT-3.10.4-4", "MQTT-3.10.4-5"],
                       Version.V50: ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.11.3-1", "MQTT-3.11.3-2"]},
    "model/publish-ack": {Version.V311: ["MQTT-3.3.4-1"], Version.V50: ["MQTT-3.3.4-1"]},
    "model/missing": {Version.V311: ["MQTT-4.5.0-1"], Version.V50: ["MQTT-4.5.0-1"]},
    "model/missing-queued": {Version.V311: ["MQTT-3.1.2-5", "MQTT-4.5.0-1"],
                             Version.V50: ["MQTT-3.1.2-5", "MQTT-4.5.0-1"]},
    "model/missing-retained": {Version.V311: ["MQTT-3.3.1-6", "MQTT-3.8.4-3"],
                               Version.V50: ["MQTT-3.3.1-9", "MQTT-3.8.4-4"]},
    "model/retained-on-existing": {Version.V50: ["MQTT-3.3.1-10", "MQTT-3.3.1-11"]},
    "model/unexpected": {Version.V311: ["MQTT-3.3.2-3", "MQTT-3.10.4-2"],
                         Version.V50: ["MQTT-3.3.2-3", "MQTT-3.10.4-2"]},
    "model/no-local": {Version.V50: ["MQTT-3.8.3-3"]},
    "model/subscription-replacement": {Version.V50: ["MQTT-3.8.4-3", "MQTT-3.8.3-3", "MQTT-3.3.1-13"]},
    "model/duplicate": {Version.V311: ["MQTT-4.3.3-2", "MQTT-3.3.5-1"],
                        Version.V50: ["MQTT-4.3.3-10", "MQTT-3.3.4-2"]},
    "model/qos": {Version.V311: ["MQTT-3.8.4-6"], Version.V50: ["MQTT-3.8.4-8"]},
    "model/overlap-qos": {Version.V311: ["MQTT-3.3.5-1"], Version.V50: ["MQTT-3.3.4-2"]},
    "model/retain-flag": {Version.V311: ["MQTT-3.3.1-8", "MQTT-3.3.1-9"],
                          Version.V50: ["MQTT-3.3.1-12", "MQTT-3.3.1-13"]},
    "model/retained-stored": {Version.V311: ["MQTT-3.3.1-5", "MQTT-3.3.1-10", "MQTT-3.3.1-12"],
                              Version.V50: ["MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"]},
    "model/dup": {Version.V311: ["MQTT-3.3.1-1", "MQTT-3.3.1-2", "MQTT-4.3.2-1"],
                  Version.V50: ["MQTT-3.3.1-2", "MQTT-4.3.2-2", "MQTT-4.3.3-2"]},
    "model/order": {Version.V311: ["MQTT-4.6.0-6"], Version.V50: ["MQTT-4.6.0-5", "MQTT-4.6.0-6"]},
    "model/closed": _both([]),
}


# Reason codes a server may put in each acknowledgement (5.0), and the SUBACK return codes of 3.1.1.
VALID_CODES = {
    "PUBACK": {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    "PUBREC": {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    "SUBACK": {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2},
    "UNSUBACK": {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91},
}
SUBACK_311 = {0x00, 0x01, 0x02, 0x80}


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
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


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


def open_probe(target: FuzzTarget, version: str, transcript: Transcript, name: str, client_id: str,
               timeout: float) -> Probe:
    """A ``Probe`` on a quick-ACK transport (the fuzzer's clients exchange many small packets)."""
    probe = Probe(target.endpoint, version, transcript, name=name, client_id=client_id,
                  timing=Timing(response=timeout, connect=timeout))
    try:
        sock = socket.create_connection(target.address, timeout=timeout)
    except OSError as exc:
        raise BrokerGone(f"cannot connect to {target.url}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    probe.transport = QuickAckTransport(sock)
    probe.restart_clock()
    return probe


class IgnoreList:
    """``--ignore`` patterns: ``RULE`` or ``VERSION:RULE``, fnmatch-style (``malformed/flags/*``)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: list[tuple[Version | None, str]] = []
        for text in patterns:
            version, sep, pattern = text.partition(":")
            if sep and version in VERSIONS:
                self.patterns.append((Version(version), pattern))
            elif sep and "/" not in version:
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
    "GENERIC", "RULES", "SUBACK_311", "VALID_CODES", "BrokerDown", "Finding", "FuzzFailure", "FuzzTarget",
    "IgnoreList", "Limits", "Problem", "check_rules_against_catalogue", "is_loopback", "open_probe",
    "resolve_target", "rule_family", "statements_for",
]
