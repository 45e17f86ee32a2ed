"""The Pyomo model and the direct array build state the same LP."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.domain import SiteBattery
from models.planner import PlannerSettings, PyomoPlanner, build_lp, compile_problem
from models.planner.highs import solve_lp
from tests.fleet_builders import cap_event, ev, make_problem


def mixed_problem():  # type: ignore[no-untyped-def]
    sessions = [
        ev(0, 6, arrival_soc=0.3, target_soc=0.8, charge_efficiency=0.9),
        ev(
            1.5, 8, arrival_soc=0.6, target_soc=0.7, v2g=True, min_soc=0.2, discharge_efficiency=0.9
        ),
        ev(2, 7, energy_kwh=15.0, site="b"),
        ev(0, 12, arrival_soc=0.1, target_soc=0.9, site="b"),  # departs after the horizon
    ]
    battery = SiteBattery("b", capacity_kwh=30, max_charge_kw=10, max_discharge_kw=10)
    return make_problem(
        sessions,
        n_slots=8,
        site_limit_kw={"site-0": 18.0, "b": 25.0},
        export_limit_kw=10.0,
        base_load_kw=[3, 4, 5, 6, 6, 5, 4, 3],
        pv_kw={"b": [0, 0, 5, 9, 9, 5, 0, 0]},
        prices=[40, 30, 20, 80, 200, 90, 30, -10],
        events=[cap_event("cap", 3, 5, cap_kw=20.0), cap_event("shed", 5, 6, shed_kw=2.0)],
        batteries=[battery],
        degradation_cost_per_mwh=40.0,
    )


def test_pyomo_and_direct_builds_are_the_same_lp() -> None:
    cp = compile_problem(mixed_problem())
    settings = PlannerSettings()
    lp_pyomo, _ = build_lp(cp, settings, "pyomo")
    lp_direct, _ = build_lp(cp, settings, "direct")
    assert lp_pyomo.shape == lp_direct.shape
    np.testing.assert_allclose(lp_pyomo.c, lp_direct.c, atol=1e-12)
    np.testing.assert_allclose(lp_pyomo.col_lb, lp_direct.col_lb)
    np.testing.assert_allclose(lp_pyomo.col_ub, lp_direct.col_ub)

    # Rows may come in another order: compare them as a set of (bounds, coefficients).
    def rows(lp):  # type: ignore[no-untyped-def]
        a = lp.a.tocsr()
        out = []
        for r in range(a.shape[0]):
            lo, hi = a.indptr[r], a.indptr[r + 1]
            cols, vals = a.indices[lo:hi].tolist(), np.round(a.data[lo:hi], 12).tolist()
            entries = tuple(sorted(zip(cols, vals, strict=True)))
            out.append((round(lp.row_lb[r], 9), round(lp.row_ub[r], 9), entries))
        return sorted(out)

    assert rows(lp_pyomo) == rows(lp_direct)
    r1, r2 = solve_lp(lp_pyomo, settings), solve_lp(lp_direct, settings)
    assert r1.optimal and r2.optimal
    assert r1.objective == pytest.approx(r2.objective, rel=1e-9)


def test_both_builders_give_plans_of_equal_cost() -> None:
    problem = mixed_problem()
    a = PyomoPlanner(builder="pyomo").plan(problem)
    b = PyomoPlanner(builder="direct").plan(problem)
    assert a.solver_path == b.solver_path == "lp"
    assert a.cost.total == pytest.approx(b.cost.total, rel=1e-7, abs=1e-7)


def test_the_production_default_is_the_lean_array_build() -> None:
    assert PyomoPlanner().builder == "direct"
