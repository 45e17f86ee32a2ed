"""Baselines for settlement: the plan without the event, and the X-of-Y days meter baseline.

Meter baseline rule (CAISO/PJM style, exact):

1. The event day ``D`` is the local date (``config.tz``) of the first interval's start. Each
   interval's *window* on an earlier day ``d`` is the interval moved by ``D - d`` days of local
   wall-clock time (so DST keeps the time of day).
2. Walk back from ``D - 1`` for at most ``lookback_days`` days. A day is *eligible* unless it is
   a Saturday or Sunday (when ``skip_weekends``), in ``holidays``, in ``event_days`` (earlier
   event days), or its meter data does not fully cover every window (and, with a same-day
   adjustment, the adjustment window). Stop at ``y_days`` eligible days.
3. Fewer than ``y_days`` found: ``InsufficientHistoryError``, unless ``min_days`` is set and at
   least that many were found; then Y is the number found and X is ``min(x_days, Y)``.
4. Rank the Y days by their mean load over all windows together (time-weighted), highest
   first, ties to the more recent day; keep the top X. The baseline of each interval is the
   plain mean of the X days' time-weighted mean load over that interval's window.
5. Optional additive same-day adjustment: over ``[start - gap - window, start - gap)`` on the
   event day, ``adj = actual - baseline days`` (both time-weighted means, the baseline days
   averaged over the X days), clipped to ``+-cap_fraction * |baseline days|`` (and to
   ``+-cap_kw`` if set), then added to every interval. Off by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

import numpy as np

from aggregator.domain import MeterBaseline, TimeGrid, ValidationError
from models.settlement.series import (
    FloatArray,
    MeterData,
    Samples,
    covered,
    interval_means,
    step_integrals,
    to_samples,
    to_seconds,
)


class InsufficientHistoryError(ValidationError):
    """Too few eligible days in the meter history for the X-of-Y baseline."""


class SitePowerOnGrid(Protocol):
    """Site net power per slot of a grid; a ``Plan`` is one. [kW]"""

    @property
    def grid(self) -> TimeGrid: ...

    @property
    def site_power_kw(self) -> Mapping[str, Sequence[float]]: ...


@dataclass(frozen=True)
class SlotPower:
    """Any per-slot site power profile on a ``TimeGrid`` (e.g. a stored plan's). [kW]"""

    grid: TimeGrid
    site_power_kw: Mapping[str, Sequence[float]]


def plan_baseline_kw(
    plan: SitePowerOnGrid, site_id: str, starts: Sequence[datetime], ends: Sequence[datetime]
) -> FloatArray:
    """Time-weighted mean of the plan's site power over each interval. [kW]

    Raises ``ValidationError`` when the site is missing or an interval leaves the grid.
    """
    entity = "plan baseline"
    if site_id not in plan.site_power_kw:
        raise ValidationError(entity, "site_power_kw", f"has no site {site_id!r}")
    values = np.asarray(plan.site_power_kw[site_id], dtype=float)
    grid = plan.grid
    if values.shape != (grid.n_slots,):
        raise ValidationError(
            entity, f"site_power_kw[{site_id!r}]", f"needs {grid.n_slots} slots, got {values.size}"
        )
    slot_s = to_seconds(list(grid.slot_starts()))
    samples = Samples(t_s=slot_s, kw=values)
    return interval_means(f"{entity} of site {site_id}", samples, starts, ends, grid.step)


@dataclass(frozen=True, slots=True)
class SameDayAdjustment:
    """Additive same-day adjustment over ``[start - gap - window, start - gap)``."""

    window: timedelta = timedelta(hours=3)
    gap: timedelta = timedelta(hours=1)
    cap_fraction: float = 0.2
    cap_kw: float | None = None

    def __post_init__(self) -> None:
        entity = "same-day adjustment"
        if self.window <= timedelta(0):
            raise ValidationError(entity, "window", "must be positive")
        if self.gap < timedelta(0):
            raise ValidationError(entity, "gap", "must be >= 0")
        if not self.cap_fraction >= 0:
            raise ValidationError(entity, "cap_fraction", "must be >= 0")
        if self.cap_kw is not None and not self.cap_kw >= 0:
            raise ValidationError(entity, "cap_kw", "must be >= 0")


@dataclass(frozen=True, slots=True)
class MeterBaselineConfig:
    """X-of-Y days meter baseline settings (module docstring has the rule)."""

    x_days: int = 10
    y_days: int = 10
    skip_weekends: bool = True
    holidays: frozenset[date] = frozenset()
    event_days: frozenset[date] = frozenset()
    lookback_days: int = 45
    min_days: int | None = None
    adjustment: SameDayAdjustment | None = None
    tz: tzinfo = UTC

    def __post_init__(self) -> None:
        entity = "meter baseline config"
        if not 1 <= self.x_days <= self.y_days:
            raise ValidationError(entity, "x_days", "must be within 1..y_days")
        if self.lookback_days < self.y_days:
            raise ValidationError(entity, "lookback_days", "must be >= y_days")
        if self.min_days is not None and not 1 <= self.min_days <= self.y_days:
            raise ValidationError(entity, "min_days", "must be within 1..y_days")


def _shift(ts: datetime, days: int, tz: tzinfo) -> datetime:
    """``ts`` moved by ``days`` days of local wall-clock time in ``tz``."""
    wall = ts.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=tz).astimezone(UTC)


def _skip_reason(day: date, config: MeterBaselineConfig) -> str | None:
    if config.skip_weekends and day.weekday() >= 5:
        return "weekend"
    if day in config.holidays:
        return "holiday"
    if day in config.event_days:
        return "event day"
    return None


def _adjustment(
    entity: str,
    samples: Samples,
    window: tuple[datetime, datetime],
    days_mean_kw: float,
    adj: SameDayAdjustment,
    max_hold: timedelta,
) -> float:
    actual = interval_means(
        f"{entity} (same-day adjustment)", samples, [window[0]], [window[1]], max_hold
    )
    cap = adj.cap_fraction * abs(days_mean_kw)
    if adj.cap_kw is not None:
        cap = min(cap, adj.cap_kw)
    return float(np.clip(actual[0] - days_mean_kw, -cap, cap))


def meter_baseline(
    history: MeterData,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    config: MeterBaselineConfig,
    *,
    max_hold: timedelta = timedelta(minutes=15),
    entity: str = "meter history",
) -> MeterBaseline:
    """X-of-Y days baseline of the event intervals ``[starts[j], ends[j])``. [kW]"""
    samples = to_samples(entity, history)
    tz, adj = config.tz, config.adjustment
    windows = list(zip(starts, ends, strict=True))
    if adj is not None:
        s0 = min(starts)
        windows.append((s0 - adj.gap - adj.window, s0 - adj.gap))
    n_event = len(starts)
    event_day = min(starts).astimezone(tz).date()
    hold_s = max_hold.total_seconds()

    found: list[tuple[date, FloatArray, float]] = []  # day, window means, event-window mean
    skipped: dict[date, str] = {}
    for back in range(1, config.lookback_days + 1):
        day = event_day - timedelta(days=back)
        reason = _skip_reason(day, config)
        if reason is None:
            s = to_seconds([_shift(a, -back, tz) for a, _ in windows])
            e = to_seconds([_shift(b, -back, tz) for _, b in windows])
            energy, cov = step_integrals(samples, s, e, hold_s)
            if covered(e - s, cov).all():
                ev = slice(0, n_event)
                mean = float(energy[ev].sum() / (e[ev] - s[ev]).sum())
                found.append((day, energy / (e - s), mean))
                if len(found) == config.y_days:
                    break
                continue
            reason = "missing data"
        skipped[day] = reason

    need = config.y_days if config.min_days is None else config.min_days
    if len(found) < need:
        raise InsufficientHistoryError(
            entity,
            "history",
            f"needs {need} eligible days within {config.lookback_days} days before "
            f"{event_day.isoformat()}, found {len(found)}",
        )
    x = min(config.x_days, len(found))
    ranked = sorted(found, key=lambda f: (-f[2], -f[0].toordinal()))[:x]
    chosen = sorted(ranked, key=lambda f: f[0], reverse=True)
    means = np.mean([f[1] for f in chosen], axis=0)
    unadjusted = means[:n_event]
    adj_kw = 0.0
    if adj is not None:
        adj_kw = _adjustment(entity, samples, windows[-1], float(means[-1]), adj, max_hold)
    return MeterBaseline(
        baseline_kw=tuple(float(v) + adj_kw for v in unadjusted),
        unadjusted_kw=tuple(map(float, unadjusted)),
        days=tuple(f[0] for f in chosen),
        eligible_days=tuple(f[0] for f in found),
        adjustment_kw=adj_kw,
        skipped=skipped,
    )
