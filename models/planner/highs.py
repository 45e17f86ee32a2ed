"""Hand an LP in array form to HiGHS and read the answer back."""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from models.planner.compiled import FloatArray
from models.planner.settings import PlannerSettings

INF = highspy.kHighsInf


@dataclass(frozen=True)
class LpArrays:
    """``min c·x + offset  s.t.  row_lb <= A x <= row_ub,  col_lb <= x <= col_ub``."""

    c: FloatArray
    col_lb: FloatArray
    col_ub: FloatArray
    a: sp.csc_array
    row_lb: FloatArray
    row_ub: FloatArray
    offset: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.a.shape
        return int(rows), int(cols)


@dataclass(frozen=True)
class HighsResult:
    status: str  # HiGHS model status, lower-case ("optimal", "time limit reached", ...)
    optimal: bool
    x: FloatArray | None
    objective: float | None
    iterations: int
    solve_s: float


def load_lp(lp: LpArrays, settings: PlannerSettings) -> highspy.Highs:
    """A quiet HiGHS instance holding ``lp`` (no time limit set: the caller sets it)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(settings.threads))
    n_rows, n_cols = lp.shape
    # The array form of passModel hands numpy buffers straight to HiGHS (~1 ms at 1,000
    # vehicles, against ~30 ms filling a HighsLp attribute by attribute). It takes the CSC
    # column starts without the final one, and the integrality of every column (continuous).
    status = h.passModel(
        n_cols,
        n_rows,
        int(lp.a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        float(lp.offset),
        np.ascontiguousarray(lp.c, dtype=np.float64),
        np.ascontiguousarray(lp.col_lb, dtype=np.float64),
        np.ascontiguousarray(lp.col_ub, dtype=np.float64),
        np.ascontiguousarray(lp.row_lb, dtype=np.float64),
        np.ascontiguousarray(lp.row_ub, dtype=np.float64),
        np.ascontiguousarray(lp.a.indptr[:-1], dtype=np.int32),
        np.ascontiguousarray(lp.a.indices, dtype=np.int32),
        np.ascontiguousarray(lp.a.data, dtype=np.float64),
        np.zeros(n_cols, dtype=np.int32),
    )
    if status == highspy.HighsStatus.kError:  # a warning (say, tiny entries dropped) is fine
        raise ValueError(f"HiGHS refused the LP ({n_rows} rows, {n_cols} columns): {status}")
    return h


def solve_lp(lp: LpArrays, settings: PlannerSettings) -> HighsResult:
    """Solve with the configured time limit. ``x`` is only set for an optimal solve."""
    h = load_lp(lp, settings)
    h.setOptionValue("time_limit", float(settings.time_limit_s))
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
