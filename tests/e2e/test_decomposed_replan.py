"""With ``planning.decomposition`` set, the control loop plans a fleet of many sites per site."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aggregator.app import start_service
from aggregator.scenario import load_scenario
from aggregator.settings import DecompositionConfig, MqttConfig, PlanningConfig, RuntimeSettings
from connectors.mqtt.broker import free_port
from models.decomposition import DecomposingPlanner

SCENARIO = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "depot_v2g_dr.yaml"


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


def test_the_control_loop_plans_per_site_on_dask_and_closes_the_cluster(tmp_path: Path) -> None:
    problem = load_scenario(SCENARIO)
    problem = replace(problem, events=())  # events arrive over OpenADR; none here
    assert len(problem.sites) == 2
    now = problem.grid.start.astimezone(UTC)

    async def scenario() -> None:
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'dec.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(
                replan_minutes=60, decomposition=DecompositionConfig(min_sites=2, workers=1)
            ),
        )
        service = await start_service(settings, clock=FrozenClock(now), scenario=problem)
        runtime, ctl = service.runtime, service.controller
        planner = runtime.planner
        assert isinstance(planner, DecomposingPlanner)
        try:
            runtime.request_replan("test")
            for _ in range(600):
                if ctl.current is not None and not runtime._replanning:
                    break
                await asyncio.sleep(0.05)
            assert ctl.current is not None, "no plan within 30 s"
            plan = ctl.current.plan
            assert plan.solver_status.startswith("decomposed")
            assert set(plan.site_power_kw) == {s.site_id for s in problem.sites}
            assert plan.timings_s["decomposition_iterations"] == 1  # no fleet-wide cap
        finally:
            await service.stop()
        assert planner._client is None and planner._cluster is None

    asyncio.run(scenario())
