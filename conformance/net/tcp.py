"""Plain TCP and TLS over it: the stream every other transport is layered on."""

from __future__ import annotations

import contextlib
import socket
import ssl

from .base import BrokerUnreachable, Endpoint, TlsOptions, Transport


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


def open_socket(endpoint: Endpoint, timeout: float, tls: TlsOptions | None = None) -> SocketTransport:
    """A TCP connection to ``endpoint``, wrapped in TLS when its scheme says so."""
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
    return SocketTransport(sock)
