"""The control loop re-plans warm: the service's own composition, a real (embedded) broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import start_service
from aggregator.domain import DepartureConstraint, EventRecord, GridEvent, Telemetry
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, PlanningConfig, RuntimeSettings
from connectors.mqtt.broker import free_port
from models.planner import PlannerSettings, PyomoPlanner
from models.planner.warm import KIND_CODE, WarmPlanner
from tests.e2e.scenarios import write_depot

NOW = datetime(2025, 1, 6, 8, 7, 30, tzinfo=UTC)


class FrozenClock:
    """Time stands still: consecutive re-plans see the same horizon (no MPC roll)."""

    def now(self) -> datetime:
        return NOW


def test_the_control_loops_second_replan_is_warm_and_is_the_cold_plan(tmp_path: Path) -> None:
    async def scenario() -> None:
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", NOW))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'warm.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(replan_minutes=60),  # no periodic re-plan in this test
        )
        service = await start_service(settings, clock=FrozenClock(), scenario=problem)
        runtime, ctl = service.runtime, service.controller
        assert isinstance(runtime.planner, WarmPlanner)
        assert not isinstance(runtime.baseline_planner, WarmPlanner)

        async def replanned(action: object = None) -> dict[str, float]:
            n = len(runtime.plan_seconds)
            if asyncio.iscoroutine(action):
                await action
            for _ in range(200):
                if len(runtime.plan_seconds) > n and not runtime._replanning:
                    assert ctl.current is not None
                    # The plan the loop adopted is the cold plan of the state it planned.
                    cold = PyomoPlanner(PlannerSettings(), builder="direct").plan(
                        ctl.build_problem(NOW)
                    )
                    assert ctl.current.plan.cost.total == pytest.approx(
                        cold.cost.total, rel=1e-7, abs=1e-6
                    )
                    return ctl.current.plan.timings_s
                await asyncio.sleep(0.05)
            pytest.fail("no re-plan within 10 s")

        try:
            # An arrival, then its departure constraint: the LP's structure changes, the new
            # model starts from the kept basis carried over.
            runtime.on_telemetry("t", Telemetry("depot", "c0", NOW, 0.0, True, "v0", 0.2))
            assert (await replanned())["warm_kind"] == KIND_CODE["remapped"]
            leave = NOW + timedelta(hours=2)
            constraint = DepartureConstraint("v0", leave, target_soc=0.6)
            timings = await replanned(runtime.submit_constraint(constraint))
            assert timings["warm_kind"] == KIND_CODE["remapped"]
            # The second re-plan of the same state: warm, nothing to change.
            runtime.request_replan("test")
            timings = await replanned()
            assert timings["warm"] == 1.0
            assert timings["warm_kind"] == KIND_CODE["bounds"]
            assert timings["changed_entries"] == 0.0
            # A new target for the same departure moves bounds only: warm.
            constraint = DepartureConstraint("v0", leave, target_soc=0.7)
            timings = await replanned(runtime.submit_constraint(constraint))
            assert timings["warm"] == 1.0
            assert timings["changed_entries"] > 0
            # A new grid event adds cap rows to the kept model: warm.
            event = GridEvent("dr-now", NOW, NOW + timedelta(hours=1), cap_kw=6.0)
            timings = await replanned(runtime.submit_event(EventRecord(event, 0, "active", NOW)))
            assert timings["warm"] == 1.0
            assert timings["warm_kind"] == KIND_CODE["rows added"]
            assert ctl.current is not None
            assert [e.event_id for e in ctl.current.plan.events] == ["dr-now"]
        finally:
            await service.stop()

    asyncio.run(scenario())
