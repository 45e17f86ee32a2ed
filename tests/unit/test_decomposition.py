"""Per-site decomposition on Dask: exact without coupling, within the cap with it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import dask
import numpy as np
import pytest
from dask.distributed import Client, LocalCluster

from aggregator.domain import FleetProblem, GridEvent, Plan
from bench.fleets import synthetic_fleet
from models.decomposition import DecompositionSettings, plan_decomposed, split_by_site
from models.planner.planner import PyomoPlanner


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def small_fleet(seed: int, cap_kw: float | None = None):
    problem = synthetic_fleet(120, seed=seed, n_slots=48)  # 3 sites, 12 h
    if cap_kw is None:
        return replace(problem, events=())
    (event,) = problem.events
    return replace(problem, events=(replace(event, cap_kw=cap_kw),))


@dataclass(frozen=True)
class Capped:
    """A small fleet whose fleet-wide evening cap is ``share`` of its uncoupled peak (binding)."""

    problem: FleetProblem
    site_ids: tuple[str, ...]
    slots: list[int]
    cap: float

    def held(self, plan: Plan) -> bool:
        return all(
            sum(plan.site_power_kw[s][t] for s in self.site_ids) <= self.cap + 1e-3
            for t in self.slots
        )


def capped_fleet(seed: int, share: float) -> Capped:
    free = PyomoPlanner(builder="direct").plan(small_fleet(seed))
    problem = small_fleet(seed, cap_kw=1.0)
    split = split_by_site(problem)
    slots = split.coupled[0].slots.tolist()
    peak = max(sum(free.site_power_kw[s][t] for s in split.site_ids) for t in slots)
    (event,) = problem.events
    problem = replace(problem, events=(replace(event, cap_kw=share * peak),))
    return Capped(problem, split.site_ids, slots, share * peak)


def test_split_keeps_every_session_once():
    problem = small_fleet(3, cap_kw=300.0)
    split = split_by_site(problem)
    assert len(split.sub_problems) == 3
    assert sum(len(s.sessions) for s in split.sub_problems) == len(problem.sessions)
    assert len(split.coupled) == 1 and split.coupled[0].site_index.tolist() == [0, 1, 2]


@pytest.mark.parametrize("seed", [1, 2])
def test_without_coupling_the_decomposition_is_exact(client, seed):
    problem = small_fleet(seed)
    mono = PyomoPlanner(builder="direct").plan(problem)
    dec = plan_decomposed(problem, scheduler=client)
    assert dec.converged and dec.iterations == 1 and dec.recovery == "exact"
    assert dec.plan.cost.total == pytest.approx(mono.cost.total, rel=1e-6, abs=1e-6)
    assert len(dec.plan.schedules) == len(mono.schedules)


def test_a_coupled_cap_is_respected_and_the_gap_reported(client):
    # The evening cap below what the uncoupled plan imports then.
    fleet = capped_fleet(4, 0.8)
    problem = fleet.problem
    mono = PyomoPlanner(builder="direct").plan(problem)
    dec = plan_decomposed(problem, DecompositionSettings(max_iterations=30), scheduler=client)
    # Dantzig-Wolfe converges to the monolithic optimum: within the gap it certifies.
    assert dec.converged and dec.recovery == "iterate" and dec.gap <= 1e-3
    assert dec.plan.cost.total == pytest.approx(mono.cost.total, rel=2e-3)
    assert dec.iterations > 1
    assert fleet.held(dec.plan)
    assert dec.max_cap_excess_kw <= 1e-3
    assert dec.gap >= 0.0
    # The monolithic LP is a lower bound on any plan that holds the cap.
    assert dec.plan.cost.total >= mono.cost.total - 1e-6 * abs(mono.cost.total)
    assert dec.lower_bound <= mono.cost.total + 1e-6 * abs(mono.cost.total) + 1e-6


def test_default_local_cluster_is_started_and_closed():
    problem = synthetic_fleet(60, seed=5, n_slots=48)
    dec = plan_decomposed(problem, DecompositionSettings(max_iterations=3))
    assert dec.plan.solver_path in ("lp", "heuristic")
    assert dec.max_cap_excess_kw <= 1e-3


def test_an_early_stop_returns_a_plan_within_the_cap_with_its_gap(client):
    fleet = capped_fleet(6, 0.7)
    # One round only: every site's first plan ignores the cap, so the master's mix leans on the
    # cap's slack; the sites then re-plan under shares of the cap.
    settings = DecompositionSettings(max_iterations=1)
    dec = plan_decomposed(fleet.problem, settings, scheduler=client)
    assert not dec.converged and dec.iterations == 1
    assert dec.recovery == "cap shares"
    assert dec.gap >= 0.0 and dec.lower_bound <= dec.plan.cost.total + 1e-6
    assert fleet.held(dec.plan)
    assert dec.max_cap_excess_kw <= 1e-3


def test_sites_keep_their_model_between_rounds():
    from models.decomposition.sites import SiteModel
    from models.planner.settings import PlannerSettings

    sub = split_by_site(small_fleet(7, cap_kw=300.0)).sub_problems[0]
    site = SiteModel(sub, PlannerSettings())
    cold = site.price(np.zeros(48))
    highs = site._highs
    shift = np.zeros(48)
    shift[20:28] = 500.0  # a high price in the evening: the site moves load out of it
    warm = site.price(shift)
    assert site._highs is highs  # the same HiGHS object, re-solved
    assert warm.net_kw[20:28].sum() < cold.net_kw[20:28].sum()
    # The warm answer is the cold answer of the shifted problem.
    fresh = SiteModel(sub, PlannerSettings())
    again = fresh.price(shift)
    assert warm.priced_objective == pytest.approx(again.priced_objective, rel=1e-7, abs=1e-6)
    # Asking the first prices again returns the first column, not a new one.
    assert site.price(np.zeros(48)).index == cold.index
    assert len(site.columns) == 2


def test_decomposing_planner_splits_large_fleets_and_plans_small_ones_whole():
    from models.decomposition import DecomposingPlanner

    problem = small_fleet(8, cap_kw=300.0)  # 3 sites
    single = PyomoPlanner(builder="direct")
    settings = DecompositionSettings(workers=1, processes=False)
    planner = DecomposingPlanner(single, settings, min_sites=3)
    try:
        split = planner.plan(problem)
        assert split.solver_status.startswith("decomposed")
        assert split.timings_s["decomposition_iterations"] >= 1
        assert split.cost.total == pytest.approx(single.plan(problem).cost.total, rel=2e-3)
        whole = DecomposingPlanner(single, settings, min_sites=4).plan(problem)
        assert not whole.solver_status.startswith("decomposed")
    finally:
        planner.close()
    with pytest.raises(ValueError, match="min_sites"):
        DecomposingPlanner(single, min_sites=1)


def test_decomposing_planner_falls_back_to_one_lp_when_it_cannot_split_or_dask_fails():
    from models.decomposition import DecomposingPlanner

    single = PyomoPlanner(builder="direct")
    problem = small_fleet(9, cap_kw=300.0)
    (event,) = problem.events
    shed = replace(problem, events=(replace(event, cap_kw=None, shed_kw=20.0),))
    planner = DecomposingPlanner(single, DecompositionSettings(workers=1, processes=False))
    try:
        plan = planner.plan(shed)  # a fleet-wide shed: no split, one LP, no error
        assert not plan.solver_status.startswith("decomposed")
        assert plan.cost.total == pytest.approx(single.plan(shed).cost.total, rel=1e-9)
    finally:
        planner.close()
    # No scheduler answers at this address: the plan still comes, from the single LP.
    gone = DecomposingPlanner(
        single,
        DecompositionSettings(planner=single.settings),
        scheduler="tcp://127.0.0.1:9",
    )
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        plan = gone.plan(problem)
    assert plan.solver_path == "lp" and not plan.solver_status.startswith("decomposed")
    assert gone._client is None


def test_sites_whose_lp_fails_are_planned_by_the_heuristic_and_the_caps_still_hold(client):
    from models.planner.settings import PlannerSettings

    fleet = capped_fleet(10, 0.8)
    # No LP can finish in a nanosecond: every site falls back to the heuristic.
    settings = DecompositionSettings(max_iterations=3, planner=PlannerSettings(time_limit_s=1e-9))
    dec = plan_decomposed(fleet.problem, settings, scheduler=client)
    assert dec.plan.solver_path == "heuristic"
    assert not dec.converged and dec.lower_bound == float("-inf")
    assert dec.max_cap_excess_kw <= 1e-3
    assert fleet.held(dec.plan)


def test_a_site_cap_nobody_can_hold_does_not_send_the_fleet_to_the_heuristic(client):
    # A fleet-wide cap that binds, and a cap on one site below its base load: the monolithic LP
    # pays that site's excess; so must the decomposition, without falling back on its account.
    fleet = capped_fleet(5, 0.8)
    first = fleet.site_ids[0]
    (fleet_cap,) = fleet.problem.events
    local = GridEvent("site-cap", fleet_cap.start, fleet_cap.end, frozenset({first}), cap_kw=0.0)
    problem = replace(fleet.problem, events=(fleet_cap, local))
    mono = PyomoPlanner(builder="direct").plan(problem)
    dec = plan_decomposed(problem, DecompositionSettings(max_iterations=30), scheduler=client)
    assert dec.converged and dec.recovery == "iterate"
    assert dec.plan.cost.total == pytest.approx(mono.cost.total, rel=2e-3)
    assert fleet.held(dec.plan)
    assert dec.max_cap_excess_kw > 1.0  # the site cap's excess, reported


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_iterations", 0), ("gap_tol", 0.0), ("smoothing", 1.0), ("workers", 0)],
)
def test_bad_decomposition_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field} must"):
        DecompositionSettings(**{field: value})
