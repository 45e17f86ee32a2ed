"""Random fleets: the LP plan never breaks a hard limit and never costs more than the fallback."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.domain import FleetProblem, GridEvent
from models.heuristic import plan_heuristic
from models.planner import PlannerSettings, PyomoPlanner, compile_problem
from tests.fleet_builders import EvSpec, cap_event, make_problem

TOL = 1e-5
N_SLOTS = 8
# No tie-breaker here, so the LP objective is exactly the cost the evaluator reports.
SETTINGS = PlannerSettings(earliness_per_mwh_per_slot=0.0)


@st.composite
def ev_specs(draw: st.DrawFn, sites: list[str]) -> EvSpec:
    arrival = draw(st.integers(0, N_SLOTS - 1)) + draw(st.sampled_from([0.0, 0.5]))
    departure = min(float(N_SLOTS + 2), arrival + draw(st.integers(1, N_SLOTS)))
    arrival_soc = draw(st.floats(0.0, 0.9))
    min_soc = draw(st.floats(0.0, 0.5))
    target = draw(st.floats(min_soc, 1.0))
    return EvSpec(
        arrival_slot=arrival,
        departure_slot=departure,
        arrival_soc=arrival_soc,
        target_soc=target,
        min_soc=min_soc,
        battery_kwh=draw(st.sampled_from([20.0, 40.0, 75.0])),
        max_charge_kw=draw(st.sampled_from([3.7, 7.4, 11.0, 22.0])),
        v2g=draw(st.booleans()),
        max_discharge_kw=draw(st.sampled_from([0.0, 7.4, 11.0])),
        charge_efficiency=draw(st.floats(0.85, 1.0)),
        discharge_efficiency=draw(st.floats(0.85, 1.0)),
        site=draw(st.sampled_from(sites)),
    )


@st.composite
def fleets(draw: st.DrawFn) -> FleetProblem:
    sites = ["a", "b"][: draw(st.integers(1, 2))]
    specs = draw(st.lists(ev_specs(sites), min_size=1, max_size=8))
    # One session per vehicle and charger in the builder, so no overlaps are possible.
    limits = {s: draw(st.floats(5.0, 60.0)) for s in sites}
    base = {s: [draw(st.floats(0.0, 4.0)) for _ in range(N_SLOTS)] for s in sites}
    prices = [draw(st.floats(-50.0, 400.0)) for _ in range(N_SLOTS)]
    events: list[GridEvent] = []
    if draw(st.booleans()):
        start = draw(st.integers(0, N_SLOTS - 2))
        events.append(cap_event("e", start, start + 2, cap_kw=draw(st.floats(0.0, 40.0))))
    return make_problem(
        specs,
        n_slots=N_SLOTS,
        site_limit_kw=limits,
        export_limit_kw=draw(st.floats(0.0, 30.0)),
        base_load_kw=base,
        prices=prices,
        events=events,
        degradation_cost_per_mwh=draw(st.floats(0.0, 200.0)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_plan_never_breaks_a_hard_limit(problem: FleetProblem) -> None:
    plan = PyomoPlanner(SETTINGS).plan(problem)
    assert plan.solver_path == "lp"
    cp = compile_problem(problem)
    for i, sched in enumerate(plan.schedules):
        ks = slice(cp.k_start[i], cp.k_start[i + 1])
        p = np.asarray(sched.power_kw)
        assert np.all(p <= cp.pc_ub_kw[ks] + TOL)
        assert np.all(p >= -cp.pd_ub_kw[ks] - TOL)  # pd_ub is 0 unless V2G is allowed
        if not cp.v2g[i]:
            assert np.all(p >= -TOL)
        soc = np.asarray(sched.soc)
        assert np.all(soc <= 1.0 + TOL)
        assert np.all(soc >= cp.e_floor_kwh[i] / cp.e_cap_kwh[i] - TOL)
    # Base load alone never breaks the limits here, so the plan must not either.
    for site in problem.sites:
        net = np.asarray(plan.site_power_kw[site.site_id])
        assert np.all(net <= site.import_limit_kw + TOL)
        assert np.all(net >= -site.export_limit_kw - TOL)
    assert plan.cost.site_limit_penalty <= TOL


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_lp_plan_never_costs_more_than_the_heuristic(problem: FleetProblem) -> None:
    lp_plan = PyomoPlanner(SETTINGS).plan(problem)
    fallback = plan_heuristic(compile_problem(problem), SETTINGS, solver_status="test")
    assert lp_plan.solver_path == "lp"
    assert lp_plan.cost.total <= fallback.cost.total + TOL * max(1.0, abs(fallback.cost.total))
