"""Data for the forecast tests: shipped slices, and the full files beside the repository."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aggregator.backtest import read_prices, read_sessions

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
PRICES_SLICE = DATA / "nl_day_ahead_prices_2023-09_12.csv"
SESSIONS = ROOT / "bench" / "data" / "acn_caltech_2019-03_sessions.csv"
SHARED = ROOT.parent / "shared" / "data"
FULL_PRICES = SHARED / "nl_day_ahead_prices_2015-2024.csv"


@pytest.fixture(scope="session")
def prices() -> pd.Series:
    """Hourly NL day-ahead prices, Sep-Dec 2023 [EUR/MWh] (one hour missing, as in the source)."""
    return read_prices(PRICES_SLICE)[0]


@pytest.fixture(scope="session")
def sessions() -> pd.DataFrame:
    """The Caltech ACN sessions of March 2019; the station stands for the vehicle."""
    return read_sessions(SESSIONS)


@pytest.fixture
def full_prices() -> Path:
    if not FULL_PRICES.is_file():
        pytest.skip(f"the full price file is not beside the repository ({FULL_PRICES})")
    return FULL_PRICES
