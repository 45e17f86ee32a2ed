"""Rolling-origin backtests of the forecasters against the seasonal naive baselines.

Prices (or any regular series): every day at ``origin_hour`` UTC, fit on the history before
the origin, forecast the next ``horizon_hours``, score against what happened. Sessions: every
local day, fit on the sessions that arrived before it, forecast each known vehicle's first
session that day. Both models and baselines see exactly the same history at each origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aggregator.domain import ValidationError
from models.forecast.metrics import coverage, mae, pinball_loss
from models.forecast.naive import SeasonalNaive, SessionNaive
from models.forecast.price import PriceForecaster
from models.forecast.quantiles import DEFAULT_QUANTILES, checked_quantiles, quantile_column
from models.forecast.sessions import SessionForecaster, day_records, wall_clock

_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Scores:
    """Scores of one forecast over ``n`` scored values."""

    n: int
    mae: float
    """Mean absolute error of P50."""
    pinball: dict[float, float]
    """Mean pinball loss per quantile."""
    mean_pinball: float
    """Mean of ``pinball`` over the quantiles."""
    coverage: float
    """Share of actual values between the lowest and the highest quantile."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mae": self.mae,
            "pinball": {quantile_column(q): v for q, v in self.pinball.items()},
            "mean_pinball": self.mean_pinball,
            "coverage": self.coverage,
        }


def score(actual: np.ndarray[Any, Any], frame: pd.DataFrame, levels: Sequence[float]) -> Scores:
    """Scores of the quantile columns of ``frame`` (``q10``...) against ``actual``."""
    y = np.asarray(actual, dtype=float)
    ok = np.isfinite(y)
    pinball = {
        q: pinball_loss(y[ok], frame[quantile_column(q)].to_numpy(dtype=float)[ok], q)
        for q in levels
    }
    lo = frame[quantile_column(min(levels))].to_numpy(dtype=float)[ok]
    hi = frame[quantile_column(max(levels))].to_numpy(dtype=float)[ok]
    return Scores(
        n=int(ok.sum()),
        mae=mae(y[ok], frame[quantile_column(0.5)].to_numpy(dtype=float)[ok]),
        pinball=pinball,
        mean_pinball=float(np.mean(list(pinball.values()))),
        coverage=coverage(y[ok], lo, hi),
    )


@dataclass(frozen=True)
class Comparison:
    """The model and the baseline scored on the same values."""

    model: Scores
    naive: Scores

    def ratios(self) -> dict[str, float]:
        """model / naive for MAE, mean pinball and each quantile's pinball (< 1: better)."""
        out = {"mae": _ratio(self.model.mae, self.naive.mae)}
        out["mean_pinball"] = _ratio(self.model.mean_pinball, self.naive.mean_pinball)
        for q, v in self.model.pinball.items():
            out[f"pinball_{quantile_column(q)}"] = _ratio(v, self.naive.pinball[q])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.as_dict(),
            "naive": self.naive.as_dict(),
            "ratio_model_to_naive": self.ratios(),
        }


def compare(
    actual: np.ndarray[Any, Any], model: pd.DataFrame, naive: pd.DataFrame, levels: Sequence[float]
) -> Comparison:
    return Comparison(score(actual, model, levels), score(actual, naive, levels))


class _Forecaster(Protocol):
    def fit(self, history: pd.Series, until: pd.Timestamp | None = None) -> Any: ...

    def predict(self, index: pd.DatetimeIndex, quantiles: Sequence[float]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class SeriesBacktest:
    """A rolling-origin backtest of a series forecaster (prices: EUR/MWh)."""

    quantiles: tuple[float, ...]
    horizon_hours: int
    origins: int
    first_origin: pd.Timestamp
    last_origin: pd.Timestamp
    overall: Comparison
    by_horizon_day: dict[int, Comparison]
    forecasts: pd.DataFrame = field(repr=False)
    """One row per origin and target: ``origin``, ``target``, ``actual``, ``model_q10``...,
    ``naive_q10``..."""
    skipped: tuple[str, ...] = ()
    """Origins the model could not be fitted at, with the reason."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "quantiles": list(self.quantiles),
            "horizon_hours": self.horizon_hours,
            "origins": self.origins,
            "first_origin": self.first_origin.isoformat(),
            "last_origin": self.last_origin.isoformat(),
            "overall": self.overall.as_dict(),
            "by_horizon_day": {str(k): c.as_dict() for k, c in self.by_horizon_day.items()},
            "skipped": list(self.skipped),
            "seconds": round(self.seconds, 2),
        }


def backtest_series(
    series: pd.Series,
    make_model: Callable[[], _Forecaster],
    *,
    step: pd.Timedelta,
    window_weeks: int,
    horizon_hours: int = 48,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    origin_hour: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> SeriesBacktest:
    """Daily origins at ``origin_hour`` UTC from ``start`` (default: as soon as the model has
    enough history) while ``origin + horizon_hours <= end`` (default: the series' end)."""
    levels = checked_quantiles((*quantiles, 0.5), "backtest")
    if not 1 <= horizon_hours <= 14 * 24:
        raise ValidationError("backtest", "horizon_hours", f"must be 1 to 336, got {horizon_hours}")
    if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
        raise ValidationError("backtest", "series", "needs an aware DatetimeIndex")
    series = series.astype(float).sort_index()
    series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
    keep = pd.Timedelta(weeks=window_weeks + 3) + _DAY * (horizon_hours // 24 + 2)
    first_possible = (series.index[0] + pd.Timedelta(weeks=4)).ceil("D")
    origin = max(pd.Timestamp(start) if start is not None else first_possible, first_possible)
    origin = origin.tz_convert("UTC").floor("D") + pd.Timedelta(hours=origin_hour)
    if origin < first_possible:
        origin += _DAY
    last_end = pd.Timestamp(end).tz_convert("UTC") if end is not None else series.index[-1] + step
    horizon = pd.Timedelta(hours=horizon_hours)
    origins = pd.date_range(origin, last_end - horizon, freq="D")
    if len(origins) == 0:
        raise ValidationError(
            "backtest", "series", "too short: no origin with enough history and a full horizon"
        )
    values = series.to_numpy()
    times = series.index
    frames = []
    skipped = []
    started = time.perf_counter()
    for i, o in enumerate(origins):
        lo, hi = times.searchsorted(o - keep), times.searchsorted(o)
        history = pd.Series(values[lo:hi], index=times[lo:hi])
        targets = pd.date_range(o, o + horizon - step, freq=step)
        try:
            model = make_model().fit(history, o)
            predicted = model.predict(targets, levels)
        except ValidationError as exc:
            skipped.append(f"{o.isoformat()}: {exc}")
            continue
        naive = SeasonalNaive(step=step, window_weeks=window_weeks).fit(history)
        baseline = naive.predict(targets, levels)
        frame = pd.DataFrame(
            {
                "origin": o,
                "target": targets,
                "horizon_day": np.arange(len(targets)) * step // _DAY + 1,
                "actual": series.reindex(targets).to_numpy(),
            }
        )
        for q in levels:
            name = quantile_column(q)
            frame[f"model_{name}"] = predicted[name].to_numpy()
            frame[f"naive_{name}"] = baseline[name].to_numpy()
        frames.append(frame)
        if progress is not None:
            progress(i + 1, len(origins))
    if not frames:
        raise ValidationError("backtest", "series", f"no origin could be fitted: {skipped[0]}")
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts = forecasts[np.isfinite(forecasts["actual"].to_numpy())].reset_index(drop=True)
    by_day = {
        int(k): compare_frame(group, levels)
        for k, group in forecasts.groupby("horizon_day", sort=True)
    }
    used = forecasts["origin"].unique()
    return SeriesBacktest(
        quantiles=levels,
        horizon_hours=horizon_hours,
        origins=len(used),
        first_origin=pd.Timestamp(used.min()),
        last_origin=pd.Timestamp(used.max()),
        overall=compare_frame(forecasts, levels),
        by_horizon_day=by_day,
        forecasts=forecasts,
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
    )


def backtest_prices(
    prices: pd.Series,
    *,
    window_weeks: int = 8,
    timezone: str = "UTC",
    horizon_hours: int = 48,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    origin_hour: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> SeriesBacktest:
    """:class:`PriceForecaster` against "same hour last week" on hourly ``prices``."""
    days = -(-horizon_hours // 24)

    def make() -> PriceForecaster:
        return PriceForecaster(window_weeks=window_weeks, timezone=timezone, max_horizon_days=days)

    return backtest_series(
        prices,
        make,
        step=pd.Timedelta(hours=1),
        window_weeks=window_weeks,
        horizon_hours=horizon_hours,
        quantiles=quantiles,
        start=start,
        end=end,
        origin_hour=origin_hour,
        progress=progress,
    )


def compare_frame(frame: pd.DataFrame, levels: Sequence[float]) -> Comparison:
    """Compare the ``model_q..`` and ``naive_q..`` columns of ``frame`` on its ``actual``."""
    model = frame.rename(columns=lambda c: c.removeprefix("model_"))
    naive = frame.rename(columns=lambda c: c.removeprefix("naive_"))
    actual = frame["actual"].to_numpy()
    return compare(actual, model, naive, levels)


# ---------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SessionBacktest:
    """A rolling-origin backtest of :class:`SessionForecaster` (one origin per local day)."""

    quantiles: tuple[float, ...]
    days: int
    first_day: date
    last_day: date
    vehicle_days: int
    """Scored (vehicle, day) pairs: a known vehicle that came that day."""
    unknown: int
    """Sessions not scored: the vehicle had no session before that day."""
    arrival: Comparison
    """Errors in hours."""
    departure: Comparison
    """Errors in hours."""
    energy_kwh: Comparison
    brier_model: float
    """Mean squared error of ``p_session`` over every known vehicle and day."""
    brier_naive: float
    forecasts: pd.DataFrame = field(repr=False)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "quantiles": list(self.quantiles),
            "days": self.days,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "vehicle_days": self.vehicle_days,
            "unknown": self.unknown,
            "arrival_hours": self.arrival.as_dict(),
            "departure_hours": self.departure.as_dict(),
            "energy_kwh": self.energy_kwh.as_dict(),
            "p_session_brier": {"model": self.brier_model, "naive": self.brier_naive},
            "seconds": round(self.seconds, 2),
        }


def backtest_sessions(
    sessions: pd.DataFrame,
    *,
    timezone: str = "UTC",
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    warmup_days: int = 7,
    lookback_days: int = 28,
    start: date | None = None,
    end: date | None = None,
) -> SessionBacktest:
    """Every local day from ``start`` (default: ``warmup_days`` after the first session) to
    ``end`` (default: the last session day), both included."""
    levels = checked_quantiles((*quantiles, 0.5), "backtest")
    forecaster = SessionForecaster(timezone=timezone, lookback_days=lookback_days)
    zone = forecaster.zone
    frame = sessions.reset_index(drop=True)
    records = day_records(frame, zone)
    if records.empty:
        raise ValidationError("backtest", "sessions", "has no rows")
    local_day = np.asarray(
        pd.DatetimeIndex(pd.to_datetime(frame["arrival"], utc=True)).tz_convert(zone).date
    )
    first = min(records["day"]) + timedelta(days=warmup_days)
    first = max(first, start) if start is not None else first
    last = end if end is not None else max(records["day"])
    started = time.perf_counter()
    rows = []
    brier: list[tuple[float, float, float]] = []
    unknown = 0
    day = first
    days = 0
    while day <= last:
        past = frame[local_day < day]
        today = records[records["day"] == day]
        if past.empty:
            unknown += len(today)
            day += timedelta(days=1)
            continue
        model = SessionForecaster(timezone=timezone, lookback_days=lookback_days).fit(past, day)
        naive = SessionNaive(timezone=timezone).fit(past, day)
        known = model.vehicle_ids
        days += 1
        predicted = model.predict(known, [day], levels).set_index("vehicle_id").to_dict("index")
        baseline = naive.predict(known, [day], levels).set_index("vehicle_id").to_dict("index")
        came = set(today["vehicle_id"])
        for v in known:
            brier.append(
                (
                    float(predicted[v]["p_session"]),
                    float(baseline[v]["p_session"]),
                    float(v in came),
                )
            )
        for rec in today.itertuples(index=False):
            v = str(rec.vehicle_id)
            if v not in predicted:
                unknown += 1
                continue
            row: dict[str, Any] = {"vehicle_id": v, "day": day}
            actual = {
                "arrival": wall_clock(day, np.array([rec.arrival]), zone)[0],
                "departure": wall_clock(day, np.array([rec.departure]), zone)[0],
            }
            row["actual_energy_kwh"] = float(rec.energy_kwh)
            for name in ("arrival", "departure"):
                row[f"actual_{name}"] = 0.0
                for q in levels:
                    col = quantile_column(q, name)
                    for who, source in (("model", predicted), ("naive", baseline)):
                        when = pd.Timestamp(source[v][col])
                        row[f"{who}_{col}"] = (when - actual[name]) / pd.Timedelta(hours=1)
            for q in levels:
                col = quantile_column(q, "energy_kwh")
                row[f"model_{col}"] = float(predicted[v][col])
                row[f"naive_{col}"] = float(baseline[v][col])
            rows.append(row)
        day += timedelta(days=1)
    if not rows:
        raise ValidationError("backtest", "sessions", "no session could be scored")
    forecasts = pd.DataFrame(rows)
    comparisons = {}
    for name in ("arrival", "departure", "energy_kwh"):
        prefix = f"{name}_"
        sub = pd.DataFrame({"actual": forecasts[f"actual_{name}"]})
        for who in ("model", "naive"):
            for q in levels:
                col = quantile_column(q)
                sub[f"{who}_{col}"] = forecasts[f"{who}_{prefix}{col}"]
        comparisons[name] = compare_frame(sub, levels)
    p = np.asarray(brier, dtype=float)
    return SessionBacktest(
        quantiles=levels,
        days=days,
        first_day=first,
        last_day=last,
        vehicle_days=len(forecasts),
        unknown=unknown,
        arrival=comparisons["arrival"],
        departure=comparisons["departure"],
        energy_kwh=comparisons["energy_kwh"],
        brier_model=float(np.mean((p[:, 0] - p[:, 2]) ** 2)),
        brier_naive=float(np.mean((p[:, 1] - p[:, 2]) ** 2)),
        forecasts=forecasts,
        seconds=time.perf_counter() - started,
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
