"""Power samples as step functions, and their time-weighted means over intervals. [kW, s]

A sample ``(ts, kW)`` is the mean power from ``ts`` until the next sample (period-beginning
labelling, as interval meters and the resampled telemetry report it), held for at most
``max_hold``. A NaN value marks power as unknown until the next sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.domain import ValidationError

FloatArray: TypeAlias = npt.NDArray[np.float64]

# Metered power: a Series with an aware UTC DatetimeIndex, or (ts, kW) pairs. [kW]
MeterData: TypeAlias = "pd.Series[float] | Sequence[tuple[datetime, float]]"

# Coverage shortfalls below this count as none (float seconds since the epoch). [s]
_TOL_S = 1e-3


def require_utc(entity: str, field: str, value: datetime) -> None:
    """Reject naive datetimes and any offset other than UTC, naming the field."""
    if not isinstance(value, datetime):
        raise ValidationError(entity, field, f"must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValidationError(entity, field, f"must be a timezone-aware UTC time, got {value!r}")


def to_seconds(values: Sequence[datetime]) -> FloatArray:
    """Aware datetimes as seconds since the epoch. [s]"""
    return np.array([v.timestamp() for v in values], dtype=float)


@dataclass(frozen=True, slots=True)
class Samples:
    """Sorted sample times ``t_s`` [s since the epoch] and power ``kw`` [kW] (NaN = unknown)."""

    t_s: FloatArray
    kw: FloatArray


def _series_samples(entity: str, data: pd.Series[float]) -> tuple[FloatArray, FloatArray]:
    index = data.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ValidationError(entity, "index", "must be a DatetimeIndex")
    if index.tz is None:
        raise ValidationError(entity, "index", "must be timezone-aware UTC, got naive timestamps")
    if (
        len(index)
        and not (index.tz_localize(None) == index.tz_convert("UTC").tz_localize(None)).all()
    ):
        raise ValidationError(entity, "index", f"must be UTC, got time zone {index.tz}")
    t_s = index.as_unit("ns").asi8.astype(float) / 1e9
    kw: FloatArray = np.asarray(data.to_numpy(dtype=float, na_value=np.nan), dtype=np.float64)
    return t_s, kw


def to_samples(entity: str, data: MeterData) -> Samples:
    """Validate ``data`` and return its samples sorted by time.

    Raises ``ValidationError`` (a ``ValueError``) naming ``entity`` and the field for naive or
    non-UTC times, infinite values and duplicate timestamps.
    """
    if isinstance(data, pd.Series):
        t_s, kw = _series_samples(entity, data)
    else:
        for i, (ts, _) in enumerate(data):
            require_utc(entity, f"[{i}].ts", ts)
        t_s = to_seconds([ts for ts, _ in data])
        kw = np.array([float(v) for _, v in data], dtype=float)
    if np.isinf(kw).any():
        raise ValidationError(entity, "values", "must be finite (NaN marks missing data)")
    order = np.argsort(t_s, kind="stable")
    t_s, kw = t_s[order], kw[order]
    if np.any(np.diff(t_s) == 0):
        raise ValidationError(entity, "index", "has duplicate timestamps")
    return Samples(t_s=t_s, kw=kw)


def step_integrals(
    samples: Samples, starts_s: FloatArray, ends_s: FloatArray, max_hold_s: float | None
) -> tuple[FloatArray, FloatArray]:
    """Energy [kW*s] and covered time [s] of the step function over each ``[start, end)``."""
    t, v = samples.t_s, samples.kw
    if t.size == 0:
        zeros = np.zeros(len(starts_s))
        return zeros, zeros.copy()
    seg_end = np.append(t[1:], math.inf)
    if max_hold_s is not None:
        seg_end = np.minimum(seg_end, t + max_hold_s)
    known = ~np.isnan(v)
    dur = np.where(known, seg_end - t, 0.0)
    val = np.where(known, v, 0.0)
    # Cumulative energy / coverage at each sample time (the last segment may be endless).
    cum_e = np.concatenate(([0.0], np.cumsum(val[:-1] * dur[:-1])))
    cum_c = np.concatenate(([0.0], np.cumsum(dur[:-1])))

    def at(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = np.searchsorted(t, x, side="right") - 1
        before = k < 0
        k = np.maximum(k, 0)
        inside = np.clip(x - t[k], 0.0, dur[k])
        e = np.where(before, 0.0, cum_e[k] + val[k] * inside)
        c = np.where(before, 0.0, cum_c[k] + inside)
        return e, c

    e0, c0 = at(starts_s)
    e1, c1 = at(ends_s)
    return np.asarray(e1 - e0, dtype=float), np.asarray(c1 - c0, dtype=float)


def covered(length_s: FloatArray, covered_s: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether each interval is fully covered by known samples."""
    return np.asarray(covered_s >= length_s - _TOL_S)


def interval_means(
    entity: str,
    samples: Samples,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    max_hold: timedelta | None,
) -> FloatArray:
    """Time-weighted mean power over each ``[start, end)``. [kW]

    Raises ``ValidationError`` when part of an interval has no known sample.
    """
    s, e = to_seconds(starts), to_seconds(ends)
    hold = None if max_hold is None else max_hold.total_seconds()
    energy, cov = step_integrals(samples, s, e, hold)
    ok = covered(e - s, cov)
    if not ok.all():
        j = int(np.argmin(ok))
        missing = timedelta(seconds=float(e[j] - s[j] - cov[j]))
        raise ValidationError(
            entity,
            "samples",
            f"no data for {missing} of [{starts[j].isoformat()}, {ends[j].isoformat()})",
        )
    return np.asarray(energy / (e - s), dtype=float)
