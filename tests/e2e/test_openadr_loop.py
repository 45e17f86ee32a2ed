"""A utility event from openleadr's real VTN changes what the site's chargers are told."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import start_service
from aggregator.demo import sync_constraints
from aggregator.scenario import load_scenario
from aggregator.settings import (
    MqttConfig,
    OpenAdrConfig,
    PlanningConfig,
    RuntimeSettings,
    SettlementConfig,
)
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


def test_an_event_that_ran_is_settled_against_the_plan_made_without_it(tmp_path: Path) -> None:
    """The VTN's cap runs for 12 s; then the baseline (the plan without the event, captured
    at acceptance), the metered telemetry and the compliance are stored."""

    async def scenario() -> None:
        vtn = Vtn(free_port())
        await vtn.start()
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
        clock = ScaledClock(problem.grid.start, 1.0)
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'settle.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=3.0),
            openadr=OpenAdrConfig(
                vtn_url=f"http://127.0.0.1:{vtn.port}{PREFIX}",
                ven_name="fleet-ven",
                poll_interval_s=0.3,
                disable_signature=True,
                mapping={"programs": {"*": {"simple_levels": {2: {"cap_kw": CAP_KW}}}}},
            ),
            settlement=SettlementConfig(grace_minutes=0.05),
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
        try:
            assert service.ven is not None and service.settlements is not None
            assert await _until(lambda: service.ven is not None and service.ven.registered, 15)
            assert await _until(
                lambda: any(
                    s.charger_id == "c0" and s.power_kw > 5 for s in sim.applied_setpoints()
                ),
                15,
            )
            start = datetime.now(UTC) + timedelta(seconds=6)  # room for poll, plan, dispatch
            event_id = vtn.server.add_event(
                ven_id=service.ven.ven_id,
                signal_name="SIMPLE",
                signal_type="level",
                intervals=[
                    {"dtstart": start, "duration": timedelta(seconds=12), "signal_payload": 2.0}
                ],
                callback=vtn.on_opt,
            )
            assert await _until(lambda: (event_id, "optIn") in vtn.opts, 15)
            store = service.settlements.store
            assert await _until(lambda: store.baseline(event_id) is not None, 10)
            baseline = store.baseline(event_id)
            assert baseline is not None
            # Without the cap, c0 charges at 10 kW on top of the 2 kW base load.
            assert baseline.site_power_kw["depot"][0] == pytest.approx(10.0 + BASE_LOAD_KW)
            assert await _until(lambda: store.settlement(event_id) is not None, 30)
            record = store.settlement(event_id)
            assert record is not None and record.status == "settled", record
            s = record.settlement
            assert s is not None and s.baseline == "plan"
            (interval,) = s.intervals
            assert interval.baseline_kw == pytest.approx(12.0)
            assert interval.metered_kw <= CAP_KW + 1e-6
            assert interval.cap_met and s.caps_met and s.compliance == pytest.approx(1.0)
            assert s.delivered_kwh == pytest.approx(
                (12.0 - interval.metered_kw) * 12 / 3600, rel=1e-6
            )
            assert "no meter baseline" in record.reason  # no history before today
            held = service.events.store.get(event_id) if service.events else None
            assert held is not None and held.state == "completed"
        finally:
            await sim.stop()
            await service.stop()
            await vtn.stop()

    asyncio.run(scenario())
