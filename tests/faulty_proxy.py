"""A fault-injecting MQTT proxy for self-tests: a real broker behind it, a fault function in front.

``FaultyProxy`` listens on a free loopback port and forwards every connection to the upstream broker. Both
directions are cut into MQTT packets (the codec's incremental parser, at the protocol level the CONNECT
announced); for every packet the *fault* function is called with a ``Frame`` and returns what to do:

- ``FORWARD`` (or None): pass it on unchanged;
- ``DROP``: swallow it;
- ``Replace(data)``: send other bytes instead;
- ``Delay(seconds, then)``: hold this direction of the connection, then apply ``then`` (default FORWARD);
- ``CLOSE``: close this connection, both sides;
- ``KILL``: close every connection and close each new one at once, until ``reset()`` (a crashed broker);
- ``STALL``: stop forwarding anything on any connection, new ones included, until ``reset()`` (a hung one).

A ``Frame`` carries the direction (``C2B`` client to broker, ``B2C``), the raw bytes, the decoded packet (or
the ``MalformedPacket`` the codec raised, or None for bytes that cannot be framed), and the connection, whose
``state`` dict the fault function may use to remember things across packets (e.g. "a CONNACK with Session
Present 1 went by"). ``proxy.log`` records every action other than FORWARD.

    with Mosquitto() as broker, FaultyProxy(broker.url("5.0"), fault) as proxy:
        ... connect to proxy.url ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from conformance.codec import Connect, MalformedPacket, Packet, Parser
from conformance.codec.decode import decode_packet
from conformance.codec.wire import V311

C2B, B2C = "c2b", "b2c"


class Action:
    name = "action"

    def __repr__(self) -> str:
        return self.name.upper()


class _Simple(Action):
    def __init__(self, name: str) -> None:
        self.name = name


FORWARD, DROP, CLOSE, KILL, STALL = (_Simple(n) for n in ("forward", "drop", "close", "kill", "stall"))


@dataclass(frozen=True)
class Replace(Action):
    data: bytes
    name: str = "replace"


@dataclass(frozen=True)
class Delay(Action):
    seconds: float
    then: Action | None = None
    name: str = "delay"


@dataclass
class ProxyConnection:
    id: int
    level: int = V311
    client_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    transports: list[asyncio.Transport] = field(default_factory=list)
    parsers: dict[str, Parser] = field(default_factory=dict)


@dataclass
class Frame:
    direction: str
    raw: bytes
    packet: Packet | MalformedPacket | None
    conn: ProxyConnection
    proxy: FaultyProxy

    @property
    def name(self) -> str:
        return self.packet.name if isinstance(self.packet, Packet) else "malformed" if self.packet else "bytes"


Fault = Callable[[Frame], Action | None]


def remaining_length_bytes(raw: bytes) -> bytes:
    """The Remaining Length field of a framed packet, as sent."""
    out = bytearray()
    for byte in raw[1:5]:
        out.append(byte)
        if not byte & 0x80:
            break
    return bytes(out)


def non_minimal_remaining_length(raw: bytes) -> bool:
    """Whether the packet's Remaining Length uses more bytes than needed (a trailing 0x00 continuation)."""
    field_ = remaining_length_bytes(raw)
    return len(field_) > 1 and field_[-1] == 0


def _quick_ack(sock: Any) -> None:
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is not None and option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


class FaultyProxy:
    def __init__(self, upstream: str | tuple[str, int], fault: Fault | None = None, host: str = "127.0.0.1") -> None:
        if isinstance(upstream, str):
            parts = urlsplit(upstream if "://" in upstream else f"mqtt://{upstream}")
            upstream = (parts.hostname or "127.0.0.1", parts.port or 1883)
        self.upstream = upstream
        self.fault = fault
        self.host = host
        self.port = 0
        self.dead = False
        self.stalled = False
        self.log: list[tuple[int, str, str, str]] = []  # (connection, direction, packet, action)
        self.connections = 0
        self._ids = itertools.count(1)
        self._live: set[int] = set()
        self._conns: dict[int, ProxyConnection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None

    # -- life cycle ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> FaultyProxy:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="faulty-proxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._loop = None

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._abort_all()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults from outside ---------------------------------------------------------------------------------
    def kill(self) -> None:
        """Behave like a crashed broker until ``reset``."""
        self.dead = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._abort_all)

    def stall(self) -> None:
        """Behave like a hung broker until ``reset``."""
        self.stalled = True

    def reset(self) -> None:
        """Healthy again (the fault function stays; it may trigger again)."""
        self.dead = False
        self.stalled = False

    def set_fault(self, fault: Fault | None) -> None:
        self.fault = fault

    def _abort_all(self) -> None:
        for conn in list(self._conns.values()):
            for transport in conn.transports:
                transport.abort()

    # -- forwarding ------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.dead:
            writer.transport.abort()
            return
        conn = ProxyConnection(next(self._ids))
        conn.transports.append(writer.transport)  # type: ignore[arg-type]
        self._conns[conn.id] = conn
        try:
            if self.stalled:
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            conn.transports.append(up_writer.transport)  # type: ignore[arg-type]
            conn.parsers = {C2B: Parser(V311), B2C: Parser(V311)}
            await asyncio.gather(self._pump(conn, reader, up_writer, C2B), self._pump(conn, up_reader, writer, B2C),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            self._conns.pop(conn.id, None)
            for transport in conn.transports:
                transport.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(65536):
                pass

    async def _pump(self, conn: ProxyConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        parser = conn.parsers[direction]
        sock = reader._transport.get_extra_info("socket") if getattr(reader, "_transport", None) else None  # type: ignore[attr-defined]
        try:
            while True:
                _quick_ack(sock)  # brokers without TCP_NODELAY would otherwise wait for our delayed ACKs
                data = await reader.read(65536)
                if not data:
                    rest = bytes(parser.buffer)
                    if rest and not self.stalled and await self._apply(conn, writer,
                                                                       Frame(direction, rest, None, conn, self)):
                        return
                    if writer.can_write_eof() and not writer.transport.is_closing():
                        writer.write_eof()
                    return
                if self.stalled:
                    continue
                if parser.broken:
                    frames: list[tuple[bytes, Packet | MalformedPacket | None]] = [(data, None)]
                else:
                    frames = list(parser.feed(data))
                relevel = False
                for raw, packet in frames:
                    if relevel and packet is not None:  # parsed before the CONNECT told the level
                        try:
                            packet = decode_packet(raw, parser.level)
                        except MalformedPacket as exc:
                            packet = exc
                    if direction == C2B and isinstance(packet, Connect) and conn.client_id is None:
                        conn.client_id = packet.client_id
                        conn.level = packet.protocol_level or V311
                        for other in conn.parsers.values():
                            other.level = conn.level if conn.level in (3, 4, 5) else V311
                        relevel = parser.level != V311
                    if await self._apply(conn, writer, Frame(direction, raw, packet, conn, self)):
                        return
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            for transport in conn.transports:
                transport.abort()

    async def _apply(self, conn: ProxyConnection, writer: asyncio.StreamWriter, frame: Frame,
                     action: Action | None = None) -> bool:
        """Apply the fault function's decision; True when this connection is finished."""
        if action is None:
            action = (self.fault(frame) if self.fault else None) or FORWARD
        if action is not FORWARD:
            self.log.append((conn.id, frame.direction, frame.name, action.name))
        closing = writer.transport.is_closing()
        if action is FORWARD:
            if not closing:
                writer.write(frame.raw)
        elif isinstance(action, Replace):
            if not closing:
                writer.write(action.data)
        elif isinstance(action, Delay):
            await writer.drain()
            await asyncio.sleep(action.seconds)
            return await self._apply(conn, writer, frame, action.then or FORWARD)
        elif action is CLOSE:
            for transport in conn.transports:
                transport.abort()
            return True
        elif action is KILL:
            self.dead = True
            self._abort_all()
            return True
        elif action is STALL:
            self.stalled = True
        return False


__all__ = [
    "B2C", "C2B", "CLOSE", "DROP", "FORWARD", "KILL", "STALL", "Action", "Delay", "Fault", "FaultyProxy", "Frame",
    "ProxyConnection", "Replace", "non_minimal_remaining_length", "remaining_length_bytes",
]


# -- broker faults for the precision self-tests (tests/test_precision.py) ----------------------------------
def never_ack_qos2(frame: Frame) -> Action | None:
    """A broker that never acknowledges a client's QoS 2 PUBLISH: PUBREC and PUBCOMP to the client vanish."""
    if frame.direction == B2C and frame.name in ("PUBREC", "PUBCOMP"):
        return DROP
    return None


def empty_suback(frame: Frame) -> Action | None:
    """A broker whose SUBACK carries no return codes (its packet identifier, 5.0: an empty property list)."""
    packet = frame.packet
    if frame.direction == B2C and isinstance(packet, Packet) and packet.name == "SUBACK":
        body = packet.packet_id.to_bytes(2, "big") + (b"\x00" if frame.conn.level == 5 else b"")  # type: ignore[attr-defined]
        return Replace(bytes([0x90, len(body)]) + body)
    return None


__all__ += ["empty_suback", "never_ack_qos2"]


# -- a broker that speaks 3.1.1 only (tests/test_preflight.py) ------------------------------------------------
V311_REFUSES_LEVEL = bytes([0x20, 0x02, 0x00, 0x01])  # 3.1.1 CONNACK: unacceptable protocol version


def only_v311(frame: Frame) -> Action | None:
    """A 3.1.1-only broker: a 5.0 CONNECT gets the 3.1.1 CONNACK with return code 1, then the close."""
    packet = frame.packet
    if frame.direction == C2B and isinstance(packet, Connect) and frame.conn.level == 5:
        client = frame.conn.transports[0]
        client.write(V311_REFUSES_LEVEL)
        client.close()  # close() flushes the CONNACK first (abort would not)
        return DROP
    return None


__all__ += ["V311_REFUSES_LEVEL", "only_v311"]
