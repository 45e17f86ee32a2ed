"""Wire <-> domain, no I/O: capacity forecasts become grid-event caps, a plan that needs more
becomes an adjust request, stored telemetry becomes group energy measurements."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from aggregator.domain import GridEvent, Plan, Telemetry

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
# Step-hold integration never carries one reading further than this (a charger gone quiet).
MAX_HOLD = timedelta(minutes=5)
# Planned import above the cap by more than this is "needs more" (solver round-off is below).
TOLERANCE_KW = 0.05


def event_prefix(group_id: str) -> str:
    return f"{EVENT_PREFIX}/{group_id}/"


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
    voltage_v: float,
    phases: int,
) -> list[GridEvent]:
    """One cap grid event per block (``oscp/{group_id}/{i}``) on the group's sites.

    Overlapping blocks (one per phase, say) are separate caps on the same sites, so the
    tightest holds."""
    sites = frozenset(site_ids)
    return [
        GridEvent(
            f"{event_prefix(group_id)}{i}",
            b.start_time.astimezone(UTC),
            b.end_time.astimezone(UTC),
            sites,
            cap_kw=block_kw(b, voltage_v=voltage_v, phases=phases),
        )
        for i, b in enumerate(blocks)
    ]


def needed_capacity(plan: Plan, group_id: str) -> list[ForecastedBlock]:
    """Blocks (one per plan slot, kW, phase ALL) where the fleet needs more than the forecast.

    The rule (docs/oscp.md): caps are soft in the planner, ranked below departure targets,
    so a plan that cannot meet a departure within the capacity exceeds the cap. Every slot
    where the plan's import over the group's sites exceeds an OSCP cap by more than
    ``TOLERANCE_KW`` asks for the planned import. A heuristic plan keeps caps and leaves a
    shortfall instead: if a departure falls short naming an OSCP cap of the group, the slots
    where that cap binds ask for the cap plus the shortfall spread evenly over them.
    """
    prefix = event_prefix(group_id)
    grid = plan.grid
    want: dict[int, float] = {}
    ours = [r for r in plan.events if r.event_id.startswith(prefix)]
    for r in ours:
        for slot, cap, planned in zip(r.slots, r.cap_kw, r.planned_import_kw, strict=True):
            if planned > cap + TOLERANCE_KW:
                want[slot] = max(want.get(slot, 0.0), planned)
    short = sum(
        o.shortfall_kwh
        for o in plan.outcomes
        if o.shortfall_kwh > 0 and o.reason and f"grid event {prefix}" in o.reason
    )
    if short > 0 and not want:
        binding = [
            (slot, cap)
            for r in ours
            for slot, cap, planned in zip(r.slots, r.cap_kw, r.planned_import_kw, strict=True)
            if planned >= cap - TOLERANCE_KW
        ]
        if binding:
            extra = short / (len(binding) * grid.step_hours)
            for slot, cap in binding:
                want[slot] = max(want.get(slot, 0.0), cap + extra)
    return [
        ForecastedBlock(
            capacity=math.ceil(kw * 10) / 10,
            phase=Phase.ALL,
            unit=CapacityUnit.KW,
            start_time=grid.slot_start(slot),
            end_time=grid.slot_start(slot) + grid.step,
        )
        for slot, kw in sorted(want.items())
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


APPLIED_TYPES = frozenset({CapacityForecastType.CONSUMPTION})
