"""Session files in the ACN-Data layout (one row per plugged-in session, times in UTC).

Columns: ``session_id,station_id,arrival,departure,energy_requested_kwh,max_power_kw``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator.domain import TimeGrid
from aggregator.scenario.csvfiles import (
    line_of,
    parse_numbers,
    parse_utc_times,
    read_csv_columns,
)

COLUMNS = (
    "session_id",
    "station_id",
    "arrival",
    "departure",
    "energy_requested_kwh",
    "max_power_kw",
)


@dataclass(frozen=True, slots=True)
class CsvSession:
    """One row of a sessions file; ``line`` is its line in the file (header is line 1)."""

    line: int
    session_id: str
    station_id: str
    arrival: datetime
    departure: datetime
    energy_requested_kwh: float
    max_power_kw: float


def read_sessions_csv(path: Path, shown: str) -> list[CsvSession]:
    """All rows of a sessions file, in file order. ``shown`` names it in errors."""
    frame = read_csv_columns(path, shown, COLUMNS)
    arrivals = parse_utc_times(frame, "arrival", shown)
    departures = parse_utc_times(frame, "departure", shown)
    energy = parse_numbers(frame, "energy_requested_kwh", shown)
    power = parse_numbers(frame, "max_power_kw", shown)
    return [
        CsvSession(
            line=line_of(row),
            session_id=str(frame["session_id"].iloc[row]).strip(),
            station_id=str(frame["station_id"].iloc[row]).strip(),
            arrival=arrivals[row].to_pydatetime().astimezone(UTC),
            departure=departures[row].to_pydatetime().astimezone(UTC),
            energy_requested_kwh=float(energy.iloc[row]),
            max_power_kw=float(power.iloc[row]),
        )
        for row in range(len(frame))
    ]


def within_horizon(rows: list[CsvSession], grid: TimeGrid) -> list[CsvSession]:
    """Rows plugged in for some part of ``[grid.start, grid.end)``; the planner sees no others."""
    return [r for r in rows if r.departure > grid.start and r.arrival < grid.end]
