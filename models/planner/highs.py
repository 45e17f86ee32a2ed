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
    model = highspy.HighsLp()
    n_rows, n_cols = lp.shape
    model.num_col_ = n_cols
    model.num_row_ = n_rows
    model.col_cost_ = lp.c
    model.col_lower_ = lp.col_lb
    model.col_upper_ = lp.col_ub
    model.row_lower_ = lp.row_lb
    model.row_upper_ = lp.row_ub
    model.offset_ = lp.offset
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = lp.a.indptr
    model.a_matrix_.index_ = lp.a.indices
    model.a_matrix_.value_ = lp.a.data
    model.a_matrix_.num_row_ = n_rows
    model.a_matrix_.num_col_ = n_cols
    h.passModel(model)
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
