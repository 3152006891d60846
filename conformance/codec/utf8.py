"""Byte sequences a UTF-8 string of MQTT must never hold, by a readable name: material for crafting
malformed strings (the cases) and for fuzzing (conformance/fuzz/strategies.py)."""

# Byte sequences that are not well-formed UTF-8 (RFC 3629), by a readable name.
ILL_FORMED_UTF8: dict[str, bytes] = {
    "lone-continuation-80": b"\x80",
    "byte-ff": b"\xff",
    "truncated-e282": b"\xe2\x82",
    "overlong-slash-c0af": b"\xc0\xaf",
    "overlong-null-c080": b"\xc0\x80",
    "above-10ffff-f4908080": b"\xf4\x90\x80\x80",
}
# Encodings of UTF-16 surrogate code points, which UTF-8 must never carry.
SURROGATES: dict[str, bytes] = {
    "surrogate-d800": b"\xed\xa0\x80",
    "surrogate-dbff": b"\xed\xaf\xbf",
    "surrogate-dc00": b"\xed\xb0\x80",
    "surrogate-dfff": b"\xed\xbf\xbf",
}

__all__ = ["ILL_FORMED_UTF8", "SURROGATES"]
