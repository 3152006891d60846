"""Target profiles: a TOML file describing one broker (where, how, what it supports, where it deviates).

Every problem is reported as a ConfigError naming the file and the key, never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import catalogue
from ..codec.version import Version
from ..errors import ConfigError
from ..net import TlsOptions, parse_url

# Capabilities a case may require; True unless the profile or the broker's CONNACK says otherwise.
CAPABILITIES = {
    "maximum_qos": 2,
    "retain_available": True,
    "wildcard_subscriptions": True,
    "subscription_identifiers": True,
    "shared_subscriptions": True,
    "topic_alias_maximum": 0,
    "receive_maximum": 65535,
    "maximum_packet_size": None,
    "server_keep_alive": None,
    "enhanced_auth": False,
    "authentication_method": None,
    "credentials_required": False,  # the broker refuses anonymous clients
    "password_auth": False,  # the broker checks passwords: identities "valid" and "bad_password" given
    "denied_topic": None,  # a topic prefix the target's ACL forbids to the default identity
    "maximum_client_id_length": 23,
    "websocket_url": None,  # ws:// or wss:// URL of the same broker, for the WebSocket transport cases
    "client_certificate_url": None,  # mqtts:// URL of a listener that requires a client certificate
}
LIMITS = {
    "response_timeout": 2.0,  # seconds a reply may take before it counts as missing
    "connect_timeout": 5.0,
    # How long past a timer's bound (1.5 x Keep Alive, an expiry) a case keeps waiting: an event in
    # that window is NON-STRICT (late, with the measured time), none at all is FAIL.
    "timer_late_window": 10.0,
    # How long past the response timeout an event with no deadline of its own (the Will after an
    # abnormal close) is still awaited: one in that window is NON-STRICT (late), none at all FAIL.
    "event_late_window": 6.0,
    # Hard bound of one case, in seconds (see conformance/run/deadline.py); 0: derived from the limits above.
    "case_deadline": 0.0,
}
KNOWN_KEYS = {"extends", "name", "broker", "brokers", "embedded", "versions", "credentials", "identities", "tls",
              "capabilities", "limits", "deviations", "websocket_path", "notes", "managed",
              "cluster", "variants"}


@dataclass(frozen=True)
class Deviation:
    statement: str
    version: str | None  # None: both versions
    reason: str
    evidence: str = ""
    case: str = ""  # optional: only cases whose name contains this
    transports: tuple[str, ...] = ()  # optional: only over these URL schemes (e.g. ws, wss)

    def applies(self, statement: str, version: str, case_name: str, scheme: str = "mqtt") -> bool:
        return (
            self.statement == statement
            and (self.version is None or self.version == version)
            and (not self.case or self.case in case_name)
            and (not self.transports or scheme in self.transports)
        )


@dataclass(frozen=True)
class Identity:
    username: str | None = None
    password: str | None = None


@dataclass
class Profile:
    name: str = ""
    path: str | None = None
    urls: dict[str, str] = field(default_factory=dict)  # version -> URL
    embedded: str | None = None
    versions: tuple[str, ...] = (Version.V311, Version.V50)
    credentials: Identity = field(default_factory=Identity)
    identities: dict[str, Identity] = field(default_factory=dict)  # e.g. "unauthorised", "second"
    tls: TlsOptions = field(default_factory=TlsOptions)
    capabilities: dict[str, Any] = field(default_factory=dict)  # only what the profile sets
    limits: dict[str, float] = field(default_factory=lambda: dict(LIMITS))
    deviations: list[Deviation] = field(default_factory=list)
    cluster_nodes: dict[str, str] = field(default_factory=dict)  # [cluster] nodes: name -> URL ("" = target's)
    managed: dict[str, Any] = field(default_factory=dict)  # [managed] command, ready_timeout: a broker to start
    variants: list[dict[str, Any]] = field(default_factory=list)  # [[variants]]: other configs of that broker

    def deviation_for(self, statements: list[str], version: str, case_name: str,
                      scheme: str = "mqtt") -> Deviation | None:
        return next((d for d in self.deviations for s in statements if d.applies(s, version, case_name, scheme)),
                    None)

    def to_data(self) -> dict[str, Any]:
        """The loaded profile as plain values (its identities' passwords included: see Target.to_data)."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Profile:
        """The profile ``to_data`` gave (already checked: nothing is read or checked again)."""
        return cls(**{
            **data, "versions": tuple(data["versions"]), "credentials": Identity(**data["credentials"]),
            "identities": {name: Identity(**identity) for name, identity in data["identities"].items()},
            "tls": TlsOptions(**data["tls"]),
            "deviations": [Deviation(**{**dev, "transports": tuple(dev["transports"])}) for dev in data["deviations"]],
        })


def _identity(where: str, table: Any) -> Identity:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table with username/password")
    password = table.get("password")
    env = table.get("password_env")
    if env:
        password = os.environ.get(env)
        if password is None:
            raise ConfigError(f"{where}.password_env names {env}, which is not set in the environment")
    return Identity(table.get("username"), password)


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"profile {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {path} is not valid TOML: {exc}") from None
    return profile_from_dict(_with_base(data, path), str(path))


def _with_base(data: dict[str, Any], path: Path, depth: int = 0) -> dict[str, Any]:
    """Resolve ``extends = "other.toml"`` (relative to this file): tables merge key by key, deviations
    add up, anything else in this file wins."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if depth > 4:
        raise ConfigError(f"profile {path}: 'extends' nests too deep")
    base_path = path.parent / base_name
    try:
        base = _with_base(tomllib.loads(base_path.read_text(encoding="utf-8")), base_path, depth + 1)
    except FileNotFoundError:
        raise ConfigError(f"profile {path}: extends {base_name}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {base_path} is not valid TOML: {exc}") from None
    merged = {**base, **data}
    for key in ("credentials", "identities", "tls", "capabilities", "limits", "brokers"):
        if key in base and key in data:
            merged[key] = {**base[key], **data[key]}
    merged["deviations"] = [*base.get("deviations", []), *data.get("deviations", [])]
    return merged


def profile_from_dict(data: dict[str, Any], where: str = "profile") -> Profile:
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_KEYS))}")
    check_types(where, data)
    profile = Profile(name=str(data.get("name", "")), path=where if where != "profile" else None)
    profile.versions, profile.urls = _where_it_is(where, data)
    profile.embedded = data.get("embedded")
    profile.managed = _managed(where, data.get("managed", {}))
    profile.variants = [_variant(f"{where}: variants[{i}]", v) for i, v in enumerate(data.get("variants", []))]
    if "credentials" in data:
        profile.credentials = _identity(f"{where}: [credentials]", data["credentials"])
    for key, table in data.get("identities", {}).items():
        profile.identities[key] = _identity(f"{where}: [identities.{key}]", table)
    if "tls" in data:
        tls = data["tls"]
        profile.tls = TlsOptions(tls.get("ca_file"), tls.get("cert_file"), tls.get("key_file"), bool(tls.get("insecure")))
    profile.capabilities = _capabilities(where, "[capabilities] ", data.get("capabilities", {}))
    limits = data.get("limits", {})
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise ConfigError(f"{where}: unknown limits {', '.join(sorted(unknown))}; known: {', '.join(LIMITS)}")
    profile.limits.update({k: check_limit(f"{where}: [limits] {k}", k, v) for k, v in limits.items()})
    profile.deviations = [_deviation(f"{where}: deviations[{i}]", dev, Path(where).parent)
                          for i, dev in enumerate(data.get("deviations", []))]
    if "cluster" in data:
        from .cluster import parse_cluster

        profile.cluster_nodes = parse_cluster(where, data["cluster"])
    return profile


def _where_it_is(where: str, data: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(versions, URL per version) of ``versions``, ``broker`` and ``[brokers]``."""
    versions = data.get("versions", [Version.V311, Version.V50])
    bad = [v for v in versions if v not in catalogue.VERSIONS]
    if bad or not versions:
        raise ConfigError(f"{where}: versions must be a list of 3.1.1 and/or 5.0, got {versions!r}")
    urls: dict[str, str] = {}
    if "broker" in data:
        parse_url(data["broker"])
        urls = {v: data["broker"] for v in versions}
    for version, url in data.get("brokers", {}).items():
        if version not in catalogue.VERSIONS:
            raise ConfigError(f"{where}: [brokers] key {version!r} is not an MQTT version")
        parse_url(url)
        urls[version] = url
    return tuple(versions), urls


def _deviation(where: str, dev: dict[str, Any], profile_dir: Path) -> Deviation:
    missing = {"statement", "reason"} - set(dev)
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(sorted(missing))}")
    version = dev.get("version")
    known = [v for v in ([version] if version else catalogue.VERSIONS) if dev["statement"] in catalogue.load(v)]
    if not known:
        raise ConfigError(f"{where} cites unknown statement {dev['statement']} for MQTT {version or 'any'}")
    check_deviation(where, dev, profile_dir)
    transports = dev.get("transport", ())
    return Deviation(dev["statement"], version, dev["reason"], dev.get("evidence", ""), dev.get("case", ""),
                     (transports,) if isinstance(transports, str) else tuple(transports))


def _capabilities(where: str, table: str, caps: dict[str, Any]) -> dict[str, Any]:
    """Capability values of a profile's [capabilities] or a variant's ``capabilities``, checked."""
    unknown = set(caps) - set(CAPABILITIES)
    if unknown:
        raise ConfigError(f"{where}: unknown capabilities {', '.join(sorted(unknown))}; known: {', '.join(CAPABILITIES)}")
    return {name: check_capability(f"{where}: {table}{name}", name, value) for name, value in caps.items()}


def _managed(where: str, table: Any) -> dict[str, Any]:
    """[managed]: ``command`` (with {port}) that starts the user's broker, ``ready_timeout`` seconds."""
    if not isinstance(table, dict) or set(table) - {"command", "ready_timeout"}:
        raise ConfigError(f"{where}: [managed] takes command (a string with {{port}}) and ready_timeout (seconds)")
    if "command" in table and not isinstance(table["command"], str):
        raise ConfigError(f"{where}: [managed] command must be a string")
    timeout = table.get("ready_timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: [managed] ready_timeout must be a number of seconds above 0")
    return dict(table)


def _variant(where: str, table: Any) -> dict[str, Any]:
    """[[variants]]: ``name``, the broker as ``embedded`` (a registered name) or ``command`` (with {port}),
    an optional ``profile`` (relative to this one) and ``capabilities`` overrides."""
    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise ConfigError(f"{where} must be a table with a name")
    unknown = set(table) - {"name", "embedded", "command", "profile", "capabilities"}
    if unknown or ("embedded" in table) == ("command" in table):
        raise ConfigError(f"{where} takes name, embedded or command (one of them), profile, capabilities")
    return {**table, "capabilities": _capabilities(where, "", table.get("capabilities", {}))}


def parse_capability(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; VALUE as TOML would read it (true, 2, "x"), else a string."""
    name, sep, raw = text.partition("=")
    if not sep or name not in CAPABILITIES:
        raise ConfigError(f"--capability {text!r}: expected NAME=VALUE with NAME one of {', '.join(CAPABILITIES)}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, check_capability(f"--capability {name}", name, value)


# -- value checks: every problem names where it is, the key and what is wrong ------------------------------
_RANGES = {"maximum_qos": (0, 2), "topic_alias_maximum": (0, 65535), "receive_maximum": (1, 65535),
           "maximum_packet_size": (1, 268435460), "server_keep_alive": (0, 65535),
           "maximum_client_id_length": (1, 65535)}
_URL_CAPS = {"websocket_url", "client_certificate_url"}


def check_capability(where: str, name: str, value: Any) -> Any:
    """The capability's value if it has the right type and range; ConfigError otherwise."""
    default = CAPABILITIES.get(name)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
    elif name in _RANGES:
        low, high = _RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{where} must be an integer from {low} to {high}, not {value!r}")
    elif not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    elif name in _URL_CAPS:
        parse_url(value)
    return value


def check_limit(where: str, name: str, value: Any) -> float:
    """A limit in seconds: a number above 0 (case_deadline: 0 means derived)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and name != "case_deadline"):
        raise ConfigError(f"{where} must be above 0 seconds, not {value!r}")
    return float(value)


def check_deviation(where: str, dev: dict[str, Any], profile_dir: Path) -> None:
    """Text fields are strings; the evidence file exists (relative to the project, the profile or here)."""
    for key in ("statement", "version", "reason", "evidence", "case"):
        if key in dev and not isinstance(dev[key], str):
            raise ConfigError(f"{where}.{key} must be a string, not {dev[key]!r}")
    evidence = dev.get("evidence")
    if evidence and not _evidence_exists(evidence, profile_dir):
        raise ConfigError(f"{where}.evidence names {evidence}, which does not exist")


def _evidence_exists(evidence: str, profile_dir: Path) -> bool:
    from ..resources import DATA_ROOT

    path = Path(evidence)
    return any(p.is_file() for p in (path, DATA_ROOT / path, profile_dir / path, profile_dir.parent.parent / path))


_TOP_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "broker": str, "embedded": str, "versions": list, "brokers": dict, "credentials": dict,
    "identities": dict, "tls": dict, "capabilities": dict, "limits": dict, "deviations": list,
    "websocket_path": str, "notes": str,
}
_TABLE_TYPES: dict[str, dict[str, type]] = {
    "credentials": {"username": str, "password": str, "password_env": str},
    "tls": {"ca_file": str, "cert_file": str, "key_file": str, "insecure": bool},
}


def check_types(where: str, data: dict[str, Any]) -> None:
    """The top-level keys and the [credentials] and [tls] values have the types a profile expects."""
    for key, kind in _TOP_TYPES.items():
        if key in data and not isinstance(data[key], kind):
            raise ConfigError(f"{where}: {key} must be a {_kind_name(kind)}, not {data[key]!r}")
    tables = [(table, data.get(table, {}), keys) for table, keys in _TABLE_TYPES.items()]
    tables += [(f"identities.{name}", table, _TABLE_TYPES["credentials"])
               for name, table in data.get("identities", {}).items() if isinstance(table, dict)]
    tables.append(("brokers", data.get("brokers", {}), {v: str for v in data.get("brokers", {})}))
    for table, values, keys in tables:
        for key, value in values.items():
            if key in keys and not isinstance(value, keys[key]):
                raise ConfigError(f"{where}: [{table}] {key} must be a {_kind_name(keys[key])}, not {value!r}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {str: "string", list: "list", dict: "table", bool: "true or false"}.get(kind, str(kind))  # type: ignore[arg-type]
