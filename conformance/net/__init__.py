"""Byte transports to a broker, one module each (tcp: plain TCP and TLS; websocket: MQTT over
WebSocket), chosen by the URL scheme. A new transport is a module here and a line in ``OPENERS``."""

from __future__ import annotations

import time
from collections.abc import Callable

from .base import (
    DEFAULT_PORTS,
    TRANSIENT_CONNECT_ERRORS,
    BrokerUnreachable,
    Endpoint,
    TlsOptions,
    Transport,
    parse_url,
)
from .tcp import SocketTransport, open_socket
from .websocket import WebSocketTransport, open_websocket

__all__ = [
    "DEFAULT_PORTS", "OPENERS", "BrokerUnreachable", "Endpoint", "SocketTransport", "TlsOptions", "Transport",
    "WebSocketTransport", "check_reachable", "open_transport", "parse_url",
]

Opener = Callable[[Endpoint, float, TlsOptions | None], Transport]
OPENERS: dict[str, Opener] = {"mqtt": open_socket, "mqtts": open_socket, "ws": open_websocket,
                              "wss": open_websocket}
assert set(OPENERS) == set(DEFAULT_PORTS), "every URL scheme needs an opener"


def open_transport(endpoint: Endpoint, timeout: float, tls: TlsOptions | None = None) -> Transport:
    """Connect to ``endpoint``; raises BrokerUnreachable (or ConfigError for TLS setup problems)."""
    return OPENERS[endpoint.scheme](endpoint, timeout, tls)


def check_reachable(endpoint: Endpoint, timeout: float = 3.0, tls: TlsOptions | None = None,
                    attempts: int = 3) -> None:
    """Open and close one connection; a transient connect error is tried again (a few tenths of a
    second apart), a refusal or timeout fails at once."""
    for attempt in range(1, attempts + 1):
        try:
            open_transport(endpoint, timeout, tls).close()
            return
        except BrokerUnreachable as exc:
            if attempt == attempts or exc.errno not in TRANSIENT_CONNECT_ERRORS:
                raise
            time.sleep(0.1 * attempt)
