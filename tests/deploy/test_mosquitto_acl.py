"""docker/mosquitto/acl, enforced by a real Mosquitto (Debian's, /usr/sbin/mosquitto).

Site A's gateway may publish its own telemetry and status and read its own setpoints; it must
receive nothing of site B's setpoints and its publishes on B's topics must reach nobody. An
``aggregator`` account subscribed to everything observes what the broker lets through.
"""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "docker" / "mosquitto" / "acl"
MOSQUITTO = Path("/usr/sbin/mosquitto")
PREFIX = "aggregator"  # the prefix the committed ACL is written for
PASSWORDS = {"aggregator": "agg-secret", "site-a": "a-secret", "site-b": "b-secret"}
TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    passwd_tool = shutil.which("mosquitto_passwd")
    if not MOSQUITTO.exists() or passwd_tool is None:
        pytest.skip("Debian's mosquitto is not installed (apt-get install mosquitto)")
    tmp = tmp_path_factory.mktemp("mosquitto")
    passwd = tmp / "passwd"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o600)
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    # Started as root, mosquitto would switch to user "mosquitto", who cannot read tmp_path.
    stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
    conf.write_text(
        stay + f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        f"acl_file {ACL}\n"
        "persistence false\n"
        "log_dest stderr\n"
    )
    log = (tmp / "mosquitto.log").open("w")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {(tmp / 'mosquitto.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("mosquitto does not listen")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


class Client:
    """A paho client (MQTT 3.1.1, as the contract's fallback) recording what it receives."""

    def __init__(self, port: int, user: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connected: queue.Queue[int] = queue.Queue()
        self._acks: queue.Queue[object] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{user}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connected.put(rc.value)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self._acks.put(codes)
        self.gone = threading.Event()
        self.client.on_disconnect = lambda *_args: self.gone.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connected.get(timeout=TIMEOUT) == 0, f"{user} could not log in"

    def subscribe(self, topic: str) -> list[int]:
        self.client.subscribe(topic, qos=1)
        codes = self._acks.get(timeout=TIMEOUT)
        return [c.value for c in codes]  # type: ignore[attr-defined]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=TIMEOUT)

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.gone.wait(TIMEOUT)  # the network thread has closed the socket
        self.client.loop_stop()


@pytest.fixture
def clients(broker_port: int) -> Iterator[dict[str, Client]]:
    made = {user: Client(broker_port, user) for user in PASSWORDS}
    yield made
    for client in made.values():
        client.close()


def setpoint(site: str, charger: str = "c1") -> str:
    return f"{PREFIX}/sites/{site}/chargers/{charger}/setpoint"


def telemetry(site: str, charger: str = "c1") -> str:
    return f"{PREFIX}/sites/{site}/chargers/{charger}/telemetry"


def test_a_site_reads_only_its_own_setpoints(clients: dict[str, Client]) -> None:
    agg, site_a = clients["aggregator"], clients["site-a"]
    assert site_a.subscribe(f"{PREFIX}/sites/site-a/chargers/+/setpoint") == [1]
    # Asking for B's setpoints, or for everything, is either refused or delivers nothing of B.
    site_a.subscribe(f"{PREFIX}/sites/site-b/chargers/+/setpoint")
    site_a.subscribe(f"{PREFIX}/#")
    # QoS 1 from one publisher keeps its order: once A has its own setpoint, B's (published
    # first) would have arrived before it.
    agg.publish(setpoint("site-b"), "for B")
    agg.publish(setpoint("site-a"), "for A")
    topic, payload = site_a.next_message()
    assert (topic, payload) == (setpoint("site-a"), b"for A")
    assert site_a.messages.empty()


def test_a_site_writes_only_its_own_telemetry_and_status(clients: dict[str, Client]) -> None:
    agg, site_a = clients["aggregator"], clients["site-a"]
    assert agg.subscribe(f"{PREFIX}/#") == [1]
    site_a.publish(telemetry("site-b"), "forged B telemetry")
    site_a.publish(f"{PREFIX}/sites/site-b/status", "offline")
    site_a.publish(setpoint("site-a"), "a site cannot command itself either")
    site_a.publish(telemetry("site-a"), "A telemetry")
    site_a.publish(f"{PREFIX}/sites/site-a/status", "online")
    got = [agg.next_message(), agg.next_message()]
    assert got == [
        (telemetry("site-a"), b"A telemetry"),
        (f"{PREFIX}/sites/site-a/status", b"online"),
    ]
    time.sleep(0.2)
    assert agg.messages.empty()


def test_site_b_gets_its_setpoints_and_a_wrong_password_is_refused(
    clients: dict[str, Client], broker_port: int
) -> None:
    agg, site_b = clients["aggregator"], clients["site-b"]
    site_b.subscribe(f"{PREFIX}/sites/site-b/chargers/+/setpoint")
    agg.publish(setpoint("site-b", "c7"), "for B")
    assert site_b.next_message() == (setpoint("site-b", "c7"), b"for B")

    refused: queue.Queue[int] = queue.Queue()
    intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    intruder.username_pw_set("site-a", "wrong")
    intruder.on_connect = lambda _c, _u, _f, rc, _p: refused.put(rc.value)
    gone = threading.Event()
    intruder.on_disconnect = lambda *_args: gone.set()
    intruder.connect("127.0.0.1", broker_port)
    intruder.loop_start()
    try:
        assert refused.get(timeout=TIMEOUT) != 0
    finally:
        intruder.disconnect()
        gone.wait(TIMEOUT)
        intruder.loop_stop()
