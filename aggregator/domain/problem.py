"""The planning problem: a fleet, its context (prices, events) and the time grid.

Cross-entity rules (known ids, no overlapping sessions on a charger or vehicle, series that fit
the grid) are checked here, so every planner can trust what it is given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TypeVar

from aggregator.domain._checks import require_non_negative
from aggregator.domain.assets import Charger, Site, SiteBattery, Vehicle
from aggregator.domain.errors import ValidationError
from aggregator.domain.sessions import Session
from aggregator.domain.signals import GridEvent, Prices
from aggregator.domain.timegrid import TimeGrid

T = TypeVar("T")


def _index_unique(kind: str, items: Iterable[T], key: str) -> dict[str, T]:
    out: dict[str, T] = {}
    for item in items:
        ident = getattr(item, key)
        if ident in out:
            raise ValidationError(f"{kind} {ident}", key, "is not unique")
        out[ident] = item
    return out


@dataclass(frozen=True)
class FleetProblem:
    """Everything a planner needs; nothing it must fetch."""

    grid: TimeGrid
    sites: tuple[Site, ...]
    chargers: tuple[Charger, ...]
    vehicles: tuple[Vehicle, ...]
    sessions: tuple[Session, ...]
    prices: Prices
    events: tuple[GridEvent, ...] = ()
    batteries: tuple[SiteBattery, ...] = ()
    degradation_cost_per_mwh: float = 0.0
    site_by_id: dict[str, Site] = field(init=False, repr=False, compare=False)
    charger_by_id: dict[str, Charger] = field(init=False, repr=False, compare=False)
    vehicle_by_id: dict[str, Vehicle] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.grid.n_slots
        sites = _index_unique("site", self.sites, "site_id")
        chargers = _index_unique("charger", self.chargers, "charger_id")
        vehicles = _index_unique("vehicle", self.vehicles, "vehicle_id")
        _index_unique("session", self.sessions, "session_id")
        _index_unique("event", self.events, "event_id")
        _index_unique("battery", self.batteries, "site_id")
        require_non_negative("problem", "degradation_cost_per_mwh", self.degradation_cost_per_mwh)
        if len(self.prices.import_per_mwh) != n:
            raise ValidationError(
                "prices",
                "import_per_mwh",
                f"has {len(self.prices.import_per_mwh)} slots, grid has {n}",
            )
        for site in self.sites:
            for name in ("base_load_kw", "pv_kw", "import_limit_kw_slots", "export_limit_kw_slots"):
                series = getattr(site, name)
                if series and len(series) != n:
                    raise ValidationError(
                        f"site {site.site_id}", name, f"has {len(series)} slots, grid has {n}"
                    )
        for charger in self.chargers:
            if charger.site_id not in sites:
                raise ValidationError(
                    f"charger {charger.charger_id}", "site_id", f"unknown site {charger.site_id!r}"
                )
        for battery in self.batteries:
            if battery.site_id not in sites:
                raise ValidationError(
                    f"battery of site {battery.site_id}", "site_id", "unknown site"
                )
        for event in self.events:
            for site_id in sorted(event.site_ids):
                if site_id not in sites:
                    raise ValidationError(
                        f"event {event.event_id}", "site_ids", f"unknown site {site_id!r}"
                    )
        self._check_sessions(chargers, vehicles)
        object.__setattr__(self, "site_by_id", sites)
        object.__setattr__(self, "charger_by_id", chargers)
        object.__setattr__(self, "vehicle_by_id", vehicles)

    def _check_sessions(self, chargers: dict[str, Charger], vehicles: dict[str, Vehicle]) -> None:
        by_charger: dict[str, list[Session]] = defaultdict(list)
        by_vehicle: dict[str, list[Session]] = defaultdict(list)
        for s in self.sessions:
            entity = f"session {s.session_id}"
            if s.charger_id not in chargers:
                raise ValidationError(entity, "charger_id", f"unknown charger {s.charger_id!r}")
            if s.vehicle_id not in vehicles:
                raise ValidationError(entity, "vehicle_id", f"unknown vehicle {s.vehicle_id!r}")
            if s.departure <= self.grid.start or s.arrival >= self.grid.end:
                raise ValidationError(entity, "arrival", "lies outside the planning horizon")
            by_charger[s.charger_id].append(s)
            by_vehicle[s.vehicle_id].append(s)
        for what, groups in (("charger", by_charger), ("vehicle", by_vehicle)):
            for ident, group in groups.items():
                group.sort(key=lambda s: s.arrival)
                for before, after in pairwise(group):
                    if after.arrival < before.departure:
                        raise ValidationError(
                            f"session {after.session_id}",
                            "arrival",
                            f"overlaps session {before.session_id} on {what} {ident}",
                        )

    def site_of(self, session: Session) -> str:
        return self.charger_by_id[session.charger_id].site_id

    def event_sites(self, event: GridEvent) -> tuple[str, ...]:
        """Sites an event applies to, in problem order (all sites when the event names none)."""
        if not event.site_ids:
            return tuple(s.site_id for s in self.sites)
        return tuple(s.site_id for s in self.sites if s.site_id in event.site_ids)
