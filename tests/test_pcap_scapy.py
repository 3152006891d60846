"""The hand-packed pcap frames, read back by scapy as an independent dissector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.codec import Connect, Publish, encode
from conformance.codec.version import Version
from conformance.reports.model import run_of
from conformance.reports.pcap import Frame, build_packets, ethernet_frame, pcap_bytes
from conformance.transcript import BROKER, HARNESS

pytestmark = pytest.mark.unit

scapy_all = pytest.importorskip("scapy.all")
pytest.importorskip("scapy.contrib.mqtt")


def test_scapy_reads_our_frames_with_valid_checksums(tmp_path: Path):
    connect = encode(Connect(client_id="pcap"), Version.V311)
    publish = encode(Publish("a/b", b"x" * 300, qos=1, packet_id=7), Version.V311)
    frames = [
        Frame(1.5, ethernet_frame("192.0.2.10", "192.0.2.1", 50001, 1883, "PA", 100, 200, connect, True)),
        Frame(1.6, ethernet_frame("192.0.2.10", "192.0.2.1", 50001, 1883, "PA", 100 + len(connect), 200, publish,
                                  True)),
    ]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(frames))
    packets = scapy_all.rdpcap(str(path))
    assert len(packets) == 2 and abs(float(packets[1].time) - 1.6) < 1e-6
    for packet in packets:
        ip, tcp = packet[scapy_all.IP], packet[scapy_all.TCP]
        recomputed = scapy_all.Ether(bytes(packet))
        del recomputed[scapy_all.IP].chksum, recomputed[scapy_all.TCP].chksum
        rebuilt = scapy_all.Ether(bytes(recomputed))
        assert ip.chksum == rebuilt[scapy_all.IP].chksum and tcp.chksum == rebuilt[scapy_all.TCP].chksum
    mqtt = packets[1]["MQTT publish"]
    assert mqtt.topic == b"a/b" and mqtt.msgid == 7 and mqtt.value == b"x" * 300


def _fins(closed_by: str | None) -> tuple[int, list[tuple[int, int]]]:
    """The client port of a one-connection capture, and (source port, destination port) of its FINs."""
    connect = encode(Connect(client_id="pcap"), Version.V311)
    close: dict[str, Any] = {"t": 0.002, "probe": "c1", "dir": "close", "hex": "", "summary": "closed"}
    if closed_by is not None:
        close["closed_by"] = closed_by
    results = {"started_at": "2026-11-25T04:10:00+00:00", "cases": [{
        "id": "cases/t.py::test_close[3.1.1]", "mqtt_version": Version.V311, "verdict": "PASS",
        "transcript": [{"t": 0.001, "probe": "c1", "dir": "out", "hex": connect.hex(), "summary": "CONNECT"}, close],
    }]}
    frames = build_packets(run_of(results).cases[0], 0.0)
    packets = [scapy_all.Ether(frame.data) for frame in frames]
    client_port = packets[0][scapy_all.TCP].sport
    fins = [(p[scapy_all.TCP].sport, p[scapy_all.TCP].dport) for p in packets if p[scapy_all.TCP].flags.F]
    return client_port, fins


@pytest.mark.parametrize(("closed_by", "first_from_client"), [(HARNESS, True), (BROKER, False), (None, False)],
                         ids=["by-harness", "by-broker", "older-run-without-closed_by"])
def test_the_side_that_closed_sends_the_first_fin(closed_by: str | None, first_from_client: bool) -> None:
    """closed_by (transcript data) decides which side's FIN comes first; both sides end the stream."""
    client_port, fins = _fins(closed_by)
    assert len(fins) == 2
    first, second = fins
    assert (first[0] == client_port) is first_from_client
    assert second == (first[1], first[0])
