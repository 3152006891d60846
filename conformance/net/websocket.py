"""MQTT over WebSocket (RFC 6455 client side): binary frames, subprotocol "mqtt", masked frames.

MQTT packets are carried as a byte stream across binary frames, in no particular alignment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import struct
import time

from .base import BrokerUnreachable, Endpoint, TlsOptions, Transport
from .tcp import open_socket

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketTransport(Transport):
    def __init__(self, inner: Transport, leftover: bytes = b"") -> None:
        self.inner = inner
        self.buffer = bytearray(leftover)
        self.closed = False

    @classmethod
    def handshake(cls, inner: Transport, endpoint: Endpoint, timeout: float) -> WebSocketTransport:
        key = base64.b64encode(os.urandom(16)).decode()
        host = endpoint.host if endpoint.port in (80, 443) else f"{endpoint.host}:{endpoint.port}"
        request = (
            f"GET {endpoint.path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        inner.send(request.encode())
        deadline = time.monotonic() + timeout
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = inner.recv(max(deadline - time.monotonic(), 0))
            if not chunk:
                inner.close()
                raise BrokerUnreachable(f"WebSocket handshake with {endpoint.url} failed: no HTTP upgrade response")
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in f"{lines[0]} ":
            inner.close()
            raise BrokerUnreachable(f"WebSocket handshake with {endpoint.url} refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            inner.close()
            raise BrokerUnreachable(f"WebSocket handshake with {endpoint.url}: wrong Sec-WebSocket-Accept")
        transport = cls(inner, rest)
        transport.subprotocol = headers.get("sec-websocket-protocol", "")
        return transport

    subprotocol = ""

    def send(self, data: bytes) -> None:
        self.inner.send(frame(OP_BINARY, data))

    def send_frame(self, opcode: int, data: bytes, fin: bool = True) -> None:
        """A raw frame of any type (for cases about non-binary frames)."""
        self.inner.send(frame(opcode, data, fin))

    def recv(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            parsed = self._parse_frame()
            if parsed is not None:
                opcode, payload = parsed
                if opcode in (OP_BINARY, OP_CONT, OP_TEXT):
                    if payload:
                        return payload
                    continue
                if opcode == OP_PING:
                    self.inner.send(frame(OP_PONG, payload))
                    continue
                if opcode == OP_CLOSE:
                    # RFC 6455 5.5.1: answer the server's Close. Without it libwebsockets waits for the
                    # close handshake to time out (5 s) before mosquitto drops the client (and sends its Will).
                    if not self.closed:
                        with contextlib.suppress(OSError):
                            self.inner.send(frame(OP_CLOSE, payload[:2]))
                    self.closed = True
                    return b""
                continue
            if self.closed:
                return b""
            chunk = self.inner.recv(max(deadline - time.monotonic(), 0))
            if chunk is None:
                return None
            if chunk == b"":
                return b""
            self.buffer += chunk

    def _parse_frame(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        opcode, length, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        masked = buf[1] & 0x80
        if length == 126:
            if len(buf) < 4:
                return None
            length, pos = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, pos = struct.unpack("!Q", buf[2:10])[0], 10
        mask = b""
        if masked:
            mask, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + length:
            return None
        payload = bytes(buf[pos : pos + length])
        del buf[: pos + length]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return opcode, payload

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.inner.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        self.inner.close()


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame: always masked, as RFC 6455 requires of clients."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    mask = os.urandom(4)
    return bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_websocket(endpoint: Endpoint, timeout: float, tls: TlsOptions | None = None) -> WebSocketTransport:
    """A WebSocket connection (over TLS for wss) that carries MQTT in binary frames."""
    inner = open_socket(endpoint, timeout, tls)
    try:
        return WebSocketTransport.handshake(inner, endpoint, timeout)
    except OSError as exc:
        inner.close()
        raise BrokerUnreachable(f"WebSocket handshake with {endpoint.url} failed: {exc.strerror or exc}") from None
