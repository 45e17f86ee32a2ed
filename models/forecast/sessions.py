"""Per-vehicle arrival, departure and energy need, learned from session history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.domain import ValidationError
from models.forecast.quantiles import (
    DEFAULT_QUANTILES,
    checked_quantiles,
    quantile_column,
    weighted_quantiles,
)

SESSION_COLUMNS = ("vehicle_id", "arrival", "departure", "energy_kwh")
"""Columns :meth:`SessionForecaster.fit` needs (times aware; energy in kWh)."""

TARGETS = ("arrival", "departure", "energy_kwh")
_ENTITY = "session forecast"


def day_records(sessions: pd.DataFrame, zone: ZoneInfo, entity: str = _ENTITY) -> pd.DataFrame:
    """One row per vehicle and local day: its first session that day.

    Columns ``vehicle_id``, ``day`` (``datetime.date``, local), ``weekday`` (0 = Monday),
    ``arrival`` and ``departure`` in local wall-clock hours after the day's midnight (a
    departure the next morning is above 24), ``energy_kwh``. Sorted by vehicle and day.
    """
    if not isinstance(sessions, pd.DataFrame):
        raise ValidationError(entity, "sessions", "must be a pandas DataFrame")
    missing = [c for c in SESSION_COLUMNS if c not in sessions.columns]
    if missing:
        raise ValidationError(entity, "sessions", f"missing column {', '.join(missing)}")
    frame = sessions.reset_index(drop=True)
    arrival = _aware(frame["arrival"], "arrival", entity)
    departure = _aware(frame["departure"], "departure", entity)
    energy = pd.to_numeric(frame["energy_kwh"], errors="coerce").astype(float).to_numpy()
    for row in range(len(frame)):
        if not departure[row] > arrival[row]:
            raise ValidationError(f"sessions row {row}", "departure", "must be after arrival")
        if not (np.isfinite(energy[row]) and energy[row] >= 0):
            raise ValidationError(
                f"sessions row {row}", "energy_kwh", f"must be a number >= 0, got {energy[row]}"
            )
    local_arrival = arrival.tz_convert(zone).tz_localize(None)
    local_departure = departure.tz_convert(zone).tz_localize(None)
    midnight = local_arrival.normalize()
    out = pd.DataFrame(
        {
            "vehicle_id": frame["vehicle_id"].astype(str).str.strip().to_numpy(),
            "day": midnight.date,
            "weekday": np.asarray(midnight.day_of_week),
            "arrival": np.asarray((local_arrival - midnight) / pd.Timedelta(hours=1)),
            "departure": np.asarray((local_departure - midnight) / pd.Timedelta(hours=1)),
            "energy_kwh": energy,
            "_t": np.asarray(local_arrival),
        }
    )
    out = out.sort_values(["vehicle_id", "_t"], kind="stable")
    out = out.drop_duplicates(["vehicle_id", "day"], keep="first")
    return out.drop(columns="_t").reset_index(drop=True)


def to_days(days: Sequence[Any] | pd.DatetimeIndex, zone: ZoneInfo) -> list[date]:
    """Local calendar days: ``date`` objects as they are, naive times and ISO text as local
    dates, aware times converted to ``zone`` first."""
    out = []
    for d in days:
        if type(d) is date:
            out.append(d)
            continue
        stamp = pd.Timestamp(d)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert(zone)
        out.append(stamp.date())
    return out


def wall_clock(day: date, hours: npt.NDArray[np.float64], zone: ZoneInfo) -> pd.DatetimeIndex:
    """UTC times of ``hours`` wall-clock hours after local midnight of ``day``."""
    naive = pd.Timestamp(day) + pd.to_timedelta(hours, unit="h")
    local = pd.DatetimeIndex(naive).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
    return local.tz_convert("UTC")


class SessionForecaster:
    """When each vehicle arrives and leaves on a given day, and how much energy it needs.

    For each vehicle and local day the first session of that day is one observation: arrival
    and departure as local wall-clock hours, energy in kWh. The forecast for vehicle ``v`` on
    day ``d`` is the weighted empirical quantiles of ``v``'s observations in the last
    ``lookback_days`` before the end of the history: weight halves every ``half_life_days``
    back, times ``same_weekday_weight`` on the same weekday as ``d``, 1 on another day of the
    same kind (weekday/weekend), ``other_kind_weight`` otherwise. The whole fleet's
    observations of the same kind of day add ``prior_sessions`` observations' worth of
    weight, so a vehicle seen twice still gets sensible quantiles (shrinkage to the fleet).
    ``p_session`` is the share of such days on which ``v`` came, shrunk the same way.

    ``timezone`` is where the fleet lives: habits follow the local clock (DST included).
    """

    def __init__(
        self,
        *,
        timezone: str = "UTC",
        lookback_days: int = 28,
        half_life_days: float = 14.0,
        same_weekday_weight: float = 3.0,
        other_kind_weight: float = 0.25,
        prior_sessions: float = 2.0,
    ) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(_ENTITY, "timezone", f"unknown zone {timezone!r}") from None
        for name, value in (
            ("lookback_days", lookback_days),
            ("half_life_days", half_life_days),
            ("same_weekday_weight", same_weekday_weight),
        ):
            if not value > 0:
                raise ValidationError(_ENTITY, name, f"must be > 0, got {value}")
        for name, value in (
            ("other_kind_weight", other_kind_weight),
            ("prior_sessions", prior_sessions),
        ):
            if not value >= 0:
                raise ValidationError(_ENTITY, name, f"must be >= 0, got {value}")
        self.timezone = timezone
        self.lookback_days = lookback_days
        self.half_life_days = half_life_days
        self.same_weekday_weight = same_weekday_weight
        self.other_kind_weight = other_kind_weight
        self.prior_sessions = prior_sessions
        self._records: pd.DataFrame | None = None
        self._by_vehicle: dict[str, pd.DataFrame] = {}
        self._until = date.min
        self._first = date.min

    def fit(self, sessions: pd.DataFrame, until: date | None = None) -> SessionForecaster:
        """Learn from ``sessions`` (columns ``vehicle_id``, ``arrival``, ``departure`` as aware
        times, ``energy_kwh``; one row per session).

        ``until``: the first local day *not* observed (default: the day after the last
        arrival). Days between the last session and ``until`` count as days without a
        session. Returns ``self``.
        """
        records = day_records(sessions, self.zone)
        if records.empty:
            raise ValidationError(_ENTITY, "sessions", "has no rows")
        last = max(records["day"])
        self._until = until if until is not None else last + timedelta(days=1)
        if self._until <= last:
            raise ValidationError(
                _ENTITY, "until", f"{self._until} is not after the last session day {last}"
            )
        self._first = min(records["day"])
        age = np.array([(self._until - d).days for d in records["day"]], dtype=float)
        records["age"] = age
        self._records = records
        self._by_vehicle = {str(v): g for v, g in records.groupby("vehicle_id", sort=False)}
        return self

    @property
    def vehicle_ids(self) -> tuple[str, ...]:
        """Vehicles with at least one session in the fitted history."""
        return tuple(self._by_vehicle)

    @property
    def until(self) -> date:
        """The first local day after the fitted history."""
        return self._until

    def predict(
        self,
        vehicle_ids: Sequence[str],
        days: Sequence[Any] | pd.DatetimeIndex,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> pd.DataFrame:
        """One row per vehicle and day, in the order given (vehicles outer).

        ``days``: local calendar days (``date``, ISO text, or times, converted to the
        forecaster's zone). Columns: ``vehicle_id``, ``day``, ``p_session`` (chance the
        vehicle comes that day), then per quantile ``arrival_q10``... and
        ``departure_q10``... (aware UTC times, given that it comes) and ``energy_kwh_q10``...
        [kWh]. A vehicle without history is a ``ValidationError`` naming it.
        """
        if self._records is None:
            raise ValidationError(_ENTITY, "fit", "predict called before fit")
        levels = checked_quantiles(quantiles, _ENTITY)
        wanted = [str(v) for v in vehicle_ids]
        for v in wanted:
            if v not in self._by_vehicle:
                raise ValidationError(
                    f"vehicle {v}",
                    "vehicle_id",
                    "no sessions in the history the session forecaster was fitted on",
                )
        targets = to_days(days, self.zone)
        rows = []
        for v in wanted:
            own = self._by_vehicle[v]
            for d in targets:
                rows.append(self._forecast(v, own, d, levels))
        columns = ["vehicle_id", "day", "p_session"] + [
            quantile_column(q, name) for name in TARGETS for q in levels
        ]
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ internals

    def _similarity(self, weekdays: npt.NDArray[np.int64], weekday: int) -> npt.NDArray[np.float64]:
        same_kind = (weekdays >= 5) == (weekday >= 5)
        weights = np.where(same_kind, 1.0, self.other_kind_weight)
        return np.where(weekdays == weekday, self.same_weekday_weight, weights)

    def _recency(self, age: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(0.5 ** ((age - 1.0) / self.half_life_days), dtype=float)

    def _forecast(
        self, vehicle: str, own: pd.DataFrame, day: date, levels: tuple[float, ...]
    ) -> dict[str, Any]:
        assert self._records is not None
        weekday = day.weekday()
        recent = own[own["age"] <= self.lookback_days]
        if recent.empty:  # not seen lately: its last few days, weighted by age all the same
            recent = own.tail(5)
        w_own = self._recency(recent["age"].to_numpy()) * self._similarity(
            recent["weekday"].to_numpy(), weekday
        )
        fleet = self._records[
            (self._records["age"] <= self.lookback_days)
            & ((self._records["weekday"] >= 5) == (weekday >= 5))
        ]
        w_fleet = self._recency(fleet["age"].to_numpy())
        if w_fleet.sum() > 0:
            w_fleet = w_fleet * (self.prior_sessions / w_fleet.sum())
        out: dict[str, Any] = {
            "vehicle_id": vehicle,
            "day": day,
            "p_session": self._p_session(own, weekday),
        }
        hours: dict[str, npt.NDArray[np.float64]] = {}
        for name in TARGETS:
            values = np.concatenate([recent[name].to_numpy(), fleet[name].to_numpy()])
            weights = np.concatenate([w_own, w_fleet])
            hours[name] = weighted_quantiles(values, weights, levels)
        arrivals = wall_clock(day, hours["arrival"], self.zone)
        departures = wall_clock(day, np.maximum(hours["departure"], hours["arrival"]), self.zone)
        for j, q in enumerate(levels):
            out[quantile_column(q, "arrival")] = arrivals[j]
            out[quantile_column(q, "departure")] = departures[j]
            out[quantile_column(q, "energy_kwh")] = float(hours["energy_kwh"][j])
        return out

    def _p_session(self, own: pd.DataFrame, weekday: int) -> float:
        """Weighted share of recent days of the same kind on which the vehicle came."""
        assert self._records is not None
        first = max(self._first, self._until - timedelta(days=self.lookback_days))
        span = (self._until - first).days
        if span <= 0:
            return float("nan")
        days = pd.date_range(pd.Timestamp(first), periods=span, freq="D")
        ages = np.array([(self._until - d.date()).days for d in days], dtype=float)
        weekdays = np.asarray(days.day_of_week, dtype=np.int64)
        weights = self._recency(ages) * self._similarity(weekdays, weekday)
        same_kind = (weekdays >= 5) == (weekday >= 5)
        weights = np.where(same_kind, weights, 0.0)
        came = np.isin(np.array([d.date() for d in days]), own["day"].to_numpy())
        # The fleet's rate on the same kind of day is the prior.
        records = self._records
        kind_days = int(same_kind.sum())
        vehicles = max(1, len(self._by_vehicle))
        in_window = records[
            (records["age"] <= span) & ((records["weekday"] >= 5) == (weekday >= 5))
        ]
        fleet_rate = len(in_window) / (kind_days * vehicles) if kind_days else 0.0
        prior = self.prior_sessions
        total = weights.sum() + prior
        return float((np.sum(weights * came) + prior * fleet_rate) / total)


def _aware(values: pd.Series, column: str, entity: str) -> pd.DatetimeIndex:
    try:
        index = pd.DatetimeIndex(values)
    except (TypeError, ValueError):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
        except (TypeError, ValueError) as exc:
            raise ValidationError(entity, column, f"not times: {exc}") from None
    if index.tz is None:
        raise ValidationError(entity, column, "times must be timezone-aware (UTC)")
    if index.isna().any():
        row = int(np.argmax(np.asarray(index.isna())))
        raise ValidationError(f"sessions row {row}", column, "missing time")
    return index.tz_convert("UTC")
