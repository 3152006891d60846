"""The hand-packed pcap frames, read back by scapy as an independent dissector."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.codec import Connect, Publish, encode
from conformance.reports.pcap import Frame, ethernet_frame, pcap_bytes

scapy_all = pytest.importorskip("scapy.all")
pytest.importorskip("scapy.contrib.mqtt")


def test_scapy_reads_our_frames_with_valid_checksums(tmp_path: Path):
    connect = encode(Connect(client_id="pcap"), 4)
    publish = encode(Publish("a/b", b"x" * 300, qos=1, packet_id=7), 4)
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
