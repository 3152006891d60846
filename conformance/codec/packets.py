"""The 15 MQTT control packets as frozen dataclasses, common to 3.1, 3.1.1 and 5.0.

A packet carries no protocol version: the encoder is told it. Fields that only exist in 5.0
(properties, most reason codes) are ignored when encoding for 3.1.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .properties import NO_PROPERTIES, Properties


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


@dataclass(frozen=True)
class Packet:
    TYPE = PacketType.CONNECT  # overridden per class

    @property
    def name(self) -> str:
        return self.TYPE.name


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Connect(Packet):
    TYPE = PacketType.CONNECT
    client_id: str = ""
    clean_start: bool = True  # Clean Session in 3.1.1
    keep_alive: int = 60
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = NO_PROPERTIES
    protocol_name: str | None = None  # None: the name that belongs to the version
    protocol_level: int | None = None  # None: the level of the version being encoded


@dataclass(frozen=True)
class Connack(Packet):
    TYPE = PacketType.CONNACK
    session_present: bool = False
    reason_code: int = 0  # Connect Return Code in 3.1.1
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Publish(Packet):
    TYPE = PacketType.PUBLISH
    topic: str = ""
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class _Ack(Packet):
    packet_id: int = 1
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Puback(_Ack):
    TYPE = PacketType.PUBACK


@dataclass(frozen=True)
class Pubrec(_Ack):
    TYPE = PacketType.PUBREC


@dataclass(frozen=True)
class Pubrel(_Ack):
    TYPE = PacketType.PUBREL


@dataclass(frozen=True)
class Pubcomp(_Ack):
    TYPE = PacketType.PUBCOMP


@dataclass(frozen=True)
class Subscription:
    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0

    @property
    def options(self) -> int:
        return (
            self.qos
            | (0x04 if self.no_local else 0)
            | (0x08 if self.retain_as_published else 0)
            | (self.retain_handling << 4)
        )


@dataclass(frozen=True)
class Subscribe(Packet):
    TYPE = PacketType.SUBSCRIBE
    packet_id: int = 1
    subscriptions: tuple[Subscription, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Suback(Packet):
    TYPE = PacketType.SUBACK
    packet_id: int = 1
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Unsubscribe(Packet):
    TYPE = PacketType.UNSUBSCRIBE
    packet_id: int = 1
    topic_filters: tuple[str, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Unsuback(Packet):
    TYPE = PacketType.UNSUBACK
    packet_id: int = 1
    reason_codes: tuple[int, ...] = ()  # 5.0 only
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Pingreq(Packet):
    TYPE = PacketType.PINGREQ


@dataclass(frozen=True)
class Pingresp(Packet):
    TYPE = PacketType.PINGRESP


@dataclass(frozen=True)
class Disconnect(Packet):
    TYPE = PacketType.DISCONNECT
    reason_code: int = 0  # 5.0 only
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True)
class Auth(Packet):
    TYPE = PacketType.AUTH
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


PACKET_CLASSES: dict[PacketType, type[Packet]] = {
    cls.TYPE: cls
    for cls in (
        Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback,
        Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect, Auth,
    )
}

# Fixed-header flags every packet but PUBLISH must carry (3.1.1 table 2.2, 5.0 table 2-2).
REQUIRED_FLAGS: dict[PacketType, int] = {t: 0 for t in PacketType if t != PacketType.PUBLISH}
REQUIRED_FLAGS.update({PacketType.PUBREL: 0b0010, PacketType.SUBSCRIBE: 0b0010, PacketType.UNSUBSCRIBE: 0b0010})
