"""Wire <-> domain, no I/O: capacity forecasts become site-limit events (hard per-slot import
or export limits of the group's sites in the plan), a plan that needs more becomes an adjust
request, stored telemetry becomes group energy measurements."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from aggregator.domain import GridEvent, Plan, Telemetry
from aggregator.domain.problem import SiteLimitKind, site_limit_event_id

from .messages import (
    CapacityForecastType,
    CapacityUnit,
    EnergyFlowDirection,
    EnergyMeasurement,
    EnergyMeasurementUnit,
    EnergyType,
    ForecastedBlock,
    Phase,
)

EVENT_PREFIX = "oscp"
# What each applied forecast type limits. GENERATION is the capacity to feed in: an export
# limit. FALLBACK_* apply offline only and OPTIMUM is advice: not applied.
APPLIED_TYPES: dict[CapacityForecastType, SiteLimitKind] = {
    CapacityForecastType.CONSUMPTION: "import",
    CapacityForecastType.GENERATION: "export",
}
# Step-hold integration never carries one reading further than this (a charger gone quiet).
MAX_HOLD = timedelta(minutes=5)
# Planned import above the cap by more than this is "needs more" (solver round-off is below).
TOLERANCE_KW = 0.05


def legacy_prefix(group_id: str) -> str:
    """Ids of the soft cap events earlier versions stored (cancelled on the next forecast)."""
    return f"{EVENT_PREFIX}/{group_id}/"


def event_prefix(group_id: str, kind: SiteLimitKind = "import") -> str:
    """Ids of the group's stored capacity blocks of one kind: ``limit/{kind}/oscp/{group}/``."""
    return site_limit_event_id(kind, f"{EVENT_PREFIX}/{group_id}/")


def block_kw(block: ForecastedBlock, *, voltage_v: float, phases: int) -> float:
    """A block's capacity as the group's total power [kW].

    kW/W with phase ALL (or UNKNOWN) are the group total; on one phase they are that phase's
    share of a balanced load, so the total is ``phases`` times it. Amperes are per phase
    (on every phase for ALL): current x phase voltage x ``phases``. Energy units (Wh/kWh) are
    the block's energy, taken as its average power.
    """
    value = block.capacity
    per_phase = block.phase not in (Phase.ALL, Phase.UNKNOWN)
    hours = (block.end_time - block.start_time).total_seconds() / 3600
    match block.unit:
        case CapacityUnit.A:
            return value * voltage_v * phases / 1000
        case CapacityUnit.W:
            kw = value / 1000
        case CapacityUnit.KW:
            kw = value
        case CapacityUnit.WH:
            kw = value / 1000 / hours
        case CapacityUnit.KWH:
            kw = value / hours
    return kw * phases if per_phase else kw


def forecast_events(
    group_id: str,
    blocks: Sequence[ForecastedBlock],
    site_ids: Iterable[str],
    *,
    kind: SiteLimitKind = "import",
    voltage_v: float,
    phases: int,
) -> list[GridEvent]:
    """One site-limit event per block (``limit/{kind}/oscp/{group_id}/{i}``) on the group's
    sites: ``cap_kw`` is the group's import (or export) capacity over the block.

    Overlapping blocks (one per phase, say) are separate limits on the same sites, so the
    tightest holds."""
    sites = frozenset(site_ids)
    return [
        GridEvent(
            f"{event_prefix(group_id, kind)}{i}",
            b.start_time.astimezone(UTC),
            b.end_time.astimezone(UTC),
            sites,
            cap_kw=block_kw(b, voltage_v=voltage_v, phases=phases),
        )
        for i, b in enumerate(blocks)
    ]


def needed_capacity(
    plan: Plan, site_ids: Sequence[str], limits: Iterable[GridEvent]
) -> list[ForecastedBlock]:
    """Blocks (one per plan slot, kW, phase ALL) where the fleet needs more than the forecast.

    The rule (docs/oscp.md): the forecast is a hard import limit of the group's sites
    (``limits``: the group's active import blocks), so no plan exceeds it; a departure that
    cannot be met within it falls short with a reason naming the import limit of one of
    ``site_ids``. Then every slot where the group's planned import is at the forecast (within
    ``TOLERANCE_KW``) asks for the forecast plus the shortfall spread evenly over those slots.
    """
    grid = plan.grid
    sites = [s for s in site_ids if s in plan.site_power_kw]
    phrases = tuple(f"site {s} import limit" for s in sites)
    short = sum(
        o.shortfall_kwh
        for o in plan.outcomes
        if o.shortfall_kwh > 0 and o.reason and any(p in o.reason for p in phrases)
    )
    if short <= 0:
        return []
    cap = [math.inf] * grid.n_slots
    for e in limits:
        if e.cap_kw is None:
            continue
        for t in range(grid.n_slots):
            if grid.overlap_fraction(t, e.start, e.end) > 0:
                cap[t] = min(cap[t], e.cap_kw)
    planned = [sum(plan.site_power_kw[s][t] for s in sites) for t in range(grid.n_slots)]
    binding = [
        (t, c) for t, c in enumerate(cap) if math.isfinite(c) and planned[t] >= c - TOLERANCE_KW
    ]
    if not binding:
        return []
    extra = short / (len(binding) * grid.step_hours)
    return [
        ForecastedBlock(
            capacity=math.ceil((c + extra) * 10) / 10,
            phase=Phase.ALL,
            unit=CapacityUnit.KW,
            start_time=grid.slot_start(t),
            end_time=grid.slot_start(t) + grid.step,
        )
        for t, c in binding
    ]


def energy_measurements(
    readings: Sequence[Telemetry], since: datetime, until: datetime
) -> list[EnergyMeasurement]:
    """Import and export energy [kWh] of the readings' chargers over ``[since, until)``.

    Each reading's power holds until the charger's next reading, ``until``, or ``MAX_HOLD``,
    whichever is first; readings before ``since`` count from ``since``."""
    by_charger: dict[str, list[Telemetry]] = defaultdict(list)
    for t in readings:
        by_charger[t.charger_id].append(t)
    imported = exported = 0.0
    for rows in by_charger.values():
        rows.sort(key=lambda t: t.ts)
        for k, t in enumerate(rows):
            nxt = rows[k + 1].ts if k + 1 < len(rows) else until
            begin, end = max(t.ts, since), min(nxt, until, t.ts + MAX_HOLD)
            if end <= begin:
                continue
            kwh = t.power_kw * (end - begin).total_seconds() / 3600
            if kwh >= 0:
                imported += kwh
            else:
                exported -= kwh
    return [
        EnergyMeasurement(
            value=round(value, 6),
            phase=Phase.ALL,
            unit=EnergyMeasurementUnit.KWH,
            direction=direction,
            energy_type=EnergyType.FLEXIBLE,
            initial_measure_time=since,
            last_measured_time=until,
        )
        for direction, value in (
            (EnergyFlowDirection.IMPORT, imported),
            (EnergyFlowDirection.EXPORT, exported),
        )
    ]
