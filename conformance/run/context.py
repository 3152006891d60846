"""Resolving the target of a run, once: options and profile -> Target, starting the broker the run
manages when no URL is given, and checking that it is reachable and speaks MQTT (the pre-flight).

The process that resolves the target (``mqtt-conformance run``, or the pytest controller run without it)
hands it on as data: to the pytest session it starts, in-process (``Handoff``); to xdist workers, in
their workerinput; to a pytest run of its own (a re-run, a config variant), in a private file
(run/isolated.py). None of them reads the options or the profile again.
"""

from __future__ import annotations

import os
import sys

from .. import catalogue
from ..brokers.base import EmbeddedBroker
from ..errors import ConfigError
from ..net import BrokerUnreachable, TlsOptions, check_reachable, parse_url
from .cluster import resolve_nodes
from .options import Options
from .profile import Identity, Profile, load_profile, parse_capability
from .supervisor import Supervisor
from .target import Target


def parse_broker_args(values: list[str]) -> dict[str, str]:
    """``--broker URL`` (all versions) or ``--broker 5.0=URL`` (one version)."""
    urls: dict[str, str] = {}
    for value in values:
        version, sep, url = value.partition("=")
        if sep and version in catalogue.VERSIONS:
            parse_url(url)
            urls[version] = url
        else:
            parse_url(value)
            urls.update({v: value for v in catalogue.VERSIONS if v not in urls or not sep})
    return urls


def load_options_profile(options: Options, path: str | None = None) -> Profile:
    """The profile at ``path`` (default: the options'), with the options' limit and capability overrides."""
    path = path or options.profile
    profile = load_profile(path) if path else Profile()
    if options.response_timeout:
        profile.limits["response_timeout"] = options.response_timeout
    profile.capabilities.update(dict(parse_capability(text) for text in options.capability))
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
    """Owned by the process that resolves the target: the options it was resolved from, the target, and
    the broker (and its supervisor) it may have started. ``target`` given: resolved elsewhere already."""

    def __init__(self, options: Options, target: Target | None = None) -> None:
        self.options = options
        self.profile = target.profile if target is not None else load_options_profile(options)
        self.target = target
        self.broker: EmbeddedBroker | None = None
        self.supervisor: Supervisor | None = None

    def ensure_target(self) -> Target:
        if self.target is None:
            try:
                self.target = self._resolve()
            except BaseException:
                self.stop()
                raise
        return self.target

    def _resolve(self) -> Target:
        opts, profile = self.options, self.profile
        urls = parse_broker_args(opts.broker) or ({} if opts.broker_command else dict(profile.urls))
        if not urls:
            self.broker = start_managed(opts, profile)
            self.supervisor = Supervisor(self.broker).start()  # restarts it after a crash
            profile = self._managed_profile(profile)
            urls = {v: self.broker.url(v) for v in self.broker.versions}
        target = build_target(opts, profile, urls, self.broker)
        check_target(target, opts.selected_versions())
        return target

    def _managed_profile(self, profile: Profile) -> Profile:
        """The profile of the broker this run started: the broker's own when the options name none, with
        what the broker adds (capabilities of its setup, the credentials it requires)."""
        broker = self.broker
        assert broker is not None
        if not self.options.profile and broker.profile_path().exists():
            profile = load_options_profile(self.options, str(broker.profile_path()))
        for name, value in broker.extra_capabilities().items():
            profile.capabilities.setdefault(name, value)
        if broker.credentials and not profile.credentials.username:
            profile.credentials = Identity(*broker.credentials)
        return profile

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # first: stopping the broker is no crash
            self.supervisor = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


class Handoff:
    """Given to ``pytest.main`` by ``mqtt-conformance run``: the run state it resolved (and owns), which the
    plugin uses instead of resolving the target again."""

    def __init__(self, state: RunState) -> None:
        self.state = state


def build_target(options: Options, profile: Profile, urls: dict[str, str], broker: EmbeddedBroker | None,
                 embedded: bool = False) -> Target:
    """The target at ``urls`` (of ``broker``, when this run started it: ``embedded`` then too)."""
    name = profile.name or (broker.name if broker is not None else "") or next(iter(urls.values()))
    target = Target(name, urls, profile, embedded or broker is not None, tls_options(options, profile),
                    credentials(options, profile))
    target.nodes, target.node_control = resolve_nodes(profile.cluster_nodes, broker)
    return target


def check_target(target: Target, versions: tuple[str, ...], quiet: bool = False) -> None:
    """Every selected version reachable (BrokerUnreachable), then the pre-flight (see preflight): the versions
    the broker refuses are dropped (their cases UNSUPPORTED); refused credentials, a non-MQTT answer or
    silence stop the run (PreflightError, exit 2). Says on stderr what the run talks to, unless ``quiet``."""
    from .preflight import run_preflight

    for version in versions:
        if version in target.urls:
            try:
                check_reachable(target.endpoint(version), 3.0, target.tls)
            except BrokerUnreachable as exc:
                raise BrokerUnreachable(f"broker unreachable: {exc}") from None
    selected = {v: target.endpoint(v) for v in versions if v in target.urls}
    creds = target.credentials
    for version, reason in run_preflight(selected, target.tls, creds.username, creds.password).items():
        del target.urls[version]
        target.unsupported_versions[version] = reason
        _say(f"mqtt-conformance: MQTT {version} cases are UNSUPPORTED: {reason}", quiet)
    for version in versions:
        if version not in target.urls and version not in target.unsupported_versions:
            offered = ", ".join(target.versions) or "none"
            target.unsupported_versions[version] = f"no URL for it (the target offers MQTT {offered})"
    label = "the broker" if "://" in target.name else target.name
    _say(f"mqtt-conformance: testing {label} at " + ", ".join(
        f"MQTT {v} {e.host}:{e.port} ({e.scheme})" for v, e in selected.items() if v in target.urls), quiet)


def _say(line: str, quiet: bool) -> None:
    if not quiet:
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
