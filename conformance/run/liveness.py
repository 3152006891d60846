"""Is the broker still there? Checks on connections of their own, off the record (no case transcript):
it accepts a TCP connection, it answers a CONNECT at all (a broker that accepts connections but answers
nothing has hung), it accepts one (the barrier that shows a broker survived a re-run)."""

from __future__ import annotations

import socket

from ..probe import Probe, Timing
from ..transcript import Transcript
from .target import Target


def broker_alive(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def off_record_probe(target: Target, version: str, name: str, wait: float) -> Probe:
    """A probe with the target's address, TLS and identity, a throw-away transcript and ``wait`` seconds
    for the connection and for each answer."""
    return Probe(target.endpoint(version), version, Transcript(), name=name, client_id="",
                 timing=Timing(response=wait, connect=wait), tls=target.tls,
                 username=target.credentials.username, password=target.credentials.password)


def answers_connect(target: Target, version: str) -> bool:
    """Whether the broker answers a CONNECT (a CONNACK of any code, or a close) within the connect timeout
    (or twice the response timeout, if longer): every later case would only time out against one that does
    not. One that cannot even be connected to is "gone", not hung: that is another check's verdict."""
    limits = target.profile.limits
    wait = max(limits["connect_timeout"], 2 * limits["response_timeout"])
    probe = off_record_probe(target, version, "liveness", wait)
    try:
        probe.send(probe.connect_packet(keep_alive=0))
        return probe.arrives(wait) or probe.closed is not None
    except Exception:  # noqa: BLE001 - cannot even connect: that is the "gone" check's verdict, not a hang
        return True
    finally:
        probe.close()


def accepts_connect(target: Target, version: str) -> bool:
    """A CONNECT answered by a CONNACK (of any code) within the connect timeout."""
    probe = off_record_probe(target, version, "health", target.profile.limits["connect_timeout"])
    try:
        probe.connect(expect_code=None)
        return True
    except Exception:  # noqa: BLE001 - no CONNACK, whatever the way: not healthy
        return False
    finally:
        probe.close()
