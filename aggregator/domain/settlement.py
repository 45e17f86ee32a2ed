"""Settled demand-response events: baselines, metered power, delivery and compliance.

The maths that fills these lives in ``models/settlement`` (docs/settlement.md); the use case
that captures baselines and settles events after they end in ``aggregator/services``.
Units: power [kW] (positive = import), energy [kWh], compliance a fraction in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from aggregator.domain._checks import require_utc
from aggregator.domain.errors import ValidationError
from aggregator.domain.timegrid import TimeGrid

BaselineKind = Literal["plan", "meter"]
SettlementStatus = Literal["settled", "failed"]


@dataclass(frozen=True)
class MeterBaseline:
    """An X-of-Y baseline: per interval [kW], and the days it came from (most recent first)."""

    baseline_kw: tuple[float, ...]
    unadjusted_kw: tuple[float, ...]
    days: tuple[date, ...]
    eligible_days: tuple[date, ...]
    adjustment_kw: float = 0.0
    skipped: Mapping[date, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SettlementInterval:
    """One event interval, settled against the chosen baseline. [kW]; compliance in [0, 1]."""

    start: datetime
    end: datetime
    cap_kw: float | None
    shed_kw: float | None
    baseline_kw: float
    metered_kw: float
    committed_kw: float
    delivered_kw: float
    compliance: float
    cap_met: bool | None


@dataclass(frozen=True, slots=True)
class BaselineFigures:
    """The same settlement against one baseline, per interval [kW] and in total [kWh]."""

    kind: BaselineKind
    baseline_kw: tuple[float, ...]
    committed_kw: tuple[float, ...]
    delivered_kw: tuple[float, ...]
    compliance: tuple[float, ...]
    delivered_kwh: float
    committed_kwh: float
    total_compliance: float


@dataclass(frozen=True)
class Settlement:
    """An event settled for a set of sites against ``baseline``; ``alternative`` compares.

    ``compliance`` is a fraction in [0, 1]; ``caps_met`` is None when no interval is a cap.
    ``meter_baselines`` holds each site's X-of-Y result when the meter baseline was computed.
    """

    event_id: str
    site_ids: tuple[str, ...]
    baseline: BaselineKind
    intervals: tuple[SettlementInterval, ...]
    delivered_kwh: float
    committed_kwh: float
    compliance: float
    caps_met: bool | None
    alternative: BaselineFigures | None = None
    meter_baselines: Mapping[str, MeterBaseline] = field(default_factory=dict)

    @property
    def compliance_pct(self) -> float:
        return 100.0 * self.compliance


@dataclass(frozen=True, slots=True)
class SiteSettlement:
    """One site's share of a settled event, per event interval [kW] and in total [kWh].

    The commitment (cap or shed) is the event's, over all its sites together, so compliance
    is the event's (``Settlement.compliance``); per site there is what it did.
    """

    site_id: str
    baseline_kw: tuple[float, ...]
    metered_kw: tuple[float, ...]
    delivered_kw: tuple[float, ...]
    delivered_kwh: float


@dataclass(frozen=True)
class EventBaseline:
    """The plan the fleet would follow without an event: site net power per slot. [kW]

    Made without the event's limits (other events stay) when the event is accepted, and made
    again once the event starts, when the vehicles present are known.
    """

    event_id: str
    modification_number: int
    captured_at: datetime
    grid: TimeGrid
    site_power_kw: Mapping[str, tuple[float, ...]]

    def __post_init__(self) -> None:
        entity = f"baseline of event {self.event_id}"
        require_utc(entity, "captured_at", self.captured_at)
        for site, values in self.site_power_kw.items():
            if len(values) != self.grid.n_slots:
                raise ValidationError(
                    entity,
                    "site_power_kw",
                    f"site {site}: {len(values)} values for {self.grid.n_slots} slots",
                )


@dataclass(frozen=True)
class SettlementRecord:
    """The outcome of settling one event: the figures, or why they could not be made."""

    event_id: str
    modification_number: int
    settled_at: datetime
    status: SettlementStatus
    reason: str
    settlement: Settlement | None = None
    sites: tuple[SiteSettlement, ...] = ()

    def __post_init__(self) -> None:
        require_utc(f"settlement of event {self.event_id}", "settled_at", self.settled_at)
        if (self.status == "settled") != (self.settlement is not None):
            raise ValidationError(
                f"settlement of event {self.event_id}",
                "settlement",
                "is required when settled, and only then",
            )
