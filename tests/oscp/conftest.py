"""The whole service with the OSCP provider on a background loop, and a capacity provider."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aggregator.app import Service, start_service
from aggregator.domain import Telemetry
from aggregator.scenario import load_scenario
from aggregator.settings import ApiConfig, MqttConfig, OscpConfig, PlanningConfig, RuntimeSettings
from connectors.mqtt.broker import free_port
from tests.e2e.scenarios import write_depot
from tests.oscp.peer import CapacityProvider

T = TypeVar("T")
FP_TOKEN = "fp-secret-token"  # the capacity provider calls us with it
CP_TOKEN = "cp-secret-token"  # we call the capacity provider with it


@dataclass
class Running:
    service: Service
    loop: asyncio.AbstractEventLoop
    cp: CapacityProvider

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self.call(run())

    def plug(self, charger: str, vehicle: str, soc: float) -> None:
        reading = Telemetry("depot", charger, datetime.now(UTC), 0.0, True, vehicle, soc)
        self.on_loop(lambda: self.service.runtime.on_telemetry("t", reading))

    def wait(self, pred: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.on_loop(pred):
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")


@pytest.fixture
def oscp_service(tmp_path: Path) -> Iterator[Running]:
    cp = CapacityProvider(CP_TOKEN).start()
    problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'oscp.db'}",
        mqtt=MqttConfig(embedded_port=free_port()),
        planning=PlanningConfig(dispatch_seconds=1.0, time_limit_s=10),
        api=ApiConfig(enabled=False),
        oscp=OscpConfig(
            port=0,
            cp_url=cp.url,
            token=FP_TOKEN,
            cp_token=CP_TOKEN,
            groups={"depot-group": ["depot"]},
            heartbeat_interval_s=0.5,
            measurement_interval_s=0.5,
            adjust_check_s=0.2,
        ),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="service-loop", daemon=True)
    thread.start()
    try:
        service = asyncio.run_coroutine_threadsafe(
            start_service(settings, scenario=problem), loop
        ).result(timeout=60)
        yield Running(service, loop, cp)
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(timeout=60)
    finally:
        cp.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
