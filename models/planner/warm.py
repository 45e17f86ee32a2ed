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
* **remapped**: anything else (a session arrives or leaves, a departure crosses a slot
  boundary, the horizon rolls on by a slot, an event ends or its window changes). The new LP
  is loaded afresh, and its starting basis is the kept one carried over by identity: columns
  and rows are matched by block and (session id | site | battery | event id, slot), with
  slots matched across a horizon that starts ``d`` slots later (``d`` = the start shift in
  whole slots, rounded). Matched variables keep their status (basic, at lower, at upper);
  new ones start nonbasic at their lower bound, new rows basic. HiGHS takes it as an *alien*
  basis (it repairs the count of basic variables and any singularity itself) and the dual
  simplex goes on from there. If the row count of the key blocks does not match the LP (the
  builder's row order changed), or HiGHS refuses the basis, the solve is **cold**.

In every case the model HiGHS solves is the cold LP of the new state entry for entry (only
the starting basis differs), so the answer is the cold answer (to solver tolerance; where the
optimum is not unique, another optimum of equal cost). A warm solve that ends without an
optimal solution is retried cold once before the heuristic fallback.

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
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aggregator.domain import FleetProblem, Plan
from models.planner.compiled import CompiledProblem, EventCap, FloatArray
from models.planner.direct import build_direct
from models.planner.highs import HighsResult, LpArrays, load_lp
from models.planner.layout import Layout
from models.planner.planner import PyomoPlanner
from models.planner.settings import PlannerSettings

log = logging.getLogger(__name__)

Int32Array = npt.NDArray[np.int32]
WarmKind = Literal["bounds", "coefficients", "rows added"]
# timings_s["warm_kind"]: 0 cold, then the kinds above in this order.
KIND_CODE: dict[str, float] = {
    "cold": 0.0,
    "bounds": 1.0,
    "coefficients": 2.0,
    "rows added": 3.0,
    "remapped": 4.0,
}
# HiGHS option values used for every model this planner loads (see the module docstring).
SOLVER_OPTIONS: dict[str, int] = {"simplex_scale_strategy": 4}


@dataclass
class _Kept:
    """One kept HiGHS model, the arrays it currently holds and the problem they came from."""

    highs: highspy.Highs
    lp: LpArrays
    cp: CompiledProblem

    @property
    def cap_ids(self) -> tuple[str, ...]:
        return tuple(c.event.event_id for c in self.cp.caps)


# --------------------------------------------------------------------------- remapped basis
_SLOT_BITS = 16  # key = entity code << 16 | (slot + 1024)
_SLOT_BASE = 1024
_S = highspy.HighsBasisStatus
_STATUS = (_S.kLower, _S.kBasic, _S.kUpper, _S.kZero, _S.kNonbasic)
_LOWER, _BASIC, _UPPER = 0, 1, 2


class _Codes:
    """Integer codes for names (session ids, sites, events), shared by two problems."""

    def __init__(self) -> None:
        self._of: dict[tuple[str, str], int] = {}

    def __call__(self, kind: str, names: Sequence[str]) -> npt.NDArray[np.int64]:
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            out[i] = self._of.setdefault((kind, name), len(self._of) + 1)
        return out


def _key(entity: npt.NDArray[np.int64], slot: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return (entity << _SLOT_BITS) | (np.asarray(slot, dtype=np.int64) + _SLOT_BASE)


def _keys(
    cp: CompiledProblem, codes: _Codes, d: int
) -> tuple[list[npt.NDArray[np.int64]], list[npt.NDArray[np.int64]]]:
    """Identity keys of the LP's column blocks and row blocks, in ``direct.py``'s order.

    Slot ``t`` of this problem is keyed as ``t + d`` (``d``: its start in slots after the
    other problem's)."""
    n_t = cp.n_slots
    sess = codes("session", [s.session_id for s in cp.sessions])
    site = codes("site", list(cp.site_ids))
    batt = codes("battery", [f"{cp.site_ids[int(b)]}#{i}" for i, b in enumerate(cp.batt_site)])
    k = _key(sess[cp.k_sess], cp.k_slot + d)
    vk = cp.v2g_k
    v = k[vk]
    t = np.tile(np.arange(n_t) + d, cp.n_sites)
    st = _key(np.repeat(site, n_t), t)
    bt = _key(np.repeat(batt, n_t), np.tile(np.arange(n_t) + d, batt.size))
    ev = [_key(codes("event", [c.event.event_id] * c.slots.size), c.slots + d) for c in cp.caps]
    ev_keys = np.concatenate(ev) if ev else np.zeros(0, dtype=np.int64)
    sf = _key(sess, 0)
    cols = [k, v, v, sf, st, st, st, st, bt, bt, bt, ev_keys]
    inst = cp.instant_site_slots
    rows = [
        v,  # V2G energy balance
        v[cp.pc_ub_kw[vk] > 0],  # one direction
        sf[cp.v2g],  # V2G targets
        sf[~cp.v2g],  # unidirectional targets
        st,  # site balance
        _key(site[inst // n_t], inst % n_t + d),  # instantaneous site limits
        bt,  # site battery balance
        ev_keys,  # event caps
    ]
    return cols, rows


def _carry(
    old_keys: list[npt.NDArray[np.int64]],
    new_keys: list[npt.NDArray[np.int64]],
    old_status: npt.NDArray[np.int8],
    default: int,
) -> npt.NDArray[np.int8]:
    """New statuses: matched keys (block by block) take the old status, others ``default``."""
    n_new = sum(int(b.size) for b in new_keys)
    out = np.full(n_new, default, dtype=np.int8)
    at_old = at_new = 0
    for ob, nb in zip(old_keys, new_keys, strict=True):
        _, io, inew = np.intersect1d(ob, nb, assume_unique=True, return_indices=True)
        out[at_new + inew] = old_status[at_old + io]
        at_old += int(ob.size)
        at_new += int(nb.size)
    return out


def _statuses(values: Sequence[highspy.HighsBasisStatus]) -> npt.NDArray[np.int8]:
    return np.fromiter((s.value for s in values), dtype=np.int8, count=len(values))


def _remapped_basis(kept: _Kept, cp: CompiledProblem, lp: LpArrays) -> highspy.HighsBasis | None:
    """The kept model's final basis carried over to ``lp`` by identity, or None."""
    basis = kept.highs.getBasis()
    if not basis.valid:
        return None
    old_grid, new_grid = kept.cp.problem.grid, cp.problem.grid
    if old_grid.step != new_grid.step:
        return None
    d = round((new_grid.start - old_grid.start) / new_grid.step)
    codes = _Codes()
    old_cols, old_rows = _keys(kept.cp, codes, 0)
    new_cols, new_rows = _keys(cp, codes, d)
    shapes_ok = (
        sum(b.size for b in old_cols) == kept.lp.shape[1]
        and sum(b.size for b in old_rows) == kept.lp.shape[0]
        and sum(b.size for b in new_cols) == lp.shape[1]
        and sum(b.size for b in new_rows) == lp.shape[0]
    )
    if not shapes_ok:
        log.warning("LP blocks do not match the warm planner's keys; planning cold")
        return None
    col = _carry(old_cols, new_cols, _statuses(basis.col_status), _LOWER)
    row = _carry(old_rows, new_rows, _statuses(basis.row_status), _BASIC)
    # A nonbasic variable must sit at a finite bound.
    col[(col == _UPPER) & ~np.isfinite(lp.col_ub)] = _LOWER
    col[(col == _LOWER) & ~np.isfinite(lp.col_lb)] = _UPPER
    low_inf, up_inf = ~np.isfinite(lp.row_lb), ~np.isfinite(lp.row_ub)
    row[(row == _LOWER) & low_inf] = _UPPER
    row[(row == _UPPER) & up_inf] = _LOWER
    row[(row != _BASIC) & low_inf & up_inf] = _BASIC
    out = highspy.HighsBasis()
    out.col_status = [_STATUS[i] for i in col.tolist()]
    out.row_status = [_STATUS[i] for i in row.tolist()]
    out.valid = True
    # Alien: HiGHS makes the count of basic variables right and repairs a singular basis.
    out.alien = True
    return out


def _same_pattern(a: sp.csc_array, b: sp.csc_array) -> bool:
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
    )


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
        self, lp: LpArrays, cp: CompiledProblem, timings: dict[str, float], prefix: str
    ) -> tuple[HighsResult, str]:
        kept = self._kept.pop(prefix, None)
        kind = classify(kept.lp, lp) if kept is not None else None
        if kept is not None and kind is None:
            start = time.perf_counter()
            h = _load(lp, self.settings)
            try:
                basis = _remapped_basis(kept, cp, lp)
            except Exception:  # a basis is only a starting point: never fail a plan for it
                log.exception("carrying the basis over failed; planning cold")
                basis = None
            if basis is not None and h.setBasis(basis) == highspy.HighsStatus.kOk:
                timings[prefix + "update_s"] = time.perf_counter() - start
                result = _run(h, self.settings)
                if result.optimal:
                    self._kept[prefix] = _Kept(h, lp, cp)
                    return result, "remapped"
                log.warning("re-solve from the carried basis ended %s; solving cold", result.status)
        elif kept is not None and kind is not None:
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
                self._kept[prefix] = _Kept(h, lp, cp)
                return result, kind
            log.warning("warm re-solve (%s) ended %s; solving cold", kind, result.status)
        h = _load(lp, self.settings)
        result = _run(h, self.settings)
        if result.optimal:
            self._kept[prefix] = _Kept(h, lp, cp)
        return result, "cold"

    def solve(self, cp: CompiledProblem, timings: dict[str, float], prefix: str = "") -> Plan:
        """Like ``PyomoPlanner.solve`` with the direct build, warm where the structure allows."""
        status = "not solved"
        result: HighsResult | None = None
        kind = "cold"
        lay: Layout | None = None
        kept = self._kept.get(prefix)
        # Caps in the kept model's order, so that a new event's rows come last.
        solved = cp.with_caps(_kept_order(cp.caps, kept.cap_ids)) if kept is not None else cp
        try:
            start = time.perf_counter()
            lp, lay = build_direct(solved, self.settings)
            timings[prefix + "build_s"] = time.perf_counter() - start
            result, kind = self._solve_lp(lp, solved, timings, prefix)
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
        # Evaluated with the problem's own cap order: events listed as a cold plan lists them.
        return self.extract(cp, lay, result, status, timings, prefix, solved=solved)
