"""Resolving the target of a run from options and profile, and starting the embedded broker."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import catalogue
from .brokers.base import EmbeddedBroker
from .profile import Identity, Profile, load_profile, parse_capability
from .target import Target, probe_capabilities
from .transport import BrokerUnreachable, ConfigError, TlsOptions, check_reachable, parse_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILES_DIR = PROJECT_ROOT / "fixtures" / "targets"


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

    def selected_versions(self) -> tuple[str, ...]:
        if self.mqtt_version == "all":
            return catalogue.VERSIONS
        if self.mqtt_version in ("5", "5.0"):
            return ("5.0",)
        if self.mqtt_version == "3.1.1":
            return ("3.1.1",)
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
        self.capabilities: dict[str, dict[str, Any]] = {}

    def ensure_target(self) -> Target:
        if self.target is None:
            self.target = self._resolve()
        return self.target

    def _resolve(self) -> Target:
        opts = self.options
        opts.selected_versions()
        profile = load_options_profile(opts)
        urls = parse_broker_args(opts.brokers) or dict(profile.urls)
        embedded = not urls
        name = profile.name
        if embedded:
            self.broker = start_embedded(opts.embedded or profile.embedded)
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
        for version in opts.selected_versions():
            if version in target.urls:
                try:
                    check_reachable(target.endpoint(version), 3.0, target.tls)
                except BrokerUnreachable as exc:
                    self.stop()
                    raise BrokerUnreachable(f"broker unreachable: {exc}") from None
        return target

    def caps(self, version: str) -> dict[str, Any]:
        if version not in self.capabilities:
            self.capabilities[version] = probe_capabilities(self.ensure_target(), version)
        return self.capabilities[version]

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def start_embedded(name: str | None) -> EmbeddedBroker:
    from . import brokers

    try:
        cls = brokers.get_broker(name) if name else brokers.default_broker()
    except KeyError:
        raise ConfigError(f"unknown embedded broker {name!r}; known: {', '.join(brokers.REGISTRY)}") from None
    if not cls.available():
        raise ConfigError(f"embedded broker {cls.name} is not installed here (see .ci/install-brokers)")
    return cls().start()
