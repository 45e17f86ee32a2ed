"""Forecasts with uncertainty: day-ahead prices beyond the published horizon, site base load,
and per-vehicle arrival, departure and energy need. Pure maths on pandas objects, no I/O.

Every forecaster follows one shape: construct with its knobs, ``fit(history)`` returns the
fitted forecaster, ``predict(...)`` returns a DataFrame with one column per quantile named by
:func:`quantile_column` (``q10``, ``q50``, ``q90`` for the default quantiles). Times are
timezone-aware UTC. Asking a fitted forecaster about a site or vehicle it has no history for
raises :class:`aggregator.domain.ValidationError` naming the field and the id.

See docs/forecasting.md.
"""

from models.forecast.backtest import (
    Scores,
    SeriesBacktest,
    SessionBacktest,
    backtest_prices,
    backtest_sessions,
)
from models.forecast.load import LoadForecaster
from models.forecast.metrics import coverage, mae, pinball_loss
from models.forecast.naive import SeasonalNaive, SessionNaive
from models.forecast.price import PriceForecaster
from models.forecast.quantiles import DEFAULT_QUANTILES, quantile_column
from models.forecast.sessions import SessionForecaster
from models.forecast.source import QuantilePriceForecasts

__all__ = [
    "DEFAULT_QUANTILES",
    "LoadForecaster",
    "PriceForecaster",
    "QuantilePriceForecasts",
    "Scores",
    "SeasonalNaive",
    "SeriesBacktest",
    "SessionBacktest",
    "SessionForecaster",
    "SessionNaive",
    "backtest_prices",
    "backtest_sessions",
    "coverage",
    "mae",
    "pinball_loss",
    "quantile_column",
]
