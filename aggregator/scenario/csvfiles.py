"""Reading the CSV files a scenario refers to, with errors that name the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from aggregator.scenario.errors import DataError

# A time must say its offset: a naive time in a price or session file could be local time and
# would shift everything by hours without any error.
_OFFSET = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")


def read_csv_columns(path: Path, shown: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read ``path`` as text and check it has ``columns``. ``shown`` names it in errors."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except OSError as err:
        raise DataError(f"cannot read {shown}: {err.strerror or err}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"cannot parse {shown}: {first}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{shown}: missing column {', '.join(missing)} (has {', '.join(frame.columns)})"
        )
    return frame


def line_of(row: int) -> int:
    """File line of data row ``row`` (0-based), counting the header as line 1."""
    return row + 2


def parse_utc_times(frame: pd.DataFrame, column: str, shown: str) -> pd.DatetimeIndex:
    """ISO-8601 times with an offset, as a UTC index; the first bad value is reported."""
    values = frame[column].str.strip()
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna() | ~values.str.contains(_OFFSET)
    if bad.any():
        row = _first(bad)
        raise DataError(
            f"{shown} line {line_of(row)}: {column} {values.iloc[row]!r} is not an ISO-8601 "
            "time with offset"
        )
    return pd.DatetimeIndex(parsed)


def parse_numbers(frame: pd.DataFrame, column: str, shown: str) -> pd.Series:
    """A numeric column; the first value that is not a finite number is reported."""
    values = frame[column].str.strip()
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = _first(bad)
        raise DataError(
            f"{shown} line {line_of(row)}: {column} {values.iloc[row]!r} is not a number"
        )
    return numbers


def _first(mask: pd.Series | np.ndarray) -> int:
    """Position of the first True in a boolean mask."""
    return int(np.argmax(np.asarray(mask)))
