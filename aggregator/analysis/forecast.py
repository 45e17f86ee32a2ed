"""Forecast review: price forecast bands against the actual prices, and the fleet's load and
flexibility per hour.

* Prices: ``models.forecast.PriceForecaster`` (quantile regression on lags) is fitted on the
  history before an origin and forecasts the following days as P10/P50/P90; the seasonal
  naive forecast (same hour last week, ``models.forecast.SeasonalNaive``) is the yardstick.
  Both are scored against what the prices turned out to be (MAE of P50, pinball loss,
  coverage of the P10-P90 band).
* Fleet: a scenario is planned (``models.planner.PyomoPlanner``) and its flexibility envelope
  computed (``models.envelope.EnvelopeModel``); the uncontrolled profile (full power from
  plug-in) is the baseline the planned load is compared with, and the envelope says per hour
  how much the fleet could take more or less than planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aggregator.analysis._plot import DEFAULT_TZ, LEGEND, hold, local_naive, slot_edges, time_axis
from aggregator.domain import FleetProblem, FlexibilityEnvelope, Plan
from aggregator.scenario import load_scenario
from models.envelope import EnvelopeModel
from models.forecast import (
    DEFAULT_QUANTILES,
    PriceForecaster,
    SeasonalNaive,
    coverage,
    mae,
    pinball_loss,
    quantile_column,
)
from models.planner import PlannerSettings, PyomoPlanner

# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class PriceForecastReview:
    """Hourly frame (UTC index): ``actual``, the model's quantile columns (``q10``, ``q50``,
    ``q90``), the naive forecast's (``naive_q10``...), and ``horizon_day`` (1 = the first 24 h
    after the origin). Prices in EUR/MWh."""

    frame: pd.DataFrame
    origin: pd.Timestamp
    quantiles: tuple[float, ...]
    window_weeks: int


def price_forecast_review(
    prices: pd.Series,
    origin: datetime,
    *,
    days: int = 7,
    window_weeks: int = 8,
    tz: str = DEFAULT_TZ,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> PriceForecastReview:
    """Fit on ``prices`` before ``origin`` and forecast the ``days`` days after it.

    ``prices`` is hourly [EUR/MWh] on an aware index and must also cover the forecast days
    (they are the actual values the forecast is judged against). ``tz`` is the market's zone.
    """
    series = prices.astype(float).copy()
    series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
    start = pd.Timestamp(origin).tz_convert("UTC")
    history = series[series.index < start]
    index = pd.date_range(start, periods=days * 24, freq="h", name="start")
    actual = series.reindex(index)
    if actual.isna().any():
        missing = index[actual.isna().to_numpy()][0]
        raise ValueError(f"no actual price for {missing.isoformat()}: the file ends too early")
    levels = tuple(quantiles)
    model = PriceForecaster(window_weeks=window_weeks, timezone=tz, max_horizon_days=days)
    forecast = model.fit(history).predict(index, levels)
    naive = SeasonalNaive(window_weeks=window_weeks).fit(history).predict(index, levels)
    frame = pd.DataFrame({"actual": actual.to_numpy()}, index=index)
    frame = frame.join(forecast).join(naive.add_prefix("naive_"))
    frame["horizon_day"] = ((index - start) // pd.Timedelta(days=1)).astype(int) + 1
    return PriceForecastReview(frame, start, levels, window_weeks)


def forecast_scores(review: PriceForecastReview, by_day: bool = False) -> pd.DataFrame:
    """Scores of the model and the naive forecast: MAE of P50, pinball loss per quantile and
    its mean, and the share of actual prices inside the outer quantiles (P10-P90: 80 % if
    calibrated). ``by_day``: one block of rows per horizon day."""
    groups = review.frame.groupby("horizon_day") if by_day else [("all", review.frame)]
    q = review.quantiles
    rows = []
    for day, part in groups:
        for name, prefix in (("model", ""), ("seasonal naive", "naive_")):
            col = {level: part[prefix + quantile_column(level)] for level in q}
            losses = {
                f"pinball_{quantile_column(level)}": pinball_loss(part["actual"], col[level], level)
                for level in q
            }
            median = col[0.5] if 0.5 in col else col[q[len(q) // 2]]
            rows.append(
                {
                    "horizon_day": day,
                    "forecast": name,
                    "mae_p50": mae(part["actual"], median),
                    **losses,
                    "pinball_mean": float(np.mean(list(losses.values()))),
                    f"coverage_{quantile_column(q[0])}_{quantile_column(q[-1])}": coverage(
                        part["actual"], col[q[0]], col[q[-1]]
                    ),
                }
            )
    table = pd.DataFrame(rows).set_index(["horizon_day", "forecast"])
    return table.droplevel("horizon_day") if not by_day else table


def price_forecast_figure(review: PriceForecastReview, tz: str = DEFAULT_TZ) -> Figure:
    """The forecast's band and median against the actual price, and the naive median; below,
    the median's absolute error per hour for both."""
    frame = review.frame
    q = review.quantiles
    lo, hi = quantile_column(q[0]), quantile_column(q[-1])
    mid = quantile_column(0.5) if 0.5 in q else quantile_column(q[len(q) // 2])
    index = pd.DatetimeIndex(frame.index)
    edges = local_naive(pd.DatetimeIndex(index.append(index[-1:] + pd.Timedelta(hours=1))), tz)
    fig = Figure(figsize=(12.0, 7.5), layout="constrained")
    ax, ax_err = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    ax.fill_between(
        edges,
        hold(frame[lo].to_numpy()),
        hold(frame[hi].to_numpy()),
        step="post",
        color="tab:blue",
        alpha=0.25,
        label=f"forecast {lo.upper()}-{hi.upper()}",
    )
    ax.step(edges, hold(frame[mid].to_numpy()), where="post", color="tab:blue", label=mid.upper())
    ax.step(
        edges,
        hold(frame[f"naive_{mid}"].to_numpy()),
        where="post",
        color="0.5",
        ls="--",
        lw=0.9,
        label="seasonal naive (last week)",
    )
    ax.step(
        edges, hold(frame["actual"].to_numpy()), where="post", color="k", lw=1.3, label="actual"
    )
    ax.axhline(0.0, color="0.6", lw=0.6)
    for day in range(1, int(frame["horizon_day"].max()) + 1):
        ax.axvline(edges[(day - 1) * 24], color="0.8", lw=0.6)
    ax.set_ylabel("day-ahead price [EUR/MWh]")
    origin = review.origin.tz_convert(tz)
    ax.set_title(
        f"NL day-ahead price forecast from {origin:%a %d %b %Y %H:%M} ({tz}), "
        f"fitted on the {review.window_weeks} weeks before"
    )
    ax.legend(**LEGEND)
    for column, color, label in ((mid, "tab:blue", "forecast"), (f"naive_{mid}", "0.5", "naive")):
        err = (frame[column] - frame["actual"]).abs()
        ax_err.step(edges, hold(err.to_numpy()), where="post", color=color, lw=0.9, label=label)
    ax_err.set_ylabel(f"|{mid.upper()} - actual|\n[EUR/MWh]")
    ax_err.legend(**LEGEND)
    time_axis(ax_err, tz)
    return fig


# --------------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class FleetReview:
    """A scenario, its plan and its flexibility envelope."""

    problem: FleetProblem
    plan: Plan
    envelope: FlexibilityEnvelope


def fleet_review(scenario: Path, *, time_limit_s: float = 60.0) -> FleetReview:
    """Plan ``scenario`` (its events included) and compute its flexibility envelope."""
    problem = load_scenario(scenario)
    settings = PlannerSettings(time_limit_s=time_limit_s)
    plan = PyomoPlanner(settings).plan(problem)
    envelope = EnvelopeModel(settings).envelope(problem)
    return FleetReview(problem, plan, envelope)


def _ev_power(plan: Plan) -> np.ndarray:
    total = np.zeros(plan.grid.n_slots)
    for s in plan.schedules:
        total[s.first_slot : s.first_slot + len(s.power_kw)] += np.asarray(s.power_kw)
    return total


def load_frame(review: FleetReview) -> pd.DataFrame:
    """Per slot (UTC index): the fleet's EV power [kW] uncontrolled (``baseline_kw``), as
    planned (``planned_kw``), the envelope (``min_kw``, ``max_kw``), and the price."""
    grid = review.problem.grid
    env = review.envelope
    return pd.DataFrame(
        {
            "baseline_kw": env.baseline_kw,
            "planned_kw": _ev_power(review.plan),
            "min_kw": env.min_kw,
            "max_kw": env.max_kw,
            "price_eur_per_mwh": review.problem.prices.import_per_mwh,
        },
        index=pd.DatetimeIndex(list(grid.slot_starts()), name="start"),
    )


def hourly_flexibility(review: FleetReview, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Per local hour: mean baseline, planned, least and most fleet power [kW], and what can
    be offered against the plan: ``less_load_kw`` = planned - least (load reduction, upward
    regulation for the grid) and ``more_load_kw`` = most - planned (extra load, downward
    regulation), with the energy over the hour [kWh]."""
    frame = load_frame(review)
    step_h = review.problem.grid.step_hours
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(tz)
    hourly = frame.resample("1h").mean()
    counts = frame["planned_kw"].resample("1h").count()
    hourly["less_load_kw"] = (hourly["planned_kw"] - hourly["min_kw"]).clip(lower=0.0)
    hourly["more_load_kw"] = (hourly["max_kw"] - hourly["planned_kw"]).clip(lower=0.0)
    hours = counts * step_h  # a partial first or last hour counts what it holds
    hourly["less_load_kwh"] = hourly["less_load_kw"] * hours
    hourly["more_load_kwh"] = hourly["more_load_kw"] * hours
    hourly.index.name = f"hour ({tz})"
    return hourly


def fleet_figure(review: FleetReview, tz: str = DEFAULT_TZ) -> Figure:
    """Top: fleet EV power, uncontrolled against planned, inside the envelope, with events
    and the price. Bottom: per hour, the load reduction and the extra load on offer."""
    problem = review.problem
    frame = load_frame(review)
    edges = slot_edges(problem.grid, tz)
    fig = Figure(figsize=(12.0, 8.0), layout="constrained")
    ax, ax_flex = fig.subplots(2, 1, sharex=True)
    ax.fill_between(
        edges,
        hold(frame["min_kw"].to_numpy()),
        hold(frame["max_kw"].to_numpy()),
        step="post",
        color="tab:blue",
        alpha=0.15,
        label="flexibility envelope (least..most)",
    )
    ax.step(
        edges,
        hold(frame["baseline_kw"].to_numpy()),
        where="post",
        color="0.4",
        label="baseline: uncontrolled",
    )
    ax.step(
        edges,
        hold(frame["planned_kw"].to_numpy()),
        where="post",
        color="tab:blue",
        lw=1.6,
        label="planned",
    )
    for event in problem.events:
        span = local_naive([event.start, event.end], tz)
        kind = (
            f"cap {event.cap_kw:g} kW" if event.cap_kw is not None else f"shed {event.shed_kw:g} kW"
        )
        ax.axvspan(
            span[0], span[1], color="tab:orange", alpha=0.12, label=f"{event.event_id} ({kind})"
        )
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_ylabel("fleet EV power [kW]\n(+ charge, - discharge)")
    ax.set_title("fleet EV load: uncontrolled baseline vs plan, inside the flexibility envelope")
    price = ax.twinx()
    price.step(
        edges,
        hold(frame["price_eur_per_mwh"].to_numpy()),
        where="post",
        color="tab:red",
        lw=0.7,
        alpha=0.6,
        label="price",
    )
    price.set_ylabel("price [EUR/MWh]", color="tab:red")
    handles, labels = ax.get_legend_handles_labels()
    more_h, more_l = price.get_legend_handles_labels()
    # Right of the price axis' label.
    ax.legend(handles + more_h, labels + more_l, **{**LEGEND, "bbox_to_anchor": (1.07, 1.0)})

    hourly = hourly_flexibility(review, tz)
    hours = pd.DatetimeIndex(hourly.index).tz_localize(None)
    width = timedelta(minutes=50)
    ax_flex.bar(
        hours,
        hourly["more_load_kw"],
        width=width,
        align="edge",
        color="tab:green",
        alpha=0.7,
        label="more load possible (max - plan)",
    )
    ax_flex.bar(
        hours,
        -hourly["less_load_kw"],
        width=width,
        align="edge",
        color="tab:purple",
        alpha=0.7,
        label="less load possible (plan - min)",
    )
    ax_flex.axhline(0.0, color="0.6", lw=0.6)
    ax_flex.set_ylabel("flexibility vs plan\n[kW, hourly mean]")
    ax_flex.set_title("what can be bid per hour, one hour at a time (not all hours at once)")
    ax_flex.legend(**LEGEND)
    time_axis(ax_flex, tz, "%a %d\n%H:%M")
    return fig
