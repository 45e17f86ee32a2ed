"""The least-laxity-first fallback: targets, site limits, event caps, priority, shortfall."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest

from models.heuristic import heuristic_powers, plan_heuristic
from models.planner.compiled import compile_problem
from models.planner.evaluate import energy_trajectory, site_net_power
from models.planner.settings import PlannerSettings
from tests.fleet_builders import cap_event, ev, make_problem

SETTINGS = PlannerSettings()


def _plan(problem):
    return plan_heuristic(compile_problem(problem), SETTINGS, solver_status="fallback: test")


def test_departure_targets_met_when_site_has_room():
    problem = make_problem(
        [ev(0, 4, arrival_soc=0.2, target_soc=0.8), ev(1, 6, arrival_soc=0.5, target_soc=1.0)],
        site_limit_kw=50.0,
    )
    plan = _plan(problem)
    assert plan.total_shortfall_kwh == 0.0
    assert [o.soc_at_departure for o in plan.outcomes] == pytest.approx([0.8, 1.0])


def test_plan_records_heuristic_path_status_and_timings():
    problem = make_problem([ev(0, 4)])
    plan = plan_heuristic(
        compile_problem(problem), SETTINGS, solver_status="lp timed out", timings_s={"lp": 1.5}
    )
    assert plan.solver_path == "heuristic"
    assert plan.solver_status == "lp timed out"
    assert plan.timings_s == {"lp": 1.5}


def test_charging_stops_at_the_target_not_at_a_full_battery():
    problem = make_problem([ev(0, 8, arrival_soc=0.5, target_soc=0.6, battery_kwh=50.0)])
    cp = compile_problem(problem)
    pc, _, _ = heuristic_powers(cp)
    assert pc.sum() * cp.dt_h == pytest.approx(5.0)
    assert energy_trajectory(cp, pc, np.zeros_like(pc)).max() == pytest.approx(30.0)


def test_site_import_limit_is_never_exceeded_with_base_load():
    base = [4.0, 8.0, 12.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    problem = make_problem(
        [ev(0, 8, arrival_soc=0.0, target_soc=1.0) for _ in range(3)],
        site_limit_kw=15.0,
        base_load_kw=base,
    )
    plan = _plan(problem)
    assert max(plan.site_power_kw["site-0"]) <= 15.0 + 1e-9
    # Where base load leaves room the fleet uses all of it (it is short on energy overall).
    assert plan.site_power_kw["site-0"] == pytest.approx([15.0] * 8)


def test_base_load_above_the_limit_pauses_charging_at_that_site():
    problem = make_problem(
        [ev(0, 4)], n_slots=4, site_limit_kw=10.0, base_load_kw=[12.0, 0.0, 0.0, 0.0]
    )
    pc, _, _ = heuristic_powers(compile_problem(problem))
    assert pc[0] == 0.0
    assert pc[1:].sum() > 0


def test_event_cap_shared_by_two_sites_is_respected():
    sessions = [ev(0, 6, arrival_soc=0.0, target_soc=1.0, site=s) for s in ("a", "a", "b")]
    event = cap_event("dr-1", 1, 3, cap_kw=12.0, sites=("a", "b"))
    problem = make_problem(
        sessions, n_slots=6, site_limit_kw=100.0, base_load_kw={"a": [2.0] * 6, "b": [3.0] * 6}
    )
    problem_with_event = make_problem(
        sessions,
        n_slots=6,
        site_limit_kw=100.0,
        base_load_kw={"a": [2.0] * 6, "b": [3.0] * 6},
        events=[event],
    )
    without = _plan(problem)
    plan = _plan(problem_with_event)
    (result,) = plan.events
    assert result.slots == (1, 2)
    assert max(result.planned_import_kw) <= 12.0 + 1e-9
    assert result.planned_import_kw == pytest.approx([12.0, 12.0])
    assert result.violation_kwh == pytest.approx(0.0)
    # Outside the event the fleet charges as it would without it.
    assert plan.site_power_kw["a"][0] == without.site_power_kw["a"][0]


def test_event_cap_only_limits_the_sites_it_names():
    sessions = [ev(0, 4, arrival_soc=0.0, target_soc=1.0, site=s) for s in ("a", "b")]
    problem = make_problem(
        sessions, n_slots=4, events=[cap_event("dr-a", 0, 4, cap_kw=3.0, sites=("a",))]
    )
    cp = compile_problem(problem)
    pc, _, _ = heuristic_powers(cp)
    net = site_net_power(cp, pc, np.zeros_like(pc), np.zeros((0, cp.n_slots)))
    assert net[0] == pytest.approx([3.0] * 4)
    assert net[1] == pytest.approx([10.0] * 4)


def test_least_laxity_session_gets_priority_under_a_tight_limit():
    # Both need 10 kWh; "urgent" leaves after 1 h, "relaxed" after 4 h: urgent goes first.
    relaxed = ev(0, 4, arrival_soc=0.0, energy_kwh=10.0)
    urgent = ev(0, 1, arrival_soc=0.0, energy_kwh=10.0)
    problem = make_problem([relaxed, urgent], n_slots=4, site_limit_kw=10.0)
    plan = _plan(problem)
    by_id = {s.session_id: s for s in plan.schedules}
    assert by_id["s1"].power_kw == pytest.approx((10.0,))
    assert by_id["s0"].power_kw == pytest.approx((0.0, 10.0, 0.0, 0.0))
    assert plan.total_shortfall_kwh == 0.0


def test_least_laxity_session_gets_priority_under_an_event_cap():
    relaxed = ev(0, 4, arrival_soc=0.0, energy_kwh=10.0, site="a")
    urgent = ev(0, 1, arrival_soc=0.0, energy_kwh=10.0, site="b")
    problem = make_problem(
        [relaxed, urgent], n_slots=4, events=[cap_event("dr", 0, 1, cap_kw=10.0)]
    )
    pc, _, _ = heuristic_powers(compile_problem(problem))
    # k order: s0 owns k 0..3, s1 owns k 4.
    assert pc[4] == pytest.approx(10.0)
    assert pc[0] == pytest.approx(0.0)


def test_unreachable_target_is_reported_as_shortfall_with_reason():
    # 2 h at 10 kW cannot add 40 kWh.
    problem = make_problem([ev(0, 2, arrival_soc=0.0, energy_kwh=40.0)], n_slots=4)
    plan = _plan(problem)
    (outcome,) = plan.outcomes
    assert outcome.shortfall_kwh == pytest.approx(20.0)
    assert outcome.reason is not None
    assert outcome.reason.startswith("unreachable")
    assert plan.cost.shortfall_penalty > 0


def test_shortfall_from_a_tight_site_limit_names_the_limit():
    problem = make_problem([ev(0, 2, arrival_soc=0.0, energy_kwh=20.0)], site_limit_kw=5.0)
    (outcome,) = _plan(problem).outcomes
    assert outcome.shortfall_kwh == pytest.approx(10.0)
    assert outcome.reason is not None
    assert "import limit" in outcome.reason


def test_never_discharges_and_leaves_site_batteries_idle():
    from aggregator.domain import SiteBattery

    problem = make_problem(
        [ev(0, 8, arrival_soc=0.9, target_soc=0.5, v2g=True)],
        prices=[500.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        batteries=[SiteBattery("site-0", capacity_kwh=100, max_charge_kw=50, max_discharge_kw=50)],
    )
    cp = compile_problem(problem)
    pc, pd, batt_kw = heuristic_powers(cp)
    assert np.all(pd == 0.0)
    assert np.all(pc == 0.0)  # already above target: nothing to do
    assert batt_kw.shape == (1, 8)
    assert np.all(batt_kw == 0.0)


def test_partial_slots_are_limited_to_the_plugged_in_share():
    problem = make_problem([ev(0.5, 2.25, arrival_soc=0.0, target_soc=1.0)], n_slots=3)
    cp = compile_problem(problem)
    pc, _, _ = heuristic_powers(cp)
    assert pc == pytest.approx([5.0, 10.0, 2.5])


def test_problem_without_sessions_gives_empty_powers():
    cp = compile_problem(make_problem([], n_slots=4))
    pc, pd, batt_kw = heuristic_powers(cp)
    assert pc.shape == pd.shape == (0,)
    assert batt_kw.shape == (0, 4)


@pytest.mark.slow
def test_ten_thousand_sessions_over_96_slots_plan_fast_within_limits():
    rng = np.random.default_rng(7)
    step = timedelta(minutes=15)
    sites = [f"site-{j}" for j in range(50)]
    specs = []
    for n in range(10_000):
        arrival = float(rng.uniform(0, 48))
        specs.append(
            ev(
                arrival,
                min(96.0, arrival + float(rng.uniform(16, 96))),
                arrival_soc=float(rng.uniform(0.1, 0.5)),
                max_charge_kw=float(rng.choice([7.4, 11.0, 22.0])),
                site=sites[n % len(sites)],
            )
        )
    problem = make_problem(
        specs,
        n_slots=96,
        step=step,
        site_limit_kw=500.0,
        events=[cap_event("dr", 60, 72, cap_kw=8_000.0, step=step)],
    )
    cp = compile_problem(problem)
    started = time.perf_counter()
    pc, _, _ = heuristic_powers(cp)
    elapsed = time.perf_counter() - started
    net = site_net_power(cp, pc, np.zeros_like(pc), np.zeros((0, 96)))
    assert net.max() <= 500.0 + 1e-6
    assert net[:, 60:72].sum(axis=0).max() <= 8_000.0 + 1e-6
    # About 0.1 s here; the bound leaves room for a busy shared machine.
    assert elapsed < 2.0
