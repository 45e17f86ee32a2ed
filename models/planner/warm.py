"""Warm re-plans: keep the HiGHS model between plans and change only what moved.

``WarmPlanner`` is the direct-array planner (``direct.py``) with a memory. After a plan it keeps
the ``highspy.Highs`` object (model and final simplex basis), one per solve role (the plan and,
with shed events, the shed baseline). The next plan compiles and builds the LP arrays as usual
(cheap: index arithmetic) and compares them with the arrays the kept model holds:

* **bounds**: the constraint matrix ``A`` is identical (same shape, same CSC sparsity pattern,
  same coefficients). Only column costs, column bounds and row bounds are passed
  (``changeColsCost``, ``changeColsBounds``, ``changeRowsBounds``, changed entries only).
  Prices, measured SoC, departure energies, base-load/PV forecasts, per-slot site limits and
  cap values are of this kind.
* **coefficients**: same shape and sparsity pattern, some coefficients differ: those are set
  with ``changeCoeff`` (then costs and bounds as above). This is the share of a slot a vehicle
  is still plugged in (``1/share`` in the instantaneous site rows) when the horizon starts a
  few seconds later than last time and no departure crossed a slot boundary.
* **rows added**: new event caps. Cap rows are the last row block and their ``ev_slack``
  columns the last column block, so caps appended after the kept ones extend the LP at its
  end without touching the kept part: the slack columns are added with ``addCols`` (no
  entries in kept rows), the cap rows with ``addRows``; the kept basis stays valid (new rows
  basic, new columns at their bound) and the dual simplex continues from it. So that a new
  event is always appended, the planner orders caps as the kept model has them (kept caps
  first, new ones after, each in the problem's order); the plan lists events in the
  problem's order, as a cold plan does.
* anything else (a session arrives or leaves, a departure crosses a slot boundary, an event
  ends or its window changes, a V2G flag or power limit changes): **cold**. The LP is built and
  solved from scratch and that model is kept for the next plan.

In every warm case the model HiGHS solves is the cold LP of the new state entry for entry, so
the answer is the cold answer (to solver tolerance; where the optimum is not unique, another
optimum of equal cost). A warm solve that ends without an optimal solution is retried cold
once before the heuristic fallback.

Solver options (measured on the 1,000-vehicle benchmark, ``bench/warm.py``): HiGHS' default
dual simplex is the fastest from the kept basis after every kind of change, also after a
cost-only change where the basis stays primal feasible (primal simplex took 2-5x longer).
``simplex_scale_strategy = 4`` (scale by the largest value) cut cold and warm solve times by
a third and the warm price-update solve by ~40 %, so the warm planner uses it for every model
it loads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aggregator.domain import FleetProblem, Plan
from models.heuristic import plan_heuristic
from models.planner.compiled import CompiledProblem, EventCap, FloatArray
from models.planner.direct import build_direct
from models.planner.evaluate import build_plan
from models.planner.highs import HighsResult, LpArrays, load_lp
from models.planner.layout import powers_from_solution
from models.planner.planner import PyomoPlanner
from models.planner.settings import PlannerSettings

log = logging.getLogger(__name__)

Int32Array = npt.NDArray[np.int32]
WarmKind = Literal["bounds", "coefficients", "rows added"]
# timings_s["warm_kind"]: 0 cold, then the kinds above in this order.
KIND_CODE: dict[str, float] = {"cold": 0.0, "bounds": 1.0, "coefficients": 2.0, "rows added": 3.0}
# HiGHS option values used for every model this planner loads (see the module docstring).
SOLVER_OPTIONS: dict[str, int] = {"simplex_scale_strategy": 4}


@dataclass
class _Kept:
    """One kept HiGHS model, the arrays it currently holds and the events of its cap rows."""

    highs: highspy.Highs
    lp: LpArrays
    cap_ids: tuple[str, ...]


def _same_pattern(a: sp.csc_array, b: sp.csc_array) -> bool:
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
    )


def same_structure(old: LpArrays, new: LpArrays) -> bool:
    """True when ``new`` differs from ``old`` in costs and bounds only (identical ``A``)."""
    return _same_pattern(old.a, new.a) and np.array_equal(old.a.data, new.a.data)


def classify(old: LpArrays, new: LpArrays) -> WarmKind | None:
    """How ``new`` can be reached from the model holding ``old``; ``None``: only cold.

    ``rows added`` requires that ``new`` is ``old`` (up to coefficient values) with rows and
    columns appended at the end and no new entry in an old row's new columns.
    """
    if _same_pattern(old.a, new.a):
        return "bounds" if np.array_equal(old.a.data, new.a.data) else "coefficients"
    m0, n0 = old.shape
    m1, n1 = new.shape
    if m1 <= m0 or n1 < n0:
        return None
    top = new.a[:m0, :]
    # csc slicing keeps the column order and sorted indices: compare with the kept pattern.
    if top[:, n0:].nnz:
        return None
    return "rows added" if _same_pattern(old.a, _kept_part(new.a, old.shape)) else None


def _kept_part(a: sp.csc_array, shape: tuple[int, int]) -> sp.csc_array:
    """The top-left block of ``a`` that a kept model of ``shape`` holds."""
    m0, n0 = shape
    return sp.csc_array(a[:m0, :n0])


def _changed(old: FloatArray, new: FloatArray) -> Int32Array:
    # Exact comparison on purpose: any change is passed on; equal infinities compare equal.
    return np.flatnonzero(old != new).astype(np.int32)


def _load(lp: LpArrays, settings: PlannerSettings) -> highspy.Highs:
    h = load_lp(lp, settings)
    for name, value in SOLVER_OPTIONS.items():
        h.setOptionValue(name, value)
    return h


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


def _change_coefficients(h: highspy.Highs, old: sp.csc_array, new: sp.csc_array) -> int:
    """Set the entries of ``new`` that differ from ``old`` (same pattern, columns ``< n``)."""
    n = int(old.shape[1])
    nnz = int(old.indptr[n])
    diff = np.flatnonzero(old.data[:nnz] != new.data[:nnz])
    if diff.size:
        cols = np.searchsorted(old.indptr, diff, side="right") - 1
        for row, col, value in zip(
            old.indices[diff].tolist(), cols.tolist(), new.data[diff].tolist(), strict=True
        ):
            h.changeCoeff(row, col, value)
    return int(diff.size)


def _add_rows(h: highspy.Highs, old: LpArrays, new: LpArrays) -> LpArrays:
    """Append ``new``'s extra columns and rows to ``h``; returns what ``h`` then holds."""
    m0, n0 = old.shape
    m1, n1 = new.shape
    if n1 > n0:
        # New columns (the new caps' ev_slack) have no entry in a kept row: added empty.
        k = n1 - n0
        h.addCols(
            k,
            new.c[n0:],
            new.col_lb[n0:],
            new.col_ub[n0:],
            0,
            np.zeros(k, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=float),
        )
    rows = sp.csr_array(new.a[m0:, :])
    rows.sort_indices()
    h.addRows(
        m1 - m0,
        new.row_lb[m0:],
        new.row_ub[m0:],
        int(rows.nnz),
        rows.indptr[:-1].astype(np.int32),
        rows.indices.astype(np.int32),
        rows.data.astype(float),
    )
    # The kept part still has the old costs and bounds; the appended part has the new ones.
    return LpArrays(
        c=np.concatenate([old.c, new.c[n0:]]),
        col_lb=np.concatenate([old.col_lb, new.col_lb[n0:]]),
        col_ub=np.concatenate([old.col_ub, new.col_ub[n0:]]),
        a=new.a,
        row_lb=np.concatenate([old.row_lb, new.row_lb[m0:]]),
        row_ub=np.concatenate([old.row_ub, new.row_ub[m0:]]),
        offset=old.offset,
    )


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


def _kept_order(caps: Sequence[EventCap], kept: tuple[str, ...]) -> tuple[EventCap, ...]:
    """Caps of events the kept model has first (in its order), then the others (stable)."""
    rank = {event_id: i for i, event_id in enumerate(kept)}
    return tuple(sorted(caps, key=lambda c: rank.get(c.event.event_id, len(rank))))


class WarmPlanner(PyomoPlanner):
    """The direct-array planner that re-solves warm where the LP structure allows.

    ``plan`` calls are serialised by a lock (a kept model is not thread-safe); use one
    instance per control loop and a separate (cold) planner for unrelated problems such as
    event baselines, which would otherwise replace the kept model. ``last_warm`` tells
    whether the last ``plan`` (its final LP) was solved warm; the plan's ``timings_s`` carries
    ``warm`` (1 or 0), ``warm_kind`` (``KIND_CODE``) and ``changed_entries`` per solve role.
    """

    def __init__(self, settings: PlannerSettings | None = None) -> None:
        super().__init__(settings, builder="direct")
        # One kept model per solve role: the plan itself ("") and the shed baseline.
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()
        self.last_warm = False
        self.last_kind = "cold"

    def reset(self) -> None:
        """Forget the kept models: the next plan is cold."""
        with self._lock:
            self._kept.clear()

    def plan(self, problem: FleetProblem) -> Plan:
        with self._lock:
            return super().plan(problem)

    def _solve_lp(
        self, lp: LpArrays, cap_ids: tuple[str, ...], timings: dict[str, float], prefix: str
    ) -> tuple[HighsResult, str]:
        kept = self._kept.pop(prefix, None)
        kind = classify(kept.lp, lp) if kept is not None else None
        if kept is not None and kind is not None:
            start = time.perf_counter()
            h, held = kept.highs, kept.lp
            ref = _kept_part(lp.a, held.shape) if kind == "rows added" else lp.a
            changed = _change_coefficients(h, held.a, ref)
            if kind == "rows added":
                held = _add_rows(h, held, lp)
                changed += lp.shape[0] - kept.lp.shape[0]
            changed += _update(h, held, lp)
            timings[prefix + "update_s"] = time.perf_counter() - start
            timings[prefix + "changed_entries"] = float(changed)
            result = _run(h, self.settings)
            if result.optimal:
                self._kept[prefix] = _Kept(h, lp, cap_ids)
                return result, kind
            log.warning("warm re-solve (%s) ended %s; solving cold", kind, result.status)
        h = _load(lp, self.settings)
        result = _run(h, self.settings)
        if result.optimal:
            self._kept[prefix] = _Kept(h, lp, cap_ids)
        return result, "cold"

    def solve(self, cp: CompiledProblem, timings: dict[str, float], prefix: str = "") -> Plan:
        """Like ``PyomoPlanner.solve`` with the direct build, warm where the structure allows."""
        status = "not solved"
        result: HighsResult | None = None
        kind = "cold"
        kept = self._kept.get(prefix)
        # Caps in the kept model's order, so that a new event's rows come last.
        solved = cp.with_caps(_kept_order(cp.caps, kept.cap_ids)) if kept is not None else cp
        try:
            start = time.perf_counter()
            lp, lay = build_direct(solved, self.settings)
            timings[prefix + "build_s"] = time.perf_counter() - start
            cap_ids = tuple(c.event.event_id for c in solved.caps)
            result, kind = self._solve_lp(lp, cap_ids, timings, prefix)
            timings[prefix + "solve_s"] = result.solve_s
            timings[prefix + "iterations"] = float(result.iterations)
            status = result.status
        except Exception as exc:  # the planner must always return a plan
            log.exception("LP path failed; using the heuristic fallback")
            status = f"error: {type(exc).__name__}: {exc}"
            self._kept.pop(prefix, None)
        warm = kind != "cold"
        timings[prefix + "warm"] = 1.0 if warm else 0.0
        timings[prefix + "warm_kind"] = KIND_CODE[kind]
        self.last_warm, self.last_kind = warm, kind
        start = time.perf_counter()
        if result is not None and result.optimal and result.x is not None:
            pc, pd, batt = powers_from_solution(solved, lay, result.x)
            # Evaluated with the problem's own cap order: events listed as a cold plan lists them.
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
