"""Byte transports to a broker: plain TCP and TLS (WebSocket is layered on these).

A transport only moves bytes; every read is bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .codec.errors import HarnessError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}


class ConfigError(HarnessError):
    """Bad user input (option, URL, profile): exit code 2 with a one-line message."""


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
        suffix = self.path if self.scheme in ("ws", "wss") else ""
        return f"{self.scheme}://{host}:{self.port}{suffix}"

    @property
    def tls(self) -> bool:
        return self.scheme in ("mqtts", "wss")


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


class SocketTransport(Transport):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float) -> bytes | None:
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None
        except ssl.SSLWantReadError:
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def half_close(self) -> bool:
        if isinstance(self.sock, ssl.SSLSocket):
            return False  # shutting the raw socket down would drop the TLS layer under our reads
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True


def open_transport(endpoint: Endpoint, timeout: float, tls: TlsOptions | None = None) -> Transport:
    """Connect to ``endpoint``; raises BrokerUnreachable (or ConfigError for TLS setup problems)."""
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except OSError as exc:
        raise BrokerUnreachable(f"cannot connect to {endpoint.url}: {exc.strerror or exc}", exc.errno) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if endpoint.tls:
        try:
            sock = (tls or TlsOptions()).context(endpoint.host).wrap_socket(sock, server_hostname=endpoint.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise BrokerUnreachable(f"TLS certificate problem with {endpoint.url}: {exc.verify_message}") from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise BrokerUnreachable(f"TLS handshake with {endpoint.url} failed: {exc}") from None
    transport: Transport = SocketTransport(sock)
    if endpoint.scheme in ("ws", "wss"):
        from .websocket import WebSocketTransport

        try:
            transport = WebSocketTransport.handshake(transport, endpoint, timeout)
        except OSError as exc:
            transport.close()
            raise BrokerUnreachable(f"WebSocket handshake with {endpoint.url} failed: {exc.strerror or exc}") from None
    return transport


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
