"""The model behind the price and load forecasters: linear quantile regression on lags.

For a series on a regular step (``D`` slots a day, ``W = 7 D`` a week) known up to the origin
``o`` (the first slot not known), the forecast of slot ``t`` on horizon day ``k`` (``t - o`` in
``[(k - 1) D, k D)``) is, for each quantile ``q``, a linear function of

- ``d1 = y[t - k D]``: the same slot on the last day known at the origin;
- ``w1 = y[t - W ceil(k / 7)]``: the same slot of the same weekday a week earlier;
- ``d1 * s``, ``s = 1`` when the lag day and the target day differ in kind (weekday vs
  weekend): lets a Monday lean on the last Monday rather than on Sunday;
- the mean of the last day and of the last week before the origin (the level);
- the target's local hour of the day (23 indicators) and weekday (6 indicators).

One regression per horizon day and quantile, fitted on the last ``window_weeks`` weeks with
the origins the forecast itself uses (every slot of the window is a target once, seen from the
origin at the same time of day ``k`` days before), so the spread of the quantiles is learned
out of sample for that horizon. Regressions are fitted when first asked for, then cached.
Quantiles are sorted per row so they never cross.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.domain import ValidationError
from models.forecast.qr import fit_quantile_regression
from models.forecast.quantiles import checked_quantiles, quantile_column, sorted_rows

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_DAY = pd.Timedelta(days=1)
MAX_FILL = pd.Timedelta(hours=6)
"""Longest run of missing slots filled by holding the previous value."""
MIN_TRAINING_DAYS = 14


class LagQuantileModel:
    """Quantile regression on lags and calendar terms of one regularly stepped series."""

    def __init__(
        self,
        *,
        entity: str,
        step: pd.Timedelta,
        window_weeks: int,
        timezone: str,
        max_horizon_days: int,
    ) -> None:
        if window_weeks < 1:
            raise ValidationError(entity, "window_weeks", f"must be >= 1, got {window_weeks}")
        if not 1 <= max_horizon_days <= 14:
            raise ValidationError(
                entity, "max_horizon_days", f"must be 1 to 14, got {max_horizon_days}"
            )
        if step <= pd.Timedelta(0) or _DAY % step != pd.Timedelta(0):
            raise ValidationError(entity, "step", f"{step} does not divide a day")
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(entity, "timezone", f"unknown zone {timezone!r}") from None
        self.entity = entity
        self.step = step
        self.window_weeks = window_weeks
        self.timezone = timezone
        self.max_horizon_days = max_horizon_days
        self.per_day = int(_DAY / step)
        self._y: Array | None = None
        self._cs: Array = np.zeros(1)
        self._t0 = pd.Timestamp(0, tz="UTC")
        self._weekday: IntArray = np.zeros(0, dtype=np.int64)
        self._hour: IntArray = np.zeros(0, dtype=np.int64)
        self._train: dict[int, tuple[Array, Array]] = {}
        self._coef: dict[tuple[int, float], Array] = {}

    # ------------------------------------------------------------------ fit

    @property
    def week(self) -> int:
        return 7 * self.per_day

    def fit(self, history: pd.Series, until: pd.Timestamp | None = None) -> LagQuantileModel:
        y, t0 = self._regular(history, until)
        self._y = y
        self._cs = np.concatenate(([0.0], np.cumsum(y)))
        self._t0 = t0
        # Local calendar of every slot from the first known to the last that can be forecast.
        local = pd.date_range(
            t0, periods=len(y) + self.max_horizon_days * self.per_day, freq=self.step
        ).tz_convert(self.zone)
        self._weekday = np.asarray(local.day_of_week, dtype=np.int64)
        self._hour = np.asarray(local.hour, dtype=np.int64)
        self._train = {}
        self._coef = {}
        return self

    @property
    def fitted(self) -> bool:
        return self._y is not None

    @property
    def origin(self) -> pd.Timestamp:
        """The first slot after the fitted history."""
        if self._y is None:
            raise ValidationError(self.entity, "fit", "not fitted yet")
        return self._t0 + self.step * len(self._y)

    def _regular(
        self, history: pd.Series, until: pd.Timestamp | None
    ) -> tuple[Array, pd.Timestamp]:
        """The history on its full step grid up to ``until`` (default: its last slot), short
        gaps held, cut after the last long gap."""
        entity, step = self.entity, self.step
        if not isinstance(history, pd.Series):
            raise ValidationError(entity, "history", "must be a pandas Series")
        if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
            raise ValidationError(entity, "history", "needs a timezone-aware DatetimeIndex (UTC)")
        if history.empty:
            raise ValidationError(entity, "history", "is empty")
        values = pd.to_numeric(history, errors="coerce").astype(float)
        values.index = pd.DatetimeIndex(history.index).tz_convert("UTC")
        values = values.sort_index()
        duplicated = values.index.duplicated()
        if duplicated.any():
            when = values.index[int(np.argmax(duplicated))]
            raise ValidationError(entity, "history", f"{when.isoformat()} appears twice")
        stamps = pd.DatetimeIndex(values.index)
        off_grid = stamps != stamps.floor(step)
        if off_grid.any():
            when = stamps[int(np.argmax(off_grid))]
            raise ValidationError(
                entity, "history", f"{when.isoformat()} is not on the {_span(step)} grid"
            )
        values = values[np.isfinite(values.to_numpy())]
        if values.empty:
            raise ValidationError(entity, "history", "has no finite values")
        last = values.index[-1]
        if until is not None:
            end = pd.Timestamp(until)
            if end.tzinfo is None or end != end.floor(step) or end <= last:
                raise ValidationError(
                    entity,
                    "until",
                    f"must be an aware time on the {_span(step)} grid after the last value "
                    f"{last.isoformat()}, got {end.isoformat()}",
                )
            last = end - step
        full = values.reindex(pd.date_range(values.index[0], last, freq=step))
        keep = self.window_weeks * self.week + (self.max_horizon_days + 1) * self.per_day
        keep += 2 * self.week
        full = full.iloc[-keep:]
        missing = full.isna().to_numpy()
        if missing.any():
            starts, ends = _runs(missing)
            long = ends - starts > int(MAX_FILL / step)
            if long.any():
                # Data before the last long gap is not used: cut there (it may be enough).
                s, e = int(starts[long][-1]), int(ends[long][-1])
                gap = (full.index[s], full.index[e - 1] + step)
                full = full.iloc[e:]
                if len(full) < self._min_slots():
                    raise ValidationError(
                        entity,
                        "history",
                        f"no values from {gap[0].isoformat()} to {gap[1].isoformat()} "
                        f"(gaps up to {_span(MAX_FILL)} are filled), and the "
                        f"{_span(step * len(full))} after it are too short: it needs "
                        f"{_span(step * self._min_slots())}",
                    )
            full = full.ffill()
        if len(full) < self._min_slots():
            raise ValidationError(
                entity,
                "history",
                f"covers {_span(step * len(full))}, it needs at least "
                f"{_span(step * self._min_slots())} (two weeks of lags and "
                f"{MIN_TRAINING_DAYS} days to fit on)",
            )
        return np.asarray(full.to_numpy(), dtype=np.float64), pd.Timestamp(full.index[0])

    def _min_slots(self) -> int:
        return 2 * self.week + MIN_TRAINING_DAYS * self.per_day

    # ------------------------------------------------------------------ features

    def _features(self, p: IntArray, o: IntArray, k: int) -> Array:
        """Design rows for targets ``p`` seen from origins ``o`` on horizon day ``k``."""
        y, cs, day, week = self._y, self._cs, self.per_day, self.week
        assert y is not None
        d1 = y[p - k * day]
        w1 = y[p - week * ((k + 6) // 7)]
        lvl1 = (cs[o] - cs[o - day]) / day
        lvl7 = (cs[o] - cs[o - week]) / week
        weekday, hour = self._weekday[p], self._hour[p]
        switch = (weekday >= 5) != (self._weekday[p - k * day] >= 5)
        hours = (hour[:, None] == np.arange(1, 24)[None, :]).astype(float)
        days = (weekday[:, None] == np.arange(1, 7)[None, :]).astype(float)
        base = np.column_stack([np.ones(len(p)), d1, w1, d1 * switch, lvl1, lvl7])
        return np.hstack([base, hours, days])

    def _training(self, k: int) -> tuple[Array, Array]:
        if k not in self._train:
            y = self._y
            assert y is not None
            n, day = len(y), self.per_day
            first = max(0, n - self.window_weeks * self.week)
            p = np.arange(first, n, dtype=np.int64)
            o = p - (p - n) % day - (k - 1) * day
            ok = o >= self.week
            p, o = p[ok], o[ok]
            self._train[k] = (self._features(p, o, k), y[p])
        return self._train[k]

    def _coefficients(self, k: int, q: float) -> Array:
        key = (k, q)
        if key not in self._coef:
            x, y = self._training(k)
            coef = fit_quantile_regression(x, y, q)
            if coef is None:
                # Fallback: the last known day plus the q-quantile of its errors.
                coef = np.zeros(x.shape[1])
                coef[1] = 1.0
                coef[0] = float(np.quantile(y - x[:, 1], q))
            self._coef[key] = coef
        return self._coef[key]

    # ------------------------------------------------------------------ predict

    def predict(self, index: pd.DatetimeIndex, quantiles: Sequence[float]) -> pd.DataFrame:
        entity = self.entity
        if self._y is None:
            raise ValidationError(entity, "fit", "predict called before fit")
        levels = checked_quantiles(quantiles, entity)
        columns = [quantile_column(q) for q in levels]
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValidationError(entity, "index", "must be a timezone-aware DatetimeIndex")
        utc = index.tz_convert("UTC")
        if len(utc) == 0:
            return pd.DataFrame(index=utc, columns=columns, dtype=float)
        n, day = len(self._y), self.per_day
        p = np.asarray((utc - self._t0) // self.step, dtype=np.int64)
        if (p < n).any():
            when = utc[int(np.argmax(p < n))]
            raise ValidationError(
                entity,
                "index",
                f"{when.isoformat()} is before the forecast origin "
                f"{self.origin.isoformat()} (the history already covers it)",
            )
        horizon = self.max_horizon_days * day
        if (p >= n + horizon).any():
            when = utc[int(np.argmax(p >= n + horizon))]
            raise ValidationError(
                entity,
                "index",
                f"{when.isoformat()} is more than {self.max_horizon_days} days after the "
                f"forecast origin {self.origin.isoformat()}",
            )
        k_of = (p - n) // day + 1
        out = np.empty((len(p), len(levels)))
        for k in np.unique(k_of):
            rows = np.flatnonzero(k_of == k)
            x = self._features(p[rows], np.full(rows.size, n, dtype=np.int64), int(k))
            for j, q in enumerate(levels):
                out[rows, j] = x @ self._coefficients(int(k), q)
        return pd.DataFrame(sorted_rows(out), index=utc, columns=columns)


def _span(delta: pd.Timedelta) -> str:
    """``6 h``, ``15 min``, ``28 days``."""
    seconds = delta.total_seconds()
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds / 60:g} min"


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """Start and end (exclusive) positions of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int64), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
