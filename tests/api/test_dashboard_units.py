"""The dashboard snapshot's arithmetic: history buckets and site power from telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from aggregator.api.dashboard import (
    MAX_POINTS,
    bucket_ends,
    chargers_power,
    forecast_at,
    latest_setpoints,
)
from aggregator.domain import Setpoint, Telemetry, TimeGrid

T0 = datetime(2024, 5, 14, 12, tzinfo=UTC)
MIN = timedelta(minutes=1)


def reading(charger: str, minutes: float, power: float) -> Telemetry:
    return Telemetry("depot", charger, T0 + minutes * MIN, power, True)


def test_buckets_are_aligned_end_at_now_and_stay_put_between_polls() -> None:
    now = T0 + timedelta(seconds=17.5)
    ends = bucket_ends(now - 120 * MIN, now)
    assert ends[-1] == now and len(ends) <= MAX_POINTS + 1
    assert all(e.timestamp() % 30 == 0 for e in ends[:-1])  # 2 h / 240 points = 30 s
    assert ends == sorted(ends) and ends[0] > now - 120 * MIN
    later = bucket_ends(now + timedelta(seconds=3) - 120 * MIN, now + timedelta(seconds=3))
    assert set(ends[1:-1]) <= set(later)
    # A short window never gets buckets under 10 s.
    short = bucket_ends(now - MIN, now)
    assert all((b - a) >= timedelta(seconds=10) for a, b in pairwise(short[:-1]))


def test_site_power_sums_each_chargers_latest_fresh_reading_and_leaves_gaps() -> None:
    readings = [
        reading("c0", 0, 5.0),
        reading("c1", 1, 3.0),
        reading("c0", 2, 7.0),
        reading("c1", 20, -2.0),  # V2G: discharging counts negative
    ]
    at = [T0 - MIN, T0, T0 + 1.5 * MIN, T0 + 2 * MIN, T0 + 6.5 * MIN, T0 + 12 * MIN, T0 + 20 * MIN]
    assert chargers_power(readings, at, max_age=5 * MIN) == [
        None,  # nothing yet
        5.0,
        8.0,
        10.0,  # c0's newer reading replaces its older one
        7.0,  # c1's reading is older than 5 minutes: it counts no more
        None,  # silence: a gap, not zero
        -2.0,
    ]


def test_forecast_and_latest_setpoints() -> None:
    grid = TimeGrid(T0, 15 * MIN, 4)
    profile = ((2.0, 3.0, 4.0, 5.0), (0.0, 1.0, 0.0, 0.0))
    assert forecast_at(grid, profile, T0 + 16 * MIN) == 2.0
    assert forecast_at(grid, profile, T0 - MIN) == 2.0  # before: the first slot
    assert forecast_at(grid, profile, T0 + 2 * 60 * MIN) == 5.0  # after: the last slot
    assert forecast_at(grid, ((), ()), T0) == 0.0

    def sp(charger: str, seq: int) -> Setpoint:
        return Setpoint(charger, "depot", float(seq), T0, T0 + MIN, "p", seq)

    held = latest_setpoints([sp("c0", 3), sp("c1", 2), sp("c0", 5), sp("c0", 4)])
    assert {c: s.seq for c, s in held.items()} == {"c0": 5, "c1": 2}
