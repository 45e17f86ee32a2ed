"""Site base load (the uncontrolled load behind the meter, without EV charging), with quantiles."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from aggregator.domain import ValidationError
from models.forecast.lagmodel import LagQuantileModel
from models.forecast.quantiles import DEFAULT_QUANTILES


class LoadForecaster:
    """Base load per site [kW], the same model as :class:`PriceForecaster` fitted per site.

    ``history`` has one column per site id, a regular step (15 min, 1 h, ...) and an aware UTC
    index; each site gets its own quantile regression on the same slot of the last known day
    and of the same weekday a week earlier, recent levels, and local hour and weekday terms.
    """

    def __init__(
        self,
        *,
        window_weeks: int = 4,
        timezone: str = "UTC",
        max_horizon_days: int = 7,
    ) -> None:
        self.window_weeks = window_weeks
        self.timezone = timezone
        self.max_horizon_days = max_horizon_days
        self._models: dict[str, LagQuantileModel] = {}

    def fit(self, history: pd.DataFrame, until: pd.Timestamp | None = None) -> LoadForecaster:
        """Fit one model per column (site id) of ``history`` [kW]. ``until``: the first slot
        not known (default: the slot after the last row). Returns ``self``."""
        if not isinstance(history, pd.DataFrame) or history.columns.empty:
            raise ValidationError("load forecast", "history", "needs one column per site id")
        index = pd.DatetimeIndex(history.index)
        step = _regular_step(index)
        models: dict[str, LagQuantileModel] = {}
        for site in history.columns:
            model = LagQuantileModel(
                entity=f"load forecast of site {site}",
                step=step,
                window_weeks=self.window_weeks,
                timezone=self.timezone,
                max_horizon_days=self.max_horizon_days,
            )
            models[str(site)] = model.fit(history[site], until)
        self._models = models
        return self

    @property
    def site_ids(self) -> tuple[str, ...]:
        """The sites the forecaster was fitted on."""
        return tuple(self._models)

    def predict(
        self,
        site_id: str,
        index: pd.DatetimeIndex,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> pd.DataFrame:
        """Quantiles of the base load of ``site_id`` at each time of ``index`` [kW].

        An unknown ``site_id`` is a ``ValidationError`` naming it; otherwise as
        :meth:`PriceForecaster.predict`.
        """
        if not self._models:
            raise ValidationError("load forecast", "fit", "predict called before fit")
        model = self._models.get(str(site_id))
        if model is None:
            known = ", ".join(self._models)
            raise ValidationError(
                f"site {site_id}",
                "site_id",
                f"no base-load history for this site (the forecaster knows: {known})",
            )
        return model.predict(index, quantiles)


def _regular_step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise ValidationError("load forecast", "history", "needs at least two rows")
    steps = pd.Series(index.sort_values()).diff().dropna()
    step = pd.Timedelta(steps.median())
    if step <= pd.Timedelta(0) or pd.Timedelta(days=1) % step != pd.Timedelta(0):
        raise ValidationError(
            "load forecast", "history", f"step {step} does not divide a day into whole slots"
        )
    return step
