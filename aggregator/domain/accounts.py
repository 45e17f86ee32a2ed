"""Who may use the API: accounts with a role, and the fleets (groups of vehicles) they manage.

A *fleet* here is a tenant: the vehicles one fleet manager is responsible for. Sites and
chargers are shared infrastructure, run by the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.domain._checks import require_departure_need, require_utc
from aggregator.domain.errors import ValidationError

Role = Literal["operator", "fleet_manager", "trader"]
ROLES: tuple[Role, ...] = ("operator", "fleet_manager", "trader")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def require_id(entity: str, field_name: str, value: str) -> None:
    """Ids travel in URLs and MQTT topics: letters, digits and ``._:-``, at most 128."""
    if not _ID.match(value):
        raise ValidationError(
            entity,
            field_name,
            "must be 1-128 letters, digits or ._:- (not starting with one of ._:-)",
        )


@dataclass(frozen=True, slots=True)
class VehicleFleet:
    fleet_id: str
    name: str = ""

    def __post_init__(self) -> None:
        require_id("fleet", "fleet_id", self.fleet_id)


@dataclass(frozen=True, slots=True)
class Account:
    """An API user. ``fleet_ids`` are the fleets a ``fleet_manager`` may see and change."""

    account_id: str
    name: str
    role: Role
    created_at: datetime
    fleet_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        require_id("account", "account_id", self.account_id)
        entity = f"account {self.account_id}"
        if self.role not in ROLES:
            raise ValidationError(entity, "role", f"must be one of {', '.join(ROLES)}")
        require_utc(entity, "created_at", self.created_at)
        if self.role != "fleet_manager" and self.fleet_ids:
            raise ValidationError(entity, "fleet_ids", "only a fleet_manager is granted fleets")


@dataclass(frozen=True, slots=True)
class RecurringDeparture:
    """A weekly departure: on ``weekdays`` (0 = Monday) at local ``at`` in ``timezone``."""

    vehicle_id: str
    weekdays: frozenset[int]
    at: time
    timezone: str
    target_soc: float | None = None
    energy_kwh: float | None = None
    min_soc: float = 0.0

    def __post_init__(self) -> None:
        entity = f"recurring departure of vehicle {self.vehicle_id}"
        if not self.weekdays:
            raise ValidationError(entity, "weekdays", "must name at least one day")
        if not all(0 <= d <= 6 for d in self.weekdays):
            raise ValidationError(entity, "weekdays", "must be 0 (Monday) .. 6 (Sunday)")
        if self.at.tzinfo is not None:
            raise ValidationError(entity, "at", "is a local wall-clock time: no offset")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(entity, "timezone", f"unknown zone {self.timezone!r}") from None
        require_departure_need(entity, self.target_soc, self.energy_kwh, self.min_soc)

    def next_after(self, now: datetime) -> datetime:
        """The first departure strictly after ``now`` (UTC; local time keeps across DST)."""
        require_utc(f"recurring departure of vehicle {self.vehicle_id}", "now", now)
        zone = ZoneInfo(self.timezone)
        day = now.astimezone(zone).date()
        for offset in range(8):
            d = day + timedelta(days=offset)
            if d.weekday() not in self.weekdays:
                continue
            local = datetime.combine(d, self.at, tzinfo=zone)
            # A wall time that does not exist (DST gap) moves forward with the clock.
            at = local.astimezone(UTC)
            if at > now:
                return at
        raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover
