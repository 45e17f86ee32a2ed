"""Forecast scores: mean absolute error, pinball (quantile) loss and interval coverage."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def mae(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Mean absolute error, ``mean(|actual - predicted|)``; NaN pairs are skipped."""
    y, p = _pairs(actual, predicted)
    return float(np.mean(np.abs(y - p))) if y.size else float("nan")


def pinball_loss(actual: npt.ArrayLike, predicted: npt.ArrayLike, q: float) -> float:
    """Mean pinball loss of quantile ``q``: ``mean(max(q * e, (q - 1) * e))``, ``e = y - p``.

    At ``q = 0.5`` it is half the MAE. Lower is better; 0 only for a perfect forecast.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {q}")
    y, p = _pairs(actual, predicted)
    if not y.size:
        return float("nan")
    e = y - p
    return float(np.mean(np.maximum(q * e, (q - 1.0) * e)))


def coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of actual values inside ``[lower, upper]`` (an 80 % interval for P10..P90)."""
    y = np.asarray(actual, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    ok = ~(np.isnan(y) | np.isnan(lo) | np.isnan(hi))
    if not ok.any():
        return float("nan")
    return float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])))


def _pairs(
    actual: npt.ArrayLike, predicted: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    y = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"actual has shape {y.shape}, predicted {p.shape}")
    ok = ~(np.isnan(y) | np.isnan(p))
    return y[ok], p[ok]
