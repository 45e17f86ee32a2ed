"""Shared plotting helpers: local-time axes, slot edges for step plots, figure sizes.

Figures use matplotlib's object API (``Figure``, no pyplot), as ``aggregator/report/plot.py``
does: no GUI backend and no global figure state, so they work in a notebook, a script or a
test. Data stays in UTC; only the axes show local time (traders think in delivery days).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from aggregator.domain import TimeGrid

DEFAULT_TZ = "Europe/Amsterdam"

# Legends sit right of the panels so they never hide the curves.
LEGEND: dict[str, Any] = {
    "loc": "upper left",
    "bbox_to_anchor": (1.01, 1.0),
    "fontsize": "small",
    "frameon": False,
}


def local_naive(index: pd.DatetimeIndex | list[datetime], tz: str) -> pd.DatetimeIndex:
    """UTC times as naive wall-clock times in ``tz``: what the axes show."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        raise ValueError("times must be timezone-aware (UTC inside the aggregator)")
    return idx.tz_convert(ZoneInfo(tz)).tz_localize(None)


def slot_edges(grid: TimeGrid, tz: str) -> pd.DatetimeIndex:
    """The grid's n + 1 slot boundaries, as local naive times for step plots."""
    starts = [grid.start + grid.step * i for i in range(grid.n_slots + 1)]
    return local_naive(starts, tz)


def hold(values: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Values for slot edges: a step plot of n slots needs n + 1 points (the last repeated)."""
    arr = np.asarray(values, dtype=float)
    return np.append(arr, arr[-1]) if arr.size else arr


def time_axis(ax: Axes, tz: str, fmt: str = "%a %d %b\n%H:%M") -> None:
    """Date ticks on ``ax`` (already in local time) and an axis label naming the zone."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"time ({tz})")
