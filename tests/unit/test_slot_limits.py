"""Per-slot site import/export limits (a DSO's capacity): they hold in every planner path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from aggregator.domain import FleetProblem, ValidationError
from aggregator.domain.problem import apply_site_limits, site_limit_event_id
from models.heuristic import heuristic_powers
from models.planner import PlannerSettings, PyomoPlanner, build_lp, compile_problem
from models.planner.evaluate import build_plan
from tests.fleet_builders import cap_event, ev, make_problem

TOL = 1e-6


def with_limits(
    problem: FleetProblem,
    *,
    imp: Sequence[float] = (),
    exp: Sequence[float] = (),
    site: str = "site-0",
) -> FleetProblem:
    sites = tuple(
        replace(s, import_limit_kw_slots=tuple(imp), export_limit_kw_slots=tuple(exp))
        if s.site_id == site
        else s
        for s in problem.sites
    )
    return replace(problem, sites=sites)


def test_slot_limits_are_validated() -> None:
    problem = make_problem([ev(0, 4)], n_slots=4)
    with pytest.raises(ValidationError, match="import_limit_kw_slots"):
        with_limits(problem, imp=[5.0, 5.0])
    with pytest.raises(ValidationError, match="export_limit_kw_slots"):
        with_limits(problem, exp=[5.0, -1.0, 5.0, 5.0])


def test_effective_limit_is_the_smaller_of_static_and_slot() -> None:
    problem = with_limits(
        make_problem([ev(0, 4)], n_slots=4, site_limit_kw=20.0), imp=[5, 50, 0, 7]
    )
    cp = compile_problem(problem)
    np.testing.assert_allclose(cp.import_limit_kw, [[5, 20, 0, 7]])
    np.testing.assert_allclose(cp.export_limit_kw, [[0, 0, 0, 0]])


@pytest.mark.parametrize("builder", ["pyomo", "direct"])
def test_import_limit_per_slot_holds_even_when_the_vehicle_leaves_short(builder: str) -> None:
    # 24 kWh wanted in 4 h; capacity 3 kW in slots 0-1 and 4 kW after: at most 14 kWh.
    spec = ev(0, 4, arrival_soc=0.2, target_soc=0.6)
    problem = with_limits(
        make_problem([spec], n_slots=4, site_limit_kw=20.0, base_load_kw=[1, 1, 1, 1]),
        imp=[3, 3, 4, 4],
    )
    plan = PyomoPlanner(builder=builder).plan(problem)  # type: ignore[arg-type]
    assert plan.solver_path == "lp"
    net = np.asarray(plan.site_power_kw["site-0"])
    assert np.all(net <= np.asarray([3, 3, 4, 4]) + TOL)
    (outcome,) = plan.outcomes
    assert outcome.shortfall_kwh == pytest.approx(24 - 10)
    assert outcome.reason == "limited by site site-0 import limit"
    assert plan.cost.site_limit_penalty == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("builder", ["pyomo", "direct"])
def test_export_limit_per_slot_holds_with_v2g(builder: str) -> None:
    spec = ev(0, 4, arrival_soc=0.9, target_soc=0.2, v2g=True)
    prices = [500.0, 500.0, 500.0, 500.0]
    problem = with_limits(
        make_problem([spec], n_slots=4, export_limit_kw=50.0, prices=prices), exp=[2, 0, 6, 50]
    )
    plan = PyomoPlanner(builder=builder).plan(problem)  # type: ignore[arg-type]
    net = np.asarray(plan.site_power_kw["site-0"])
    np.testing.assert_allclose(net, [-2, 0, -6, -10], atol=TOL)


def test_instantaneous_rows_use_the_slot_limit() -> None:
    # Leaves half-way through slot 1: there it draws twice its average while plugged in.
    problem = with_limits(
        make_problem([ev(0, 1.5, arrival_soc=0.1, target_soc=0.9)], n_slots=3, site_limit_kw=20.0),
        imp=[20, 6, 20],
    )
    plan = PyomoPlanner(builder="direct").plan(problem)
    assert plan.site_power_kw["site-0"][1] <= 3.0 + TOL
    assert plan.cost.site_limit_penalty == pytest.approx(0.0, abs=1e-6)


def test_both_builds_state_the_same_lp_with_slot_limits() -> None:
    sessions = [
        ev(0, 3.5, arrival_soc=0.3, target_soc=0.9),
        ev(0.5, 6, arrival_soc=0.8, target_soc=0.4, v2g=True),
    ]
    problem = with_limits(
        make_problem(sessions, n_slots=6, site_limit_kw=30.0, export_limit_kw=20.0),
        imp=[8, 6, 4, 10, 30, 30],
        exp=[1, 2, 3, 0, 5, 20],
    )
    cp = compile_problem(problem)
    settings = PlannerSettings()
    a, _ = build_lp(cp, settings, "pyomo")
    b, _ = build_lp(cp, settings, "direct")
    np.testing.assert_allclose(a.col_ub, b.col_ub)
    np.testing.assert_allclose(a.c, b.c, atol=1e-12)
    assert sorted(zip(a.row_lb.round(9), a.row_ub.round(9), strict=True)) == sorted(
        zip(b.row_lb.round(9), b.row_ub.round(9), strict=True)
    )
    plans = [PyomoPlanner(builder=x).plan(problem) for x in ("pyomo", "direct")]  # type: ignore[attr-defined]
    assert plans[0].cost.total == pytest.approx(plans[1].cost.total, rel=1e-6, abs=1e-6)


def test_heuristic_respects_the_slot_limit() -> None:
    sessions = [ev(0, 4, arrival_soc=0.2, target_soc=0.9), ev(1, 4, arrival_soc=0.5)]
    problem = with_limits(
        make_problem(sessions, n_slots=4, site_limit_kw=30.0, base_load_kw=[2, 2, 2, 2]),
        imp=[5, 12, 3, 30],
    )
    cp = compile_problem(problem)
    pc, pd, batt = heuristic_powers(cp)
    plan = build_plan(
        cp, pc, pd, batt, PlannerSettings(), solver_path="heuristic", solver_status="test"
    )
    net = np.asarray(plan.site_power_kw["site-0"])
    assert np.all(net <= np.asarray([5, 12, 3, 30]) + TOL)
    assert plan.cost.site_limit_penalty == 0.0


def test_site_limit_events_become_per_slot_limits_shared_by_static_limit() -> None:

    problem = make_problem(n_slots=4, site_limit_kw={"a": 30.0, "b": 10.0}, export_limit_kw=5.0)
    events = [
        replace(cap_event("x", 0, 1.5, cap_kw=8.0), event_id=site_limit_event_id("import", "g/0")),
        replace(cap_event("x", 1, 2, cap_kw=4.0), event_id=site_limit_event_id("import", "g/1")),
        replace(cap_event("x", 3, 4, cap_kw=2.0, sites=["b"]), event_id="limit/export/g/0"),
        cap_event("ordinary", 0, 4, cap_kw=1.0),  # not a site limit: ignored
    ]
    a, b = apply_site_limits(problem.grid, problem.sites, events)
    # 3/4 to a, 1/4 to b; slot 1 touched by both blocks: the tighter holds.
    assert a.import_limit_kw_slots == (6.0, 3.0, 30.0, 30.0)
    assert b.import_limit_kw_slots == (2.0, 1.0, 10.0, 10.0)
    assert a.export_limit_kw_slots == ()
    assert b.export_limit_kw_slots == (5.0, 5.0, 5.0, 2.0)
