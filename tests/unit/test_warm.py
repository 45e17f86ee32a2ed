"""Warm re-plans give the cold plan of the same state; a structure change plans cold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from aggregator.domain import FleetProblem, Plan, SiteBattery
from models.planner import PlannerSettings, PyomoPlanner
from models.planner.warm import WarmPlanner
from tests.fleet_builders import cap_event, ev, make_problem

PRICES = [40.0, 30.0, 20.0, 80.0, 200.0, 90.0, 30.0, -10.0]


def problem(
    prices: Sequence[float] = PRICES,
    *,
    soc: float = 0.3,
    target: float = 0.8,
    last_departure: float = 12,
    shed: bool = True,
) -> FleetProblem:
    sessions = [
        ev(0, 6, arrival_soc=soc, target_soc=target, charge_efficiency=0.9),
        ev(
            1.5, 8, arrival_soc=0.6, target_soc=0.7, v2g=True, min_soc=0.2, discharge_efficiency=0.9
        ),
        ev(2, 7, energy_kwh=15.0, site="b"),
        ev(0, last_departure, arrival_soc=0.1, target_soc=0.9, site="b"),
    ]
    events = [cap_event("cap", 3, 5, cap_kw=20.0)]
    if shed:
        events.append(cap_event("shed", 5, 6, shed_kw=2.0))
    return make_problem(
        sessions,
        n_slots=8,
        site_limit_kw={"site-0": 18.0, "b": 25.0},
        export_limit_kw=10.0,
        base_load_kw=[3, 4, 5, 6, 6, 5, 4, 3],
        pv_kw={"b": [0, 0, 5, 9, 9, 5, 0, 0]},
        prices=list(prices),
        events=events,
        batteries=[SiteBattery("b", capacity_kwh=30, max_charge_kw=10, max_discharge_kw=10)],
        degradation_cost_per_mwh=40.0,
    )


def cold(p: FleetProblem) -> Plan:
    return PyomoPlanner(PlannerSettings(), builder="direct").plan(p)


def assert_same(warm: Plan, ref: Plan) -> None:
    assert warm.solver_path == ref.solver_path == "lp"
    assert warm.cost.total == pytest.approx(ref.cost.total, rel=1e-7, abs=1e-6)
    for a, b in zip(warm.schedules, ref.schedules, strict=True):
        assert a.session_id == b.session_id
        np.testing.assert_allclose(a.power_kw, b.power_kw, atol=1e-5)
    for site, power in ref.site_power_kw.items():
        np.testing.assert_allclose(warm.site_power_kw[site], power, atol=1e-5)


def test_warm_replan_of_the_same_state_is_the_cold_plan() -> None:
    planner = WarmPlanner()
    first = planner.plan(problem())
    assert not planner.last_warm
    second = planner.plan(problem())
    assert planner.last_warm
    assert second.timings_s["warm"] == 1.0
    assert second.timings_s["baseline_warm"] == 1.0
    assert second.timings_s["changed_entries"] == 0.0
    ref = cold(problem())
    assert_same(first, ref)
    assert_same(second, ref)


@pytest.mark.parametrize(
    "changed",
    [
        problem([p * 1.5 - 20.0 for p in reversed(PRICES)]),  # a new price series: costs
        problem(soc=0.5),  # measured SoC: row and column bounds
        problem(target=0.95),  # a changed departure energy: row bounds
    ],
    ids=["prices", "soc", "departure-energy"],
)
def test_warm_replan_after_costs_or_bounds_change_is_the_cold_plan(changed: FleetProblem) -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    plan = planner.plan(changed)
    assert planner.last_warm
    assert plan.timings_s["changed_entries"] > 0
    assert_same(plan, cold(changed))


@pytest.mark.parametrize(
    "changed",
    [problem(last_departure=6), problem(shed=False)],
    ids=["departure-slot-moves", "event-removed"],
)
def test_a_structure_change_plans_cold(changed: FleetProblem) -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    plan = planner.plan(changed)
    assert not planner.last_warm
    assert plan.timings_s["warm"] == 0.0
    assert_same(plan, cold(changed))
    # ... and the new structure is kept for the next re-plan.
    assert_same(planner.plan(changed), plan)
    assert planner.last_warm


def test_reset_forgets_the_kept_model() -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    planner.reset()
    planner.plan(problem())
    assert not planner.last_warm
