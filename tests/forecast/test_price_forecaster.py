"""The price forecaster on real NL prices and on series whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aggregator.domain import ValidationError
from models.forecast import PriceForecaster

ZONE = "Europe/Amsterdam"


def _weekly_pattern(weeks: int, end: str = "2024-03-04T00:00Z") -> pd.Series:
    """A price that repeats every week exactly: hour of day plus a weekend dip."""
    index = pd.date_range(
        end=pd.Timestamp(end) - pd.Timedelta(hours=1), periods=weeks * 168, freq="h"
    )
    hour = index.hour.to_numpy()
    weekend = index.day_of_week.to_numpy() >= 5
    return pd.Series(50 + 30 * np.sin(hour / 24 * 2 * np.pi) - 20 * weekend, index=index)


def test_quantiles_are_ordered_and_indexed_like_the_request(prices) -> None:
    history = prices[prices.index < "2023-12-01"]
    f = PriceForecaster(timezone=ZONE).fit(history)
    index = pd.date_range(f.origin, periods=7 * 24, freq="h")
    got = f.predict(index, quantiles=(0.9, 0.1, 0.5, 0.25))

    assert list(got.columns) == ["q10", "q25", "q50", "q90"]
    assert got.index.equals(index)
    assert str(got.index.tz) == "UTC"
    values = got.to_numpy()
    assert np.isfinite(values).all()
    assert (np.diff(values, axis=1) >= 0).all()


def test_a_weekly_pattern_is_forecast_almost_exactly() -> None:
    history = _weekly_pattern(weeks=12)
    f = PriceForecaster(timezone="UTC").fit(history)
    index = pd.date_range(f.origin, periods=48, freq="h")
    got = f.predict(index)
    truth = history.reindex(index - pd.Timedelta(days=7)).to_numpy()

    assert got["q50"].to_numpy() == pytest.approx(truth, abs=1e-6)
    assert (got["q90"] - got["q10"]).max() < 1e-6


def test_times_inside_an_hour_take_that_hour(prices) -> None:
    f = PriceForecaster(timezone=ZONE).fit(prices[prices.index < "2023-12-01"])
    hours = f.predict(pd.DatetimeIndex([f.origin + pd.Timedelta(hours=3)]))
    quarter = f.predict(pd.DatetimeIndex([f.origin + pd.Timedelta(hours=3, minutes=45)]))

    assert quarter.to_numpy() == pytest.approx(hours.to_numpy())


def test_the_origin_is_the_hour_after_the_history(prices) -> None:
    history = prices[prices.index < "2023-12-01T05:00Z"]
    f = PriceForecaster().fit(history)

    assert f.origin == pd.Timestamp("2023-12-01T05:00Z")


def test_an_index_in_another_zone_is_answered_in_utc(prices) -> None:
    f = PriceForecaster(timezone=ZONE).fit(prices[prices.index < "2023-12-01"])
    local = pd.date_range("2023-12-01T01:00", periods=3, freq="h", tz=ZONE)  # 00:00Z on

    got = f.predict(local)
    assert list(got.index) == list(pd.date_range("2023-12-01T00:00Z", periods=3, freq="h"))


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("2023-11-30T23:00Z", "before the forecast origin 2023-12-01T00:00:00"),
        ("2023-12-08T00:00Z", "more than 7 days after the forecast origin"),
    ],
)
def test_times_outside_the_horizon_are_rejected(prices, when, message) -> None:
    f = PriceForecaster().fit(prices[prices.index < "2023-12-01"])

    with pytest.raises(ValidationError, match=message) as err:
        f.predict(pd.DatetimeIndex([pd.Timestamp(when)]))
    assert err.value.field == "index"


def test_bad_requests_are_validation_errors(prices) -> None:
    with pytest.raises(ValidationError, match="predict called before fit"):
        PriceForecaster().predict(pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"))
    f = PriceForecaster().fit(prices[prices.index < "2023-12-01"])
    with pytest.raises(ValidationError, match="timezone-aware"):
        f.predict(pd.date_range("2023-12-01", periods=2, freq="h"))
    with pytest.raises(ValidationError, match="strictly between 0 and 1"):
        f.predict(pd.date_range("2023-12-01", periods=2, freq="h", tz="UTC"), (0.5, 1.0))
    with pytest.raises(ValidationError, match="unknown zone"):
        PriceForecaster(timezone="Mars/Olympus")


def test_a_short_history_is_rejected_saying_how_much_is_needed(prices) -> None:
    with pytest.raises(ValidationError, match="covers 20 days, it needs at least 28 days"):
        PriceForecaster().fit(prices.iloc[: 20 * 24])


def test_a_naive_or_duplicated_history_is_rejected(prices) -> None:
    naive = prices.copy()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(ValidationError, match="timezone-aware"):
        PriceForecaster().fit(naive)
    doubled = pd.concat([prices.iloc[:10], prices.iloc[5:6]])
    with pytest.raises(ValidationError, match="appears twice"):
        PriceForecaster().fit(doubled)


def test_a_short_gap_is_held_and_a_long_one_cuts_the_history(prices) -> None:
    history = prices[prices.index < "2023-12-01"]
    holed = history.drop(history.index[-100:-96])  # 4 missing hours: held
    f = PriceForecaster().fit(holed)
    assert f.origin == pd.Timestamp("2023-12-01T00:00Z")

    gap = history[(history.index < "2023-11-20") | (history.index >= "2023-11-21")]
    with pytest.raises(
        ValidationError, match=r"no values from 2023-11-20T00:00:00\+00:00 to 2023-11-21"
    ):
        PriceForecaster().fit(gap)  # 10 days after the gap are not enough

    older = history[(history.index < "2023-09-05") | (history.index >= "2023-09-06")]
    assert PriceForecaster().fit(older).origin == f.origin  # enough after the gap


def test_hours_off_the_hourly_grid_are_rejected(prices) -> None:
    shifted = prices.copy()
    shifted.index = shifted.index + pd.Timedelta(minutes=15)
    with pytest.raises(ValidationError, match="is not on the 1 h grid"):
        PriceForecaster().fit(shifted)


def test_the_fit_does_not_look_at_the_future(prices) -> None:
    # The forecast from an origin is the same whatever follows the origin in the series.
    origin = pd.Timestamp("2023-12-01T00:00Z")
    index = pd.date_range(origin, periods=24, freq="h")
    a = PriceForecaster().fit(prices[prices.index < origin]).predict(index)
    tampered = prices.copy()
    tampered[tampered.index >= origin] = 10_000.0
    b = PriceForecaster().fit(tampered[tampered.index < origin]).predict(index)

    pd.testing.assert_frame_equal(a, b)


def test_until_sets_the_origin_and_holds_missing_last_hours(prices) -> None:
    # The source file lacks 2023-12-30T23:00Z: a forecast from midnight still starts there.
    history = prices[prices.index < "2023-12-31"]
    assert history.index[-1] == pd.Timestamp("2023-12-30T22:00Z")
    f = PriceForecaster().fit(history, until=pd.Timestamp("2023-12-31T00:00Z"))

    assert f.origin == pd.Timestamp("2023-12-31T00:00Z")
    assert len(f.predict(pd.date_range(f.origin, periods=7 * 24, freq="h"))) == 7 * 24
    with pytest.raises(ValidationError, match="until: must be an aware time on the 1 h grid"):
        PriceForecaster().fit(history, until=pd.Timestamp("2023-12-30T22:00Z"))
    with pytest.raises(ValidationError, match="no values from 2023-12-30T23:00:00"):
        PriceForecaster().fit(history, until=pd.Timestamp("2024-01-02T00:00Z"))
