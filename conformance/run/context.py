"""Resolving the target of a run from options and profile, and starting the embedded broker."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from .. import catalogue
from ..brokers.base import EmbeddedBroker
from ..codec.version import Version
from ..errors import ConfigError
from ..net import BrokerUnreachable, TlsOptions, check_reachable, parse_url
from ..resources import DATA_ROOT, PROFILES_DIR
from .cluster import resolve_nodes
from .profile import Identity, Profile, load_profile, parse_capability
from .supervisor import Supervisor
from .target import Target, probe_capabilities

PROJECT_ROOT = DATA_ROOT  # the source checkout, or the copy of cases/ and fixtures/ an installed wheel carries


@dataclass
class Options:
    """The plugin's options, as plain values (they travel to xdist workers)."""

    brokers: list[str] = field(default_factory=list)
    profile: str | None = None
    mqtt_version: str = "all"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    embedded: str | None = None
    response_timeout: float | None = None
    capabilities: list[str] = field(default_factory=list)  # NAME=VALUE overrides
    started_by_cli: bool = False  # the CLI started the embedded broker and passes its URLs
    broker_command: str | None = None  # a user's own broker the harness starts: "CMD ... {port} ..."

    def selected_versions(self) -> tuple[str, ...]:
        if self.mqtt_version == "all":
            return catalogue.VERSIONS
        if self.mqtt_version in ("5", Version.V50):
            return (Version.V50,)
        if self.mqtt_version == Version.V311:
            return (Version.V311,)
        raise ConfigError(f"--mqtt-version must be 3.1.1, 5.0 or all, not {self.mqtt_version!r}")


def parse_broker_args(values: list[str]) -> dict[str, str]:
    """``--broker URL`` (all versions) or ``--broker 5.0=URL`` (one version)."""
    urls: dict[str, str] = {}
    for value in values:
        version, sep, url = value.partition("=")
        if sep and version in catalogue.VERSIONS:
            urls[version] = url
        else:
            urls.update({v: value for v in catalogue.VERSIONS if v not in urls or not sep})
        parse_url(url if sep and version in catalogue.VERSIONS else value)
    return urls


def load_options_profile(options: Options) -> Profile:
    profile = load_profile(options.profile) if options.profile else Profile()
    if options.response_timeout:
        profile.limits["response_timeout"] = options.response_timeout
    profile.capabilities.update(dict(parse_capability(text) for text in options.capabilities))
    return profile


def credentials(options: Options, profile: Profile) -> Identity:
    username = options.username or os.environ.get("MQTT_CONFORMANCE_USERNAME") or profile.credentials.username
    password = options.password or os.environ.get("MQTT_CONFORMANCE_PASSWORD") or profile.credentials.password
    return Identity(username, password)


def tls_options(options: Options, profile: Profile) -> TlsOptions:
    base = profile.tls
    return TlsOptions(
        options.ca_file or base.ca_file, options.cert_file or base.cert_file, options.key_file or base.key_file,
        options.insecure or base.insecure,
    )


class RunState:
    """Owned by the controlling pytest process: the target and the broker it may have started."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.target: Target | None = None
        self.broker: EmbeddedBroker | None = None
        self.supervisor: Supervisor | None = None
        self.capabilities: dict[str, dict[str, Any]] = {}
        self.requested_urls: dict[str, str] = {}  # the target's URLs as given, refused versions included

    def ensure_target(self) -> Target:
        if self.target is None:
            self.target = self._resolve()
        return self.target

    def _resolve(self) -> Target:
        opts = self.options
        opts.selected_versions()
        profile = load_options_profile(opts)
        urls = parse_broker_args(opts.brokers) or ({} if opts.broker_command else dict(profile.urls))
        embedded = not urls
        name = profile.name
        if embedded:
            self.broker = start_managed(opts, profile)
            self.supervisor = Supervisor(self.broker).start()  # restarts it after a crash
            if not opts.profile:
                path = PROFILES_DIR / f"{self.broker.name}.toml"
                if path.exists():
                    profile = load_options_profile(Options(profile=str(path), response_timeout=opts.response_timeout,
                                                           capabilities=opts.capabilities))
            for name, value in self.broker.extra_capabilities().items():
                profile.capabilities.setdefault(name, value)
            urls = {v: self.broker.url(v) for v in self.broker.versions}
            name = profile.name or self.broker.name
            creds = getattr(self.broker, "credentials", None)
            if creds and not profile.credentials.username:
                profile.credentials = Identity(*creds)
        embedded = embedded or opts.started_by_cli
        target = Target(name or next(iter(urls.values())), urls, profile, embedded, tls_options(opts, profile),
                        credentials(opts, profile))
        target.nodes, target.node_control = resolve_nodes(profile.cluster_nodes, self.broker, opts.started_by_cli)
        for version in opts.selected_versions():
            if version in target.urls:
                try:
                    check_reachable(target.endpoint(version), 3.0, target.tls)
                except BrokerUnreachable as exc:
                    self.stop()
                    raise BrokerUnreachable(f"broker unreachable: {exc}") from None
        self.requested_urls = dict(target.urls)  # before the pre-flight drops refused versions
        self._preflight(target)
        return target

    def _preflight(self, target: Target) -> None:
        """One bounded CONNECT per selected version (see preflight): drop the versions the broker
        refuses, stop the run (exit 2) on refused credentials, a non-MQTT answer or silence."""
        from .preflight import run_preflight

        selected = {v: target.endpoint(v) for v in self.options.selected_versions() if v in target.urls}
        creds = target.credentials
        try:
            dropped = run_preflight(selected, target.tls, creds.username, creds.password)
        except (ConfigError, BrokerUnreachable):
            self.stop()
            raise
        for version, reason in dropped.items():
            del target.urls[version]
            target.unsupported_versions[version] = reason
            announce(f"mqtt-conformance: MQTT {version} cases are UNSUPPORTED: {reason}")
        for version in self.options.selected_versions():
            if version not in target.urls and version not in target.unsupported_versions:
                offered = ", ".join(target.versions) or "none"
                target.unsupported_versions[version] = f"no URL for it (the target offers MQTT {offered})"
        label = "the broker" if "://" in target.name else target.name
        announce(f"mqtt-conformance: testing {label} at " + ", ".join(
            f"MQTT {v} {e.host}:{e.port} ({e.scheme})" for v, e in selected.items() if v in target.urls))

    def caps(self, version: str) -> dict[str, Any]:
        if version not in self.capabilities:
            self.capabilities[version] = probe_capabilities(self.ensure_target(), version)
        return self.capabilities[version]

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # first: stopping the broker is no crash
            self.supervisor = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


_ANNOUNCED: set[str] = set()


def announce(line: str) -> None:
    """One line on stderr, once per process (the CLI and the plugin it runs both resolve the target)."""
    if line not in _ANNOUNCED:
        _ANNOUNCED.add(line)
        print(line, file=sys.stderr, flush=True)


def start_managed(opts: Options, profile: Profile) -> EmbeddedBroker:
    """The broker of ``--broker-command`` (or the profile's [managed] command), else the embedded one."""
    command = opts.broker_command or profile.managed.get("command")
    if not command:
        return start_embedded(opts.embedded or profile.embedded)
    from ..brokers.command import CommandBroker

    timeout = float(profile.managed.get("ready_timeout", 10.0))
    return CommandBroker(command, timeout, tuple(profile.versions)).start()


def start_embedded(name: str | None) -> EmbeddedBroker:
    from .. import brokers

    try:
        cls = brokers.get_broker(name) if name else brokers.default_broker()
    except KeyError:
        raise ConfigError(f"unknown embedded broker {name!r}; known: {', '.join(brokers.REGISTRY)}") from None
    if not cls.available():
        raise ConfigError(f"embedded broker {cls.name} is not installed here (see .ci/install-brokers)")
    return cls().start()
