"""Price files (``start,price_eur_per_mwh``) and their resampling onto the planning grid.

Bad rows are normalised where the intent is clear, and rejected with their line and the
reason where it is not:

- times in any ISO-8601 form with an offset (``Z``, ``+00:00``, ``+02:00``, ``T`` or a space,
  with or without seconds) are converted to UTC; anything else is rejected. Times without an
  offset are rejected unless the caller names the file's time zone (``timezone``): then they
  are local wall-clock times, the hour repeated when the clocks go back is read as summer time
  the first time it appears and winter time the second, and an hour that does not exist (the
  clocks skip it in spring) is rejected;
- a time given twice with the same price is dropped (noted); with another price, rejected;
- a gap of up to ``max_gap`` holds the previous price (noted); a longer gap is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from aggregator.domain import TimeGrid
from aggregator.scenario.csvfiles import line_of, parse_numbers, read_csv_columns
from aggregator.scenario.errors import DataError

# A time "has an offset" when a time of day ends in one; without, it could be any local time.
_OFFSET = re.compile(r"[T ]\d\d.*(?:Z|[+-]\d\d(?::?\d\d)?)$")

MAX_GAP = timedelta(hours=6)
"""Longest run of missing intervals that holds the previous price."""


@dataclass(frozen=True)
class PriceFile:
    """Prices [currency/MWh] by interval start (UTC, sorted, unique) and what was normalised."""

    prices: pd.Series
    notes: tuple[str, ...]
    """One line per normalisation (dropped repeats, held gaps), naming the lines."""


def read_price_csv(
    path: Path,
    shown: str,
    column: str = "price_eur_per_mwh",
    *,
    timezone: str | None = None,
    max_gap: timedelta = MAX_GAP,
) -> pd.Series:
    """Prices [currency/MWh] indexed by interval start (UTC, sorted, unique).

    ``shown`` is how the file is named in error messages (the path as written in the YAML).
    See :func:`load_price_file` for ``timezone`` and ``max_gap``.
    """
    return load_price_file(path, shown, column, timezone=timezone, max_gap=max_gap).prices


def load_price_file(
    path: Path,
    shown: str,
    column: str = "price_eur_per_mwh",
    *,
    timezone: str | None = None,
    max_gap: timedelta = MAX_GAP,
) -> PriceFile:
    """Read, check and normalise a price file (module docstring); a ``DataError`` names the
    line and the reason.

    ``timezone``: an IANA zone for times written without an offset (None: they are errors).
    ``max_gap``: longest stretch without a row, beyond the file's usual spacing, that holds
    the previous price.
    """
    frame = read_csv_columns(path, shown, ("start", column))
    if frame.empty:
        raise DataError(f"{shown}: has no rows")
    starts = _parse_starts(frame["start"], shown, timezone)
    prices = parse_numbers(frame, column, shown).to_numpy(dtype=float)
    lines = np.array([line_of(row) for row in range(len(frame))])
    notes: list[str] = []
    keep = _drop_repeats(starts, prices, lines, shown, notes)
    order = np.argsort(starts.asi8[keep], kind="stable")
    kept = keep[order]
    index = pd.DatetimeIndex(starts[kept])
    series = pd.Series(prices[kept], index=index)
    _check_gaps(index, lines[kept], shown, max_gap, notes)
    return PriceFile(series, tuple(notes))


def _parse_starts(values: pd.Series, shown: str, timezone: str | None) -> pd.DatetimeIndex:
    """Every ``start`` as a UTC time, or a DataError naming the first bad line."""
    text = values.astype(str).str.strip()
    aware = text.str.contains(_OFFSET).to_numpy()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        parsed[aware] = pd.to_datetime(text[aware], utc=True, format="ISO8601", errors="coerce")
    naive = ~aware
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        if timezone is None:
            row = int(np.flatnonzero(naive)[0])
            raise DataError(
                f"{shown} line {line_of(row)}: start {text.iloc[row]!r} is not an ISO-8601 "
                "time with offset (give the offset, or the file's time zone)"
            )
        parsed[naive] = _localise(local, text[naive], shown, timezone)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{shown} line {line_of(row)}: start {text.iloc[row]!r} is not an ISO-8601 time "
            "with offset"
        )
    return pd.DatetimeIndex(parsed)


def _localise(local: pd.Series, text: pd.Series, shown: str, timezone: str) -> pd.Series:
    """Wall-clock times in ``timezone`` as UTC; the repeated autumn hour by order of rows."""
    if local.isna().any():
        row = int(np.argmax(local.isna().to_numpy()))
        raise DataError(
            f"{shown} line {line_of(int(text.index[row]))}: start {text.iloc[row]!r} is not "
            "an ISO-8601 time"
        )
    stamps = pd.DatetimeIndex(local)
    # First time a wall-clock time appears: summer time (DST); second: winter time.
    first_seen = ~pd.Series(stamps).duplicated(keep="first").to_numpy()
    try:
        zoned = stamps.tz_localize(timezone, ambiguous=first_seen, nonexistent="NaT")
    except (KeyError, ValueError) as exc:  # an unknown zone
        raise DataError(f"{shown}: time zone {timezone!r}: {exc}") from None
    missing = np.asarray(zoned.isna())
    if missing.any():
        row = int(np.argmax(missing))
        raise DataError(
            f"{shown} line {line_of(int(text.index[row]))}: start {text.iloc[row]!r} does not "
            f"exist in {timezone} (the clocks skip that hour)"
        )
    return pd.Series(zoned.tz_convert("UTC"), index=text.index)


def _drop_repeats(
    starts: pd.DatetimeIndex, prices: np.ndarray, lines: np.ndarray, shown: str, notes: list[str]
) -> np.ndarray:
    """Positions to keep: a repeated time with the same price is dropped, another is an error."""
    repeated = np.asarray(starts.duplicated(keep="first"))
    if not repeated.any():
        return np.arange(len(starts))
    first_at: dict[int, int] = {}
    for pos, key in enumerate(starts.asi8):
        first_at.setdefault(int(key), pos)
    for pos in (int(p) for p in np.flatnonzero(repeated)):
        first = first_at[int(starts.asi8[pos])]
        when = starts[pos].isoformat()
        if prices[pos] != prices[first]:
            raise DataError(
                f"{shown} line {lines[pos]}: start {when} appears twice (line {lines[first]} "
                f"has {prices[first]:g}, this line {prices[pos]:g})"
            )
        notes.append(f"line {lines[pos]} repeats line {lines[first]} ({when}): dropped")
    return np.flatnonzero(~repeated)


def _check_gaps(
    index: pd.DatetimeIndex, lines: np.ndarray, shown: str, max_gap: timedelta, notes: list[str]
) -> None:
    """Gaps beyond the usual spacing: held up to ``max_gap``, else an error naming the line."""
    if len(index) < 3:
        return
    spacing = pd.Series(index).diff().dropna()
    usual = spacing.median()
    for pos in np.flatnonzero((spacing > usual).to_numpy()):
        after, before = int(pos) + 1, int(pos)
        missing = spacing.iloc[pos] - usual
        where = (
            f"line {lines[after]} ({index[after].isoformat()}) comes {_span(spacing.iloc[pos])} "
            f"after line {lines[before]} ({index[before].isoformat()})"
        )
        if missing > max_gap:
            raise DataError(
                f"{shown} line {lines[after]}: {where}: {_span(missing)} missing, more than the "
                f"{_span(max_gap)} that hold the previous price"
            )
        notes.append(f"{where}: {_span(missing)} missing, the previous price holds")


def _span(delta: timedelta | pd.Timedelta) -> str:
    minutes = pd.Timedelta(delta).total_seconds() / 60
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


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
