"""``aggregator backtest`` and ``bench/forecast.py``: read the data, run the forecast backtests of
``models.forecast`` against the seasonal naive baselines, and report (docs/forecasting.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from aggregator.domain import ValidationError
from aggregator.scenario.errors import DataError
from aggregator.scenario.prices import load_price_file
from aggregator.scenario.sessions_csv import read_sessions_csv
from models.forecast import (
    DEFAULT_QUANTILES,
    SeriesBacktest,
    SessionBacktest,
    backtest_prices,
    backtest_sessions,
    quantile_column,
)
from models.forecast.backtest import Comparison, compare_frame

DEFAULT_PRICES = Path("../shared/data/nl_day_ahead_prices_2015-2024.csv")
"""The 10-year NL day-ahead file, beside the repository (relative to the working folder)."""
DEFAULT_SESSIONS = Path("bench/data/acn_caltech_2019-03_sessions.csv")
"""The Caltech ACN sessions of March 2019, shipped with the repository."""


class BacktestError(Exception):
    """Bad input to a backtest; the message is one line."""


@dataclass(frozen=True)
class BacktestOptions:
    prices: Path | None = DEFAULT_PRICES
    sessions: Path | None = DEFAULT_SESSIONS
    start: date | None = None
    """First day (UTC) of price forecast origins; None: as soon as there is enough history."""
    end: date | None = None
    """Last day (UTC) of price forecast origins, included; None: as late as the data allow."""
    session_start: date | None = None
    """First local day of session forecasts; None: a week after the first session."""
    session_end: date | None = None
    """Last local day of session forecasts, included; None: the last session day."""
    horizon_hours: int = 48
    window_weeks: int = 8
    price_timezone: str = "Europe/Amsterdam"
    session_timezone: str = "America/Los_Angeles"
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES


@dataclass(frozen=True)
class BacktestReport:
    prices: SeriesBacktest | None
    sessions: SessionBacktest | None
    price_notes: tuple[str, ...] = ()

    def as_dict(self, options: BacktestOptions) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.prices is not None:
            out["prices"] = {
                "file": str(options.prices),
                "timezone": options.price_timezone,
                "window_weeks": options.window_weeks,
                "normalised": list(self.price_notes),
                **self.prices.as_dict(),
                "by_year": by_year(self.prices),
            }
        if self.sessions is not None:
            out["sessions"] = {
                "file": str(options.sessions),
                "timezone": options.session_timezone,
                **self.sessions.as_dict(),
            }
        return out

    def to_json(self, options: BacktestOptions) -> str:
        return json.dumps(self.as_dict(options), indent=2, allow_nan=True) + "\n"


def read_prices(path: Path) -> tuple[pd.Series, tuple[str, ...]]:
    """Hourly prices from a price file (normalised; see aggregator/scenario/prices.py)."""
    try:
        loaded = load_price_file(path, str(path))
    except DataError as exc:
        raise BacktestError(str(exc)) from None
    return hourly(loaded.prices), loaded.notes


def hourly(prices: pd.Series) -> pd.Series:
    """Hourly means of a price series (quarter-hour prices averaged; hourly ones as they are)."""
    return prices.resample("1h").mean().dropna()


def read_sessions(path: Path) -> pd.DataFrame:
    """An ACN-layout sessions file as the session forecaster's input; the station is the
    "vehicle" (the file has no user id)."""
    try:
        rows = read_sessions_csv(path, str(path))
    except DataError as exc:
        raise BacktestError(str(exc)) from None
    frame = pd.DataFrame(
        {
            "vehicle_id": [r.station_id for r in rows],
            "arrival": pd.to_datetime([r.arrival for r in rows], utc=True),
            "departure": pd.to_datetime([r.departure for r in rows], utc=True),
            "energy_kwh": [r.energy_requested_kwh for r in rows],
        }
    )
    for r in rows:
        if not r.departure > r.arrival:
            raise BacktestError(f"{path} line {r.line}: departure: must be after arrival")
    return frame


def run_backtests(
    options: BacktestOptions, progress: Callable[[int, int], None] | None = None
) -> BacktestReport:
    """Run the price and/or session backtests the options ask for."""
    prices = sessions = None
    notes: tuple[str, ...] = ()
    try:
        if options.prices is not None:
            series, notes = read_prices(options.prices)
            prices = backtest_prices(
                series,
                window_weeks=options.window_weeks,
                timezone=options.price_timezone,
                horizon_hours=options.horizon_hours,
                quantiles=options.quantiles,
                start=_utc(options.start),
                end=_utc(options.end, pd.Timedelta(hours=options.horizon_hours)),
                progress=progress,
            )
        if options.sessions is not None:
            sessions = backtest_sessions(
                read_sessions(options.sessions),
                timezone=options.session_timezone,
                quantiles=options.quantiles,
                start=options.session_start,
                end=options.session_end,
            )
    except ValidationError as exc:
        raise BacktestError(str(exc)) from None
    return BacktestReport(prices, sessions, notes)


def _utc(day: date | None, plus: pd.Timedelta | None = None) -> pd.Timestamp | None:
    """Midnight UTC of ``day`` (+ ``plus``)."""
    if day is None:
        return None
    return pd.Timestamp(day).tz_localize("UTC") + (plus or pd.Timedelta(0))


def by_year(result: SeriesBacktest) -> dict[str, dict[str, float]]:
    """MAE and mean pinball of model and naive per calendar year of the target hour."""
    frame = result.forecasts
    out = {}
    levels = result.quantiles
    for year, group in frame.groupby(pd.DatetimeIndex(frame["target"]).year):
        comparison = compare_frame(group, levels)
        out[str(year)] = {
            "n": comparison.model.n,
            "model_mae": comparison.model.mae,
            "naive_mae": comparison.naive.mae,
            "model_mean_pinball": comparison.model.mean_pinball,
            "naive_mean_pinball": comparison.naive.mean_pinball,
            "model_coverage": comparison.model.coverage,
        }
    return out


# ---------------------------------------------------------------------------- tables


def tables(report: BacktestReport) -> list[Table]:
    """One table per backtest: model vs naive, MAE, pinball per quantile, coverage, ratios."""
    out = []
    if report.prices is not None:
        p = report.prices
        title = (
            f"Prices (EUR/MWh): {p.origins} daily origins {p.first_origin:%Y-%m-%d} to "
            f"{p.last_origin:%Y-%m-%d}, next {p.horizon_hours} h"
        )
        rows = [("all", p.overall)] + [(f"day {k}", c) for k, c in sorted(p.by_horizon_day.items())]
        out.append(_table(title, rows, p.quantiles))
    if report.sessions is not None:
        s = report.sessions
        title = (
            f"Sessions: {s.days} days {s.first_day} to {s.last_day}, {s.vehicle_days} "
            f"vehicle-days; Brier score of p_session: model {s.brier_model:.3f}, naive "
            f"{s.brier_naive:.3f}"
        )
        rows = [
            ("arrival (h)", s.arrival),
            ("departure (h)", s.departure),
            ("energy (kWh)", s.energy_kwh),
        ]
        out.append(_table(title, rows, s.quantiles))
    return out


def _table(title: str, rows: list[tuple[str, Comparison]], levels: Sequence[float]) -> Table:
    """Columns: MAE of P50, pinball loss per quantile and its mean, share inside the band."""
    table = Table(title=title, title_justify="left", caption=_CAPTION, caption_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("")
    table.add_column("MAE", justify="right")
    for q in levels:
        table.add_column(f"PL {quantile_column(q)}", justify="right")
    table.add_column("PL mean", justify="right")
    table.add_column(f"in {quantile_column(min(levels))}-{quantile_column(max(levels))}")
    for name, comparison in rows:
        ratios = comparison.ratios()
        for who, scores in (("model", comparison.model), ("naive", comparison.naive)):
            table.add_row(
                name if who == "model" else "",
                who,
                f"{scores.mae:.2f}",
                *(f"{scores.pinball[q]:.2f}" for q in levels),
                f"{scores.mean_pinball:.2f}",
                f"{scores.coverage:.0%}",
            )
        table.add_row(
            "",
            "ratio",
            f"{ratios['mae']:.2f}",
            *(f"{ratios[f'pinball_{quantile_column(q)}']:.2f}" for q in levels),
            f"{ratios['mean_pinball']:.2f}",
            "",
            end_section=True,
        )
    return table


_CAPTION = "PL: pinball loss; ratio: model / naive (< 1: the model is better)"
