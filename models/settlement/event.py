"""Settle an ended event from its stored baseline plan and the sites' charger telemetry.

Implements the ``EventSettler`` port. Metered site power is the chargers' telemetry
(``site_power_from_telemetry``: 1-second bins over the event, 1-minute bins over the
history) plus the site's forecast base load minus PV: the same net power the planner limits,
so a cap is judged on what the plan was held to. The plan baseline is the stored plan made
without the event; the X-of-Y meter baseline is computed from the history before the event
when it is wanted and there is enough of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from aggregator.domain import (
    BaselineKind,
    DrEvent,
    EventBaseline,
    Settlement,
    SiteSettlement,
    Telemetry,
    TimeGrid,
    ValidationError,
)
from models.settlement.baseline import (
    InsufficientHistoryError,
    MeterBaselineConfig,
    plan_baseline_kw,
)
from models.settlement.series import MeterData, interval_means, to_samples
from models.settlement.settle import settle_event
from models.settlement.telemetry import site_power_from_telemetry


class SiteProfiles(Protocol):
    """Per site: (base load kW per slot, PV kW per slot) on a grid (a ``ForecastSource``)."""

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]: ...


@dataclass(frozen=True)
class SettlerConfig:
    baseline: BaselineKind = "plan"  # settled against; the other is reported beside it
    meter: MeterBaselineConfig = field(default_factory=MeterBaselineConfig)
    step: timedelta = timedelta(minutes=15)  # grid of the base-load forecast
    resolution: timedelta = timedelta(seconds=1)  # bins of metered power during the event
    history_resolution: timedelta = timedelta(minutes=1)  # bins of the meter history
    max_hold: timedelta = timedelta(minutes=15)  # a charger silent longer counts 0 kW


class TelemetrySettler:
    """Implements ``EventSettler``."""

    def __init__(self, profiles: SiteProfiles, config: SettlerConfig | None = None) -> None:
        self.profiles = profiles
        self.config = config or SettlerConfig()

    def settle(
        self,
        event: DrEvent,
        site_ids: Sequence[str],
        baseline: EventBaseline | None,
        readings: Sequence[Telemetry],
        history: Sequence[Telemetry] | None,
        event_days: frozenset[date],
    ) -> tuple[Settlement, tuple[SiteSettlement, ...], str]:
        cfg = self.config
        sites = sorted(site_ids)
        notes: list[str] = []
        metered = {
            s: self._site_power(s, readings, "during the event", cfg.resolution) for s in sites
        }
        meter_history: dict[str, MeterData] | None = None
        meter_cfg = replace(cfg.meter, event_days=cfg.meter.event_days | event_days)
        if history is not None:
            try:
                meter_history = {
                    s: self._site_power(s, history, "before the event", cfg.history_resolution)
                    for s in sites
                }
            except ValidationError as exc:
                notes.append(f"no meter baseline: {exc.reason}")
        use: BaselineKind = cfg.baseline
        if use == "plan" and baseline is None:
            if meter_history is None:
                raise ValidationError(
                    f"event {event.event_id}", "baseline", "no baseline plan and no meter history"
                )
            notes.append("no baseline plan was captured: settled on the meter baseline")
            use = "meter"
        settled = None
        try:
            settled = settle_event(
                event.event_id,
                event.limits,
                sites,
                metered=metered,
                plan=baseline,
                meter_history=meter_history,
                config=meter_cfg,
                use=use,
                max_hold=cfg.max_hold,
            )
        except InsufficientHistoryError as exc:
            if baseline is None:
                raise
            notes.append(f"no meter baseline: {exc.reason}")
            if use == "meter":
                notes.append("settled on the baseline plan instead")
        if settled is None:
            settled = settle_event(
                event.event_id,
                event.limits,
                sites,
                metered=metered,
                plan=baseline,
                use="plan",
                max_hold=cfg.max_hold,
            )
        return settled, self._per_site(settled, baseline, metered), "; ".join(notes)

    def _site_power(
        self, site: str, readings: Sequence[Telemetry], when: str, resolution: timedelta
    ) -> pd.Series:
        """Net site power: chargers' telemetry plus forecast base load minus PV. [kW]"""
        own = [r for r in readings if r.site_id == site]
        if not own:
            raise ValidationError(f"site {site}", "telemetry", f"none stored {when}")
        first = min(r.ts for r in own)
        last = max(r.ts for r in own)
        step = self.config.step
        epoch = datetime.fromtimestamp(0, first.tzinfo)
        start = epoch + ((first - epoch) // step) * step
        grid = TimeGrid(start, step, max(1, math.ceil((last - start) / step) + 1))
        base, pv = self.profiles.site_profiles(grid, [site]).get(site, ((), ()))
        net = np.zeros(grid.n_slots)
        if base:
            net += np.asarray(base, dtype=float)
        if pv:
            net -= np.asarray(pv, dtype=float)
        samples = list(zip(grid.slot_starts(), net.tolist(), strict=True))
        return site_power_from_telemetry(
            own, samples, resolution=resolution, max_hold=self.config.max_hold
        )

    def _per_site(
        self,
        settled: Settlement,
        plan: EventBaseline | None,
        metered: Mapping[str, pd.Series],
    ) -> tuple[SiteSettlement, ...]:
        starts = [i.start for i in settled.intervals]
        ends = [i.end for i in settled.intervals]
        hours = np.array([(b - a) / timedelta(hours=1) for a, b in zip(starts, ends, strict=True)])
        out = []
        for site in settled.site_ids:
            entity = f"metered power of site {site}"
            met = interval_means(
                entity, to_samples(entity, metered[site]), starts, ends, self.config.max_hold
            )
            if settled.baseline == "meter":
                base = np.asarray(settled.meter_baselines[site].baseline_kw, dtype=float)
            else:
                assert plan is not None
                base = plan_baseline_kw(plan, site, starts, ends)
            delivered = base - met
            out.append(
                SiteSettlement(
                    site_id=site,
                    baseline_kw=tuple(map(float, base)),
                    metered_kw=tuple(map(float, met)),
                    delivered_kw=tuple(map(float, delivered)),
                    delivered_kwh=float(delivered @ hours),
                )
            )
        return tuple(out)
