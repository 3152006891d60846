"""Self-tests of the embedded broker launchers in conformance.brokers.

For every registered broker that is installed here: start it, CONNECT on each of its versions (with
the credentials it declares), subscribe and publish a QoS 1 message to ourselves, then stop it and
check that its ports are free, its process group is gone and no process still runs from its workdir.
Brokers that are not installed are skipped with the install command to run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections import deque
from pathlib import Path

import pytest

from conformance.brokers import REGISTRY, EmbeddedBroker, default_broker, get_broker
from conformance.brokers.mosquitto import Mosquitto
from conformance.brokers.rabbitmq_cluster import RabbitMQCluster
from conformance.brokers.rumqttd import Rumqttd
from conformance.codec import (
    Connack,
    Connect,
    Disconnect,
    HarnessError,
    MalformedPacket,
    Packet,
    Parser,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)
from conformance.codec.version import Version

REPO = Path(__file__).resolve().parents[1]
# Its module-scoped fixtures (the running brokers) once, on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("brokers")
IO_TIMEOUT = 10.0
GONE_TIMEOUT = 15.0  # how long a stopped broker's processes may take to disappear


def _skip_unless_available(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not REGISTRY[name].available(),
        reason=f"{name} is not installed here (install it with: .ci/install-brokers {name})",
    )


# one process per broker; the managed cluster (several node processes) has tests/test_cluster.py
SINGLE = [name for name in REGISTRY if name != RabbitMQCluster.name]
BROKER_PARAMS = [pytest.param(name, id=name, marks=_skip_unless_available(name)) for name in SINGLE]
VERSION_PARAMS = [
    pytest.param(name, version, id=f"{name}-{version}", marks=_skip_unless_available(name))
    for name, cls in REGISTRY.items() if name in SINGLE
    for version in cls.versions
]


class RunningBrokers:
    """One started instance per broker name, shared by the tests of this module, all stopped at the end."""

    def __init__(self) -> None:
        self.instances: dict[str, EmbeddedBroker] = {}
        self.start_times: dict[str, float] = {}

    def get(self, name: str) -> EmbeddedBroker:
        broker = self.instances.get(name)
        if broker is None or not broker.alive():
            broker, elapsed = start_timed(name)
            self.instances[name] = broker
            self.start_times[name] = elapsed
        return broker

    def take(self, name: str) -> EmbeddedBroker:
        """Hand over the running instance (started now if needed); the caller stops it."""
        broker = self.get(name)
        del self.instances[name]
        return broker

    def stop_all(self) -> None:
        for broker in self.instances.values():
            broker.stop()
        self.instances.clear()


def start_timed(name: str) -> tuple[EmbeddedBroker, float]:
    broker = get_broker(name)()
    began = time.monotonic()
    broker.start()
    return broker, time.monotonic() - began


@pytest.fixture(scope="module")
def brokers():
    running = RunningBrokers()
    yield running
    running.stop_all()


class Client:
    """A minimal raw-socket MQTT client on top of the sans-IO codec."""

    def __init__(self, host: str, port: int, version: str) -> None:
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        self.parser = Parser(version)
        self.pending: deque[Packet] = deque()

    def send(self, packet: Packet) -> None:
        self.sock.sendall(encode(packet, self.version))

    def recv(self, timeout: float = IO_TIMEOUT) -> Packet:
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no packet from the broker within {timeout:.0f} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError("the broker closed the connection")
            for raw, item in self.parser.feed(data):
                if isinstance(item, MalformedPacket):
                    raise AssertionError(f"malformed packet from the broker ({raw.hex()}): {item}")
                self.pending.append(item)
        return self.pending.popleft()

    def close(self) -> None:
        self.sock.close()


def connect_packet(broker: EmbeddedBroker, client_id: str) -> Connect:
    username, password = broker.credentials or (None, None)
    return Connect(
        client_id=client_id, clean_start=True, keep_alive=30,
        username=username, password=password.encode() if password is not None else None,
    )


def host_port(url: str) -> tuple[str, int]:
    assert url.startswith("mqtt://"), url
    host, _, port = url[len("mqtt://"):].rpartition(":")
    return host, int(port)


def port_is_free(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return False
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ps_lines() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def leftovers(pgid: int, workdir: Path) -> list[str]:
    mine = str(os.getpid())
    found = []
    for line in ps_lines():
        fields = line.split(None, 2)
        if len(fields) < 3 or fields[0] == mine or "ps -eo" in fields[2]:
            continue
        if fields[1] == str(pgid) or str(workdir) in fields[2]:
            found.append(line.strip())
    return found


# --------------------------------------------------------------------------- the registry


def test_registry_names_and_classes():
    assert list(REGISTRY) == sorted(REGISTRY)
    for name, cls in REGISTRY.items():
        assert issubclass(cls, EmbeddedBroker)
        assert cls.name == name
        assert cls.versions and set(cls.versions) <= set(Version)
        profile = REPO / "fixtures" / "targets" / f"{name}.toml"
        assert cls.profile_path().resolve() == profile.resolve()
        assert profile.is_file(), f"{name}: profile {profile} is missing"
        assert get_broker(name) is cls
        assert get_broker(name.upper()) is cls


def test_every_embedded_profile_names_a_registered_launcher():
    """The registry is found, not listed: a profile that starts a broker by name finds its launcher."""
    import tomllib

    for path in sorted((REPO / "fixtures" / "targets").glob("*.toml")):
        embedded = tomllib.loads(path.read_text()).get("embedded")
        if embedded is not None:
            assert embedded in REGISTRY, f"{path.name}: embedded = {embedded!r} is no registered launcher"
            assert path.name == f"{embedded}.toml"


def test_profiles_agree_with_classes():
    import tomllib

    from conformance.run.profile import load_profile

    for name, cls in REGISTRY.items():
        path = cls.profile_path()
        assert load_profile(path).versions == cls.versions  # valid for the harness, not just TOML
        profile = tomllib.loads(path.read_text())
        assert profile["embedded"] == name
        if "extends" in profile:  # versions and credentials come from the profile it extends
            continue
        assert tuple(profile["versions"]) == cls.versions
        creds = cls.credentials
        expected = {"username": creds[0], "password": creds[1]} if creds else None
        assert profile.get("credentials") == expected, f"{name}: profile and class credentials differ"


def test_unknown_broker_is_a_harness_error_and_a_key_error():
    known = re.escape(", ".join(REGISTRY))
    with pytest.raises(HarnessError, match=f"unknown embedded broker 'no-such-broker'; known: {known}"):
        get_broker("no-such-broker")
    with pytest.raises(KeyError):
        get_broker("no-such-broker")


def test_default_broker():
    expected = Mosquitto if Mosquitto.available() else Rumqttd
    assert default_broker() is expected
    assert Rumqttd.available(), "iotcore (rumqttd) is a project dependency and must be importable"


# --------------------------------------------------------------------------- each broker


@pytest.mark.parametrize(("name", "version"), VERSION_PARAMS)
def test_connect_subscribe_publish_qos1(brokers, name, version, record_property):
    broker = brokers.get(name)
    record_property("start_time_s", round(brokers.start_times[name], 2))
    host, port = host_port(broker.url(version))
    assert host == "127.0.0.1"
    client_id = f"selftest{uuid.uuid4().hex[:12]}"
    # No "." in the topic: RabbitMQ maps "." to "/" (MQTT "/" is its AMQP routing-key separator ".").
    topic = f"selftest/{name}/v{version.replace('.', '')}/{uuid.uuid4().hex[:8]}"
    payload = f"hello from {client_id}".encode()

    client = Client(host, port, version)
    try:
        client.send(connect_packet(broker, client_id))
        connack = client.recv()
        assert isinstance(connack, Connack), f"expected CONNACK, got {connack}"
        assert connack.reason_code == 0, f"CONNACK refused: {connack}"

        client.send(Subscribe(packet_id=1, subscriptions=(Subscription(topic, qos=1),)))
        suback = client.recv()
        assert isinstance(suback, Suback) and suback.packet_id == 1, f"expected SUBACK 1, got {suback}"
        assert suback.reason_codes == (1,), f"expected QoS 1 granted, got {suback}"

        client.send(Publish(topic=topic, payload=payload, qos=1, packet_id=2))
        puback: Puback | None = None
        delivered: Publish | None = None
        while puback is None or delivered is None:  # the broker may send either first
            packet = client.recv()
            if isinstance(packet, Puback):
                assert puback is None and packet.packet_id == 2, f"unexpected {packet}"
                puback = packet
            elif isinstance(packet, Publish):
                assert delivered is None, f"message delivered twice: {packet}"
                delivered = packet
            else:
                raise AssertionError(f"unexpected packet {packet}")
        assert puback.reason_code == 0
        assert delivered.topic == topic and delivered.payload == payload
        assert delivered.qos == 1 and delivered.packet_id
        client.send(Puback(packet_id=delivered.packet_id))
        client.send(Disconnect())
    finally:
        client.close()
    assert broker.alive()


@pytest.mark.parametrize("name", BROKER_PARAMS)
def test_stop_releases_ports_and_processes(brokers, name):
    broker = brokers.take(name)
    assert broker.process is not None and broker.alive()
    pgid = os.getpgid(broker.process.pid)
    assert pgid == broker.process.pid, "the broker must lead its own process group"
    ports = sorted(set(broker.ports.values()))
    workdir = broker.workdir
    assert workdir.is_dir()
    assert leftovers(pgid, workdir), "ps does not show the running broker"

    broker.stop()
    broker.stop()  # stopping twice is harmless
    assert not broker.alive()

    deadline = time.monotonic() + GONE_TIMEOUT
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(pgid), f"process group {pgid} still has members: {leftovers(pgid, workdir)}"
    assert leftovers(pgid, workdir) == []
    for port in ports:
        assert port_is_free(broker.host, port), f"port {port} is still in use after stop"
    assert not workdir.exists(), f"{workdir} was not removed"


@pytest.mark.parametrize("name", BROKER_PARAMS)
def test_context_manager_start_stop_leaves_nothing(name):
    """A second, independent instance: starting it works again and the context manager stops it."""
    cls = get_broker(name)
    with cls() as broker:
        pgid = broker.process.pid
        workdir = broker.workdir
        ports = sorted(set(broker.ports.values()))
        assert set(broker.ports) >= set(cls.versions)  # a port per version, and any other listener
        for port in ports:
            with socket.create_connection((broker.host, port), timeout=IO_TIMEOUT):
                pass
    deadline = time.monotonic() + GONE_TIMEOUT
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(pgid)
    assert leftovers(pgid, workdir) == []
    assert all(port_is_free(broker.host, port) for port in ports)


def test_a_port_taken_before_the_broker_binds_it_is_tried_again(monkeypatch):
    """free_port() releases the port it found; another process may bind it before the broker does.
    The broker then exits ("Address already in use") and is started again on fresh ports."""
    if not Mosquitto.available():
        pytest.skip("mosquitto is not installed")
    import conformance.brokers.base as module

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        handed_out = deque([taken])
        real = module.free_port
        monkeypatch.setattr(module, "free_port", lambda host="127.0.0.1": handed_out.popleft() if handed_out
                            else real(host))
        with Mosquitto() as broker:
            assert taken not in broker.ports.values()
            socket.create_connection((broker.host, broker.ports[Version.V50]), timeout=2).close()
