"""aggregator/analysis: the figures behind the notebooks, checked against their definitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from aggregator.analysis import arbitrage, events, forecast
from aggregator.analysis.data import configured_store_url, read_prices
from aggregator.domain import GridEvent
from connectors.sql import open_repository

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "config" / "scenarios" / "depot_v2g_dr.yaml"
PRICES = ROOT / "notebooks" / "data" / "nl_day_ahead_prices_2024-02-19_05-20.csv"
TZ = "Europe/Amsterdam"


@pytest.fixture(scope="module")
def study() -> arbitrage.ArbitrageStudy:
    problem = arbitrage.simulated_week(
        SCENARIO, PRICES, date(2024, 5, 13), weekday_only_sites={"office-south"}, tz=TZ
    )
    return arbitrage.run_study(problem)


def test_the_price_slice_is_hourly_and_complete() -> None:
    prices = read_prices(PRICES)
    # 2024-02-19 00:00 to 2024-05-20 23:00 UTC: 92 days, hourly, no gaps.
    assert len(prices) == 92 * 24
    assert (prices.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert prices.index[0] == pd.Timestamp("2024-02-19T00:00Z")
    # The depot scenario's own excerpt is the same series: the days overlap exactly.
    day = read_prices(
        ROOT / "config" / "scenarios" / "data" / "nl_day_ahead_prices_2024-05-14_15.csv"
    )
    pd.testing.assert_series_equal(prices.loc[day.index], day, check_names=False)


def test_simulated_week_repeats_the_day_at_local_times(study: arbitrage.ArbitrageStudy) -> None:
    problem = study.problem
    assert problem.grid.start == datetime(2024, 5, 12, 22, tzinfo=UTC)  # Monday 00:00 CEST
    sessions = arbitrage.session_table(problem, tz=TZ)
    # 7 depot sessions a day for 7 days, 4 office sessions on the 5 weekdays.
    assert (sessions.site == "depot-north").sum() == 7 * 7
    assert (sessions.site == "office-south").sum() == 4 * 5
    assert set(sessions.loc[sessions.index.str.startswith("s01-"), "arrival"].str[-5:]) == {"16:30"}
    assert not problem.events and not problem.batteries
    assert problem.grid.end >= max(s.departure for s in problem.sessions)
    # Prices: each slot has its hour's price from the file.
    prices = read_prices(PRICES)
    start = pd.Timestamp(problem.grid.start)
    assert problem.prices.import_per_mwh[0] == prices[start]
    assert problem.prices.import_per_mwh[4] == prices[start + pd.Timedelta(hours=1)]


def test_costs_add_up_and_rank(study: arbitrage.ArbitrageStudy) -> None:
    for case in arbitrage.CASES:
        plan = study.plans[case]
        assert arbitrage.slot_costs(study, case).sum() == pytest.approx(plan.cost.energy_cost)
        assert plan.total_shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert study.plans["smart"].solver_path == "lp"
    assert study.plans["v2g"].solver_path == "lp"
    table = arbitrage.cost_table(study)
    cost = table["energy_cost_eur"]
    unc, smart, v2g = cost.iloc[0], cost.iloc[1], cost.iloc[2]
    assert unc > smart >= v2g
    assert table["ev_discharged_kwh"].iloc[:2].eq(0).all()
    assert table["ev_discharged_kwh"].iloc[2] > 0
    # Degradation is the scenario's 40 EUR/MWh on what was discharged.
    assert table["degradation_cost_eur"].iloc[2] == pytest.approx(
        0.04 * table["ev_discharged_kwh"].iloc[2], abs=0.02
    )
    assert table["over_site_limit_kwh"].iloc[0] > 0  # uncontrolled breaks the connections
    assert table["over_site_limit_kwh"].iloc[1:].max() == pytest.approx(0.0, abs=0.01)
    daily = arbitrage.daily_costs(study, tz=TZ)
    # (the table is rounded to cents)
    assert daily[list(arbitrage.CASES)].sum().to_numpy() == pytest.approx(
        cost.to_numpy(), abs=0.006
    )


def test_arbitrage_figures(study: arbitrage.ArbitrageStudy) -> None:
    fig = arbitrage.arbitrage_figure(study, tz=TZ)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert isinstance(arbitrage.cost_figure(study), Figure)
    frame = arbitrage.power_frame(study)
    assert len(frame) == study.grid.n_slots
    assert (frame["v2g_charge_kw"] + frame["v2g_discharge_kw"]).to_numpy() == pytest.approx(
        frame["v2g_ev_kw"].to_numpy()
    )


def test_split_event_into_settlement_intervals() -> None:
    start = datetime(2024, 5, 14, 17, tzinfo=UTC)
    event = GridEvent("e", start, start + timedelta(minutes=40), cap_kw=5.0)
    parts = events.split_event(event, timedelta(minutes=15))
    assert [p.event_id for p in parts] == ["e/0", "e/1", "e/2"]
    assert parts[-1].end - parts[-1].start == timedelta(minutes=10)
    assert all(p.cap_kw == 5.0 for p in parts)


def test_simulated_shed_without_noise_meters_the_plan(shed: events.EventReview) -> None:
    s = shed.settlement
    assert s.baseline == "plan"
    assert s.committed_kwh == pytest.approx(20.0)  # 20 kW for one hour
    assert s.compliance == pytest.approx(1.0)
    assert s.delivered_kwh >= 20.0 - 1e-3
    table = shed.intervals
    assert len(table) == 4 and (table["shed_kw"] == 20.0).all()
    # With no noise the metered interval means are the plan with the event, per slot.
    assert shed.planned_kw is not None
    planned = shed.planned_kw.reindex(table.index)
    assert table["metered_kw"].to_numpy() == pytest.approx(planned.to_numpy(), abs=1e-6)
    assert shed.baseline_kw is not None
    baseline = shed.baseline_kw.reindex(table.index)
    assert table["baseline_kw"].to_numpy() == pytest.approx(baseline.to_numpy(), abs=1e-6)
    # Value: delivered kWh x the interval's day-ahead price.
    expected = (table["delivered_kwh"] * table["price_eur_per_mwh"] / 1e3).sum()
    assert table["value_eur"].sum() == pytest.approx(expected)
    assert events.summary(shed)["value_eur"] == pytest.approx(round(expected, 2))
    assert shed.extra_cost_eur is not None and shed.extra_cost_eur >= -1e-6
    assert shed.simulated


def test_cap_already_met_by_the_baseline_commits_nothing() -> None:
    review = events.simulate_event(SCENARIO, "dr-evening-cap", noise_kw=0.0)
    s = review.settlement
    assert s.caps_met is True
    assert s.committed_kwh == pytest.approx(0.0)
    assert s.compliance == 1.0
    assert isinstance(events.event_figure(review, tz=TZ), Figure)


def test_noise_is_seeded() -> None:
    a = events.simulate_event(SCENARIO, "dr-morning-shed", noise_kw=1.0, seed=3)
    b = events.simulate_event(SCENARIO, "dr-morning-shed", noise_kw=1.0, seed=3)
    assert a.metered_kw is not None and b.metered_kw is not None
    pd.testing.assert_series_equal(a.metered_kw, b.metered_kw)
    assert not np.allclose(a.metered_kw.to_numpy(), a.metered_kw.round(0).to_numpy())


def test_unknown_event_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="dr-morning-shed"):
        events.simulate_event(SCENARIO, "nope")


def test_stored_event_reads_the_settlement(settled_store: str, shed: events.EventReview) -> None:
    url = settled_store
    review = events.stored_event(url, price_per_mwh=100.0)
    assert review.event_id == "dr-morning-shed"
    assert review.settlement.compliance == pytest.approx(shed.settlement.compliance)
    assert review.intervals["delivered_kw"].to_numpy() == pytest.approx(
        shed.intervals["delivered_kw"].to_numpy()
    )
    assert (review.intervals["price_eur_per_mwh"] == 100.0).all()
    assert review.baseline_kw is None and not review.simulated
    assert "modification 2" in review.source and "100 EUR/MWh" in review.price_note
    assert isinstance(events.event_figure(review), Figure)
    with pytest.raises(LookupError, match="no settlement of event 'other'"):
        events.stored_event(url, "other", price_per_mwh=100.0)


def test_an_empty_store_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_repository(url).dispose()
    with pytest.raises(LookupError, match="no settled event"):
        events.stored_event(url, price_per_mwh=100.0)


def test_store_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    assert configured_store_url() is None
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "  ")
    assert configured_store_url() is None
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "sqlite:///x.db")
    assert configured_store_url() == "sqlite:///x.db"


# --------------------------------------------------------------------------- forecast review

ORIGIN = datetime(2024, 5, 12, 22, tzinfo=UTC)  # Monday 13 May 00:00 in Amsterdam


@pytest.fixture(scope="module")
def price_review() -> forecast.PriceForecastReview:
    return forecast.price_forecast_review(read_prices(PRICES), ORIGIN, days=7, tz=TZ)


def test_price_forecast_covers_the_week_with_sorted_quantiles(
    price_review: forecast.PriceForecastReview,
) -> None:
    frame = price_review.frame
    assert len(frame) == 7 * 24 and frame.index[0] == pd.Timestamp(ORIGIN)
    assert list(frame["horizon_day"].unique()) == list(range(1, 8))
    assert (frame["q10"] <= frame["q50"]).all() and (frame["q50"] <= frame["q90"]).all()
    prices = read_prices(PRICES)
    assert frame["actual"].to_numpy() == pytest.approx(prices.reindex(frame.index).to_numpy())
    # The naive P50 is the same hour a week earlier.
    week_before = prices.reindex(frame.index - pd.Timedelta(days=7)).to_numpy()
    assert frame["naive_q50"].to_numpy() == pytest.approx(week_before)


def test_the_forecast_sees_nothing_after_its_origin(
    price_review: forecast.PriceForecastReview,
) -> None:
    prices = read_prices(PRICES)
    changed = prices.copy()
    changed[changed.index >= ORIGIN] += 500.0
    again = forecast.price_forecast_review(changed, ORIGIN, days=7, tz=TZ)
    columns = ["q10", "q50", "q90", "naive_q10", "naive_q50", "naive_q90"]
    pd.testing.assert_frame_equal(again.frame[columns], price_review.frame[columns])


def test_forecast_scores_match_their_definitions(
    price_review: forecast.PriceForecastReview,
) -> None:
    frame = price_review.frame
    scores = forecast.forecast_scores(price_review)
    assert list(scores.index) == ["model", "seasonal naive"]
    model = scores.loc["model"]
    assert model["mae_p50"] == pytest.approx((frame["q50"] - frame["actual"]).abs().mean())
    assert model["pinball_q50"] == pytest.approx(model["mae_p50"] / 2)
    inside = (frame["actual"] >= frame["q10"]) & (frame["actual"] <= frame["q90"])
    assert model["coverage_q10_q90"] == pytest.approx(inside.mean())
    by_day = forecast.forecast_scores(price_review, by_day=True)
    assert by_day.index.get_level_values("horizon_day").unique().tolist() == list(range(1, 8))
    assert isinstance(forecast.price_forecast_figure(price_review, tz=TZ), Figure)


def test_the_forecast_needs_the_actual_prices() -> None:
    prices = read_prices(PRICES)
    with pytest.raises(ValueError, match="no actual price for 2024-05-21"):
        forecast.price_forecast_review(prices, ORIGIN, days=9, tz=TZ)


def test_fleet_load_and_hourly_flexibility() -> None:
    fleet = forecast.fleet_review(SCENARIO)
    frame = forecast.load_frame(fleet)
    assert len(frame) == fleet.problem.grid.n_slots
    assert (frame["min_kw"] <= frame["max_kw"] + 1e-9).all()
    assert frame["baseline_kw"].to_numpy() == pytest.approx(fleet.envelope.baseline_kw)
    hourly = forecast.hourly_flexibility(fleet, tz=TZ)
    assert len(hourly) == 24
    assert (hourly["less_load_kw"] >= 0).all() and (hourly["more_load_kw"] >= 0).all()
    # Energy per hour = mean power x 1 h here (whole hours of 15-minute slots).
    assert hourly["less_load_kwh"].to_numpy() == pytest.approx(hourly["less_load_kw"].to_numpy())
    step_h = fleet.problem.grid.step_hours
    assert hourly["planned_kw"].sum() == pytest.approx(frame["planned_kw"].sum() * step_h)
    assert isinstance(forecast.fleet_figure(fleet, tz=TZ), Figure)
