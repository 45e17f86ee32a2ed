"""The simulator on a real broker: setpoints in and telemetry out on the contract's topics.

An embedded amqtt broker runs on the test's own event loop, next to the simulator; a raw paho
client plays the aggregator (``encode_setpoint`` out, ``decode_telemetry`` in).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.domain import (
    Charger,
    FleetProblem,
    Prices,
    Session,
    Setpoint,
    Site,
    Telemetry,
    TimeGrid,
    Vehicle,
)
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.settings import MqttSettings
from connectors.mqtt.translate import Topics, decode_telemetry, encode_setpoint

SITE = "depot"
SAFE_KW = 1.5


class Aggregator:
    """A raw paho client: subscribes to the site's telemetry, publishes setpoints (QoS 1)."""

    def __init__(self, port: int, topics: Topics) -> None:
        self.topics = topics
        self.readings: list[tuple[float, Telemetry]] = []  # (wall time received, reading)
        self._lock = threading.Lock()
        self._up = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"agg-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(self.topics.all_telemetry, qos=0)
        self._up.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        reading = decode_telemetry(self.topics, msg.topic, bytes(msg.payload))
        with self._lock:
            self.readings.append((time.time(), reading))

    def connected(self) -> bool:
        return self._up.is_set()

    def received(self) -> list[tuple[float, Telemetry]]:
        with self._lock:
            return list(self.readings)

    def send(self, sp: Setpoint) -> None:
        self.client.publish(self.topics.setpoint(sp.site_id, sp.charger_id), encode_setpoint(sp), 1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def problem_around(now: datetime) -> FleetProblem:
    """One V2G-less car plugged in from an hour ago to an hour from now, at 50 % of 60 kWh."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return FleetProblem(
        grid=TimeGrid(start, timedelta(hours=1), 4),
        sites=(Site(SITE, 50.0),),
        chargers=(Charger("c1", SITE, 11.0),),
        vehicles=(Vehicle("ev-1", 60.0, 11.0),),
        sessions=(
            Session(
                "s1", "ev-1", "c1", now - timedelta(hours=1), now + timedelta(hours=1), 0.5, 0.9
            ),
        ),
        prices=Prices.flat(50.0, 4),
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def setpoint_round_trip() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    prefix = f"simtest-{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    clock = ScaledClock()  # real time, speed 1
    settings = MqttSettings(
        url=broker.url, prefix=prefix, client_id=f"sim-{uuid.uuid4().hex[:8]}", protocol="3.1.1"
    )
    sim = SiteSimulator(
        problem_around(clock.now()),
        settings,
        clock,
        telemetry_period_s=0.2,
        safe_power_kw=SAFE_KW,
    )
    aggregator = Aggregator(broker.port, topics)
    try:
        assert await eventually(aggregator.connected)
        await sim.start()
        # Before any setpoint the charger runs on safe power and says so.
        assert await eventually(
            lambda: any(r.status == "fallback" for _, r in aggregator.received())
        )

        now = clock.now()
        sp = Setpoint("c1", SITE, 7.0, now, now + timedelta(seconds=2), "plan-1", seq=1)
        aggregator.send(sp)
        assert await eventually(lambda: sim.applied_setpoints() == [sp])

        def charging() -> list[Telemetry]:
            return [r for _, r in aggregator.received() if r.status == "charging"]

        assert await eventually(lambda: bool(charging()))
        first = charging()[0]
        assert (first.site_id, first.charger_id, first.vehicle_id) == (SITE, "c1", "ev-1")
        assert first.plugged and first.power_kw == 7.0
        assert first.soc is not None and 0.5 <= first.soc < 0.51

        def fell_back() -> list[tuple[float, Telemetry]]:
            return [
                (wall, r)
                for wall, r in aggregator.received()
                if r.status == "fallback" and r.ts >= sp.valid_until
            ]

        assert await eventually(lambda: bool(fell_back()), timeout=5.0)
        wall, reading = fell_back()[0]
        assert reading.power_kw == SAFE_KW
        deadline = sp.valid_until + timedelta(seconds=1)
        assert datetime.fromtimestamp(wall, UTC) <= deadline
        # Nothing was drawn at the setpoint's power after it expired.
        late = [r for _, r in aggregator.received() if r.ts >= sp.valid_until]
        assert all(r.power_kw == SAFE_KW for r in late)
    finally:
        await sim.stop()
        aggregator.close()
        await broker.stop()


def test_setpoint_over_mqtt_is_applied_then_expires_to_safe_power_within_a_second() -> None:
    asyncio.run(setpoint_round_trip())
