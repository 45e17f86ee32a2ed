"""Warm re-plans: keep the HiGHS model between plans and change only what moved.

``WarmPlanner`` is the direct-array planner (``direct.py``) with a memory. After a plan it keeps
the ``highspy.Highs`` object (model and final simplex basis). The next plan builds the LP arrays
again (cheap: index arithmetic) and compares the constraint matrix with the kept one.

*Same structure* means exactly: the new constraint matrix ``A`` equals the kept one, i.e. the
same shape, the same sparsity pattern (CSC ``indptr`` and ``indices``) and the same coefficient
values. It holds when the sessions x slots layout is unchanged (same sessions in the same order,
the same plugged-in slots and slot shares, V2G flags, efficiencies, power limits, sites, site
batteries, partial-slot rows and event caps on the same sites and slots). Then the new LP differs
from the kept one only in column costs, column bounds and row bounds, which are changed in
place (``changeColsCost``, ``changeColsBounds``, ``changeRowsBounds``, changed entries only) and
HiGHS re-solves from the kept basis. That LP is the cold LP of the new state, so the answer is
the cold answer (to solver tolerance; where the optimum is not unique the plan may be another
optimum of equal cost). Typical same-structure changes: a new price series, measured SoC
(telemetry), a changed departure energy, new base-load forecasts or per-slot site limits, a
changed event cap value.

Anything else (a session arrives or leaves, a departure moves across a slot, a new event window)
is a structure change: the planner builds and solves cold and keeps that model instead. A warm
solve that ends without an optimal solution is retried cold once before the heuristic fallback.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import highspy
import numpy as np

from aggregator.domain import Plan
from models.heuristic import plan_heuristic
from models.planner.compiled import CompiledProblem, FloatArray
from models.planner.direct import build_direct
from models.planner.evaluate import build_plan
from models.planner.highs import HighsResult, LpArrays, load_lp
from models.planner.layout import powers_from_solution
from models.planner.planner import PyomoPlanner
from models.planner.settings import PlannerSettings

log = logging.getLogger(__name__)


@dataclass
class _Kept:
    """One kept HiGHS model and the arrays it currently holds."""

    highs: highspy.Highs
    lp: LpArrays


def same_structure(old: LpArrays, new: LpArrays) -> bool:
    """True when ``new`` differs from ``old`` in costs and bounds only (identical ``A``)."""
    a, b = old.a, new.a
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def _changed(old: FloatArray, new: FloatArray) -> np.ndarray:
    # Exact comparison on purpose: any change is passed on; equal infinities compare equal.
    return np.flatnonzero(old != new).astype(np.int32)


def _new_highs(lp: LpArrays, settings: PlannerSettings) -> highspy.Highs:
    return load_lp(lp, settings)


def _update(h: highspy.Highs, old: LpArrays, new: LpArrays) -> int:
    """Change costs and bounds of ``h`` from ``old`` to ``new``; returns how many entries moved."""
    idx = _changed(old.c, new.c)
    if idx.size:
        h.changeColsCost(idx.size, idx, new.c[idx])
    idx_c = np.union1d(_changed(old.col_lb, new.col_lb), _changed(old.col_ub, new.col_ub))
    idx_c = idx_c.astype(np.int32)
    if idx_c.size:
        h.changeColsBounds(idx_c.size, idx_c, new.col_lb[idx_c], new.col_ub[idx_c])
    idx_r = np.union1d(_changed(old.row_lb, new.row_lb), _changed(old.row_ub, new.row_ub))
    idx_r = idx_r.astype(np.int32)
    if idx_r.size:
        h.changeRowsBounds(idx_r.size, idx_r, new.row_lb[idx_r], new.row_ub[idx_r])  # type: ignore[attr-defined]  # missing from the stubs
    if new.offset != old.offset:
        h.changeObjectiveOffset(new.offset)
    return int(idx.size + idx_c.size + idx_r.size)


def _run(h: highspy.Highs, settings: PlannerSettings) -> HighsResult:
    # HiGHS measures its time limit on the object's clock, which keeps running across solves.
    h.setOptionValue("time_limit", float(h.getRunTime()) + float(settings.time_limit_s))
    start = time.perf_counter()
    h.run()
    solve_s = time.perf_counter() - start
    status = h.getModelStatus()
    info = h.getInfo()
    optimal = status == highspy.HighsModelStatus.kOptimal
    x = np.asarray(h.getSolution().col_value, dtype=float) if optimal else None
    return HighsResult(
        status=h.modelStatusToString(status).lower(),
        optimal=optimal,
        x=x,
        objective=float(info.objective_function_value) if optimal else None,
        iterations=int(info.simplex_iteration_count),
        solve_s=solve_s,
    )


class WarmPlanner(PyomoPlanner):
    """The direct-array planner that re-solves warm when the LP structure is unchanged.

    Not thread-safe: one instance per control loop. ``last_warm`` tells whether the last
    ``plan`` (its final LP) was solved warm; the plan's ``timings_s`` carries ``warm`` (1 or 0)
    and ``changed_entries`` (costs and bounds passed to HiGHS) per solve.
    """

    def __init__(self, settings: PlannerSettings | None = None) -> None:
        super().__init__(settings, builder="direct")
        # One kept model per solve role: the plan itself ("") and the shed baseline.
        self._kept: dict[str, _Kept] = {}
        self.last_warm = False

    def reset(self) -> None:
        """Forget the kept models: the next plan is cold."""
        self._kept.clear()

    def _solve_lp(
        self, lp: LpArrays, timings: dict[str, float], prefix: str
    ) -> tuple[HighsResult, bool]:
        kept = self._kept.pop(prefix, None)
        if kept is not None and same_structure(kept.lp, lp):
            timings[prefix + "changed_entries"] = float(_update(kept.highs, kept.lp, lp))
            result = _run(kept.highs, self.settings)
            if result.optimal:
                self._kept[prefix] = _Kept(kept.highs, lp)
                return result, True
            log.warning("warm re-solve ended %s; solving cold", result.status)
        h = _new_highs(lp, self.settings)
        result = _run(h, self.settings)
        if result.optimal:
            self._kept[prefix] = _Kept(h, lp)
        return result, False

    def solve(self, cp: CompiledProblem, timings: dict[str, float], prefix: str = "") -> Plan:
        """Like ``PyomoPlanner.solve`` with the direct build, warm where the structure allows."""
        status = "not solved"
        result: HighsResult | None = None
        warm = False
        try:
            start = time.perf_counter()
            lp, lay = build_direct(cp, self.settings)
            timings[prefix + "build_s"] = time.perf_counter() - start
            result, warm = self._solve_lp(lp, timings, prefix)
            timings[prefix + "solve_s"] = result.solve_s
            timings[prefix + "iterations"] = float(result.iterations)
            status = result.status
        except Exception as exc:  # the planner must always return a plan
            log.exception("LP path failed; using the heuristic fallback")
            status = f"error: {type(exc).__name__}: {exc}"
            self._kept.pop(prefix, None)
        timings[prefix + "warm"] = 1.0 if warm else 0.0
        self.last_warm = warm
        start = time.perf_counter()
        if result is not None and result.optimal and result.x is not None:
            pc, pd, batt = powers_from_solution(cp, lay, result.x)
            plan = build_plan(
                cp,
                pc,
                pd,
                batt,
                self.settings,
                solver_path="lp",
                solver_status=status,
                timings_s=timings,
            )
        else:
            log.warning("LP not optimal (%s); planning with least-laxity-first", status)
            plan = plan_heuristic(cp, self.settings, solver_status=status, timings_s=timings)
        timings[prefix + "extract_s"] = time.perf_counter() - start
        return replace(plan, timings_s=dict(timings))
