"""The control loop re-plans warm: the service's own composition, a real (embedded) broker."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from aggregator.app import start_service
from aggregator.domain import (
    DepartureConstraint,
    EventRecord,
    FleetProblem,
    GridEvent,
    Plan,
    Telemetry,
)
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


class _SlowBaselines:
    """A baseline planner that holds its solve until released; a settlement store stub."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.saved: list[str] = []

    def plan(self, problem: FleetProblem) -> Plan:
        self.started.set()
        assert self.release.wait(20.0)
        return PyomoPlanner(PlannerSettings(), builder="direct").plan(problem)

    # --- what the runtime asks of EventSettlements
    def baselines_due(self, now: datetime) -> list[SimpleNamespace]:
        event = SimpleNamespace(limits=(), start=NOW, end=NOW + timedelta(hours=1))
        return [] if self.saved else [SimpleNamespace(event=event)]

    def save_baseline(self, record: SimpleNamespace, plan: Plan, now: datetime) -> None:
        self.saved.append(plan.solver_path)

    def settle_due(self) -> list[object]:
        return []


def test_a_replan_does_not_wait_behind_an_event_baseline(tmp_path: Path) -> None:
    async def scenario() -> None:
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", NOW))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'prio.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(replan_minutes=60),
        )
        service = await start_service(settings, clock=FrozenClock(), scenario=problem)
        runtime = service.runtime
        slow = _SlowBaselines()
        runtime.baseline_planner = slow
        runtime.settlements = slow  # type: ignore[assignment]
        try:
            settling = asyncio.get_running_loop().create_task(runtime.settle_events())
            for _ in range(200):
                if slow.started.is_set():
                    break
                await asyncio.sleep(0.05)
            assert slow.started.is_set()
            n = len(runtime.plan_seconds)
            runtime.on_telemetry("t", Telemetry("depot", "c0", NOW, 0.0, True, "v0", 0.2))
            for _ in range(200):
                if len(runtime.plan_seconds) > n:
                    break
                await asyncio.sleep(0.05)
            # The re-plan is done while the baseline solve is still held.
            assert len(runtime.plan_seconds) > n
            assert not settling.done()
            slow.release.set()
            await asyncio.wait_for(settling, 20.0)
            assert slow.saved == ["lp"]
        finally:
            slow.release.set()
            await service.stop()

    asyncio.run(scenario())
