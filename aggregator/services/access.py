"""Use case: who may see and change what, by role and granted fleets (tenant isolation).

* ``operator``: everything.
* ``fleet_manager``: the vehicles of the fleets it is granted, their departure constraints
  and schedules; nothing of another fleet (answered as if it did not exist), no site data.
* ``trader``: read-only plans, envelopes, forecasts, events and settlements; no vehicles.
"""

from __future__ import annotations

from collections.abc import Mapping

from aggregator.domain import Account

# What each role may do with each kind of resource.
_SCOPES: Mapping[str, frozenset[str]] = {
    "operator": frozenset(
        {
            "assets:read",
            "assets:write",
            "vehicles:read",
            "vehicles:write",
            "departures:write",
            "plans:read",
            "grid:read",
            "telemetry:read",
            "accounts:write",
        }
    ),
    "fleet_manager": frozenset({"vehicles:read", "departures:write"}),
    "trader": frozenset({"assets:read", "plans:read", "grid:read", "telemetry:read"}),
}


def allowed(account: Account, scope: str) -> bool:
    return scope in _SCOPES[account.role]


def sees_vehicle(account: Account, vehicle_fleet: str | None) -> bool:
    """May ``account`` see a vehicle of ``vehicle_fleet`` (None: in no fleet)?"""
    if account.role == "operator":
        return True
    if account.role == "fleet_manager":
        return vehicle_fleet is not None and vehicle_fleet in account.fleet_ids
    return False
