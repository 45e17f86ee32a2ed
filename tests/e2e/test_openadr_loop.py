"""A utility event from openleadr's real VTN changes what the site's chargers are told."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import start_service
from aggregator.demo import sync_constraints
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, OpenAdrConfig, PlanningConfig, RuntimeSettings
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.client import MqttSettings
from tests.e2e.scenarios import BASE_LOAD_KW, write_depot
from tests.openadr.vtn import PREFIX, Vtn, free_port

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
CAP_KW = 3.0


async def _until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def test_a_vtn_cap_event_is_opted_in_planned_and_lowers_the_setpoints(tmp_path: Path) -> None:
    async def scenario() -> None:
        vtn = Vtn(free_port())
        await vtn.start()
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
        clock = ScaledClock(problem.grid.start, 1.0)
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'vtn.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=3.0),
            openadr=OpenAdrConfig(
                vtn_url=f"http://127.0.0.1:{vtn.port}{PREFIX}",
                ven_name="fleet-ven",
                policy="feasible",
                poll_interval_s=0.3,
                disable_signature=True,
                mapping={"programs": {"*": {"simple_levels": {2: {"cap_kw": CAP_KW}}}}},
            ),
        )
        service = await start_service(settings, clock=clock, scenario=problem)
        sync_constraints(service.repo, problem, clock.now())
        sim = SiteSimulator(
            problem,
            MqttSettings(url=service.mqtt_url, client_id="sim", protocol="3.1.1"),
            clock,
            telemetry_period_s=0.2,
        )
        await sim.start()
        applied = sim.applied_setpoints
        try:
            assert service.ven is not None
            assert await _until(lambda: service.ven is not None and service.ven.registered, 15)
            assert await _until(
                lambda: any(s.charger_id == "c0" and s.power_kw > 5 for s in applied()), 15
            )
            start = datetime.now(UTC) + timedelta(seconds=2)
            event_id = vtn.server.add_event(
                ven_id=service.ven.ven_id,
                signal_name="SIMPLE",
                signal_type="level",
                intervals=[
                    {"dtstart": start, "duration": timedelta(minutes=5), "signal_payload": 2.0}
                ],
                callback=vtn.on_opt,
            )
            assert await _until(lambda: (event_id, "optIn") in vtn.opts, 15)
            ctl = service.controller

            def planned() -> bool:
                current = ctl.current
                return current is not None and any(
                    e.event_id.startswith(f"{event_id}/") for e in current.plan.events
                )

            assert await _until(planned, 15)
            assert ctl.current is not None
            (result,) = [e for e in ctl.current.plan.events if e.event_id.startswith(event_id)]
            assert max(result.planned_import_kw) <= CAP_KW + 1e-6
            # The site is told: c0 goes from charging at full power to what the cap leaves.
            seen = len(applied())
            assert await _until(lambda: len(applied()) > seen + 3, 10)
            latest = [s for s in applied()[seen:] if s.charger_id == "c0"][-1]
            assert latest.power_kw <= CAP_KW - BASE_LOAD_KW + 1e-6
        finally:
            await sim.stop()
            await service.stop()
            await vtn.stop()

    asyncio.run(scenario())
