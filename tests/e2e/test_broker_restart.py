"""The running service against a broker the test owns, restarted mid-run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.app import start_service
from aggregator.demo import sync_constraints
from aggregator.domain import Setpoint
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, PlanningConfig, RuntimeSettings
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttSettings
from tests.e2e.scenarios import write_depot
from tests.mqtt.mqtt_helpers import MOSQUITTO_BIN, OwnedMosquitto


async def _until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.skipif(not MOSQUITTO_BIN.exists(), reason="needs the mosquitto binary to own a broker")
def test_service_reconnects_after_a_broker_restart_and_the_site_ends_on_current_setpoints(
    tmp_path: Path,
) -> None:
    broker = OwnedMosquitto(tmp_path, free_port())
    broker.start()

    async def scenario() -> None:
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
        clock = ScaledClock(problem.grid.start, 1.0)
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'restart.db'}",
            mqtt=MqttConfig(url=broker.url),
            planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=2.0),
        )
        service = await start_service(settings, clock=clock, scenario=problem)
        sync_constraints(service.repo, problem, clock.now())
        sim = SiteSimulator(
            problem,
            MqttSettings(url=broker.url, client_id="sim"),
            clock,
            telemetry_period_s=0.2,
        )
        await sim.start()
        applied = sim.applied_setpoints
        try:
            assert await _until(
                lambda: any(s.charger_id == "c0" and s.power_kw > 0 for s in applied()), 15
            )
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(3.0)  # every setpoint the site holds expires meanwhile
            outage_over = clock.now()
            seen = len(applied())
            await asyncio.to_thread(broker.start)
            assert await _until(lambda: service.connector.reconnects >= 1, 30)
            assert await _until(lambda: len(applied()) > seen + 3, 30)
            await asyncio.sleep(1.0)

            after = applied()[seen:]
            # Nothing that expired during the outage was applied after it.
            assert all(s.valid_until > outage_over for s in after)
            # The site ends on current setpoints: each charger's latest is from the current
            # plan and still valid.
            latest: dict[str, Setpoint] = {}
            for s in applied():
                latest[s.charger_id] = s
            now = clock.now()
            current = service.controller.current
            assert current is not None
            assert {s.plan_id for s in latest.values()} == {current.plan_id}
            assert all(s.valid_until > now for s in latest.values())
        finally:
            await sim.stop()
            await service.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.stop()
