"""Quantile levels: validation, column names, non-crossing, weighted empirical quantiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aggregator.domain import ValidationError

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
"""P10, P50, P90."""


def quantile_column(q: float, prefix: str = "") -> str:
    """Column name of quantile ``q``: ``q10`` for 0.1, ``q50``, ``q2.5`` for 0.025.

    ``prefix`` is put in front with an underscore (``arrival_q10``).
    """
    name = f"q{round(q * 100, 6):g}"
    return f"{prefix}_{name}" if prefix else name


def checked_quantiles(quantiles: Sequence[float], entity: str = "forecast") -> tuple[float, ...]:
    """The levels sorted and unique; each must lie strictly between 0 and 1."""
    levels = tuple(float(q) for q in quantiles)
    if not levels:
        raise ValidationError(entity, "quantiles", "at least one quantile is needed")
    for q in levels:
        if not 0.0 < q < 1.0:
            raise ValidationError(
                entity, "quantiles", f"must lie strictly between 0 and 1, got {q}"
            )
    return tuple(sorted(set(levels)))


def sorted_rows(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Quantiles per row (columns in increasing level) made non-crossing by sorting each row.

    Sorting is the rearrangement of Chernozhukov, Fernandez-Val and Galichon (2010): it never
    makes the pinball loss of a row worse.
    """
    return np.sort(values, axis=1)


def weighted_quantiles(
    values: npt.ArrayLike, weights: npt.ArrayLike, levels: Sequence[float]
) -> npt.NDArray[np.float64]:
    """Quantiles of a weighted sample (linear between the midpoints of the sorted weights).

    With equal weights this matches ``numpy.quantile(..., method="hazen")``.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if x.size == 0:
        raise ValueError("no values")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    total = w.sum()
    if not total > 0:
        raise ValueError("weights must sum to a positive number")
    cum = (np.cumsum(w) - 0.5 * w) / total
    return np.asarray(np.interp(np.asarray(levels, dtype=float), cum, x), dtype=np.float64)
