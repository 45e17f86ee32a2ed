"""A ``ForecastSource`` for the planner: published prices where known, a quantile beyond."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from aggregator.domain import Prices, TimeGrid, ValidationError
from models.forecast.price import PriceForecaster
from models.forecast.quantiles import quantile_column


class _Source(Protocol):
    """What ``aggregator.ports.ForecastSource`` asks (models do not import the ports)."""

    def prices(self, grid: TimeGrid) -> Prices: ...

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]: ...


class QuantilePriceForecasts:
    """Import prices per planning slot: published where known, else the forecaster's quantile.

    A slot whose start lies inside the published series takes the published price of the
    interval containing it (step-hold, as the scenario loader does). A later slot, up to the
    forecaster's horizon, takes its ``quantile`` forecast of the hour containing the slot
    start (P50 by default; a higher quantile plans more cautiously against price spikes).
    ``published_end`` is where the last published interval ends (default: the last start plus
    the median spacing). Anything else (before the published series, beyond the horizon) comes
    from ``fallback``, which also supplies the site profiles and the export-import spread: export =
    import + (fallback export - fallback import) in every slot.
    """

    def __init__(
        self,
        published: pd.Series,
        forecaster: PriceForecaster,
        fallback: _Source,
        *,
        quantile: float = 0.5,
        published_end: pd.Timestamp | None = None,
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValidationError(
                "price forecast source",
                "quantile",
                f"must lie strictly between 0 and 1, got {quantile}",
            )
        index = pd.DatetimeIndex(published.index)
        if index.tz is None or len(index) < 2 or not index.is_monotonic_increasing:
            raise ValidationError(
                "price forecast source",
                "published",
                "needs at least two prices on a sorted, timezone-aware index",
            )
        self.published = published.astype(float)
        self.published.index = index.tz_convert("UTC")
        if published_end is None:
            published_end = (
                self.published.index[-1] + pd.Series(self.published.index).diff().median()
            )
        self.published_end = pd.Timestamp(published_end).tz_convert("UTC")
        self.forecaster = forecaster
        self.fallback = fallback
        self.quantile = quantile

    @property
    def horizon_end(self) -> pd.Timestamp:
        """Slots starting at or after this come from the fallback."""
        model = self.forecaster._model  # the horizon is a model setting
        return self.forecaster.origin + pd.Timedelta(days=model.max_horizon_days)

    def sources(self, grid: TimeGrid) -> list[str]:
        """Per slot where its price comes from: ``published``, ``forecast`` or ``fallback``."""
        starts = pd.DatetimeIndex(list(grid.slot_starts()))
        known, modelled = self._masks(starts)
        return [
            "published" if k else "forecast" if m else "fallback"
            for k, m in zip(known, modelled, strict=True)
        ]

    def _masks(self, starts: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        known = (starts >= self.published.index[0]) & (starts < self.published_end)
        origin = max(self.forecaster.origin, self.published_end)
        modelled = ~known & (starts >= origin) & (starts < self.horizon_end)
        return np.asarray(known), np.asarray(modelled)

    def prices(self, grid: TimeGrid) -> Prices:
        base = self.fallback.prices(grid)
        imp = np.asarray(base.import_per_mwh, dtype=float)
        spread = np.asarray(base.export_per_mwh, dtype=float) - imp
        starts = pd.DatetimeIndex(list(grid.slot_starts()))
        known, modelled = self._masks(starts)
        if known.any():
            pos = self.published.index.searchsorted(starts[known], side="right") - 1
            imp[known] = self.published.to_numpy()[pos]
        if modelled.any():
            hours = starts[modelled].floor("h")
            wanted = hours.unique()
            frame = self.forecaster.predict(wanted, (self.quantile,))
            column = frame[quantile_column(self.quantile)]
            imp[modelled] = column.reindex(hours).to_numpy()
        return Prices(tuple(float(v) for v in imp), tuple(float(v) for v in imp + spread))

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        return self.fallback.site_profiles(grid, site_ids)
