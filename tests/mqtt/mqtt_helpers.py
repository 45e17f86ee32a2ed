"""Test helpers for the MQTT connector: brokers the tests own, a raw paho peer, a recorder."""

from __future__ import annotations

import asyncio
import getpass
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.domain import Setpoint, SiteStatus, Telemetry
from connectors.mqtt.broker import EmbeddedBroker

MOSQUITTO_BIN = Path("/usr/sbin/mosquitto")
T = TypeVar("T")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 20 ms until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def setpoint(
    charger_id: str = "c1",
    *,
    site_id: str = "s1",
    seq: int = 1,
    power_kw: float = 7.5,
    valid_s: float = 60.0,
    issued_ago_s: float = 0.0,
) -> Setpoint:
    now = datetime.now(UTC)
    issued = now - timedelta(seconds=issued_ago_s)
    return Setpoint(
        charger_id=charger_id,
        site_id=site_id,
        power_kw=power_kw,
        issued_at=issued,
        valid_until=now + timedelta(seconds=valid_s),
        plan_id="plan-1",
        seq=seq,
    )


def telemetry(charger_id: str = "c1", *, site_id: str = "s1", soc: float | None = 0.5) -> Telemetry:
    return Telemetry(
        site_id=site_id,
        charger_id=charger_id,
        ts=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        power_kw=-3.2,
        plugged=True,
        vehicle_id="ev-7",
        soc=soc,
    )


# --------------------------------------------------------------------------- asyncio in a thread


class BackgroundLoop:
    """An asyncio loop on a daemon thread, so sync tests can host the (asyncio) amqtt broker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


# --------------------------------------------------------------------------- brokers


@dataclass(frozen=True)
class BrokerUnderTest:
    name: str
    url: str
    supports_v5: bool


class OwnedMosquitto:
    """A Mosquitto process on a port of our choosing, stopped and started at will."""

    name = "mosquitto-process"
    supports_v5 = True

    def __init__(self, tmp_path: Path, port: int, extra_config: str = "") -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self._config = tmp_path / "mosquitto.conf"
        anonymous = "false" if "password_file" in extra_config else "true"
        self._config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous {anonymous}\npersistence false\n"
            # Run as whoever runs the tests, so that it can read files in tmp_path.
            f"user {getpass.getuser()}\n{extra_config}"
        )
        self._log = tmp_path / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(MOSQUITTO_BIN), "-c", str(self._config)], stdout=log, stderr=log
            )
        if not wait_until(lambda: port_answers("127.0.0.1", self.port, 0.2), timeout=5):
            self.stop()
            raise RuntimeError(f"mosquitto did not listen on {self.port}: {self._log.read_text()}")

    def stop(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.terminate()
            proc.wait(5)


class OwnedEmbedded:
    """An amqtt broker on a fixed port, stopped and started again in-process."""

    name = "amqtt-restart"
    supports_v5 = False

    def __init__(self, loop: BackgroundLoop, port: int) -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self._loop = loop
        self._broker = EmbeddedBroker(port=port)

    def start(self) -> None:
        self._loop.run(self._broker.start())

    def stop(self) -> None:
        self._loop.run(self._broker.stop())


# --------------------------------------------------------------------------- peers


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: Any


class RawClient:
    """A plain paho client for the other end of the wire: publish anything, record everything."""

    def __init__(self, url: str, *, v5: bool = False, client_id: str = "") -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        self._client.on_message = self._record
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(host, int(port))
        self._client.loop_start()

    def _record(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, msg.retain, msg.properties))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscribed.clear()
        self._client.subscribe(topic, qos)
        assert self._subscribed.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class RecordingHandler:
    """A ``TelemetryHandler`` that keeps what it is given."""

    telemetry: list[tuple[str, Telemetry]] = field(default_factory=list)
    statuses: list[SiteStatus] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None:
        self.telemetry.append((topic, telemetry))

    def on_site_status(self, status: SiteStatus) -> None:
        self.statuses.append(status)

    def on_reject(self, topic: str, reason: str) -> None:
        self.rejects.append((topic, reason))

    def online(self, site_id: str) -> bool | None:
        """The last status seen for the site, None if none yet."""
        seen = [s.online for s in self.statuses if s.site_id == site_id]
        return seen[-1] if seen else None
