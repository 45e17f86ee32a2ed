"""Linear quantile regression as a linear program, solved by HiGHS.

For quantile ``q`` the coefficients ``b`` minimise ``sum_i rho_q(y_i - x_i b)``. HiGHS solves
the dual (Koenker & Bassett 1978; Koenker 2005, ch. 6): maximise ``y'a`` subject to
``X'a = (1 - q) X'1`` and ``0 <= a <= 1``; the coefficients are the negated duals of its
``p`` equality rows. The dual has one row per feature and one bounded column per observation,
which HiGHS solves in milliseconds for the few thousand rows a forecast window holds.
"""

from __future__ import annotations

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

Array = npt.NDArray[np.float64]


def fit_quantile_regression(x: Array, y: Array, q: float) -> Array | None:
    """Coefficients of the ``q`` quantile regression of ``y`` on the columns of ``x``.

    Returns None when HiGHS does not report an optimal solution (the caller falls back).
    """
    n, p = x.shape
    h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves it untyped
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    # Presolve costs more than it saves on these small, dense problems (about 5x).
    h.setOptionValue("presolve", "off")
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = p
    lp.col_cost_ = -y
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    rhs = (1.0 - q) * x.sum(axis=0)
    lp.row_lower_ = rhs
    lp.row_upper_ = rhs
    a = sp.csc_matrix(x.T)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    coef = -np.asarray(h.getSolution().row_dual, dtype=float)
    return coef if np.all(np.isfinite(coef)) else None
