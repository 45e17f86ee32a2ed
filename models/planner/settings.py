"""Planner settings: solver limits and the penalty ladder of the soft constraints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """Knobs of the fleet LP.

    The penalties form a ladder far above any market price (day-ahead caps are a few thousand
    per MWh): breaking a site's grid connection is worst, then leaving a vehicle short at
    departure, then missing a grid-event commitment. Units: currency per MWh of violation.
    """

    time_limit_s: float = 60.0
    site_limit_penalty_per_mwh: float = 1_000_000.0
    shortfall_penalty_per_mwh: float = 100_000.0
    event_penalty_per_mwh: float = 20_000.0
    # A tie-breaker far below any price: among equal-cost plans, charge earlier.
    earliness_per_mwh_per_slot: float = 1e-3
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
