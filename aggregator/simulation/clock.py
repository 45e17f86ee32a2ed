"""A scaled clock: simulated time that runs ``speed`` times faster than the wall clock.

It implements the ``Clock`` port, so the aggregator and the site simulator can share one
instance in the demo and agree on what "now" is.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aggregator.ports import Clock


class SimClock(Clock, Protocol):
    """A ``Clock`` that can also wait, in simulated seconds."""

    async def sleep_sim(self, seconds: float) -> None: ...


class ScaledClock:
    """``now() = start + speed * (wall time elapsed since creation)``.

    With ``start=None`` the simulated time starts at the real UTC time of creation; with
    ``start=None`` and ``speed=1`` ``now()`` simply is the real UTC time. Elapsed wall time is
    measured on the monotonic clock, so simulated time never runs backwards.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed: must be a finite number > 0, got {speed!r}")
        if start is not None and (start.tzinfo is None or start.utcoffset() is None):
            raise ValueError(f"start: must be timezone-aware, got {start!r}")
        self.speed = float(speed)
        self._real_time = start is None and self.speed == 1.0
        self.start = datetime.now(UTC) if start is None else start.astimezone(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._real_time:
            return datetime.now(UTC)
        elapsed_s = time.monotonic() - self._t0
        return self.start + timedelta(seconds=elapsed_s * self.speed)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Wall-clock duration of ``sim_seconds`` of simulated time. [s]"""
        return sim_seconds / self.speed

    async def sleep_sim(self, seconds: float) -> None:
        """Sleep for ``seconds`` of simulated time (``seconds / speed`` of wall time)."""
        await asyncio.sleep(max(0.0, self.wall_seconds(seconds)))
