"""Per-case pcap files rebuilt from the transcripts, so a failing exchange can be opened in Wireshark.

The captures are synthetic: the harness talks over real sockets but records MQTT bytes only, so the
Ethernet/IPv4/TCP layers are made up here (one TCP stream per probe connection, handshake first,
consistent sequence numbers). The broker side always uses port 1883 so that Wireshark and tshark
dissect the payload as MQTT whatever port the broker under test really listened on.

Frames are packed with ``struct``: a run writes hundreds of captures, and building them with scapy was
too slow for that (docs/measurements.md). The self-tests read the files back with scapy and tshark as
independent checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..transcript import HARNESS
from .model import Case, run_of, safe_name
from .transcript import direction, entry_bytes

BROKER_PORT = 1883
CLIENT_IP, BROKER_IP = "192.0.2.10", "192.0.2.1"  # TEST-NET-1: can never be mistaken for a real host
CLIENT_MAC, BROKER_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:01"  # locally administered
FIRST_CLIENT_PORT = 50001
MSS = 1460
STEP = 1e-6  # spacing of synthesized packets (handshake, ACKs) around a transcript timestamp


@dataclass
class _Stream:
    sport: int
    client_seq: int
    broker_seq: int


@dataclass(frozen=True)
class Frame:
    time: float
    data: bytes


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def ethernet_frame(src_ip: str, dst_ip: str, sport: int, dport: int, flags: str, seq: int, ack: int,
                   payload: bytes, from_client: bool) -> bytes:
    """Ethernet II / IPv4 / TCP around ``payload``, with valid checksums."""
    src, dst = bytes(map(int, src_ip.split("."))), bytes(map(int, dst_ip.split(".")))
    flag_bits = sum(_TCP_FLAGS[f] for f in flags)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flag_bits, 64240, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    macs = (BROKER_MAC, CLIENT_MAC) if from_client else (CLIENT_MAC, BROKER_MAC)
    ether = b"".join(bytes.fromhex(m.replace(":", "")) for m in macs) + b"\x08\x00"
    return ether + ip + tcp


def pcap_bytes(frames: list[Frame]) -> bytes:
    """A classic pcap file (microsecond timestamps, link type Ethernet)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for frame in frames:
        seconds = int(frame.time)
        micros = int(round((frame.time - seconds) * 1e6))
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        out.append(struct.pack("<IIII", seconds, micros, len(frame.data), len(frame.data)) + frame.data)
    return b"".join(out)


class _CaptureBuilder:
    def __init__(self, base_time: float) -> None:
        self.base = base_time
        self.packets: list[Frame] = []
        self.streams: dict[str, _Stream] = {}
        self.next_port = FIRST_CLIENT_PORT

    def _emit(self, stream: _Stream, from_client: bool, flags: str, t: float, payload: bytes = b"") -> None:
        if from_client:
            data = ethernet_frame(CLIENT_IP, BROKER_IP, stream.sport, BROKER_PORT, flags, stream.client_seq,
                                  stream.broker_seq if "A" in flags else 0, payload, True)
        else:
            data = ethernet_frame(BROKER_IP, CLIENT_IP, BROKER_PORT, stream.sport, flags, stream.broker_seq,
                                  stream.client_seq, payload, False)
        self.packets.append(Frame(max(self.base + t, 0.0), data))  # pcap timestamps are unsigned
        advance = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            stream.client_seq = (stream.client_seq + advance) % 2**32
        else:
            stream.broker_seq = (stream.broker_seq + advance) % 2**32

    def _open(self, probe: str, t: float) -> _Stream:
        stream = self.streams.get(probe)
        if stream is None:
            port = self.next_port
            self.next_port += 1
            # Distinct, deterministic initial sequence numbers per stream, like a real stack would pick.
            stream = self.streams[probe] = _Stream(port, (port * 7919) % 2**32, (port * 104729) % 2**32)
            self._emit(stream, True, "S", t - 3 * STEP)
            self._emit(stream, False, "SA", t - 2 * STEP)
            self._emit(stream, True, "A", t - STEP)
        return stream

    def data(self, probe: str, from_client: bool, payload: bytes, t: float) -> None:
        stream = self._open(probe, t)
        for start in range(0, len(payload), MSS):
            self._emit(stream, from_client, "PA", t, payload[start : start + MSS])

    def close(self, probe: str, by_client: bool, t: float) -> None:
        stream = self.streams.pop(probe, None)
        if stream is None:
            return  # never opened (or already closed): nothing was on the wire
        self._emit(stream, by_client, "FA", t)
        self._emit(stream, not by_client, "FA", t + STEP)
        self._emit(stream, by_client, "A", t + 2 * STEP)


def build_packets(case: Case, base_time: float) -> list[Frame]:
    """Frames for one case's transcript; empty when nothing went over the wire."""
    builder = _CaptureBuilder(base_time)
    last_t = 0.0
    for entry in case.transcript:
        t = entry.get("t")
        last_t = float(t) if isinstance(t, int | float) else last_t
        probe = str(entry.get("probe") or "probe")
        kind = direction(entry)
        if kind in ("out", "in"):
            payload = entry_bytes(entry)
            if payload:
                builder.data(probe, kind == "out", payload, last_t)
        elif kind == "close":
            # closed_by: the transcript's data (absent in results files of older runs: the broker, as then)
            builder.close(probe, entry.get("closed_by") == HARNESS, last_t)
    return builder.packets


def write_pcaps(results: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write ``pcap/<case>.pcap`` per case with wire traffic and point each case's ``pcap`` field at it.

    Mutates ``results``: ``case["pcap"]`` becomes the path relative to ``report_dir`` (or stays as it
    was when the transcript has no bytes and the old file still exists, else None), so the caller can
    re-save results.json with the paths filled in.
    """
    run = run_of(results)
    base = run.start.timestamp()
    out_dir = report_dir / "pcap"
    written: list[Path] = []
    for case in run.cases:
        packets = build_packets(case, base)
        if not packets:
            old = case.raw.get("pcap")
            if not (isinstance(old, str) and (report_dir / old).is_file()):
                case.raw["pcap"] = None
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{safe_name(case.id)}.pcap"
        path.write_bytes(pcap_bytes(packets))
        case.raw["pcap"] = path.relative_to(report_dir).as_posix()
        case.pcap = case.raw["pcap"]
        written.append(path)
    return written
