"""What every transport shares: the endpoint a URL names, TLS options, the byte-stream interface.

A transport only moves bytes; every read is bounded by a timeout.
"""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..codec.errors import HarnessError
from ..errors import ConfigError

# The URL schemes and their default ports; net/__init__.py maps each to the transport that opens it.
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
TLS_SCHEMES = {"mqtts", "wss"}
PATH_SCHEMES = {"ws", "wss"}  # the URL path matters (the WebSocket request target)


class BrokerUnreachable(HarnessError):
    """The broker could not be reached at all."""

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


# Errors of a connect() that a listening broker can still give under load (nothing listening is
# ECONNREFUSED, which is final at once).
TRANSIENT_CONNECT_ERRORS = {errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.EAGAIN, errno.EINTR}


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str = "/mqtt"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = self.path if self.scheme in PATH_SCHEMES else ""
        return f"{self.scheme}://{host}:{self.port}{suffix}"

    @property
    def tls(self) -> bool:
        return self.scheme in TLS_SCHEMES


def parse_url(url: str) -> Endpoint:
    if "://" not in url and "/" in url:  # "mqtt//x" or "mqtt:/x" is a mistyped URL, not host "mqtt"
        raise ConfigError(f"broker URL {url!r} is malformed: expected SCHEME://HOST[:PORT] or HOST[:PORT]")
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError(f"broker URL {url!r}: scheme must be one of {', '.join(DEFAULT_PORTS)}")
    if not parts.hostname:
        raise ConfigError(f"broker URL {url!r} has no host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ConfigError(f"broker URL {url!r} has an invalid port") from None
    return Endpoint(parts.scheme, parts.hostname, port, parts.path or "/mqtt")


@dataclass(frozen=True)
class TlsOptions:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    def context(self, host: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class Transport:
    """A connected byte stream."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, timeout: float) -> bytes | None:
        """Bytes received; b'' when the peer closed; None when nothing arrived within ``timeout``."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def half_close(self) -> bool:
        """End the sending direction (TCP FIN after everything sent) while still reading; False where
        the transport cannot (TLS, WebSocket)."""
        return False
