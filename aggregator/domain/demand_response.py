"""Demand-response events as a utility sends them, translated into what the planner can use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aggregator.domain._checks import require_finite, require_utc
from aggregator.domain.errors import ValidationError
from aggregator.domain.signals import GridEvent

# OpenADR eventStatus values, plus what we decide about an event.
DrStatus = Literal["none", "far", "near", "active", "completed", "cancelled"]
OptChoice = Literal["optIn", "optOut"]


@dataclass(frozen=True, slots=True)
class PriceSignal:
    """A price over ``[start, end)``: replaces the import price, or is added to it. [per MWh]"""

    start: datetime
    end: datetime
    price_per_mwh: float
    mode: Literal["replace", "add"] = "replace"

    def __post_init__(self) -> None:
        require_utc("price signal", "start", self.start)
        require_utc("price signal", "end", self.end)
        if self.end <= self.start:
            raise ValidationError("price signal", "end", "must be after start")
        require_finite("price signal", "price_per_mwh", self.price_per_mwh)


@dataclass(frozen=True, slots=True)
class DrEvent:
    """One utility event, translated.

    ``limits`` are the event's intervals that ask for a cap or a shed, as planner grid events
    (ids ``{event_id}/{interval}``); ``prices`` its price intervals; ``unsupported`` names the
    signals we cannot honour (the event is then opted out, with that reason).
    """

    event_id: str
    modification_number: int
    status: DrStatus
    start: datetime
    end: datetime
    site_ids: frozenset[str]
    limits: tuple[GridEvent, ...] = ()
    prices: tuple[PriceSignal, ...] = ()
    unsupported: tuple[str, ...] = ()
    program: str | None = None

    def __post_init__(self) -> None:
        entity = f"event {self.event_id}"
        if not self.event_id:
            raise ValidationError("event", "event_id", "must not be empty")
        if self.modification_number < 0:
            raise ValidationError(entity, "modification_number", "must be >= 0")
        require_utc(entity, "start", self.start)
        require_utc(entity, "end", self.end)
        if self.end <= self.start:
            raise ValidationError(entity, "end", "must be after start")


DrState = Literal["active", "cancelled", "completed", "opted_out"]


@dataclass(frozen=True, slots=True)
class DrEventRecord:
    """A utility event as we hold it: the latest version accepted, and what we answered."""

    event: DrEvent
    opt: OptChoice
    reason: str
    state: DrState
    received_at: datetime

    def __post_init__(self) -> None:
        require_utc(f"event {self.event.event_id}", "received_at", self.received_at)
