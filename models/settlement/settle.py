"""Settle one demand-response event for a set of sites: baseline vs metered, per interval.

Per interval ``j`` of length ``h_j`` [h], with baseline ``B``, metered ``M`` [kW] (summed over
the settled sites):

* shed ``S``: committed ``C = S``, delivered ``D = B - M`` (negative when load rose);
* cap ``K``: committed ``C = max(0, B - K)``, delivered ``D = max(0, B - M)``,
  ``cap_met = M <= K`` (1e-6 kW tolerance);
* compliance ``clip(D / C, 0, 1)``; when ``C = 0``: 1 for a shed, ``cap_met`` for a cap.

Totals: ``delivered_kwh = sum(D h)``, ``committed_kwh = sum(C h)``, compliance
``clip(delivered_kwh / committed_kwh, 0, 1)``; when nothing was committed: 1 if every cap was
met (or there are none), else 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from aggregator.domain import (
    BaselineFigures,
    BaselineKind,
    DrEvent,
    GridEvent,
    MeterBaseline,
    Settlement,
    SettlementInterval,
    ValidationError,
)
from models.settlement.baseline import (
    MeterBaselineConfig,
    SitePowerOnGrid,
    meter_baseline,
    plan_baseline_kw,
)
from models.settlement.series import FloatArray, MeterData, interval_means, to_samples

_TOL_KW = 1e-6


def _intervals(
    event_id: str, limits: Sequence[GridEvent], sites: tuple[str, ...]
) -> list[GridEvent]:
    entity = f"event {event_id}"
    if not limits:
        raise ValidationError(entity, "limits", "has no cap or shed interval to settle")
    ordered = sorted(limits, key=lambda g: g.start)
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise ValidationError(entity, "limits", f"{a.event_id} and {b.event_id} overlap")
    for g in ordered:
        outside = set(sites) - g.site_ids if g.site_ids else set()
        if outside:
            raise ValidationError(
                entity, "site_ids", f"{sorted(outside)} not targeted by {g.event_id}"
            )
    return ordered


def _figures(
    kind: BaselineKind,
    limits: Sequence[GridEvent],
    hours: FloatArray,
    base: FloatArray,
    met: FloatArray,
) -> tuple[BaselineFigures, npt.NDArray[np.bool_]]:
    is_cap = np.array([g.cap_kw is not None for g in limits])
    cap = np.array([g.cap_kw if g.cap_kw is not None else np.inf for g in limits], dtype=float)
    shed = np.array([g.shed_kw or 0.0 for g in limits], dtype=float)
    committed = np.where(is_cap, np.maximum(base - np.where(is_cap, cap, 0.0), 0.0), shed)
    delivered = np.where(is_cap, np.maximum(base - met, 0.0), base - met)
    cap_met = met <= cap + _TOL_KW
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(delivered / committed, 0.0, 1.0)
    compliance = np.where(committed > _TOL_KW, ratio, np.where(is_cap, cap_met, True).astype(float))
    d_kwh, c_kwh = float(delivered @ hours), float(committed @ hours)
    all_met = bool(cap_met[is_cap].all())
    total = min(max(d_kwh / c_kwh, 0.0), 1.0) if c_kwh > _TOL_KW else float(all_met)
    figures = BaselineFigures(
        kind=kind,
        baseline_kw=tuple(map(float, base)),
        committed_kw=tuple(map(float, committed)),
        delivered_kw=tuple(map(float, delivered)),
        compliance=tuple(map(float, compliance)),
        delivered_kwh=d_kwh,
        committed_kwh=c_kwh,
        total_compliance=total,
    )
    return figures, cap_met


def settle_event(
    event_id: str,
    limits: Sequence[GridEvent],
    site_ids: Iterable[str],
    *,
    metered: Mapping[str, MeterData],
    plan: SitePowerOnGrid | None = None,
    meter_history: Mapping[str, MeterData] | None = None,
    config: MeterBaselineConfig | None = None,
    use: BaselineKind | None = None,
    max_hold: timedelta = timedelta(minutes=15),
) -> Settlement:
    """Settle ``limits`` (the event's cap/shed intervals) for ``site_ids``.

    ``metered`` and ``meter_history`` map each site to its metered net power; ``plan`` is the
    plan made without the event. Baselines and metered power are summed over the sites, so a
    cap applies to their aggregate. ``use`` picks the baseline (default: the meter baseline
    when ``meter_history`` is given, else the plan); the other one, when given, is reported
    in ``alternative``. ``max_hold`` is how long one meter sample stays valid.
    """
    sites = tuple(sorted(set(site_ids)))
    if not sites:
        raise ValidationError(f"event {event_id}", "site_ids", "must not be empty")
    ordered = _intervals(event_id, limits, sites)
    starts, ends = [g.start for g in ordered], [g.end for g in ordered]
    hours = np.array([(g.end - g.start) / timedelta(hours=1) for g in ordered])
    chosen: BaselineKind = use or ("meter" if meter_history is not None else "plan")
    if chosen == "meter" and meter_history is None:
        raise ValidationError("settlement", "meter_history", "is required for the meter baseline")
    if chosen == "plan" and plan is None:
        raise ValidationError("settlement", "plan", "is required for the plan baseline")

    met = np.zeros(len(ordered))
    for site in sites:
        if site not in metered:
            raise ValidationError("settlement", "metered", f"has no data for site {site!r}")
        entity = f"metered power of site {site}"
        met += interval_means(entity, to_samples(entity, metered[site]), starts, ends, max_hold)

    baselines: dict[BaselineKind, FloatArray] = {}
    meter_results: dict[str, MeterBaseline] = {}
    if plan is not None:
        baselines["plan"] = sum(
            (plan_baseline_kw(plan, s, starts, ends) for s in sites), np.zeros(len(ordered))
        )
    if meter_history is not None:
        cfg = config or MeterBaselineConfig()
        total = np.zeros(len(ordered))
        for site in sites:
            if site not in meter_history:
                raise ValidationError(
                    "settlement", "meter_history", f"has no data for site {site!r}"
                )
            result = meter_baseline(
                meter_history[site],
                starts,
                ends,
                cfg,
                max_hold=max_hold,
                entity=f"meter history of site {site}",
            )
            meter_results[site] = result
            total += np.array(result.baseline_kw)
        baselines["meter"] = total

    main, cap_met = _figures(chosen, ordered, hours, baselines[chosen], met)
    other: BaselineKind = "plan" if chosen == "meter" else "meter"
    alternative = (
        _figures(other, ordered, hours, baselines[other], met)[0] if other in baselines else None
    )
    intervals = tuple(
        SettlementInterval(
            start=g.start,
            end=g.end,
            cap_kw=g.cap_kw,
            shed_kw=g.shed_kw,
            baseline_kw=main.baseline_kw[j],
            metered_kw=float(met[j]),
            committed_kw=main.committed_kw[j],
            delivered_kw=main.delivered_kw[j],
            compliance=main.compliance[j],
            cap_met=bool(cap_met[j]) if g.cap_kw is not None else None,
        )
        for j, g in enumerate(ordered)
    )
    has_cap = any(g.cap_kw is not None for g in ordered)
    return Settlement(
        event_id=event_id,
        site_ids=sites,
        baseline=chosen,
        intervals=intervals,
        delivered_kwh=main.delivered_kwh,
        committed_kwh=main.committed_kwh,
        compliance=main.total_compliance,
        caps_met=all(i.cap_met for i in intervals if i.cap_met is not None) if has_cap else None,
        alternative=alternative,
        meter_baselines=meter_results,
    )


def settle_dr_event(
    event: DrEvent,
    *,
    metered: Mapping[str, MeterData],
    site_ids: Iterable[str] | None = None,
    plan: SitePowerOnGrid | None = None,
    meter_history: Mapping[str, MeterData] | None = None,
    config: MeterBaselineConfig | None = None,
    use: BaselineKind | None = None,
    max_hold: timedelta = timedelta(minutes=15),
) -> Settlement:
    """``settle_event`` for a translated utility event (its sites unless ``site_ids`` given)."""
    return settle_event(
        event.event_id,
        event.limits,
        event.site_ids if site_ids is None else site_ids,
        metered=metered,
        plan=plan,
        meter_history=meter_history,
        config=config,
        use=use,
        max_hold=max_hold,
    )
