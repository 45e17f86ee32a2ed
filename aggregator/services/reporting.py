"""Use case: what the fleet reports to the utility, computed from stored telemetry.

Per site, from the chargers' readings of the last ``max_age``:

- power: the sum over the site's chargers of each charger's latest ``power_kw`` (signed,
  positive = charging); a charger with no reading within ``max_age`` counts 0 kW;
- online: whether any charger of the site reported within ``max_age``;
- plugged: how many chargers' latest reading within ``max_age`` says a vehicle is plugged in.

The pure functions take what ``Repository.telemetry(since, until, site_id)`` returns;
``TelemetryReports`` runs that query (off the event loop) at the moment a report is sampled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.domain import Telemetry
from aggregator.ports import Clock, Repository

DEFAULT_MAX_AGE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SiteReading:
    """One site's state at ``at``, as reported to the VTN."""

    site_id: str
    at: datetime
    power_kw: float  # sum of the chargers' latest power, signed (positive = charging)
    online: bool  # any charger reported within max_age
    plugged: int  # chargers whose latest fresh reading has a vehicle plugged in
    chargers: int  # chargers with a fresh reading


def latest_per_charger(
    telemetry: Iterable[Telemetry], site_id: str, now: datetime, max_age: timedelta
) -> dict[str, Telemetry]:
    """Each charger's latest reading of ``site_id`` with ``now - max_age <= ts <= now``.

    Readings of other sites, older ones and ones stamped after ``now`` are ignored. Of two
    readings with the same time, the later one in ``telemetry`` wins (the store's order).
    """
    if max_age < timedelta(0):
        raise ValueError(f"max_age must not be negative, got {max_age}")
    oldest = now - max_age
    latest: dict[str, Telemetry] = {}
    for reading in telemetry:
        if reading.site_id != site_id or not oldest <= reading.ts <= now:
            continue
        known = latest.get(reading.charger_id)
        if known is None or reading.ts >= known.ts:
            latest[reading.charger_id] = reading
    return latest


def site_reading(
    telemetry: Iterable[Telemetry], site_id: str, now: datetime, max_age: timedelta
) -> SiteReading:
    """The site's aggregate power, online flag and plugged-in count at ``now``."""
    latest = latest_per_charger(telemetry, site_id, now, max_age)
    return SiteReading(
        site_id=site_id,
        at=now,
        power_kw=float(sum(t.power_kw for t in latest.values())),
        online=bool(latest),
        plugged=sum(1 for t in latest.values() if t.plugged),
        chargers=len(latest),
    )


def site_power_kw(
    telemetry: Iterable[Telemetry], site_id: str, now: datetime, max_age: timedelta
) -> float:
    """Sum over the site's chargers of their latest power within ``max_age`` (else 0). [kW]"""
    return site_reading(telemetry, site_id, now, max_age).power_kw


class TelemetryReports:
    """Report values of a site, read from the repository when asked (one query per call).

    The methods are coroutines for the VEN's report callbacks: the query runs in a thread so a
    slow store never blocks the event loop that also polls the VTN.
    """

    def __init__(
        self, repo: Repository, clock: Clock, max_age: timedelta = DEFAULT_MAX_AGE
    ) -> None:
        if max_age <= timedelta(0):
            raise ValueError(f"max_age must be positive, got {max_age}")
        self.repo = repo
        self.clock = clock
        self.max_age = max_age

    def reading(self, site_id: str) -> SiteReading:
        now = self.clock.now()
        # until is exclusive in the store; a reading stamped exactly now counts.
        rows = self.repo.telemetry(
            now - self.max_age, now + timedelta(microseconds=1), site_id=site_id
        )
        return site_reading(rows, site_id, now, self.max_age)

    async def power_kw(self, site_id: str) -> float:
        return (await asyncio.to_thread(self.reading, site_id)).power_kw

    async def online(self, site_id: str) -> float:
        return 1.0 if (await asyncio.to_thread(self.reading, site_id)).online else 0.0

    async def plugged(self, site_id: str) -> float:
        return float((await asyncio.to_thread(self.reading, site_id)).plugged)
