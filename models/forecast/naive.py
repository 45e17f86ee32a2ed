"""Seasonal naive baselines the forecasters are scored against.

Series (prices, load): the same slot a week earlier; its quantiles add the spread of the
weekly changes ``y[t] - y[t - 1 week]`` seen over the fitting window, centred on their median,
so P50 is exactly last week's value. Sessions: the vehicle's first session on the same
weekday a week earlier (or, if it did not come that day, its latest day before); quantiles
add the spread of the fleet's week-on-week changes the same way, and ``p_session`` is 1 if it
came a week earlier, else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from aggregator.domain import ValidationError
from models.forecast.quantiles import DEFAULT_QUANTILES, checked_quantiles, quantile_column
from models.forecast.sessions import TARGETS, day_records, to_days, wall_clock

_WEEK = pd.Timedelta(days=7)
_HOUR = pd.Timedelta(hours=1)


class SeasonalNaive:
    """Same slot last week, with the spread of weekly changes as its quantiles."""

    def __init__(self, *, step: pd.Timedelta = _HOUR, window_weeks: int = 8) -> None:
        if window_weeks < 1:
            raise ValidationError("seasonal naive", "window_weeks", "must be >= 1")
        self.step = step
        self.window_weeks = window_weeks
        self._history: pd.Series | None = None
        self._changes = np.zeros(0)
        self._origin = pd.Timestamp(0, tz="UTC")
        self._levels: tuple[float, ...] = ()

    def fit(self, history: pd.Series) -> SeasonalNaive:
        """Fit on a series with an aware index (converted to UTC). Returns ``self``."""
        if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
            raise ValidationError("seasonal naive", "history", "needs an aware DatetimeIndex")
        series = history.astype(float).copy()
        series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
        series = series[~series.index.duplicated(keep="last")].sort_index()
        if series.empty:
            raise ValidationError("seasonal naive", "history", "is empty")
        end = series.index[-1] + self.step
        window = series[series.index >= end - self.window_weeks * _WEEK]
        lagged = series.reindex(window.index - _WEEK).to_numpy()
        changes = window.to_numpy() - lagged
        self._changes = changes[np.isfinite(changes)]
        self._history = series
        self._origin = end
        return self

    @property
    def origin(self) -> pd.Timestamp:
        if self._history is None:
            raise ValidationError("seasonal naive", "fit", "not fitted yet")
        return pd.Timestamp(self._origin)

    def predict(
        self, index: pd.DatetimeIndex, quantiles: Sequence[float] = DEFAULT_QUANTILES
    ) -> pd.DataFrame:
        """Quantiles per time of ``index``: the value a whole number of weeks earlier (the
        latest known) plus the centred spread of weekly changes."""
        if self._history is None:
            raise ValidationError("seasonal naive", "fit", "predict called before fit")
        levels = checked_quantiles(quantiles, "seasonal naive")
        utc = index.tz_convert("UTC")
        weeks = np.maximum(1, np.ceil((utc - self._origin + self.step) / _WEEK)).astype(int)
        source = utc.floor(self.step) - pd.to_timedelta(weeks * 7, unit="D")
        point = self._history.reindex(source).to_numpy()
        if self._changes.size:
            spread = np.quantile(self._changes, levels) - np.median(self._changes)
        else:
            spread = np.zeros(len(levels))
        values = point[:, None] + spread[None, :]
        return pd.DataFrame(values, index=utc, columns=[quantile_column(q) for q in levels])


class SessionNaive:
    """A vehicle does what it did on the same weekday last week (else on its latest day)."""

    def __init__(self, *, timezone: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                "session naive", "timezone", f"unknown zone {timezone!r}"
            ) from None
        self._by_vehicle: dict[str, pd.DataFrame] = {}
        self._changes: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}

    def fit(self, sessions: pd.DataFrame, until: date | None = None) -> SessionNaive:
        """Same input as :meth:`SessionForecaster.fit`; ``until`` is accepted for symmetry."""
        records = day_records(sessions, self.zone, "session naive")
        self._by_vehicle = {
            str(v): g.set_index("day") for v, g in records.groupby("vehicle_id", sort=False)
        }
        changes: dict[str, list[float]] = {name: [] for name in TARGETS}
        for frame in self._by_vehicle.values():
            week_before = [d - timedelta(days=7) for d in frame.index]
            earlier = frame.reindex(week_before)
            for name in TARGETS:
                diff = frame[name].to_numpy() - earlier[name].to_numpy()
                changes[name].extend(diff[np.isfinite(diff)].tolist())
        self._changes = {k: np.asarray(v, dtype=float) for k, v in changes.items()}
        return self

    def predict(
        self,
        vehicle_ids: Sequence[str],
        days: Sequence[Any] | pd.DatetimeIndex,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> pd.DataFrame:
        """The same frame as :meth:`SessionForecaster.predict`."""
        levels = checked_quantiles(quantiles, "session naive")
        spreads = {
            name: (np.quantile(c, levels) - np.median(c) if c.size else np.zeros(len(levels)))
            for name, c in self._changes.items()
        }
        rows = []
        for v in (str(x) for x in vehicle_ids):
            frame = self._by_vehicle.get(v)
            if frame is None:
                raise ValidationError(
                    f"vehicle {v}", "vehicle_id", "no sessions in the history the naive knows"
                )
            for day in to_days(days, self.zone):
                source = day - timedelta(days=7)
                came = source in frame.index
                if not came:
                    before = frame[frame.index < day]
                    source = before.index[-1] if len(before) else frame.index[0]
                row: dict[str, Any] = {"vehicle_id": v, "day": day, "p_session": float(came)}
                ref: dict[Any, Any] = frame.loc[source].to_dict()
                values = {name: float(ref[name]) + spreads[name] for name in TARGETS}
                arrivals = wall_clock(day, values["arrival"], self.zone)
                departures = wall_clock(
                    day, np.maximum(values["departure"], values["arrival"]), self.zone
                )
                for j, q in enumerate(levels):
                    row[quantile_column(q, "arrival")] = arrivals[j]
                    row[quantile_column(q, "departure")] = departures[j]
                    row[quantile_column(q, "energy_kwh")] = float(values["energy_kwh"][j])
                rows.append(row)
        columns = ["vehicle_id", "day", "p_session"] + [
            quantile_column(q, name) for name in TARGETS for q in levels
        ]
        return pd.DataFrame(rows, columns=columns)
