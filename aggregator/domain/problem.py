"""The planning problem: a fleet, its context (prices, events) and the time grid.

Cross-entity rules (known ids, no overlapping sessions on a charger or vehicle, series that fit
the grid) are checked here, so every planner can trust what it is given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal, TypeVar

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


# Site limits over time (a DSO's capacity, OSCP) are stored as grid events with these ids;
# they are no demand-response caps: the runtime turns them into per-slot site limits.
SiteLimitKind = Literal["import", "export"]
SITE_LIMIT_PREFIX = "limit/"


def site_limit_event_id(kind: SiteLimitKind, name: str) -> str:
    """The event id of a site limit: ``limit/{import|export}/{name}``."""
    return f"{SITE_LIMIT_PREFIX}{kind}/{name}"


def site_limit_kind(event_id: str) -> SiteLimitKind | None:
    """``import``/``export`` for a site-limit event id, ``None`` for any other event."""
    if event_id.startswith(SITE_LIMIT_PREFIX + "import/"):
        return "import"
    if event_id.startswith(SITE_LIMIT_PREFIX + "export/"):
        return "export"
    return None


def apply_site_limits(
    grid: TimeGrid, sites: Sequence[Site], limits: Iterable[GridEvent]
) -> tuple[Site, ...]:
    """Sites with per-slot limits from site-limit events (see ``site_limit_kind``).

    An event's ``cap_kw`` limits the aggregate import (or export) of its sites (all sites when
    it names none) in every slot its window touches. It is shared among those sites in
    proportion to their static limits (equally if those are all zero), so the per-site limits
    add up to it. Overlapping events: the tightest holds. Empty series where nothing applies.
    """
    n = grid.n_slots
    by_id = {s.site_id: s for s in sites}
    slot_lim: dict[tuple[str, SiteLimitKind], list[float]] = {}
    for event in limits:
        kind = site_limit_kind(event.event_id)
        if kind is None or event.cap_kw is None:
            continue
        ids = [s for s in by_id if not event.site_ids or s in event.site_ids]
        if not ids:
            continue
        static = [
            by_id[s].import_limit_kw if kind == "import" else by_id[s].export_limit_kw for s in ids
        ]
        total = sum(static)
        shares = [x / total for x in static] if total > 0 else [1 / len(ids)] * len(ids)
        lo = max(0, math.floor(grid.position(event.start)))
        hi = min(n, math.ceil(grid.position(event.end)))
        slots = [t for t in range(lo, hi) if grid.overlap_fraction(t, event.start, event.end) > 0]
        cap = max(0.0, event.cap_kw)
        for sid, share in zip(ids, shares, strict=True):
            series = slot_lim.setdefault((sid, kind), [math.inf] * n)
            for t in slots:
                series[t] = min(series[t], cap * share)

    def series_of(site: Site, kind: SiteLimitKind) -> tuple[float, ...]:
        values = slot_lim.get((site.site_id, kind))
        if values is None:
            return ()
        static = site.import_limit_kw if kind == "import" else site.export_limit_kw
        return tuple(min(v, static) for v in values)

    return tuple(
        replace(
            s,
            import_limit_kw_slots=series_of(s, "import"),
            export_limit_kw_slots=series_of(s, "export"),
        )
        for s in sites
    )
