"""Warm re-plans give the cold plan of the same state; a structure change plans cold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from aggregator.domain import FleetProblem, GridEvent, Plan, SiteBattery, TimeGrid
from models.planner import PlannerSettings, PyomoPlanner
from models.planner.warm import KIND_CODE, WarmPlanner
from tests.fleet_builders import cap_event, ev, make_problem

PRICES = [40.0, 30.0, 20.0, 80.0, 200.0, 90.0, 30.0, -10.0]


def problem(
    prices: Sequence[float] = PRICES,
    *,
    soc: float = 0.3,
    target: float = 0.8,
    last_departure: float = 12,
    v2g_arrival: float = 1.5,
    shed: bool = True,
    extra: Sequence[GridEvent] = (),
    first: Sequence[GridEvent] = (),
) -> FleetProblem:
    sessions = [
        ev(0, 6, arrival_soc=soc, target_soc=target, charge_efficiency=0.9),
        ev(
            v2g_arrival,
            8,
            arrival_soc=0.6,
            target_soc=0.7,
            v2g=True,
            min_soc=0.2,
            discharge_efficiency=0.9,
        ),
        ev(2, 7, energy_kwh=15.0, site="b"),
        ev(0, last_departure, arrival_soc=0.1, target_soc=0.9, site="b"),
    ]
    events = [*first, cap_event("cap", 3, 5, cap_kw=20.0)]
    if shed:
        events.append(cap_event("shed", 5, 6, shed_kw=2.0))
    events.extend(extra)
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


def assert_same(warm: Plan, ref: Plan, *, unique: bool = True) -> None:
    """Same objective; with ``unique`` (the optimum is unique) also the same powers."""
    assert warm.solver_path == ref.solver_path == "lp"
    assert warm.cost.total == pytest.approx(ref.cost.total, rel=1e-7, abs=1e-6)
    assert [e.event_id for e in warm.events] == [e.event_id for e in ref.events]
    if not unique:
        for we, ce in zip(warm.events, ref.events, strict=True):
            assert we.violation_kwh == pytest.approx(ce.violation_kwh, abs=1e-6)
        return
    for a, b in zip(warm.schedules, ref.schedules, strict=True):
        assert a.session_id == b.session_id
        np.testing.assert_allclose(a.power_kw, b.power_kw, atol=1e-5)
    for site, power in ref.site_power_kw.items():
        np.testing.assert_allclose(warm.site_power_kw[site], power, atol=1e-5)
    for we, ce in zip(warm.events, ref.events, strict=True):
        np.testing.assert_allclose(we.cap_kw, ce.cap_kw, atol=1e-6)
        np.testing.assert_allclose(we.planned_import_kw, ce.planned_import_kw, atol=1e-5)


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
    ("changed", "kind"),
    [
        # a new price series: costs
        (problem([p * 1.5 - 20.0 for p in reversed(PRICES)]), "bounds"),
        # measured SoC (telemetry): row and column bounds
        (problem(soc=0.5), "bounds"),
        # a changed departure energy: row bounds
        (problem(target=0.95), "bounds"),
        # a departure later within its last slot: its share of that slot, i.e. the 1/share
        # coefficients of the instantaneous site row and the one-direction row
        (problem(v2g_arrival=1.2), "coefficients"),
        # a new event cap whose window starts after the kept ones: rows and slack columns
        # appended to the kept model
        (problem(extra=[cap_event("new", 6, 8, cap_kw=12.0)]), "rows added"),
        # ... and one that starts first: the planner appends it all the same
        (problem(first=[cap_event("early", 0, 3, cap_kw=15.0, sites=["b"])]), "rows added"),
    ],
    ids=["prices", "soc", "departure-energy", "arrival-within-slot", "new-cap", "new-cap-first"],
)
def test_warm_replan_after_a_change_is_the_cold_plan(changed: FleetProblem, kind: str) -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    plan = planner.plan(changed)
    assert planner.last_warm
    assert planner.last_kind == kind
    assert plan.timings_s["warm_kind"] == KIND_CODE[kind]
    assert plan.timings_s["changed_entries"] > 0
    assert_same(plan, cold(changed))
    # The model now holds the new state: the same state again is warm with nothing to change.
    again = planner.plan(changed)
    assert planner.last_kind == "bounds"
    assert again.timings_s["changed_entries"] == 0.0
    assert_same(again, cold(changed))


def test_a_new_cap_with_a_price_update_and_new_soc_at_once_is_the_cold_plan() -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    changed = problem(
        [p + 25.0 for p in PRICES], soc=0.45, extra=[cap_event("new", 2, 7, cap_kw=9.0)]
    )
    plan = planner.plan(changed)
    assert planner.last_kind == "rows added"
    # Here the optimum is not unique (a charger can take a kWh in slot 2 or 3 at equal cost).
    assert_same(plan, cold(changed), unique=False)


def rolled(p: FleetProblem, slots: int = 1) -> FleetProblem:
    """The same state on a horizon that starts ``slots`` later (the MPC roll)."""
    g = p.grid
    return replace(p, grid=TimeGrid(g.start + g.step * slots, g.step, g.n_slots))


def with_arrival(p: FleetProblem) -> FleetProblem:
    """One more vehicle plugged in (at site b, slots 1-5)."""
    extra = make_problem([ev(1, 5, arrival_soc=0.4, target_soc=0.9, site="b")])
    (s,) = extra.sessions
    s = replace(s, session_id="s-new", vehicle_id="v-new", charger_id="c-new")
    (c,) = extra.chargers
    (v,) = extra.vehicles
    return replace(
        p,
        sessions=(*p.sessions, s),
        chargers=(*p.chargers, replace(c, charger_id="c-new", site_id="b")),
        vehicles=(*p.vehicles, replace(v, vehicle_id="v-new")),
    )


@pytest.mark.parametrize(
    "changed",
    [
        problem(last_departure=6),
        problem(shed=False),
        with_arrival(problem()),
        rolled(problem()),
        rolled(problem([p + 10.0 for p in PRICES], soc=0.4), 2),
    ],
    ids=["departure-slot-moves", "event-removed", "session-arrives", "roll-1", "roll-2-new-state"],
)
def test_a_structure_change_starts_from_the_carried_basis(changed: FleetProblem) -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    plan = planner.plan(changed)
    assert planner.last_kind == "remapped"
    assert plan.timings_s["warm_kind"] == KIND_CODE["remapped"]
    assert_same(plan, cold(changed), unique=False)
    # ... and the new structure is kept for the next re-plan.
    again = planner.plan(changed)
    assert planner.last_kind == "bounds"
    assert_same(again, plan)


def test_another_slot_length_plans_cold() -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    p = problem()
    changed = replace(p, grid=TimeGrid(p.grid.start, p.grid.step / 2, p.grid.n_slots))
    plan = planner.plan(changed)
    assert not planner.last_warm
    assert plan.timings_s["warm"] == 0.0
    assert plan.timings_s["warm_kind"] == KIND_CODE["cold"]
    assert_same(plan, cold(changed))
    assert_same(planner.plan(changed), plan)
    assert planner.last_warm


def test_reset_forgets_the_kept_model() -> None:
    planner = WarmPlanner()
    planner.plan(problem())
    planner.reset()
    planner.plan(problem())
    assert not planner.last_warm
