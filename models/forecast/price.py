"""Day-ahead prices beyond the published horizon, with quantiles."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from models.forecast.lagmodel import LagQuantileModel
from models.forecast.quantiles import DEFAULT_QUANTILES


class PriceForecaster:
    """Hourly day-ahead prices [currency/MWh] beyond the last published hour.

    A linear quantile regression per horizon day on the same hour of the last known day and of
    the same weekday a week earlier, the level of the last day and week, and local hour-of-day
    and weekday terms, fitted on the last ``window_weeks`` weeks (docs/forecasting.md).

    ``timezone`` is the market's zone (``Europe/Amsterdam`` for the NL market): the hour-of-day
    and weekday terms follow its clock, so the daily shape does not slip an hour at DST.
    """

    def __init__(
        self,
        *,
        window_weeks: int = 8,
        timezone: str = "UTC",
        max_horizon_days: int = 7,
    ) -> None:
        self._model = LagQuantileModel(
            entity="price forecast",
            step=pd.Timedelta(hours=1),
            window_weeks=window_weeks,
            timezone=timezone,
            max_horizon_days=max_horizon_days,
        )

    def fit(self, history: pd.Series, until: pd.Timestamp | None = None) -> PriceForecaster:
        """Fit on hourly prices [currency/MWh] indexed by hour start (aware UTC).

        ``until``: the forecast origin, the first hour not known (default: the hour after the
        last price); missing hours before it are held like any gap.

        The history must cover ``window_weeks`` weeks plus one week of lags. Up to six missing
        hours in a row are filled by holding the previous price; a longer gap in the part used
        is a ``ValidationError``. Returns ``self``.
        """
        self._model.fit(history, until)
        return self

    @property
    def origin(self) -> pd.Timestamp:
        """The first hour after the fitted history: where the forecast starts."""
        return self._model.origin

    def predict(
        self, index: pd.DatetimeIndex, quantiles: Sequence[float] = DEFAULT_QUANTILES
    ) -> pd.DataFrame:
        """Quantiles of the price of each hour in ``index`` [currency/MWh].

        ``index``: aware times at or after :attr:`origin` and before
        ``origin + max_horizon_days``; a time inside an hour gets that hour's forecast. Returns
        a DataFrame on ``index`` (converted to UTC) with one column per quantile (``q10``,
        ``q50``, ``q90``), non-decreasing along each row.
        """
        return self._model.predict(index, quantiles)
