"""Flux for the InfluxDB adapter's queries, and the DataFrame the port promises from them.

OSS InfluxDB 2.x takes no query parameters, so values are written into the query as Flux
string literals (escaped: backslash, double quote, ``${``, newline, carriage return, tab).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Columns Flux adds that are not tags or fields of the points.
_META = ("result", "table", "_start", "_stop", "_measurement")


def flux_string(value: str) -> str:
    """``value`` as a Flux string literal."""
    out = "".join(_ESCAPES.get(ch, ch) for ch in value).replace("${", "\\${")
    return f'"{out}"'


def flux_time(value: datetime) -> str:
    """An aware datetime as a Flux time literal (RFC 3339, UTC, microseconds)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: give aware UTC times")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def flux_query(
    bucket: str,
    measurement: str,
    start: datetime,
    stop: datetime,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Points of ``measurement`` in ``[start, stop)`` with these tag values, one row per
    series and time (fields pivoted into columns), all series in one table, by time."""
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(stop)})",
        f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)})",
    ]
    for key, value in sorted((tags or {}).items()):
        lines.append(f"  |> filter(fn: (r) => r[{flux_string(key)}] == {flux_string(value)})")
    lines += [
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        "  |> group()",
        '  |> sort(columns: ["_time"])',
    ]
    return "\n".join(lines)


def flux_frame(raw: Any) -> pd.DataFrame:
    """What ``QueryApi.query_data_frame`` returned (one frame or a list) as the port's frame:
    UTC ``DatetimeIndex`` named ``ts``, one column per tag and field, Flux's own columns
    (result, table, _start, _stop, _measurement) left out, rows by time."""
    frames = [f for f in (raw if isinstance(raw, list) else [raw]) if not f.empty]
    if not frames:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].copy()
    df = df.drop(columns=[c for c in _META if c in df.columns])
    index = pd.DatetimeIndex(pd.to_datetime(df.pop("_time"), utc=True), name="ts")
    df.index = index
    out: pd.DataFrame = df.sort_index(kind="stable")
    return out
