"""Pre-flight: one bounded CONNECT per selected version before any case runs.

A run against a wrong password, an HTTP server or a silent port would otherwise produce hundreds of
verdicts that mean nothing. Outcomes per version:

* accepted: the version is tested (we DISCONNECT at once);
* refused as an unsupported protocol version (3.1.1 return code 1, 5.0 reason 0x84, a 3.1.1-shaped
  CONNACK answering a 5.0 CONNECT, or a 5.0 CONNECT answered by a close while 3.1.1 is accepted):
  the version is dropped, its cases are UNSUPPORTED with the reason;
* refused credentials, any other refusal, bytes that are not a CONNACK, or silence: PreflightError
  (exit 2) with what came back and what to fix.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from ..codec import Connect, reason_name
from ..codec.encode import encode
from ..codec.reason_codes import ALLOWED_50
from ..codec.version import Version
from ..errors import ConfigError
from ..net import Endpoint, TlsOptions, Transport, open_transport

PREFLIGHT_TIMEOUT = 2.5  # seconds a CONNACK may take (after the TCP/TLS connect): with the nudge below,
# a silent port is reported in about 3 s
NUDGE_TIMEOUT = 0.5  # after silence, how long a line-based server gets to answer a line end
CONNACK = 0x20
CREDENTIAL_FIX = ("set --username and the MQTT_CONFORMANCE_PASSWORD environment variable "
                  "(or [credentials] in the profile)")


class PreflightError(ConfigError):
    """The target cannot be tested as given (credentials, not an MQTT listener, silence): exit 2."""


@dataclass(frozen=True)
class Answer:
    """What one pre-flight CONNECT got back."""

    kind: str  # "connack", "closed", "silent", "garbage"
    code: int | None = None
    remaining_length: int | None = None
    data: bytes = b""


def connect_packet(version: str, client_id: str, username: str | None, password: str | None) -> bytes:
    """A plain CONNECT (clean start, keep alive 30 s) with the run's credentials."""
    connect = Connect(client_id=client_id, clean_start=True, keep_alive=30, username=username,
                      password=password.encode() if password is not None else None)
    return encode(connect, version)


def read_answer(transport: Transport, timeout: float) -> Answer:
    """Read until a CONNACK's first two body bytes are in, the peer closes, or ``timeout`` ends."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        if data and data[0] != CONNACK:
            return Answer("garbage", data=data)
        parsed = _connack_head(data)
        if parsed is not None:
            return Answer("connack", parsed[1], parsed[0], data)
        left = deadline - time.monotonic()
        if left <= 0:
            return Answer("silent", data=data)
        try:
            chunk = transport.recv(left)
        except OSError:
            chunk = b""
        if chunk is None:
            return Answer("silent", data=data)
        if not chunk:
            return Answer("closed", data=data)
        data += chunk


def _connack_head(data: bytes) -> tuple[int, int] | None:
    """(remaining length, return/reason code) once both are in ``data``."""
    length, multiplier, pos = 0, 1, 1
    while pos < len(data) and pos <= 4:
        byte = data[pos]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        pos += 1
        if not byte & 0x80:
            return (length, data[pos + 1]) if len(data) >= pos + 2 else None
    return None


def exchange(endpoint: Endpoint, version: str, tls: TlsOptions, username: str | None,
             password: str | None) -> Answer:
    """One CONNECT and its answer; DISCONNECT when accepted."""
    transport = open_transport(endpoint, PREFLIGHT_TIMEOUT, tls)
    try:
        transport.send(connect_packet(version, f"mqttc-pre-{uuid.uuid4().hex[:10]}", username, password))
        answer = read_answer(transport, PREFLIGHT_TIMEOUT)
        if answer.kind == "silent" and not answer.data:
            answer = _nudge(transport, answer)
        if answer.kind == "connack" and answer.code == 0:
            transport.send(b"\xe0\x00")  # DISCONNECT, same bytes in both versions
        return answer
    finally:
        transport.close()


def _nudge(transport: Transport, silent: Answer) -> Answer:
    """A line-based server (HTTP) waits for a line end before it answers: send one, and show what comes."""
    try:
        transport.send(b"\r\n\r\n")
    except OSError:
        return silent
    later = read_answer(transport, NUDGE_TIMEOUT)
    return Answer("garbage", data=later.data) if later.data else silent


def judge(version: str, answer: Answer, where: str, username: str | None) -> str | None:
    """None if ``version`` is usable, or the reason it is unsupported; PreflightError if the run cannot go on."""
    if answer.kind == "silent":
        got = f" (only {_show(answer.data)})" if answer.data else ""
        raise PreflightError(f"{where} sent no CONNACK within {PREFLIGHT_TIMEOUT:g} s to an MQTT {version} "
                             f"CONNECT{got}: is this an MQTT listener? check the --broker address and port")
    if answer.kind == "garbage":
        raise PreflightError(f"{where} answered an MQTT {version} CONNECT with bytes that are not a CONNACK: "
                             f"{_show(answer.data)}; is this an MQTT listener? check the --broker URL")
    if answer.kind == "closed":
        return "closed"  # decided by the caller: depends on whether another version works
    code, v5 = answer.code or 0, Version.parse(version).v5
    if v5 and answer.remaining_length == 2:
        return (f"the broker answers an MQTT 5.0 CONNECT with an MQTT 3.1.1 CONNACK "
                f"(return code {code} {_code_name(Version.V311, code)})") + ": it does not speak 5.0"
    if code == 0:
        return None
    name = _code_name(version, code)
    if code in ((0x84,) if v5 else (1,)):
        return f"the broker refuses MQTT {version} CONNECT with {name} (0x{code:02X})"
    if code in ((0x86, 0x87, 0x8C) if v5 else (4, 5)):
        who = f"user {username!r}" if username else "anonymous clients (no user name given)"
        raise PreflightError(f"{where} refused the credentials of {who} (MQTT {version} CONNACK 0x{code:02X} "
                             f"{name}): {CREDENTIAL_FIX}")
    raise PreflightError(f"{where} refused an MQTT {version} CONNECT with 0x{code:02X} {name}; "
                         "nothing can be tested until the broker accepts a plain connection")


def _code_name(version: str, code: int) -> str:
    """The name of a CONNACK code of ``version`` ("undefined" for one a CONNACK cannot carry)."""
    level = Version.parse(version).level
    if level == Version.V50.level and code not in ALLOWED_50["CONNACK"]:
        return "undefined"
    return reason_name(code, "CONNACK", level)


def _show(data: bytes, limit: int = 40) -> str:
    """The first bytes that came back, readable (an HTTP status line shows as text)."""
    head = data[:limit]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        text = head.decode("ascii").replace("\r", "\\r").replace("\n", "\\n")
        return repr(text) + ("..." if len(data) > limit else "")
    return head.hex(" ") + (" ..." if len(data) > limit else "")


def run_preflight(endpoints: dict[str, Endpoint], tls: TlsOptions, username: str | None,
                  password: str | None) -> dict[str, str]:
    """Check every version in ``endpoints``; the versions to drop, with the reason for each."""
    reasons: dict[str, str | None] = {}
    for version, endpoint in endpoints.items():
        answer = exchange(endpoint, version, tls, username, password)
        reasons[version] = judge(version, answer, f"broker {endpoint.host}:{endpoint.port}", username)
    usable = [v for v, r in reasons.items() if r is None]
    for version, reason in reasons.items():
        if reason == "closed":
            if not usable:
                endpoint = endpoints[version]
                raise PreflightError(f"broker {endpoint.host}:{endpoint.port} closed the connection on an MQTT "
                                     f"{version} CONNECT without a CONNACK; check the URL, TLS and credentials")
            reasons[version] = (f"the broker closes the connection on an MQTT {version} CONNECT, "
                                f"while it accepts MQTT {', '.join(usable)}")
    dropped = {v: r for v, r in reasons.items() if r is not None}
    if dropped and not usable:
        raise PreflightError("no selected MQTT version can be tested: " + "; ".join(dropped.values()))
    return dropped


def check_baseline(path: str | None) -> None:
    """A --baseline must be a JSON object with a "cases" list (a baseline, or a results.json): checked
    before the run, since the plugin reads it only when the run is over."""
    if not path:
        return
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"baseline {path} cannot be read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"baseline {path} is not JSON ({exc}); make one with `mqtt-conformance baseline`") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"baseline {path} is not a baseline (no \"cases\" list); make one with "
                          "`mqtt-conformance baseline REPORT_DIR --output FILE`")
