"""The options of a run, in one table: the ``mqtt-conformance run`` command line and the pytest plugin's
options are both generated from it (a new option is one entry here), and ``Options`` holds their values.

An option has the plugin's flag and, where the command spells it otherwise, the command's (``--strict``
for ``--mqtt-strict``); one of them may be missing. ``target`` marks the options that resolve the target
(where the broker is, who we are, what it can do): the process that resolves it (the command, or the
pytest controller) reads them once, and the resolved target travels on as data (run/context.py), never
as options again.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from .. import catalogue
from ..brokers import REGISTRY
from ..codec.version import Version
from ..errors import ConfigError
from .profile import LIMITS

SAME = "same"  # Option.cli: the command spells the option like the plugin


@dataclass(frozen=True)
class Option:
    dest: str
    flag: str | None  # the plugin's (None: the command's only)
    help: str
    cli: str | None = SAME  # the command's flag (None: the plugin's only)
    target: bool = False  # resolves the target: read once, by the process that resolves it
    attrs: dict[str, Any] = field(default_factory=dict)  # argparse's: action, default, metavar, type, choices

    @property
    def command_flag(self) -> str | None:
        return self.flag if self.cli == SAME else self.cli


def _option(dest: str, flag: str | None, help: str, *, cli: str | None = SAME, target: bool = False,
            **attrs: Any) -> Option:
    return Option(dest, flag, help, cli, target, attrs)


VERSION_CHOICES = (str(Version.V311), str(Version.V50), "all")

OPTIONS: tuple[Option, ...] = (
    _option("broker", "--broker", "broker under test: mqtt://host:port (also mqtts://, ws://, wss://); VERSION=URL "
            "for one version only (repeatable). Default: start an embedded broker on a free loopback port",
            target=True, action="append", default=[], metavar="URL"),
    _option("profile", "--profile", "target profile (TOML): credentials, capabilities, limits, deviations, "
            "e.g. fixtures/targets/mosquitto.toml", target=True, metavar="FILE"),
    _option("embedded", "--embedded", f"embedded broker to start when no --broker is given: {', '.join(REGISTRY)} "
            "(default: mosquitto if installed, else rumqttd)", target=True, metavar="NAME"),
    _option("broker_command", "--broker-command", 'start your own broker, e.g. "./mybroker --port {port}": the '
            "harness picks a free loopback port, waits until it listens, restarts it after a crash and stops it "
            "at the end", target=True, metavar="CMD"),
    _option("username", "--username", "user name (or MQTT_CONFORMANCE_USERNAME, or the profile)", target=True),
    _option("password", "--password", "prefer MQTT_CONFORMANCE_PASSWORD (or the profile); never written to any "
            "report", target=True),
    _option("ca_file", "--ca-file", "CA certificates to verify the broker's TLS certificate", target=True),
    _option("cert_file", "--cert-file", "client certificate (PEM) for TLS", target=True),
    _option("key_file", "--key-file", "client private key (PEM) for TLS", target=True),
    _option("insecure", "--insecure", "skip TLS certificate verification (not recommended)", target=True,
            action="store_true"),
    _option("capability", "--capability", "override a capability of the target (repeatable), e.g. "
            "shared_subscriptions=false", target=True, action="append", default=[], metavar="NAME=VALUE"),
    _option("response_timeout", "--response-timeout", "how long a reply may take (default "
            f"{LIMITS['response_timeout']:g})", target=True, type=float, metavar="SECONDS"),
    _option("mqtt_version", "--mqtt-version", "protocol version(s) to test (default all)", default="all",
            choices=VERSION_CHOICES),
    _option("case_deadline", "--case-deadline", "hard bound of one case; a stuck case is FAIL (or ERROR) with what "
            "it awaited (default: 4 x its longest wait, from the profile's limits)", type=float, metavar="SECONDS"),
    _option("report_dir", "--report-dir", "where results.json and the reports go (default reports)",
            default="reports", metavar="DIR"),
    _option("baseline", "--baseline", "known failures: only a failure not in FILE fails the run", metavar="FILE"),
    _option("mqtt_strict", "--mqtt-strict", "NON-STRICT verdicts (SHOULD-level) fail the run", cli="--strict",
            action="store_true"),
    _option("mqtt_statement", "--mqtt-statement", "only the cases citing this statement, e.g. MQTT-3.1.2-24 "
            "(repeatable)", cli="--statement", action="append", default=[], metavar="ID"),
    _option("mqtt_section", "--mqtt-section", "only the cases citing a statement of this spec section, e.g. 3.8 "
            "or 3.1.2 (repeatable)", cli="--section", action="append", default=[], metavar="N.N"),
    _option("no_reports", "--no-reports", "write results.json only, no rendered reports", cli=None,
            action="store_true"),
    # set by the harness for a pytest run of its own: the resolved target, in a private file (run/target.py)
    _option("target_file", "--mqtt-target-file", argparse.SUPPRESS, cli=None, metavar="FILE"),
)
BY_DEST = {option.dest: option for option in OPTIONS}


class AddsOptions(Protocol):
    """What argparse's parsers and pytest's option groups share."""

    def __call__(self, *flags: str, **attrs: Any) -> Any: ...


def add_options(add: AddsOptions, plugin: bool, dests: Iterable[str] | None = None) -> None:
    """Declare the table's options (or ``dests`` only) with ``add``: ``argparse.ArgumentParser.add_argument``
    for the command (``plugin`` False), a pytest option group's ``addoption`` for the plugin."""
    for option in (BY_DEST[d] for d in dests) if dests is not None else OPTIONS:
        flag = option.flag if plugin else option.command_flag
        if flag is not None:
            add(flag, dest=option.dest, help=option.help, **option.attrs)


@dataclass
class Options:
    """The values of the option table (see OPTIONS, the same names)."""

    broker: list[str] = field(default_factory=list)
    profile: str | None = None
    embedded: str | None = None
    broker_command: str | None = None  # a user's own broker the harness starts: "CMD ... {port} ..."
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    capability: list[str] = field(default_factory=list)  # NAME=VALUE overrides
    response_timeout: float | None = None
    mqtt_version: str = "all"
    case_deadline: float | None = None
    report_dir: str = "reports"
    baseline: str | None = None
    mqtt_strict: bool = False
    mqtt_statement: list[str] = field(default_factory=list)
    mqtt_section: list[str] = field(default_factory=list)
    no_reports: bool = False
    target_file: str | None = None

    @classmethod
    def of(cls, namespace: object) -> Options:
        """The values a parsed command line holds (argparse's namespace, or pytest's ``config.option``);
        an option that front end lacks keeps its default."""
        return cls(**{f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)})

    def selected_versions(self) -> tuple[str, ...]:
        if self.mqtt_version == "all":
            return catalogue.VERSIONS
        try:
            return (Version.parse(self.mqtt_version),)
        except ValueError:
            raise ConfigError(f"--mqtt-version must be 3.1.1, 5.0 or all, not {self.mqtt_version!r}") from None

    def plugin_args(self, dests: Iterable[str]) -> list[str]:
        """The plugin's command line for the options ``dests`` (none that resolves the target: those are
        handed on resolved, never as arguments)."""
        args: list[str] = []
        for option in (BY_DEST[d] for d in dests):
            if option.target or option.flag is None:
                raise ValueError(f"{option.dest} is not passed on as a plugin option")
            value = getattr(self, option.dest)
            if option.attrs.get("action") == "append":
                args += [x for item in value for x in (option.flag, str(item))]
            elif option.attrs.get("action") == "store_true":
                args += [option.flag] if value else []
            elif value is not None:
                args += [option.flag, str(value)]
        return args


assert [o.dest for o in OPTIONS] == [f.name for f in fields(Options)], "one Options field per option"
