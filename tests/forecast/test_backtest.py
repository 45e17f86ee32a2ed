"""The backtests on small slices: scores computed right, quantiles ordered, coverage sane.

No expected figures from a run are asserted: the slice is too short to say which forecast is
better, and the full comparison is the benchmark (bench/forecast.py).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from aggregator.domain import ValidationError
from models.forecast import backtest_prices, backtest_sessions, mae, pinball_loss


@pytest.fixture(scope="module")
def price_run(prices):
    return backtest_prices(
        prices,
        timezone="Europe/Amsterdam",
        start=pd.Timestamp("2023-11-20", tz="UTC"),
        end=pd.Timestamp("2023-12-12", tz="UTC"),
    )


def test_price_origins_are_daily_and_cover_the_horizon(price_run) -> None:
    f = price_run.forecasts

    assert price_run.origins == 21  # 20 Nov .. 10 Dec: the last one's 48 h end on 12 Dec
    assert price_run.first_origin == pd.Timestamp("2023-11-20T00:00Z")
    assert price_run.last_origin == pd.Timestamp("2023-12-10T00:00Z")
    assert len(f) == 21 * 48
    assert ((f["target"] - f["origin"]) < pd.Timedelta(hours=48)).all()
    assert sorted(price_run.by_horizon_day) == [1, 2]
    assert sum(c.model.n for c in price_run.by_horizon_day.values()) == price_run.overall.model.n


def test_price_scores_are_recomputed_from_the_forecasts(price_run) -> None:
    f = price_run.forecasts
    y = f["actual"].to_numpy()

    assert price_run.overall.model.mae == pytest.approx(mae(y, f["model_q50"]))
    assert price_run.overall.naive.mae == pytest.approx(np.mean(np.abs(y - f["naive_q50"])))
    for q in (0.1, 0.5, 0.9):
        col = f"q{round(q * 100)}"
        e = y - f[f"model_{col}"].to_numpy()
        by_hand = np.mean(np.where(e >= 0, q * e, (q - 1) * e))
        assert price_run.overall.model.pinball[q] == pytest.approx(by_hand)
        assert price_run.overall.naive.pinball[q] == pytest.approx(
            pinball_loss(y, f[f"naive_{col}"], q)
        )
    inside = (y >= f["model_q10"]) & (y <= f["model_q90"])
    assert price_run.overall.model.coverage == pytest.approx(inside.mean())
    assert price_run.overall.ratios()["mae"] == pytest.approx(
        price_run.overall.model.mae / price_run.overall.naive.mae
    )


def test_price_quantiles_are_ordered_and_the_naive_is_last_week(price_run, prices) -> None:
    f = price_run.forecasts
    for who in ("model", "naive"):
        assert (f[f"{who}_q10"] <= f[f"{who}_q50"]).all()
        assert (f[f"{who}_q50"] <= f[f"{who}_q90"]).all()
    last_week = prices.reindex(pd.DatetimeIndex(f["target"]) - pd.Timedelta(days=7)).to_numpy()
    assert f["naive_q50"].to_numpy() == pytest.approx(last_week)
    assert f["actual"].to_numpy() == pytest.approx(prices.reindex(f["target"]).to_numpy())


def test_price_p10_p90_coverage_is_in_a_sane_band(price_run) -> None:
    # Nominal 80 %; three weeks of one season can be off, but not wildly.
    assert 0.55 <= price_run.overall.model.coverage <= 0.95


def test_price_json_names_quantiles_and_ratios(price_run) -> None:
    d = price_run.as_dict()

    assert d["overall"]["model"]["pinball"].keys() == {"q10", "q50", "q90"}
    assert set(d["overall"]["ratio_model_to_naive"]) == {
        "mae",
        "mean_pinball",
        "pinball_q10",
        "pinball_q50",
        "pinball_q90",
    }
    assert d["origins"] == 21


def test_a_price_series_too_short_for_one_origin_is_an_error(prices) -> None:
    with pytest.raises(ValidationError, match="too short"):
        backtest_prices(prices.iloc[: 29 * 24])  # 28 days to fit on, then not 48 h left


@pytest.fixture(scope="module")
def session_run(sessions):
    return backtest_sessions(
        sessions,
        timezone="America/Los_Angeles",
        start=date(2019, 3, 18),
        end=date(2019, 3, 22),
    )


def test_session_scores_are_recomputed_from_the_forecasts(session_run) -> None:
    f = session_run.forecasts

    assert session_run.days == 5
    assert session_run.vehicle_days == len(f) > 50
    assert set(f["day"]) == {date(2019, 3, d) for d in range(18, 23)}
    # Time errors are stored as forecast - actual [h]; the actual is then 0.
    assert session_run.arrival.model.mae == pytest.approx(np.mean(np.abs(f["model_arrival_q50"])))
    assert session_run.departure.naive.mae == pytest.approx(
        np.mean(np.abs(f["naive_departure_q50"]))
    )
    y = f["actual_energy_kwh"].to_numpy()
    assert session_run.energy_kwh.model.pinball[0.9] == pytest.approx(
        pinball_loss(y, f["model_energy_kwh_q90"], 0.9)
    )
    assert 0.0 <= session_run.brier_model <= 1.0
    assert 0.0 <= session_run.brier_naive <= 1.0


def test_session_quantiles_are_ordered_and_coverage_is_sane(session_run) -> None:
    f = session_run.forecasts
    for name in ("arrival", "departure", "energy_kwh"):
        assert (f[f"model_{name}_q10"] <= f[f"model_{name}_q50"] + 1e-9).all()
        assert (f[f"model_{name}_q50"] <= f[f"model_{name}_q90"] + 1e-9).all()
    for comparison in (session_run.arrival, session_run.departure, session_run.energy_kwh):
        assert 0.45 <= comparison.model.coverage <= 0.98
