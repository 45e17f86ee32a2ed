"""Base load per site: one model per site column, unknown sites named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aggregator.domain import ValidationError
from models.forecast import LoadForecaster


def _loads(weeks: int = 6, noise: float = 0.0) -> pd.DataFrame:
    """Two sites at 15-minute steps: an office (weekday daytime) and a flat 20 kW depot."""
    index = pd.date_range("2024-01-01T00:00Z", periods=weeks * 7 * 96, freq="15min")
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60
    workday = index.day_of_week.to_numpy() < 5
    office = 10 + 40 * workday * ((hours >= 8) & (hours < 18))
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "office": office + noise * rng.standard_normal(len(index)),
            "depot": 20.0 + noise * rng.standard_normal(len(index)),
        },
        index=index,
    )


def test_each_site_gets_its_own_forecast_on_the_history_step() -> None:
    history = _loads()
    f = LoadForecaster().fit(history)
    origin = history.index[-1] + pd.Timedelta(minutes=15)  # a Monday 00:00Z
    index = pd.date_range(origin, periods=96, freq="15min")

    office = f.predict("office", index)
    depot = f.predict("depot", index)

    assert f.site_ids == ("office", "depot")
    assert list(office.columns) == ["q10", "q50", "q90"]
    assert office.loc[index[40], "q50"] == pytest.approx(50.0, abs=1e-6)  # Monday 10:00
    assert office.loc[index[4], "q50"] == pytest.approx(10.0, abs=1e-6)  # Monday 01:00
    assert depot["q50"].to_numpy() == pytest.approx(20.0, abs=1e-6)


def test_noisy_load_gets_ordered_quantiles_around_the_pattern() -> None:
    history = _loads(noise=2.0)
    f = LoadForecaster().fit(history)
    index = pd.date_range(
        history.index[-1] + pd.Timedelta(minutes=15), periods=2 * 96, freq="15min"
    )
    got = f.predict("depot", index, quantiles=(0.05, 0.5, 0.95))

    values = got.to_numpy()
    assert (np.diff(values, axis=1) >= 0).all()
    assert got["q50"].mean() == pytest.approx(20.0, abs=1.0)
    # N(20, 2): the 5-95 % band is about 6.6 kW wide
    assert 3.0 < (got["q95"] - got["q5"]).mean() < 12.0


def test_an_unknown_site_is_named_in_the_error() -> None:
    f = LoadForecaster().fit(_loads())
    index = pd.date_range("2024-02-12T00:00Z", periods=4, freq="15min")

    with pytest.raises(ValidationError) as err:
        f.predict("warehouse", index)
    assert err.value.field == "site_id"
    assert "warehouse" in str(err.value)
    assert "office, depot" in str(err.value)


def test_predict_before_fit_and_bad_histories_are_errors() -> None:
    with pytest.raises(ValidationError, match="before fit"):
        LoadForecaster().predict("office", pd.date_range("2024-01-01", periods=1, tz="UTC"))
    with pytest.raises(ValidationError, match="one column per site"):
        LoadForecaster().fit(pd.DataFrame(index=pd.date_range("2024-01-01", periods=3, tz="UTC")))
    odd = _loads().iloc[::7]  # a 105-minute step does not divide a day
    with pytest.raises(ValidationError, match="does not divide a day"):
        LoadForecaster().fit(odd)
