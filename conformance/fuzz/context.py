"""Where a campaign's inputs come from and where they go: seeds derived from the campaign seed, the topic
prefix and client tokens named after it, and the ``FuzzContext`` of a broker (what its 5.0 CONNACK says it
can do, asked once per version and kept on the target).

The campaign, its runners and the replay of a reproducer all start here, so that a replay sees the same
names and capabilities as the campaign that wrote it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..codec.version import Version
from ..net import BrokerUnreachable
from ..probe import Probe, Timing
from ..transcript import Transcript
from ..verdicts import BrokerViolation
from .common import FuzzTarget, Limits
from .strategies import FuzzContext

_CAPS = {  # CONNACK property -> FuzzContext field
    "topic_alias_maximum": "topic_alias_maximum", "maximum_qos": "maximum_qos",
    "retain_available": "retain_available", "maximum_packet_size": "maximum_packet_size",
    "receive_maximum": "receive_maximum", "wildcard_subscription_available": "wildcard_subscriptions",
    "subscription_identifier_available": "subscription_identifiers",
    "shared_subscription_available": "shared_subscriptions",
}


def derive_seed(base: int | None, *parts: object) -> int:
    """A seed of its own for each part of a campaign, fixed by the campaign seed."""
    text = "|".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def base36(value: int, width: int = 5) -> str:
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    value %= 36**width
    for _ in range(width):
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out


def prefix_for(seed_value: int | None, version: str) -> str:
    """The topic tree every input of the campaign lives in."""
    return f"mqttc-fuzz/{base36(derive_seed(seed_value, 'prefix'))}/{version.replace('.', '')}"


def token_for(seed_value: int | None, version: str, mode: str) -> str:
    """The start of every client id one part (version and mode) of the campaign uses."""
    return f"fz{base36(derive_seed(seed_value, 'token'), 4)}{version[0]}{mode[0]}"


def probe_caps(target: FuzzTarget, version: Version, limits: Limits) -> dict[str, Any]:
    """What the broker's CONNACK says it can do (5.0); also proves a plain CONNECT is accepted."""
    timing = Timing(response=limits.liveness_timeout, connect=limits.liveness_timeout)
    probe = Probe(target.endpoint, version, Transcript(), client_id=f"fzcaps{version[0]}", timing=timing)
    try:
        probe.connect()
    except BrokerViolation as exc:
        raise BrokerUnreachable(f"{target.url} did not accept a plain MQTT {version} CONNECT: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - BrokerGone and socket errors alike
        raise BrokerUnreachable(str(exc) if "connect" in str(exc) else f"cannot reach {target.url}: {exc}") \
            from None
    caps: dict[str, Any] = {}
    assert probe.connack is not None
    if version.v5:
        for prop, cap in _CAPS.items():
            if prop in probe.connack.properties:
                caps[cap] = probe.connack.properties.get(prop)
    probe.disconnect()
    return caps


def context_for(target: FuzzTarget, version: str, seed_value: int | None, limits: Limits) -> FuzzContext:
    """The generator's context for ``version`` (the broker is asked for its capabilities once)."""
    parsed = Version.parse(version)
    key = f"caps-{parsed}"
    if key not in target.caps:
        target.caps[key] = probe_caps(target, parsed, limits)
    return FuzzContext.from_caps(parsed, prefix_for(seed_value, parsed), target.caps[key])


__all__ = ["base36", "context_for", "derive_seed", "prefix_for", "probe_caps", "token_for"]
