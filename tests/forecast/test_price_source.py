"""The planner's price source: published prices where known, the chosen quantile beyond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aggregator.app import FlatForecasts, StartupError, price_forecast
from aggregator.domain import Prices, TimeGrid, ValidationError
from aggregator.settings import ForecastConfig, SettingsError, load_settings
from models.forecast import PriceForecaster, QuantilePriceForecasts
from tests.forecast.conftest import PRICES_SLICE

END = pd.Timestamp("2023-12-01T00:00Z")


class _Fallback:
    """999 import, 5 less for export, no site profiles."""

    def prices(self, grid: TimeGrid) -> Prices:
        return Prices((999.0,) * grid.n_slots, (994.0,) * grid.n_slots)

    def site_profiles(self, grid, site_ids):
        return {s: ((1.0,) * grid.n_slots, ()) for s in site_ids}


@pytest.fixture(scope="module")
def published(prices) -> pd.Series:
    return prices[prices.index < END]


@pytest.fixture(scope="module")
def forecaster(published) -> PriceForecaster:
    return PriceForecaster(timezone="Europe/Amsterdam", max_horizon_days=2).fit(published)


def _grid(start: datetime, hours: int, minutes: int = 15) -> TimeGrid:
    return TimeGrid(start, timedelta(minutes=minutes), hours * 60 // minutes)


def test_published_then_forecast_then_fallback(published, forecaster) -> None:
    source = QuantilePriceForecasts(published, forecaster, _Fallback())
    grid = _grid(datetime(2023, 11, 30, 22, tzinfo=UTC), 52)  # to 3 Dec 02:00, 2 h past
    prices = source.prices(grid)
    kinds = source.sources(grid)

    assert kinds[:8] == ["published"] * 8  # 22:00-24:00 on 30 Nov
    assert kinds[8:-8] == ["forecast"] * (len(kinds) - 16)
    assert kinds[-8:] == ["fallback"] * 8  # 2 days after the origin
    # Published: the quarter-hours hold the hour's price.
    assert prices.import_per_mwh[:4] == (published.iloc[-2],) * 4
    assert prices.import_per_mwh[4:8] == (published.iloc[-1],) * 4
    # Forecast: P50 of the hour containing the slot start.
    p50 = forecaster.predict(pd.date_range(END, periods=48, freq="h"))["q50"].to_numpy()
    assert np.array(prices.import_per_mwh[8:-8]) == pytest.approx(np.repeat(p50, 4))
    assert prices.import_per_mwh[-8:] == (999.0,) * 8
    # Export keeps the fallback's spread everywhere.
    spread = np.array(prices.export_per_mwh) - np.array(prices.import_per_mwh)
    assert spread == pytest.approx(-5.0)


def test_a_higher_quantile_plans_with_higher_prices(published, forecaster) -> None:
    grid = _grid(END.to_pydatetime(), 48, minutes=60)
    p50 = QuantilePriceForecasts(published, forecaster, _Fallback()).prices(grid)
    p90 = QuantilePriceForecasts(published, forecaster, _Fallback(), quantile=0.9).prices(grid)

    assert all(a >= b for a, b in zip(p90.import_per_mwh, p50.import_per_mwh, strict=True))
    assert sum(p90.import_per_mwh) > sum(p50.import_per_mwh)


def test_site_profiles_come_from_the_fallback(published, forecaster) -> None:
    source = QuantilePriceForecasts(published, forecaster, _Fallback())
    grid = _grid(END.to_pydatetime(), 1)

    assert source.site_profiles(grid, ["depot"]) == {"depot": ((1.0,) * 4, ())}


def test_a_quantile_outside_0_1_is_rejected(published, forecaster) -> None:
    with pytest.raises(ValidationError, match="quantile"):
        QuantilePriceForecasts(published, forecaster, _Fallback(), quantile=1.0)


def test_the_service_wiring_fits_on_the_history_file(tmp_path) -> None:
    config = ForecastConfig(history_csv=PRICES_SLICE, price_quantile=0.9, max_horizon_days=2)
    source = price_forecast(config, None)(FlatForecasts(42.0))
    # The file ends on 31 Dec 2023 23:00; the next two days are forecast, then flat 42.
    grid = _grid(datetime(2024, 1, 1, tzinfo=UTC), 72, minutes=60)
    prices = source.prices(grid).import_per_mwh

    assert isinstance(source, QuantilePriceForecasts)
    assert source.quantile == 0.9
    assert len(set(prices[:48])) > 10
    assert prices[48:] == (42.0,) * 24


def test_a_bad_history_file_stops_the_service_with_one_line(tmp_path) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("start,price_eur_per_mwh\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00Z,2\n")
    with pytest.raises(StartupError, match=r"^forecast\.history_csv: .*line 3: start .* twice"):
        price_forecast(ForecastConfig(history_csv=bad), None)
    short = tmp_path / "short.csv"
    short.write_text(
        "start,price_eur_per_mwh\n" + "".join(f"2024-01-01T{h:02d}:00:00Z,{h}\n" for h in range(24))
    )
    with pytest.raises(StartupError, match=r"^forecast\.history_csv: .*it needs at least 28 days"):
        price_forecast(ForecastConfig(history_csv=short), None)
    with pytest.raises(StartupError, match="cannot read"):
        price_forecast(ForecastConfig(history_csv=tmp_path / "missing.csv"), None)


def test_the_forecast_settings_section(tmp_path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text("forecast:\n  history_csv: data/prices.csv\n  price_quantile: 0.75\n")
    settings = load_settings(path)

    assert settings.forecast is not None
    assert settings.forecast.history_csv == tmp_path / "data" / "prices.csv"
    assert settings.forecast.price_quantile == 0.75
    assert settings.forecast.timezone == "Europe/Amsterdam"
    assert load_settings(None).forecast is None
    for body, where in [
        ("forecast:\n  history_csv: p.csv\n  price_quantile: 1.5\n", "forecast.price_quantile"),
        ("forecast:\n  history_csv: p.csv\n  timezone: Mars/Base\n", "unknown zone"),
        ("forecast:\n  price_quantile: 0.5\n", "forecast.history_csv"),
        ("forecast:\n  history_csv: p.csv\n  quantile: 0.5\n", "forecast.quantile"),
    ]:
        path.write_text(body)
        with pytest.raises(SettingsError, match=where):
            load_settings(path)


def test_relative_history_path_resolves_beside_the_settings_file(tmp_path) -> None:
    path = tmp_path / "conf" / "aggregator.yaml"
    path.parent.mkdir()
    path.write_text(f"forecast:\n  history_csv: {PRICES_SLICE}\n")

    assert load_settings(path).forecast.history_csv == Path(PRICES_SLICE)
