"""The whole service (store, embedded broker, control loop, API) on a background event loop,
reached over real HTTP. SQLite always; PostgreSQL too where a server answers (``db_url``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from aggregator.app import Service, create_operator, start_service
from aggregator.scenario import load_scenario
from aggregator.settings import ApiConfig, MqttConfig, PlanningConfig, RuntimeSettings
from connectors.mqtt.broker import free_port
from tests.e2e.scenarios import write_depot
from tests.sql.conftest import db_url, pg_database  # noqa: F401  (fixtures)

T = TypeVar("T")


@dataclass
class Running:
    service: Service
    url: str
    loop: asyncio.AbstractEventLoop
    operator: str  # the operator's API key

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the service's loop (the controller lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self.call(run())

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def running(db_url: str, tmp_path: Path) -> Iterator[Running]:  # noqa: F811
    yield from serve(db_url, tmp_path)


@pytest.fixture(scope="module")
def running_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One service for a whole module (the fuzzing runs thousands of requests against it)."""
    folder = tmp_path_factory.mktemp("service")
    yield from serve(f"sqlite:///{folder / 'aggregator.db'}", folder)


def serve(url: str, tmp_path: Path) -> Iterator[Running]:
    problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
    settings = RuntimeSettings(
        database_url=url,
        mqtt=MqttConfig(embedded_port=free_port()),
        planning=PlanningConfig(dispatch_seconds=1.0, time_limit_s=10),
        api=ApiConfig(port=0),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="service-loop", daemon=True)
    thread.start()
    try:
        service = asyncio.run_coroutine_threadsafe(
            start_service(settings, scenario=problem), loop
        ).result(timeout=60)
        assert service.api is not None
        token = create_operator(url, "root")
        yield Running(service, service.api.url, loop, token)
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
