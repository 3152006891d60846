"""Packet fuzzing: turn a batch of inputs into connection plans, run them concurrently against the broker,
judge each connection against what the spec requires, and check liveness.

A *plan* is one TCP connection: the bytes sent at once (CONNECT and input pipelined, then a PINGREQ
barrier where the input's framing is intact), what the connection does when packets arrive (PUBREL for
our QoS 2 publishes, DISCONNECT after an accepted CONNECT) and the oracle that judges it. Plans are
plain JSON, so a finding's reproducer is its plans, replayed by the same engine.

Well-formed session inputs share connections (pipelined, at most ``SHARED_MAX`` inputs each, within the
broker's Receive Maximum); every malformed or open-ended input gets a connection of its own, so that one
close cannot hide the next. All plans of a batch run at once on non-blocking sockets; every wait is
bounded by ``Limits.timeout``.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .. import judge as spec_judge
from ..codec import (
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    Packet,
    Parser,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    encode,
)
from ..codec.decode import decode_packet
from ..codec.version import Version
from ..transcript import BROKER, CLOSE, IN, NOTE, OUT, Event, Transcript
from .common import SUBACK_311, VALID_CODES, FuzzTarget, IgnoreList, Limits, Problem, quick_ack
from .strategies import ANSWER, CLOSED, CONNECT, TOLERATE, FuzzContext, Input

SHARED_MAX = 24  # inputs per shared connection
LINGER_RST = struct.pack("ii", 1, 0)
REJECTS_AS_MALFORMED = {0x81, 0x82}


@dataclass
class Plan:
    """One connection: ``data`` is sent at once; ``oracle`` says what to expect and how to react."""

    name: str
    data: bytes
    oracle: dict[str, Any]
    half_close: bool = False  # shut our sending side down right after ``data`` (the broker then sees EOF)
    level: int = 4  # protocol level the answers are decoded with
    inputs: list[str] = field(default_factory=list)

    def to_step(self) -> dict[str, Any]:
        return {"client": self.name, "send": self.data.hex(), "half_close": self.half_close, "level": self.level,
                "inputs": self.inputs, "oracle": self.oracle}

    @classmethod
    def from_step(cls, step: dict[str, Any]) -> Plan:
        return cls(step["client"], bytes.fromhex(step["send"]), step["oracle"], bool(step.get("half_close")),
                   int(step.get("level", 4)), list(step.get("inputs", [])))


class WireEvent(NamedTuple):
    """One thing on one connection, for its transcript (``closed_by`` on CLOSE events only)."""

    t: float
    direction: str
    data: bytes
    note: str
    closed_by: str | None = None


@dataclass
class Outcome:
    """What one connection saw."""

    plan: Plan
    packets: list[tuple[bytes, Packet | MalformedPacket]] = field(default_factory=list)
    closed: bool = False
    refused: bool = False  # the connection never opened
    events: list[WireEvent] = field(default_factory=list)


# -- plans ------------------------------------------------------------------------------------------------
class Naming:
    """Deterministic client ids and connection names for one batch."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.count = 0

    def next(self, kind: str) -> tuple[str, str]:
        self.count += 1
        return f"{kind}{self.count}", f"{self.token}{self.count}"


def plain_connect(client_id: str) -> Connect:
    return Connect(client_id=client_id, clean_start=True, keep_alive=60)


def _with_packet_id(packet: Packet, packet_id: int) -> Packet:
    if isinstance(packet, Publish):
        return replace(packet, packet_id=packet_id) if packet.qos else packet
    if isinstance(packet, Subscribe | Unsubscribe):
        return replace(packet, packet_id=packet_id)
    return packet


def _answer_for(packet: Packet, rule: str, limit: bool, version: Version, index: int, label: str) -> dict[str, Any]:
    close_ok = limit or (not version.v5 and isinstance(packet, Publish))
    base = {"rule": rule, "limit": limit, "close_ok": close_ok, "input": index, "label": label}
    if isinstance(packet, Publish):
        if packet.qos == 1:
            return {"type": "PUBACK", "packet_id": packet.packet_id, **base}
        if packet.qos == 2:
            return {"type": "PUBREC", "packet_id": packet.packet_id, **base}
        return {"type": "NONE", **base}
    if isinstance(packet, Subscribe):
        return {"type": "SUBACK", "packet_id": packet.packet_id, "requested": [s.qos for s in packet.subscriptions],
                **base}
    if isinstance(packet, Unsubscribe):
        return {"type": "UNSUBACK", "packet_id": packet.packet_id, "count": len(packet.topic_filters), **base}
    if isinstance(packet, Pingreq):
        return {"type": "PINGRESP", **base}
    return {"type": "NONE", **base}


def build_plans(inputs: list[Input], ctx: FuzzContext, naming: Naming) -> list[Plan]:
    """Connections for a batch: shared ones for well-formed session inputs, one each for the rest."""
    level, version = ctx.level, ctx.version
    plans: list[Plan] = []
    shared: list[tuple[int, Input, Any]] = []
    for index, inp in enumerate(inputs):
        expect = inp.expect(ctx)
        label = inp.describe()
        if inp.phase == "session" and expect.kind == ANSWER:
            shared.append((index, inp, expect))
            continue
        name, client_id = naming.next("f")
        if inp.phase == "session":
            head = encode(plain_connect(client_id), level)
            body = inp.encode(level)
            oracle: dict[str, Any] = {"kind": expect.kind, "rule": expect.rule, "connect": False, "input": index,
                                      "label": label}
            if expect.kind == CLOSED:
                oracle["refusal"] = expect.refusal
                oracle["packet_id"] = getattr(inp.packet, "packet_id", None)
                tail = encode(Pingreq(), level) if expect.barrier else b""
                plans.append(Plan(name, head + body + tail, oracle, False, level, [label]))
            else:
                plans.append(Plan(name, head + body, {**oracle, "kind": TOLERATE}, True, level, [label]))
            continue
        # connect phase: the input is the first packet of its connection
        packet = inp.packet
        if isinstance(packet, Connect) and packet.client_id != "" or isinstance(packet, Connect) and \
                expect.kind != CONNECT:
            packet = replace(packet, client_id=client_id + packet.client_id)
        inp = replace(inp, packet=packet)
        oracle = {"kind": expect.kind, "rule": expect.rule, "connect": True, "input": index, "label": label}
        if isinstance(packet, Connect) and expect.kind == CONNECT:
            persistent = _persistent(packet, ctx)
            if not version.v5 and packet.client_id == "" and not packet.clean_start:
                oracle = {**oracle, "kind": CLOSED, "rule": "malformed/connect/empty-client-id-persistent"}
            else:
                oracle.update(clean=packet.clean_start, persistent=persistent, client_id=packet.client_id,
                              limit=expect.limit)
        body = inp.encode(level)
        if oracle["kind"] in (CLOSED, CONNECT):
            tail = encode(Pingreq(), level) if expect.barrier else b""
            plans.append(Plan(name, body + tail, oracle, False, level, [label]))
        else:
            plans.append(Plan(name, body, oracle, True, level, [label]))
    if shared:
        plans += _shared_plans(shared, ctx, naming)
    return plans


def _persistent(packet: Connect, ctx: FuzzContext) -> bool:
    if ctx.v5:
        return bool(packet.properties.get("session_expiry_interval", 0))
    return not packet.clean_start


def _shared_plans(shared: list[tuple[int, Input, Any]], ctx: FuzzContext, naming: Naming) -> list[Plan]:
    level, version = ctx.level, ctx.version
    qos2_limit = max(1, min(ctx.receive_maximum, 65535) - 1)
    chunks: list[list[tuple[int, Input, Any]]] = [[]]
    qos2 = 0
    for item in shared:
        n2 = sum(1 for p in (item[1].packet, *item[1].then) if isinstance(p, Publish) and p.qos == 2)
        if len(chunks[-1]) >= SHARED_MAX or qos2 + n2 > qos2_limit:
            chunks.append([])
            qos2 = 0
        chunks[-1].append(item)
        qos2 += n2
    plans = []
    for chunk in chunks:
        name, client_id = naming.next("s")
        data = bytearray(encode(plain_connect(client_id), level))
        expect: list[dict[str, Any]] = []
        pubrel: list[int] = []
        labels = []
        next_id = 1
        for index, inp, exp in chunk:
            packets = []
            for packet in (inp.packet, *inp.then):
                packets.append(_with_packet_id(packet, next_id))
                next_id += 1
            inp = replace(inp, packet=packets[0], then=tuple(packets[1:]))
            label = inp.describe()
            labels.append(label)
            data += inp.encode(level)
            for packet in packets:
                expect.append(_answer_for(packet, exp.rule if packet is packets[0] else "valid/publish", exp.limit,
                                          version, index, label))
                if isinstance(packet, Publish) and packet.qos == 2:
                    pubrel.append(packet.packet_id or 0)
        data += encode(Pingreq(), level)
        expect.append({"type": "PINGRESP", "rule": "valid/pingreq", "limit": False, "close_ok": False,
                       "input": None, "label": "PINGREQ barrier"})
        oracle = {"kind": ANSWER, "expect": expect, "pubrel": pubrel, "rule": "valid"}
        plans.append(Plan(name, bytes(data), oracle, False, level, labels))
    return plans


def liveness_plan(ctx: FuzzContext, client_id: str, topic: str, payload: bytes) -> Plan:
    """A fresh client: CONNECT + SUBSCRIBE pipelined; on SUBACK it publishes at QoS 1 to itself."""
    level = ctx.level
    data = encode(plain_connect(client_id), level) + encode(
        Subscribe(packet_id=1, subscriptions=(Subscription(topic, 1),)), level)
    oracle = {"kind": "liveness", "topic": topic, "payload": payload.hex()}
    return Plan("live", data, oracle, False, level, ["liveness check"])


def cleanup_plan(client_id: str, ctx: FuzzContext, name: str) -> Plan:
    """End a session a valid fuzz CONNECT left behind: clean CONNECT (expiry 0), then DISCONNECT."""
    connect = Connect(client_id=client_id, clean_start=True, keep_alive=60)
    data = encode(connect, ctx.level) + encode(Disconnect(), ctx.level)
    return Plan(name, data, {"kind": TOLERATE, "rule": "cleanup"}, True, ctx.level, ["session cleanup"])


# -- the engine -------------------------------------------------------------------------------------------
class _Conn:
    __slots__ = ("plan", "sock", "out", "parser", "outcome", "done", "fin_sent", "want_fin", "start", "state",
                 "connected", "chatty")

    def __init__(self, plan: Plan, start: float) -> None:
        self.plan = plan
        self.sock: socket.socket | None = None
        self.out = bytearray(plan.data)
        self.parser = Parser(plan.level)
        self.outcome = Outcome(plan)
        self.done = False
        self.fin_sent = False
        self.want_fin = plan.half_close
        self.start = start
        self.state: dict[str, Any] = {"pingresp": 0}
        self.connected = False
        self.chatty = False

    def event(self, direction: str, data: bytes = b"", note: str = "", closed_by: str | None = None) -> None:
        self.outcome.events.append(WireEvent(time.monotonic(), direction, data, note, closed_by))

    def send(self, data: bytes, note: str = "") -> None:
        self.out += data
        self.event(OUT, data, note)


def run_plans(plans: list[Plan], target: FuzzTarget, limits: Limits, timeout: float | None = None) -> list[Outcome]:
    """Run every plan at once; return their outcomes in plan order. Never waits longer than ``timeout``."""
    start = time.monotonic()
    deadline = start + (limits.timeout if timeout is None else timeout)
    sel = selectors.DefaultSelector()
    conns = [_Conn(plan, start) for plan in plans]
    try:
        for conn in conns:
            _open(conn, target, sel)
        _serve(sel, deadline)
    finally:
        _close_all(conns, sel, start)
    return [conn.outcome for conn in conns]


def _open(conn: _Conn, target: FuzzTarget, sel: selectors.BaseSelector) -> None:
    """Connect without blocking and send the plan's bytes; the connection is registered unless already over."""
    sock = socket.socket(socket.AF_INET6 if ":" in target.endpoint.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    conn.chatty = conn.plan.oracle["kind"] in (ANSWER, CONNECT, "liveness")
    if conn.chatty:  # several small packets each way: no Nagle here, no delayed ACKs there
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        quick_ack(sock)
    code = sock.connect_ex(target.address)
    if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        conn.outcome.refused = conn.outcome.closed = conn.done = True
        conn.event(CLOSE, note=f"connection failed: {errno.errorcode.get(code, code)}")  # never opened: closed_by None
        sock.close()
        return
    conn.sock = sock
    conn.event(OUT, bytes(conn.out), "; ".join(conn.plan.inputs))
    _flush(conn)  # loopback connections are often established at once: send without a select round
    if not conn.done:
        sel.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out or not conn.connected else 0),
                     conn)


def _serve(sel: selectors.BaseSelector, deadline: float) -> None:
    """Write and read what is ready until every registered connection is over, or until ``deadline``."""
    while sel.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for key, mask in sel.select(min(remaining, 0.5)):
            conn = key.data
            if conn.done:
                continue
            if mask & selectors.EVENT_WRITE:
                _flush(conn)
            if mask & selectors.EVENT_READ and not conn.done:
                _read(conn)
            if conn.done:
                sel.unregister(conn.sock)
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
            if key.events != want:
                sel.modify(conn.sock, want, conn)


def _close_all(conns: list[_Conn], sel: selectors.BaseSelector, start: float) -> None:
    """Close every socket with a reset (nothing lingers); a connection still open is noted as closed by us."""
    for conn in conns:
        if not conn.done:
            conn.event(NOTE, note=f"still open after {time.monotonic() - start:.2f} s: harness closes it")
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(conn.sock)
            conn.sock.close()
    sel.close()


def _flush(conn: _Conn) -> None:
    assert conn.sock is not None
    try:
        if conn.out:
            sent = conn.sock.send(conn.out)
            del conn.out[:sent]
        conn.connected = True
        if not conn.out and conn.want_fin and not conn.fin_sent:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.fin_sent = True
    except (BlockingIOError, InterruptedError):
        return
    except OSError as exc:
        if exc.errno == errno.ENOTCONN and not conn.connected:
            return  # still connecting
        if exc.errno == errno.ECONNREFUSED or not conn.connected:
            conn.outcome.refused = True
        _closed(conn, why=type(exc).__name__)


def _read(conn: _Conn) -> None:
    assert conn.sock is not None
    if conn.chatty:
        quick_ack(conn.sock)
    try:
        data = conn.sock.recv(262144)
    except (BlockingIOError, InterruptedError):
        return
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            conn.outcome.refused = True
        _closed(conn, why=type(exc).__name__)
        return
    if not data:
        _closed(conn)
        return
    for raw, packet in conn.parser.feed(data):
        conn.outcome.packets.append((raw, packet))
        conn.event(IN, raw)
        _react(conn, packet)
    if conn.parser.broken:
        conn.event(NOTE, note="the broker's byte stream cannot be framed any more")


def _closed(conn: _Conn, why: str = "") -> None:
    """The connection ended without us: the broker closed it, or (refused) it never opened."""
    conn.outcome.closed = True
    conn.done = True
    detail = f" ({why})" if why else ""
    if conn.outcome.refused:
        conn.event(CLOSE, note=f"connection failed{detail}")
    else:
        conn.event(CLOSE, note=f"connection closed by broker{detail}", closed_by=BROKER)


def _finish(conn: _Conn) -> None:
    """We are satisfied: DISCONNECT, half-close, and wait for the broker's close (it then processed all)."""
    if conn.state.get("finishing"):
        return
    conn.state["finishing"] = True
    conn.send(encode(Disconnect(), conn.plan.level), "DISCONNECT")
    conn.want_fin = True


def _react(conn: _Conn, packet: Packet | MalformedPacket) -> None:
    oracle = conn.plan.oracle
    kind = oracle["kind"]
    level = conn.plan.level
    if isinstance(packet, Pingresp):
        conn.state["pingresp"] += 1
    if kind == ANSWER:
        if isinstance(packet, Pubrec) and packet.packet_id in oracle.get("pubrel", ()) and packet.reason_code < 0x80:
            conn.send(encode(Pubrel(packet_id=packet.packet_id), level), "PUBREL")
        wanted = sum(1 for e in oracle["expect"] if e["type"] == "PINGRESP")
        if conn.state["pingresp"] >= wanted and _all_answered(conn):
            _finish(conn)
    elif kind == CLOSED:
        if isinstance(packet, Pingresp):
            conn.done = True  # kept open and answered the barrier: judged as such
    elif kind == CONNECT:
        if isinstance(packet, Connack) and packet.reason_code == 0:
            conn.state["accepted"] = True
        if isinstance(packet, Pingresp) and conn.state.get("accepted"):
            _finish(conn)
    elif kind == "liveness":
        topic, payload = oracle["topic"], bytes.fromhex(oracle["payload"])
        if isinstance(packet, Suback) and not conn.state.get("published"):
            conn.state["published"] = True
            conn.send(encode(Publish(topic=topic, payload=payload, qos=1, packet_id=2), level), "liveness PUBLISH")
        elif isinstance(packet, Puback) and packet.packet_id == 2:
            conn.state["acked"] = True
        elif isinstance(packet, Publish) and packet.topic == topic and packet.payload == payload:
            conn.state["delivered"] = True
            if packet.qos:
                conn.send(encode(Puback(packet_id=packet.packet_id or 0), level), "PUBACK")
        if conn.state.get("acked") and conn.state.get("delivered"):
            _finish(conn)


def _all_answered(conn: _Conn) -> bool:
    received = {(type(p).__name__.upper(), getattr(p, "packet_id", None)) for _, p in conn.outcome.packets}
    return all(e["type"] in ("NONE", "PINGRESP") or (e["type"], e.get("packet_id")) in received
               for e in conn.plan.oracle["expect"])


# -- judging ----------------------------------------------------------------------------------------------
def judge(outcome: Outcome, version: Version) -> list[Problem]:
    """Problems with one connection, by its oracle; [] when the broker did what the spec requires."""
    kind = outcome.plan.oracle["kind"]
    if kind == ANSWER:
        return _judge_answers(outcome, version)
    if kind == CLOSED:
        return _judge_closed(outcome, version)
    if kind == CONNECT:
        return _judge_connect(outcome, version)
    return []


def _shown(outcome: Outcome, skip_first: bool = False) -> str:
    from ..transcript import describe

    items = outcome.packets[1:] if skip_first else outcome.packets
    text = ", ".join(describe(p, outcome.plan.level) if isinstance(p, Packet) else f"malformed ({p})"
                     for _, p in items[:6])
    return text or "nothing"


def _session_connack(outcome: Outcome) -> Problem | None:
    """Session-phase plans start with our plain CONNECT: it must be accepted. A connection the broker may
    close because of a later input can lose the CONNACK to the reset (unread input makes the close a reset),
    so a missing CONNACK on such a connection is not held against it."""
    first = outcome.packets[0][1] if outcome.packets else None
    if isinstance(first, Connack) and first.reason_code == 0:
        return None
    oracle = outcome.plan.oracle
    if first is None and outcome.closed and (oracle["kind"] != ANSWER or
                                              any(e["close_ok"] for e in oracle.get("expect", ()))):
        return None
    seen = _shown(outcome) if first is not None else (
        "the connection closed" if outcome.closed else "nothing within the bound")
    return Problem("valid/connect", "CONNACK 0x00 for a plain CONNECT", seen, "setup")


def _broker_malformed(outcome: Outcome) -> Problem | None:
    for _, packet in outcome.packets:
        if isinstance(packet, MalformedPacket):
            return Problem("broker/malformed-packet", "well-formed packets from the broker", str(packet),
                           outcome.plan.name)
    return None


def _judge_answers(outcome: Outcome, version: Version) -> list[Problem]:
    problem = _session_connack(outcome) or _broker_malformed(outcome)
    if problem:
        return [problem]
    packets = [p for _, p in outcome.packets[1:] if isinstance(p, Packet)]
    by_key: dict[tuple[str, int | None], list[Packet]] = {}
    for packet in packets:
        by_key.setdefault((packet.name, getattr(packet, "packet_id", None)), []).append(packet)
    pingresps = sum(1 for p in packets if isinstance(p, Pingresp))
    disconnect = next((p for p in packets if isinstance(p, Disconnect)), None)
    problems: list[Problem] = []
    pings_seen = 0
    pending_close_ok = False  # some input since the last answered one may have been refused by a close
    expects = outcome.plan.oracle["expect"]
    for position, exp in enumerate(expects):
        kind = exp["type"]
        where = f"input {exp['input']}: {exp['label']}" if exp["input"] is not None else exp["label"]
        if kind == "NONE":
            pending_close_ok = pending_close_ok or exp["close_ok"]
            continue
        if kind == "PINGRESP":
            pings_seen += 1
            if pings_seen <= pingresps:
                pending_close_ok = False
                continue
            answer = None
        else:
            found = by_key.get((kind, exp["packet_id"]))
            answer = found[0] if found else None
        if answer is None:
            # Any input sent after the last one answered may have caused a close, and a close by reset can
            # swallow answers already sent: tolerated if one of them may be refused by a close.
            pending_close_ok = pending_close_ok or any(e["close_ok"] for e in expects[position:])
            problems += _unanswered(outcome, exp, version, where, pending_close_ok, disconnect)
            break
        pending_close_ok = False
        problems += _check_answer(answer, exp, version, where)
    return problems[:1]


def _unanswered(outcome: Outcome, exp: dict[str, Any], version: Version, where: str, close_ok: bool,
                disconnect: Disconnect | None) -> list[Problem]:
    """No answer to ``exp``: a problem unless the broker ended the connection where it may."""
    expected = f"{exp['type']} for a well-formed packet"
    if disconnect is not None and version.v5:  # a 5.0 server may end any connection with a reason
        if disconnect.reason_code in REJECTS_AS_MALFORMED and not close_ok:
            return [Problem(exp["rule"], expected, f"the broker rejected it as malformed: {_shown(outcome, True)}",
                            where)]
        return []
    if outcome.closed or disconnect is not None:
        if close_ok:
            return []
        return [Problem(exp["rule"], expected, f"the broker closed the connection instead (received: "
                        f"{_shown(outcome, True)})", where)]
    return [Problem(exp["rule"], expected, f"nothing within the bound (received: {_shown(outcome, True)})", where)]


def _check_answer(answer: Packet, exp: dict[str, Any], version: Version, where: str) -> list[Problem]:
    kind = exp["type"]
    v5 = version.v5
    if isinstance(answer, Suback):
        requested = exp["requested"]
        codes = list(answer.reason_codes)
        if len(codes) != len(requested):
            return [Problem(exp["rule"], f"SUBACK with {len(requested)} reason codes (one per filter)",
                            f"{len(codes)} codes: {codes}", where)]
        for code, req in zip(codes, requested, strict=True):
            allowed = VALID_CODES["SUBACK"] if v5 else SUBACK_311
            if code not in allowed or (code < 0x80 and code > req):
                return [Problem(exp["rule"], f"each SUBACK code the granted QoS (at most {req}) or a failure",
                                f"codes {codes} for requested {requested}", where)]
    if isinstance(answer, Unsuback) and v5:
        codes = list(answer.reason_codes)
        if len(codes) != exp["count"] or not set(codes) <= VALID_CODES["UNSUBACK"]:
            return [Problem(exp["rule"], f"UNSUBACK with {exp['count']} defined reason codes", f"codes {codes}",
                            where)]
    if isinstance(answer, Puback | Pubrec) and v5 and answer.reason_code not in VALID_CODES[kind]:
        return [Problem(exp["rule"], f"{kind} with a defined reason code", f"0x{answer.reason_code:02X}", where)]
    return []


def _accepting_connack(outcome: Outcome) -> Connack | None:
    """A CONNACK that accepts the connection, whichever version's layout the broker used."""
    for raw, packet in outcome.packets:
        if isinstance(packet, Connack) and packet.reason_code == 0:
            return packet
        if isinstance(packet, MalformedPacket) and raw[:1] == b"\x20" and len(raw) >= 4:
            with contextlib.suppress(MalformedPacket):
                other = decode_packet(raw, 4 if outcome.plan.level == 5 else 5)
                if isinstance(other, Connack) and other.reason_code == 0:
                    return other
    return None


def _judge_closed(outcome: Outcome, version: Version) -> list[Problem]:
    """A broken input: judged by the cases' own judge (conformance/judge.py) on what was received."""
    oracle = outcome.plan.oracle
    rule, where = oracle["rule"], f"input {oracle['input']}: {oracle['label']}"
    expected = "the connection closed (5.0: a DISCONNECT may come first)"
    connecting = bool(oracle.get("connect"))
    if connecting and _accepting_connack(outcome) is not None:  # also in the other version's layout
        return [Problem(rule, expected + " and no CONNACK accepting it",
                        f"the broker accepted it: {_shown(outcome)}", where)]
    problem = None if connecting else _session_connack(outcome)
    if problem:
        return [problem]
    received = [p for _, p in outcome.packets[0 if connecting else 1:] if isinstance(p, Packet)]
    # Before CONNACK a PINGREQ is an error of its own: no barrier is sent there.
    reaction = spec_judge.Reaction.received(version, received, outcome.closed, barrier=not connecting)
    judgement = spec_judge.classify(reaction, spec_judge.Expected(connecting=connecting, item=_item_at_fault(oracle)))
    if judgement.outcome == spec_judge.CLOSED or (judgement.outcome == spec_judge.REFUSED and not connecting):
        return []  # a refusal with the connection kept: the cases grade it NON-STRICT
    return [Problem(rule, expected, judgement.message, where)]


def _item_at_fault(oracle: dict[str, Any]) -> spec_judge.Item | None:
    """The fuzzer's refusal oracle ("ack", "suback:I", "unsuback:I") as the judge's item at fault."""
    refusal = oracle.get("refusal")
    if not refusal:
        return None
    _, _, index = refusal.partition(":")
    return spec_judge.Item(oracle.get("packet_id"), int(index or 0))


def _judge_connect(outcome: Outcome, version: Version) -> list[Problem]:
    oracle = outcome.plan.oracle
    where = f"input {oracle['input']}: {oracle['label']}"
    packets = [p for _, p in outcome.packets]
    if not packets:
        if outcome.closed:
            return []  # refusing without a CONNACK is allowed (the CONNACK is only a SHOULD)
        return [Problem("valid/connect", "a CONNACK (or a close) for a well-formed CONNECT",
                        "nothing within the bound, connection still open", where)]
    first = packets[0]
    if isinstance(first, MalformedPacket):
        return [Problem("broker/malformed-packet", "a well-formed CONNACK", str(first), where)]
    if not isinstance(first, Connack):
        return [Problem("valid/connect", "CONNACK as the first packet from the server", _shown(outcome), where)]
    if first.reason_code != 0:
        if first.session_present:
            return [Problem("valid/connect/refusal-session-present", "Session Present 0 in a refusing CONNACK",
                            _shown(outcome), where)]
        if not outcome.closed or any(isinstance(p, Pingresp) for p in packets):
            return [Problem("valid/connect/refusal-not-closed", "the connection closed after a refusing CONNACK",
                            f"still open (received: {_shown(outcome)})", where)]
        return []
    if first.session_present:
        return [Problem("valid/connect/session-present", "Session Present 0 (no session existed for this "
                        "client id)", _shown(outcome), where)]
    problem = _broker_malformed(outcome)
    if problem:
        return [problem]
    if any(isinstance(p, Pingresp) for p in packets):
        return []
    if any(isinstance(p, Disconnect) for p in packets) and version.v5:
        return []
    if outcome.closed and oracle.get("limit"):
        return []
    seen = "the broker closed the accepted connection" if outcome.closed else "no PINGRESP within the bound"
    return [Problem("valid/pingreq", "PINGRESP for the PINGREQ behind the accepted CONNECT",
                    f"{seen} (received: {_shown(outcome)})", where)]


def judge_liveness(outcome: Outcome) -> Problem | None:
    state = {"connack": False, "suback": False}
    for _, packet in outcome.packets:
        if isinstance(packet, Connack) and packet.reason_code == 0:
            state["connack"] = True
        if isinstance(packet, Suback):
            state["suback"] = True
    acked = any(isinstance(p, Puback) and p.packet_id == 2 for _, p in outcome.packets)
    topic, payload = outcome.plan.oracle["topic"], bytes.fromhex(outcome.plan.oracle["payload"])
    delivered = any(isinstance(p, Publish) and p.topic == topic and p.payload == payload for _, p in outcome.packets)
    if state["connack"] and state["suback"] and acked and delivered:
        return None
    how = ("refused the TCP connection" if outcome.refused else "closed the connection" if outcome.closed
           else "stalled")
    if not state["connack"]:
        return Problem("liveness/connect", "a fresh client connects (CONNACK 0x00)",
                       f"the broker {how} (received: {_shown(outcome)})", "liveness")
    if not state["suback"]:
        return Problem("liveness/subscribe", "a fresh client subscribes (SUBACK)",
                       f"the broker {how} (received: {_shown(outcome)})", "liveness")
    if not acked:
        return Problem("liveness/publish", "a fresh client publishes at QoS 1 (PUBACK)",
                       f"the broker {how} (received: {_shown(outcome)})", "liveness")
    return Problem("liveness/delivery", "the client receives its own QoS 1 message",
                   f"the broker {how} (received: {_shown(outcome)})", "liveness")


# -- a whole batch ----------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    outcomes: list[Outcome]
    problems: list[Problem]
    liveness: Outcome | None = None

    def transcript(self) -> list[dict[str, Any]]:
        return transcript_of([*self.outcomes, *([self.liveness] if self.liveness else [])])


class LivenessChecker:
    """A fresh client connects, subscribes and round-trips a QoS 1 message, within a bound (retried once
    with twice the bound, so that one slow moment is not reported as a stall)."""

    def __init__(self, target: FuzzTarget, ctx: FuzzContext, limits: Limits, token: str) -> None:
        self.target, self.ctx, self.limits, self.token = target, ctx, limits, token
        self.count = 0

    def check(self) -> tuple[Problem | None, Outcome]:
        outcome = None
        for attempt in (1, 2):
            self.count += 1
            plan = liveness_plan(self.ctx, f"{self.token}L{self.count}", f"{self.ctx.prefix}/live/{self.count}",
                                 f"alive {self.count}".encode())
            outcome = run_plans([plan], self.target, self.limits, self.limits.liveness_timeout * attempt)[0]
            problem = judge_liveness(outcome)
            if problem is None:
                return None, outcome
        assert outcome is not None
        return problem, outcome


def run_batch(plans: list[Plan], target: FuzzTarget, ctx: FuzzContext, limits: Limits, liveness: LivenessChecker,
              ignore: IgnoreList | None = None) -> BatchResult:
    """Run the plans, judge them, check liveness, and end sessions that valid CONNECTs left behind."""
    outcomes = run_plans(plans, target, limits)
    problems: list[Problem] = []
    for outcome in outcomes:
        for problem in judge(outcome, ctx.version):
            if ignore is None or not ignore(problem.rule, ctx.version):
                problems.append(problem)
    _cleanup(outcomes, target, ctx, limits)
    live_problem, live = liveness.check()
    if live_problem is not None:
        problems.insert(0, live_problem)  # a crash or stall explains everything else
    return BatchResult(outcomes, problems, live)


def _cleanup(outcomes: list[Outcome], target: FuzzTarget, ctx: FuzzContext, limits: Limits) -> None:
    plans: list[Plan] = []
    for outcome in outcomes:
        oracle = outcome.plan.oracle
        if oracle.get("kind") != CONNECT or not oracle.get("persistent"):
            continue
        connack = next((p for _, p in outcome.packets if isinstance(p, Connack)), None)
        if connack is None or connack.reason_code != 0:
            continue
        client_id = connack.properties.get("assigned_client_identifier") or oracle.get("client_id") or ""
        if client_id:
            plans.append(cleanup_plan(client_id, ctx, f"c{len(plans) + 1}"))
    if plans:
        run_plans(plans, target, limits)


def transcript_of(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The wire transcript of some connections, in time order, packets decoded where they decode."""
    transcript = Transcript()
    rows = sorted(((o.plan.name, o.plan.level, event) for o in outcomes for event in o.events),
                  key=lambda row: row[2].t)
    base = rows[0][2].t if rows else 0.0
    for name, level, event in rows:
        for added in _transcribe(transcript, name, level, event):
            added.t = event.t - base
    return transcript.to_json()


def _transcribe(transcript: Transcript, name: str, level: int, event: WireEvent) -> list[Event]:
    """Add one wire event to ``transcript``: what we sent split into packets, what came decoded."""
    if event.direction == OUT and event.data:
        parser = Parser(level)
        added = [transcript.add(name, OUT, raw, packet if isinstance(packet, Packet) else None,
                                "" if isinstance(packet, Packet) else f"{event.note} ({packet})", level)
                 for raw, packet in parser.feed(event.data)]
        rest = bytes(parser.buffer)
        if rest:
            added.append(transcript.add(name, OUT, rest, None,
                                        f"{event.note} (incomplete packet: {len(rest)} bytes)", level))
        return added
    if event.direction == IN:
        items = Parser(level).feed(event.data)
        return [transcript.add(name, IN, event.data, items[0][1] if items else None, "", level)]
    return [transcript.add(name, event.direction, b"", None, event.note, level, closed_by=event.closed_by)]


__all__ = [
    "BatchResult", "LivenessChecker", "Naming", "Outcome", "Plan", "build_plans", "judge", "judge_liveness",
    "liveness_plan", "run_batch", "run_plans", "transcript_of", "WireEvent",
]
