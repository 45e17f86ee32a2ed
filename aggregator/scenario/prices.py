"""Price files (``start,price_eur_per_mwh``) and their resampling onto the planning grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aggregator.domain import TimeGrid
from aggregator.scenario.csvfiles import parse_numbers, parse_utc_times, read_csv_columns
from aggregator.scenario.errors import DataError


def read_price_csv(path: Path, shown: str, column: str = "price_eur_per_mwh") -> pd.Series:
    """Prices [currency/MWh] indexed by interval start (UTC, sorted, unique).

    ``shown`` is how the file is named in error messages (the path as written in the YAML).
    """
    frame = read_csv_columns(path, shown, ("start", column))
    if frame.empty:
        raise DataError(f"{shown}: has no rows")
    index = parse_utc_times(frame, "start", shown)
    series = pd.Series(parse_numbers(frame, column, shown).to_numpy(), index=index)
    duplicated = series.index.duplicated()
    if duplicated.any():
        when = series.index[int(np.argmax(duplicated))]
        raise DataError(f"{shown}: start {when.isoformat()} appears twice")
    return series.sort_index()


def prices_on_grid(series: pd.Series, grid: TimeGrid, shown: str) -> tuple[float, ...]:
    """Price of each slot: the price of the CSV interval containing the slot start.

    Row ``i`` covers ``[start_i, start_{i+1})`` (so a missing hour holds the previous price);
    the last row covers one typical interval (the median spacing). The file must cover the
    whole horizon ``[grid.start, grid.end)``. [currency/MWh]
    """
    index = pd.DatetimeIndex(series.index)
    if len(index) < 2:
        raise DataError(f"{shown}: needs at least two rows to know its interval length")
    first = index[0].to_pydatetime()
    last_end = (index[-1] + pd.Series(index).diff().median()).to_pydatetime()
    if first > grid.start or last_end < grid.end:
        raise DataError(
            f"{shown} covers {first.isoformat()} to {last_end.isoformat()}, not the horizon "
            f"{grid.start.isoformat()} to {grid.end.isoformat()}"
        )
    slot_starts = pd.DatetimeIndex(list(grid.slot_starts()))
    positions = index.searchsorted(slot_starts, side="right") - 1
    values = series.to_numpy(dtype=float)[positions]
    return tuple(float(v) for v in values)
