"""The scaled clock: simulated time runs ``speed`` times the wall clock, from ``start``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.ports import Clock
from aggregator.simulation.clock import ScaledClock

START = datetime(2019, 3, 5, 8, tzinfo=UTC)


def test_scaled_clock_implements_the_clock_port() -> None:
    clock: Clock = ScaledClock(START)
    assert clock.now().tzinfo is not None


def test_time_runs_speed_times_the_wall_clock_from_start() -> None:
    clock = ScaledClock(START, speed=600.0)
    first = clock.now()
    time.sleep(0.05)
    elapsed = clock.now() - START
    assert START <= first < START + timedelta(seconds=10)
    # 0.05 s of wall time is 30 s of simulated time (generous upper bound for a busy machine).
    assert timedelta(seconds=30) <= elapsed < timedelta(seconds=300)


def test_no_start_and_speed_one_is_real_utc_now() -> None:
    clock = ScaledClock()
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    assert clock.now().utcoffset() == timedelta(0)


def test_start_with_an_offset_is_converted_to_utc() -> None:
    pst = timezone(timedelta(hours=-8))
    clock = ScaledClock(datetime(2019, 3, 5, tzinfo=pst), speed=1.0)
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now() - datetime(2019, 3, 5, 8, tzinfo=UTC) < timedelta(seconds=1)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan"), float("inf")])
def test_speed_must_be_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        ScaledClock(START, speed=speed)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="start"):
        ScaledClock(datetime(2019, 3, 5), speed=1.0)


def test_sleep_sim_sleeps_simulated_seconds_divided_by_speed() -> None:
    clock = ScaledClock(START, speed=100.0)
    t0 = time.monotonic()
    asyncio.run(clock.sleep_sim(10.0))
    wall = time.monotonic() - t0
    assert 0.09 <= wall < 1.0
    assert clock.now() - START >= timedelta(seconds=10)
