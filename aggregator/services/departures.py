"""Use case: weekly departures become the vehicle's next departure constraint.

A vehicle with a weekly rule and no constraint in the future gets one for the rule's next
departure. A one-off constraint set through the API wins until it has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.domain import DepartureConstraint, RecurringDeparture
from aggregator.ports import Repository


def apply_recurring(
    repo: Repository, rules: Sequence[RecurringDeparture], now: datetime
) -> list[DepartureConstraint]:
    """Store the next departure of every rule whose vehicle has none ahead; return them."""
    ahead = {c.vehicle_id for c in repo.constraints() if c.departure_at > now}
    made = []
    for rule in rules:
        if rule.vehicle_id in ahead:
            continue
        constraint = DepartureConstraint(
            rule.vehicle_id,
            rule.next_after(now),
            target_soc=rule.target_soc,
            energy_kwh=rule.energy_kwh,
            min_soc=rule.min_soc,
        )
        repo.save_constraint(constraint)
        made.append(constraint)
    return made
