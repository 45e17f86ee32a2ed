"""Prices and site profiles from a scenario, resampled onto any planning window.

The runtime plans on a rolling horizon that rarely lines up with the scenario's own grid. A
planning slot that straddles two scenario slots takes the time-weighted mean price, and the
worst case of base load (highest) and PV (lowest) of the slots it overlaps: the site limit is
hard, so the forecast must not hide a step inside the slot. Outside the scenario's horizon the
same time of day inside it is used (a day-ahead naive forecast) until a real forecaster
(models/forecast) replaces this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from aggregator.domain import FleetProblem, Prices, TimeGrid

_DAY = timedelta(days=1)


class ScenarioForecasts:
    """A ``ForecastSource`` backed by one scenario's series."""

    def __init__(self, problem: FleetProblem) -> None:
        self.problem = problem

    def _fold(self, when: datetime) -> datetime:
        src = self.problem.grid
        while when < src.start:
            when += _DAY
        while when >= src.end and when - _DAY >= src.start:
            when -= _DAY
        return when

    def _overlaps(self, grid: TimeGrid) -> list[list[tuple[int, float]]]:
        """Per planning slot: (scenario slot, share of the planning slot it covers)."""
        src = self.problem.grid
        out = []
        for start in grid.slot_starts():
            a = src.position(self._fold(start))
            b = a + grid.step / src.step
            parts = []
            for i in range(math.floor(a), math.ceil(b)):
                share = (min(b, i + 1) - max(a, i)) / (b - a)
                if share > 1e-9:
                    parts.append((min(src.n_slots - 1, max(0, i)), share))
            out.append(parts)
        return out

    def prices(self, grid: TimeGrid) -> Prices:
        parts = self._overlaps(grid)
        imp, exp = self.problem.prices.import_per_mwh, self.problem.prices.export_per_mwh
        return Prices(
            tuple(sum(imp[i] * w for i, w in p) for p in parts),
            tuple(sum(exp[i] * w for i, w in p) for p in parts),
        )

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        parts = self._overlaps(grid)
        out = {}
        for site in self.problem.sites:
            if site.site_id not in site_ids:
                continue
            b, pv = site.base_load_kw, site.pv_kw
            base = tuple(max(b[i] for i, _ in p) for p in parts) if b else ()
            solar = tuple(min(pv[i] for i, _ in p) for p in parts) if pv else ()
            out[site.site_id] = (base, solar)
        return out
