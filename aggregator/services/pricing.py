"""Prices as the utility's events say: a forecast source with event price signals on top."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.domain import Prices, TimeGrid
from aggregator.ports import DrEventStore, ForecastSource


class EventPriceOverlay:
    """A ``ForecastSource``: the base forecast, with the price signals of the events we
    opted in to applied to each slot that starts inside them (``replace`` sets the import
    price, ``add`` adds to it; export prices follow the same change)."""

    def __init__(self, base: ForecastSource, events: DrEventStore) -> None:
        self.base = base
        self.events = events

    def prices(self, grid: TimeGrid) -> Prices:
        base = self.base.prices(grid)
        imp, exp = list(base.import_per_mwh), list(base.export_per_mwh)
        signals = [p for r in self.events.all() if r.state == "active" for p in r.event.prices]
        if not signals:
            return base
        for t, start in enumerate(grid.slot_starts()):
            for p in signals:
                if p.start <= start < p.end:
                    if p.mode == "replace":
                        delta = p.price_per_mwh - imp[t]
                        imp[t] = p.price_per_mwh
                    else:
                        delta = p.price_per_mwh
                        imp[t] += delta
                    exp[t] += delta
        return Prices(tuple(imp), tuple(exp))

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        return self.base.site_profiles(grid, site_ids)
