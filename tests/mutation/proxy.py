"""A fault-injecting MQTT proxy: the core of every mutant broker.

The proxy listens on a free loopback port and opens one upstream connection to the real broker per
client connection. Both byte streams are cut into packets (the protocol version of a connection is
taken from its CONNECT, so that the rest parses with the right rules) and every packet, well-formed
or not, is handed to a ``Fault`` hook for its direction:

- ``Fault.c2b(conn, packet, raw)``: client -> broker
- ``Fault.b2c(conn, packet, raw)``: broker -> client

``packet`` is the decoded dataclass, or the ``MalformedPacket`` the strict decoder raised (then ``raw``
still holds the bytes). A hook returns what to forward in place of the packet:

- ``None``: the original bytes, unchanged (a pass-through proxy forwards the client's exact bytes)
- a ``Packet``: re-encoded for the connection's version (an altered packet)
- ``bytes``: sent verbatim
- a list or tuple of those: each in turn (``DROP``, the empty tuple, forwards nothing; a longer list
  injects packets)

A hook can also inject toward the other peer (``conn.to_client`` / ``conn.to_broker``), delay
(``conn.later`` runs a callable on a timer; sleeping in the hook delays everything behind the packet)
and close (``conn.close``). ``Fault.on_close(conn, side)`` may keep the other side open when one side
closes. PUBLISHes the proxy invents toward a client get packet identifiers from ``conn.invent_packet_id``;
the client's acknowledgements of those are answered (PUBREL) and swallowed by the proxy itself.

Only loopback addresses are ever used, for listening and upstream.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from conformance.codec import (
    Connect,
    MalformedPacket,
    Packet,
    Puback,
    Pubcomp,
    Pubrec,
    Pubrel,
    encode,
)
from conformance.codec.decode import decode_packet, frame_length
from conformance.codec.wire import V31, V50, V311

C2B = "c2b"  # client -> broker
B2C = "b2c"  # broker -> client
CLIENT = "client"
BROKER = "broker"
DROP: tuple = ()
VERSION_OF_LEVEL = {V31: "3.1", V311: "3.1.1", V50: "5.0"}

Item = Packet | bytes
Result = None | Item | Iterable[Item]


class Fault:
    """A pass-through: forwards everything unchanged. Mutants subclass it and override the hooks.

    One instance serves every connection of one proxy: per-connection data goes in ``conn.state``,
    data shared between connections in ``self.shared`` under ``self.lock``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.shared: dict[str, Any] = {}

    def c2b(self, conn: Conn, packet: Packet | MalformedPacket, raw: bytes) -> Result:
        return None

    def b2c(self, conn: Conn, packet: Packet | MalformedPacket, raw: bytes) -> Result:
        return None

    def on_close(self, conn: Conn, side: str) -> bool:
        """``side`` (CLIENT or BROKER) closed its connection; return True to keep the other side open."""
        return False


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def sniff_level(raw: bytes) -> int:
    """The protocol level byte of a CONNECT, read leniently (the packet may be malformed)."""
    try:
        i = 1
        while raw[i] & 0x80:
            i += 1
        i += 1
        name_length = struct.unpack_from("!H", raw, i)[0]
        level = raw[i + 2 + name_length]
    except (IndexError, struct.error):
        return V311
    return level if level in (V31, V311, V50) else V311


class Conn:
    """One proxied client connection: its two sockets, its protocol version, scratch state for the fault."""

    def __init__(self, proxy: MutantProxy, number: int, client: socket.socket, broker: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.sockets = {CLIENT: client, BROKER: broker}
        self.send_locks = {CLIENT: threading.Lock(), BROKER: threading.Lock()}
        self.level: int | None = None
        self.connect: Connect | None = None
        self.state: dict[str, Any] = {}
        self.invented: dict[int, int] = {}  # packet id -> QoS of PUBLISHes invented toward the client
        self._next_invented = 0xFFFF
        self.closed = threading.Event()
        self._close_lock = threading.Lock()
        self.packets_seen = {C2B: 0, B2C: 0}

    # -- what hooks use --------------------------------------------------------------------------------
    @property
    def version(self) -> str | None:
        return VERSION_OF_LEVEL.get(self.level) if self.level is not None else None

    @property
    def client_id(self) -> str | None:
        return self.connect.client_id if self.connect is not None else None

    def encode(self, packet: Packet) -> bytes:
        return encode(packet, self.level or V311)

    def to_client(self, *items: Item) -> None:
        self._send(CLIENT, [self._bytes(item) for item in items])

    def to_broker(self, *items: Item) -> None:
        self._send(BROKER, [self._bytes(item) for item in items])

    def later(self, seconds: float, action: Callable[[], Any]) -> None:
        """Run ``action`` after ``seconds`` (a delayed injection or close), unless the connection ended."""

        def run() -> None:
            if not self.closed.is_set():
                self.proxy.guard(action)

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        timer.start()

    def close(self, *, reset: bool = False) -> None:
        """End both sides of the connection (with a TCP reset if asked)."""
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in self.sockets.values():
            _close_socket(sock, reset)

    def close_side(self, side: str, *, reset: bool = False) -> None:
        _close_socket(self.sockets[side], reset)

    def invent_packet_id(self, qos: int) -> int:
        """A packet identifier for a PUBLISH the proxy sends to the client on its own; the client's
        acknowledgements for it are answered and swallowed by the proxy."""
        while self._next_invented in self.invented:
            self._next_invented -= 1
        packet_id = self._next_invented
        self._next_invented = 0xFFFF if packet_id <= 0x8000 else packet_id - 1
        self.invented[packet_id] = qos
        return packet_id

    # -- internals -------------------------------------------------------------------------------------
    def _bytes(self, item: Item) -> bytes:
        return bytes(item) if isinstance(item, bytes | bytearray) else self.encode(item)

    def _send(self, side: str, chunks: list[bytes]) -> None:
        data = b"".join(chunks)
        if not data:
            return
        with self.send_locks[side], contextlib.suppress(OSError):
            self.sockets[side].sendall(data)

    def _outputs(self, result: Result, raw: bytes) -> list[bytes]:
        if result is None:
            return [raw]
        if isinstance(result, Packet | bytes | bytearray):
            return [self._bytes(result)]
        return [self._bytes(item) for item in result]

    def _invented_ack(self, packet: Packet) -> Result:
        """The client answering a PUBLISH the proxy invented: answer it here, never forward it."""
        if isinstance(packet, Puback | Pubcomp):
            self.invented.pop(packet.packet_id, None)
            return DROP
        if isinstance(packet, Pubrec):
            self.to_client(Pubrel(packet_id=packet.packet_id))
            return DROP
        return None

    def _process(self, direction: str, packet: Packet | MalformedPacket, raw: bytes) -> list[bytes]:
        self.packets_seen[direction] += 1
        fault = self.proxy.fault
        if self.version is not None and self.version not in self.proxy.versions:
            return [raw]
        if (direction == C2B and isinstance(packet, Puback | Pubrec | Pubcomp)
                and packet.packet_id in self.invented):
            return self._outputs(self._invented_ack(packet), raw)
        hook = fault.c2b if direction == C2B else fault.b2c
        ok, result = self.proxy.guard(lambda: hook(self, packet, raw))
        return self._outputs(result if ok else None, raw)

    def pump(self, direction: str) -> None:
        src, dst = (CLIENT, BROKER) if direction == C2B else (BROKER, CLIENT)
        sock = self.sockets[src]
        buffer = bytearray()
        framing_lost = False
        while True:
            reset = False
            try:
                data = sock.recv(65536)
            except OSError as exc:
                data, reset = b"", isinstance(exc, ConnectionResetError)
            if not data:
                self._ended(src, reset)
                return
            out: list[bytes] = []
            if framing_lost:  # the stream cannot be cut into packets any more: raw bytes to the hook
                out += self._process(direction, MalformedPacket("stream after a lost packet boundary"), data)
            else:
                buffer += data
                framing_lost = self._frames(direction, buffer, out)
            self._send(dst, out)

    def _frames(self, direction: str, buffer: bytearray, out: list[bytes]) -> bool:
        """Cut complete packets off ``buffer`` into ``out``; True when the packet boundary is lost."""
        while buffer:
            level = self.level or V311
            try:
                total = frame_length(buffer, level)
            except MalformedPacket as exc:
                raw = bytes(buffer)
                buffer.clear()
                out += self._process(direction, exc, raw)
                return True
            if total is None:
                return False
            raw = bytes(buffer[:total])
            del buffer[:total]
            if direction == C2B and self.level is None and raw[0] >> 4 == 1:
                self.level = sniff_level(raw)
            try:
                packet: Packet | MalformedPacket = decode_packet(raw, self.level or V311)
            except MalformedPacket as exc:
                packet = exc
            if direction == C2B and isinstance(packet, Connect) and self.connect is None:
                self.connect = packet
            out += self._process(direction, packet, raw)
        return False

    def _ended(self, side: str, reset: bool) -> None:
        """``side`` closed (or reset) its connection: close the other one too, unless the fault keeps it."""
        if self.closed.is_set():
            return
        fault = self.proxy.fault
        applies = self.version is None or self.version in self.proxy.versions
        ok, keep = self.proxy.guard(lambda: fault.on_close(self, side)) if applies else (True, False)
        if ok and keep:
            self.close_side(side)
            return
        self.close(reset=reset)


def _close_socket(sock: socket.socket, reset: bool) -> None:
    """Close ``sock`` for real: shutdown first, because a close() alone neither wakes the pump thread
    blocked in recv() on it nor sends anything to the peer while that thread holds the socket."""
    if reset:  # the last reference going away then sends a TCP reset
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class MutantProxy:
    """A listening proxy in front of ``upstream`` applying ``fault`` to connections of ``versions``."""

    def __init__(self, upstream: tuple[str, int], fault: Fault | None = None,
                 versions: Iterable[str] = ("3.1.1", "5.0"), host: str = "127.0.0.1") -> None:
        if not (is_loopback(upstream[0]) and is_loopback(host)):
            raise ValueError("the mutation proxy only listens on and connects to loopback addresses")
        self.upstream = upstream
        self.fault = fault or Fault()
        self.versions = tuple(versions)
        self.host = host
        self.port = 0
        self.errors: list[str] = []  # exceptions raised by the fault's hooks (a bug in a mutant)
        self.connections = 0
        self.conns: list[Conn] = []
        self._conns_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def live_connections(self) -> list[Conn]:
        with self._conns_lock:
            self.conns = [c for c in self.conns if not c.closed.is_set()]
            return list(self.conns)

    def guard(self, action: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, action()
        except Exception:  # noqa: BLE001 - a buggy hook must not take the proxy down; it is reported
            self.errors.append(traceback.format_exc(limit=6))
            return False, None

    def start(self) -> MutantProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                broker = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close_socket(client, True)
                continue
            for sock in (client, broker):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            conn = Conn(self, self.connections, client, broker)
            with self._conns_lock:
                self.conns.append(conn)
            for direction in (C2B, B2C):
                threading.Thread(target=conn.pump, args=(direction,), daemon=True,
                                 name=f"proxy-{self.port}-{conn.number}-{direction}").start()

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            _close_socket(self._listener, False)  # shutdown wakes the accept() of the accept loop
        with self._conns_lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            conn.close()

    def __enter__(self) -> MutantProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
