"""A broker that crashes on one input, for the recovery self-tests: ``python crashing_broker.py PORT``.

It starts a real mosquitto on a free loopback port and forwards every connection on PORT to it, cutting
the client's bytes into MQTT packets. When a client sends a PUBLISH whose Topic Name starts with
U+FEFF (EF BB BF: what rumqttd 0.20 panics on), the whole process exits with status ``CRASH_STATUS``
after writing a last log line, as a broker with a crash-on-input bug would. Everything else is
mosquitto's own behaviour. Started by the harness with ``--broker-command``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.brokers import Mosquitto  # noqa: E402 - after the checkout is on the path

CRASH_STATUS = 3
TRIGGER = b"\xef\xbb\xbf"
PUBLISH = 3


def packets(buffer: bytearray) -> list[bytes]:
    """Cut the complete packets off the front of ``buffer`` (fixed header + Remaining Length)."""
    out = []
    while len(buffer) >= 2:
        length, shift, pos = 0, 0, 1
        while True:
            if pos >= len(buffer):
                return out
            byte = buffer[pos]
            length |= (byte & 0x7F) << shift
            pos += 1
            shift += 7
            if not byte & 0x80 or shift > 21:
                break
        if len(buffer) < pos + length:
            return out
        out.append(bytes(buffer[:pos + length]))
        del buffer[:pos + length]
    return out


def is_trigger(packet: bytes) -> bool:
    if packet[0] >> 4 != PUBLISH:
        return False
    pos = 1
    while packet[pos] & 0x80:
        pos += 1
    topic = packet[pos + 3:]  # after the last length byte and the 2-byte topic length
    return topic.startswith(TRIGGER)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inspect: bool) -> None:
    buffer = bytearray()
    try:
        while data := await reader.read(65536):
            if inspect:
                buffer += data
                if any(is_trigger(p) for p in packets(buffer)):
                    print("crashing_broker: PUBLISH to a topic starting with U+FEFF: crashing", flush=True)
                    os._exit(CRASH_STATUS)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(port: int, upstream: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    print(f"crashing_broker: listening on {port}, mosquitto on {upstream}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    broker = Mosquitto().start()  # dies with this process (PR_SET_PDEATHSIG), even on os._exit
    try:
        asyncio.run(serve(int(sys.argv[1]), broker.ports["3.1.1"]))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
