"""What the API works with: the running service's stores, controller and runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.ports import (
    AccountStore,
    Clock,
    DrEventStore,
    EnvelopeCalculator,
    ForecastSource,
    Repository,
    SettlementStore,
)
from aggregator.runtime import AggregatorRuntime

# A readiness check: None when fine, else the reason it is not.
ReadyCheck = Callable[[], Awaitable[str | None]]


@dataclass
class ApiContext:
    repo: Repository
    accounts: AccountStore
    clock: Clock
    runtime: AggregatorRuntime
    forecasts: ForecastSource
    envelope: EnvelopeCalculator | None = None
    events: DrEventStore | None = None
    settlements: SettlementStore | None = None
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    # Per plan id, the envelope computed for it (computing one is an LP per slot bound).
    envelope_cache: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 1 << 20
