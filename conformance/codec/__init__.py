"""Sans-IO MQTT codec: packets, strict encoder/decoder, incremental parser, crafting path."""

from .craft import Crafted, Raw, craft, raw_string
from .decode import Parser, decode, decode_packet
from .encode import encode, level_of, segments
from .errors import HarnessError, MalformedPacket
from .packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import NO_PROPERTIES, Properties
from .reason_codes import reason_name
from .wire import V31, V50, V311, encode_varint

__all__ = [
    "Auth", "Connack", "Connect", "Crafted", "Disconnect", "HarnessError", "MalformedPacket", "NO_PROPERTIES",
    "Packet", "PacketType", "Parser", "Pingreq", "Pingresp", "Properties", "Puback", "Pubcomp", "Publish",
    "Pubrec", "Pubrel", "Raw", "Suback", "Subscribe", "Subscription", "Unsuback", "Unsubscribe", "V31", "V311",
    "V50", "Will", "craft", "decode", "decode_packet", "encode", "encode_varint", "level_of", "raw_string",
    "reason_name", "segments",
]
