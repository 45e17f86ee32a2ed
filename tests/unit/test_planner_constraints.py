"""The fleet LP, one constraint family at a time, on small fleets whose answer is known."""

from __future__ import annotations

import pytest

from aggregator.domain import Plan, SiteBattery
from models.planner import PlannerSettings, PyomoPlanner
from tests.fleet_builders import cap_event, ev, make_problem

TOL = 1e-6


def plan_of(problem, **settings) -> Plan:  # type: ignore[no-untyped-def]
    return PyomoPlanner(PlannerSettings(**settings)).plan(problem)


def power(plan: Plan, session_id: str) -> list[float]:
    sched = next(s for s in plan.schedules if s.session_id == session_id)
    return [0.0] * sched.first_slot + list(sched.power_kw)


def outcome(plan: Plan, session_id: str):  # type: ignore[no-untyped-def]
    return next(o for o in plan.outcomes if o.session_id == session_id)


def test_departure_target_met_when_feasible() -> None:
    plan = plan_of(make_problem([ev(0, 6, arrival_soc=0.2, target_soc=0.8)]))
    assert plan.solver_path == "lp"
    assert plan.solver_status == "optimal"
    out = outcome(plan, "s0")
    assert out.shortfall_kwh == 0.0
    assert out.soc_at_departure == pytest.approx(0.8, abs=1e-6)
    assert out.delivered_kwh == pytest.approx(36.0, abs=1e-6)


def test_cheapest_slots_are_used() -> None:
    prices = [100, 100, 10, 10, 100, 100, 100, 100]
    plan = plan_of(make_problem([ev(0, 6, arrival_soc=0.5, target_soc=0.8)], prices=prices))
    p = power(plan, "s0")
    # 18 kWh at 10 kW: the two cheap slots first (20 kWh possible), nothing at 100.
    assert p[2] + p[3] == pytest.approx(18.0, abs=1e-6)
    assert sum(p[i] for i in (0, 1, 4, 5)) == pytest.approx(0.0, abs=1e-6)


def test_unreachable_target_gives_full_charge_and_a_reported_shortfall() -> None:
    # Two hours at 10 kW can add 20 kWh; 48 kWh are asked.
    plan = plan_of(make_problem([ev(0, 2, arrival_soc=0.1, target_soc=0.9)]))
    assert plan.solver_path == "lp"
    assert power(plan, "s0")[:2] == pytest.approx([10.0, 10.0])
    out = outcome(plan, "s0")
    assert out.shortfall_kwh == pytest.approx(28.0, abs=1e-6)
    assert out.reason is not None and out.reason.startswith("unreachable")


def test_site_import_limit_is_never_exceeded_and_shortfall_names_it() -> None:
    sessions = [ev(0, 4, arrival_soc=0.0, target_soc=0.5) for _ in range(3)]
    base = [5.0] * 4
    plan = plan_of(make_problem(sessions, n_slots=4, site_limit_kw=25.0, base_load_kw=base))
    site = plan.site_power_kw["site-0"]
    assert max(site) <= 25.0 + TOL
    # 3 x 30 kWh asked, 4 h x 20 kW of headroom = 80 kWh: 10 kWh short in all.
    assert plan.total_shortfall_kwh == pytest.approx(10.0, abs=1e-5)
    reasons = {o.reason for o in plan.outcomes if o.shortfall_kwh}
    assert reasons and all("site site-0 import limit" in (r or "") for r in reasons)


def test_no_discharge_on_a_unidirectional_charger() -> None:
    # Very high price in slot 1, vehicle allows V2G, but the charger cannot discharge.
    spec = ev(0, 4, arrival_soc=0.8, target_soc=0.5, v2g=True, max_discharge_kw=0.0)
    plan = plan_of(make_problem([spec], prices=[10, 900, 10, 10], n_slots=4, export_limit_kw=50))
    assert min(power(plan, "s0")) >= -TOL


def test_no_discharge_without_v2g_permission() -> None:
    problem = make_problem(
        [ev(0, 4, arrival_soc=0.8, target_soc=0.5, v2g=False)],
        prices=[10, 900, 10, 10],
        n_slots=4,
        export_limit_kw=50,
    )
    assert min(power(plan_of(problem), "s0")) >= -TOL


def test_v2g_used_when_the_spread_pays_for_degradation() -> None:
    spec = ev(0, 4, arrival_soc=0.5, target_soc=0.5, v2g=True, min_soc=0.2)
    problem = make_problem(
        [spec],
        prices=[10, 500, 10, 10],
        n_slots=4,
        export_limit_kw=50,
        degradation_cost_per_mwh=100.0,
    )
    plan = plan_of(problem)
    p = power(plan, "s0")
    assert p[1] == pytest.approx(-10.0, abs=1e-6)
    assert outcome(plan, "s0").shortfall_kwh == 0.0
    assert plan.cost.export_revenue > 0


def test_v2g_not_used_when_degradation_eats_the_spread() -> None:
    spec = ev(0, 4, arrival_soc=0.5, target_soc=0.5, v2g=True, min_soc=0.2)
    problem = make_problem(
        [spec],
        prices=[10, 500, 10, 10],
        n_slots=4,
        export_limit_kw=50,
        degradation_cost_per_mwh=600.0,
    )
    assert min(power(plan_of(problem), "s0")) >= -TOL


def test_soc_stays_between_min_soc_and_full_under_v2g() -> None:
    # A huge price every other slot tempts the LP to empty and refill the battery.
    spec = ev(0, 8, arrival_soc=0.5, target_soc=0.6, v2g=True, min_soc=0.3)
    prices = [10, 1000, 10, 1000, -50, 1000, -50, 10]
    plan = plan_of(make_problem([spec], prices=prices, export_limit_kw=50))
    soc = plan.schedules[0].soc
    assert min(soc) >= 0.3 - TOL
    assert max(soc) <= 1.0 + TOL
    assert min(power(plan, "s0")) < 0  # V2G does happen


def test_efficiency_losses_are_charged_for() -> None:
    spec = ev(0, 6, arrival_soc=0.2, target_soc=0.5, charge_efficiency=0.9)
    plan = plan_of(make_problem([spec]))
    assert sum(power(plan, "s0")) == pytest.approx(18.0 / 0.9, abs=1e-6)


def test_event_cap_respected_when_feasible() -> None:
    sessions = [ev(0, 8, arrival_soc=0.2, target_soc=0.6) for _ in range(2)]
    prices = [50, 50, 10, 10, 10, 50, 50, 50]  # cheap slots fall inside the event
    event = cap_event("dr1", 2, 5, cap_kw=5.0)
    plan = plan_of(make_problem(sessions, prices=prices, events=[event]))
    site = plan.site_power_kw["site-0"]
    assert max(site[2:5]) <= 5.0 + TOL
    assert plan.total_shortfall_kwh == 0.0
    assert plan.events[0].violation_kwh == pytest.approx(0.0, abs=1e-6)


def test_event_cap_yields_to_departure_targets_and_reports_the_violation() -> None:
    # The vehicle must charge flat out through the event to leave with its target.
    event = cap_event("dr1", 0, 2, cap_kw=0.0)
    plan = plan_of(make_problem([ev(0, 2, arrival_soc=0.2, target_soc=0.5)], events=[event]))
    assert outcome(plan, "s0").shortfall_kwh == 0.0
    assert plan.events[0].violation_kwh == pytest.approx(18.0, abs=1e-6)
    assert plan.cost.event_penalty > 0


def test_event_shed_is_measured_against_the_plan_without_the_event() -> None:
    prices = [10, 10, 50, 50, 50, 50]
    sessions = [ev(0, 6, arrival_soc=0.2, target_soc=0.5) for _ in range(2)]
    base = [10.0] * 6
    shed = cap_event("shed1", 0, 2, shed_kw=8.0)
    plan = plan_of(
        make_problem(sessions, n_slots=6, prices=prices, base_load_kw=base, events=[shed])
    )
    result = plan.events[0]
    assert result.baseline_import_kw is not None
    for planned, baseline in zip(result.planned_import_kw, result.baseline_import_kw, strict=True):
        assert planned <= baseline - 8.0 + TOL
    assert plan.total_shortfall_kwh == 0.0


def test_event_applies_only_to_its_sites() -> None:
    sessions = [
        ev(0, 4, arrival_soc=0.2, target_soc=0.4, site="a"),
        ev(0, 4, arrival_soc=0.2, target_soc=0.4, site="b"),
    ]
    event = cap_event("dr", 0, 2, cap_kw=0.0, sites=["a"])
    plan = plan_of(make_problem(sessions, n_slots=4, prices=[10, 10, 50, 50], events=[event]))
    assert max(plan.site_power_kw["a"][:2]) <= TOL
    assert plan.site_power_kw["b"][0] + plan.site_power_kw["b"][1] == pytest.approx(12.0)


def test_pv_surplus_is_absorbed_before_it_hits_the_export_limit() -> None:
    pv = [0.0, 30.0, 30.0, 0.0]
    plan = plan_of(
        make_problem(
            [ev(0, 4, arrival_soc=0.2, target_soc=0.5)], n_slots=4, pv_kw=pv, export_limit_kw=22.0
        )
    )
    site = plan.site_power_kw["site-0"]
    assert min(site) >= -22.0 - TOL
    assert plan.total_shortfall_kwh == 0.0


def test_site_battery_shifts_load_and_ends_no_emptier() -> None:
    battery = SiteBattery(
        "site-0",
        capacity_kwh=20,
        max_charge_kw=10,
        max_discharge_kw=10,
        charge_efficiency=1.0,
        discharge_efficiency=1.0,
        initial_soc=0.5,
    )
    base = [10.0, 10.0, 10.0, 10.0]
    plan = plan_of(
        make_problem(
            [], n_slots=4, prices=[10, 100, 10, 100], base_load_kw=base, batteries=[battery]
        )
    )
    batt = plan.site_battery_kw["site-0"]
    assert batt[1] < -TOL and batt[3] < -TOL  # discharges in the expensive slots
    assert sum(batt) >= -TOL  # ends no emptier than it began (unit efficiencies)


def test_partial_slot_presence_limits_energy() -> None:
    # Plugged in for half of slot 0 and the whole of slot 1 at 10 kW: at most 15 kWh.
    plan = plan_of(make_problem([ev(0.5, 2, arrival_soc=0.0, target_soc=1.0)], n_slots=2))
    assert outcome(plan, "s0").delivered_kwh == pytest.approx(15.0, abs=1e-6)
    assert power(plan, "s0")[0] == pytest.approx(5.0, abs=1e-6)


def test_departure_beyond_the_horizon_only_asks_what_cannot_be_caught_up() -> None:
    # Departs 4 h after the 4-slot horizon ends: 40 kWh can still come then, so 8 kWh now.
    spec = ev(0, 8, arrival_soc=0.2, target_soc=1.0)
    plan = plan_of(make_problem([spec], n_slots=4, prices=[50, 50, 50, 50]))
    out = outcome(plan, "s0")
    assert out.target_kwh == pytest.approx(8.0 + 12.0)
    assert out.delivered_kwh == pytest.approx(8.0, abs=1e-6)


def test_solver_time_limit_falls_back_to_the_heuristic_and_says_so() -> None:
    sessions = [ev(0, 6, arrival_soc=0.2, target_soc=0.6) for _ in range(60)]
    plan = plan_of(make_problem(sessions, site_limit_kw=200.0), time_limit_s=1e-9)
    assert plan.solver_path == "heuristic"
    assert "time limit" in plan.solver_status
    assert max(plan.site_power_kw["site-0"]) <= 200.0 + TOL


def test_builder_failure_falls_back_to_the_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.planner.planner as planner_module

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("solver library missing")

    monkeypatch.setattr(planner_module, "solve_lp", broken)
    plan = plan_of(make_problem([ev(0, 6)]))
    assert plan.solver_path == "heuristic"
    assert "solver library missing" in plan.solver_status
    assert outcome(plan, "s0").shortfall_kwh == 0.0


def test_v2g_slot_is_not_charged_and_discharged_at_full_power_at_once() -> None:
    # Paid to import and no degradation cost: burning energy through losses would pay.
    from models.planner import build_lp, compile_problem
    from models.planner.highs import solve_lp
    from models.planner.layout import powers_from_solution

    spec = ev(
        0,
        4,
        arrival_soc=1.0,
        target_soc=1.0,
        v2g=True,
        charge_efficiency=0.9,
        discharge_efficiency=0.9,
    )
    problem = make_problem([spec], n_slots=4, prices=[-200.0] * 4, export_limit_kw=50)
    cp = compile_problem(problem)
    settings = PlannerSettings()
    lp, lay = build_lp(cp, settings, "pyomo")
    result = solve_lp(lp, settings)
    assert result.optimal and result.x is not None
    pc, pd, _ = powers_from_solution(cp, lay, result.x)
    assert pc.max() > 0 and pd.max() > 0  # the LP does use both directions here...
    share = pc / cp.pc_ub_kw + pd / cp.pd_ub_kw
    assert share.max() <= 1.0 + 1e-9  # ...but never more than one full direction per slot


def test_site_limit_holds_at_every_instant_when_a_vehicle_leaves_mid_slot() -> None:
    from models.planner import compile_problem
    from models.planner.evaluate import instant_excess_kw

    # s0 is plugged in for the first half of slot 0 only, s1 for all of it; 10 kW limit.
    # On slot averages both could take 10 kW (5 + 5 avg), but for that half hour s0 would
    # draw 10 kW next to s1's 5: 15 kW at the meter.
    sessions = [
        ev(0, 0.5, arrival_soc=0.0, target_soc=1.0),
        ev(0, 4, arrival_soc=0.0, target_soc=1.0),
    ]
    problem = make_problem(sessions, n_slots=4, site_limit_kw=10.0, prices=[10, 90, 90, 90])
    plan = plan_of(problem)
    assert plan.cost.site_limit_penalty == pytest.approx(0.0, abs=1e-6)
    s0, s1 = power(plan, "s0")[0], power(plan, "s1")[0]
    assert s0 / 0.5 + s1 <= 10.0 + TOL  # s0 draws its average / share while plugged in
    cp = compile_problem(problem)
    import numpy as np

    pc = np.concatenate([np.asarray(s.power_kw) for s in plan.schedules])
    assert instant_excess_kw(cp, pc, np.zeros_like(pc), np.zeros((0, 4))).max() <= TOL
