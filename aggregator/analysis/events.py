"""Event review: one demand-response event, baseline against metered, delivery and value.

Two sources, one result (``EventReview``):

* ``simulate_event``: offline, from a scenario file. The fleet is planned without the event
  (the baseline, as the service does when it accepts one) and with it. The "metered" power
  is simulated: every charger reports the plan-with-the-event's power once a minute, plus
  Gaussian noise; the site meter adds base load, PV and the site battery as planned. That
  goes through the real settlement path (``site_power_from_telemetry``, ``settle_event``).
* ``stored_event``: a settled event from the store (``SqlSettlementStore``), as the running
  service settled it from real telemetry.

Delivered energy is valued at a price per interval: the day-ahead price of the scenario's
price file offline, or a flat price given by the caller (the store keeps no prices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aggregator.analysis._plot import DEFAULT_TZ, LEGEND, hold, local_naive, time_axis
from aggregator.analysis.data import open_store
from aggregator.domain import FleetProblem, GridEvent, Plan, Settlement, Telemetry
from aggregator.scenario import load_scenario
from connectors.sql.settlements import SqlSettlementStore
from models.planner import PlannerSettings, PyomoPlanner
from models.settlement import settle_event, site_power_from_telemetry

_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class EventReview:
    """One settled event, ready to look at.

    ``intervals``: one row per settlement interval (UTC start index): cap/shed, baseline,
    metered, committed and delivered power [kW], delivered energy [kWh], compliance (0..1),
    the price used [EUR/MWh] and the value [EUR]. ``baseline_kw``, ``planned_kw`` and
    ``metered_kw`` are the event's sites' net power around the event (offline only: the
    store keeps per-interval figures). ``extra_cost_eur``: what complying cost in energy
    (plan with the event - plan without it, offline only). ``price_note`` says which price
    values the delivery; ``source`` where the figures come from; ``simulated`` whether the
    metered power is simulated.
    """

    event_id: str
    site_ids: tuple[str, ...]
    settlement: Settlement
    intervals: pd.DataFrame
    price_note: str
    source: str
    baseline_kw: pd.Series | None = None
    planned_kw: pd.Series | None = None
    metered_kw: pd.Series | None = None
    extra_cost_eur: float | None = None
    simulated: bool = False


# --------------------------------------------------------------------------- offline


def scenario_events(scenario: Path) -> pd.DataFrame:
    """The scenario's grid events: window (UTC), sites, cap or shed [kW]."""
    problem = load_scenario(scenario)
    rows = [
        {
            "event": e.event_id,
            "start": e.start,
            "end": e.end,
            "sites": ", ".join(problem.event_sites(e)),
            "cap_kw": e.cap_kw,
            "shed_kw": e.shed_kw,
        }
        for e in problem.events
    ]
    return pd.DataFrame(rows).set_index("event")


def split_event(event: GridEvent, interval: timedelta) -> tuple[GridEvent, ...]:
    """The event as consecutive intervals of ``interval`` (the last may be shorter).

    OpenADR events carry their own intervals; a scenario event is one block, so it is cut
    into settlement periods (15 min: the Dutch imbalance settlement period) to be settled
    per interval. Ids are ``{event_id}/{n}``, as the VEN names an event's intervals.
    """
    out = []
    start, n = event.start, 0
    while start < event.end:
        end = min(start + interval, event.end)
        out.append(replace(event, event_id=f"{event.event_id}/{n}", start=start, end=end))
        start, n = end, n + 1
    return tuple(out)


def _slot_series(plan: Plan, sites: Sequence[str]) -> pd.Series:
    """Net power of ``sites`` together per plan slot (UTC slot starts). [kW]"""
    total = np.zeros(plan.grid.n_slots)
    for site in sites:
        total += np.asarray(plan.site_power_kw[site], dtype=float)
    index = pd.DatetimeIndex(list(plan.grid.slot_starts()), name="ts")
    return pd.Series(total, index=index)


def simulated_telemetry(
    plan: Plan,
    problem: FleetProblem,
    sites: Sequence[str],
    since: datetime,
    until: datetime,
    *,
    noise_kw: float = 1.0,
    seed: int = 1,
    every: timedelta = timedelta(minutes=1),
) -> list[Telemetry]:
    """Charger readings as if the chargers followed ``plan``: one per ``every`` while a
    vehicle is plugged in, the slot's planned power plus Gaussian noise (sd ``noise_kw``),
    kept within the charger's limits."""
    rng = np.random.default_rng(seed)
    grid = plan.grid
    site_set = set(sites)
    readings: list[Telemetry] = []
    for schedule in plan.schedules:
        if schedule.site_id not in site_set:
            continue
        charger = problem.charger_by_id[schedule.charger_id]
        first = grid.slot_start(schedule.first_slot)
        last = first + grid.step * len(schedule.power_kw)
        t = max(first, since)
        while t < min(last, until):
            slot = grid.index_of(t) - schedule.first_slot
            power = schedule.power_kw[slot] + float(rng.normal(0.0, noise_kw))
            power = min(max(power, -charger.max_discharge_kw), charger.max_charge_kw)
            readings.append(
                Telemetry(
                    schedule.site_id,
                    schedule.charger_id,
                    t,
                    power,
                    plugged=True,
                    vehicle_id=schedule.vehicle_id,
                    soc=schedule.soc[slot],
                )
            )
            t += every
    return readings


def _behind_meter(plan: Plan, problem: FleetProblem, sites: Sequence[str]) -> pd.Series:
    """What the site meter sees besides the chargers: base load - PV + site battery. [kW]"""
    n = plan.grid.n_slots
    total = np.zeros(n)
    for site_id in sites:
        site = problem.site_by_id[site_id]
        if site.base_load_kw:
            total += np.asarray(site.base_load_kw, dtype=float)
        if site.pv_kw:
            total -= np.asarray(site.pv_kw, dtype=float)
        battery = plan.site_battery_kw.get(site_id, ())
        if battery:
            total += np.asarray(battery, dtype=float)
    index = pd.DatetimeIndex(list(plan.grid.slot_starts()), name="ts")
    return pd.Series(total, index=index)


def _site_meter(
    readings: Sequence[Telemetry], behind: pd.Series, since: datetime, until: datetime
) -> pd.Series:
    """A site's metered net power per minute over ``[since, until)``. [kW]"""
    bins = pd.date_range(since, until, freq="1min", inclusive="left", name="ts")
    rest = behind.reindex(bins, method="ffill")
    if not readings:
        return rest
    power = site_power_from_telemetry(
        readings, behind, resolution=timedelta(minutes=1), max_hold=timedelta(minutes=2)
    )
    # Minutes before the first or after the last reading: no vehicle, the rest of the site.
    return power.reindex(bins).fillna(rest)


def simulate_event(
    scenario: Path,
    event_id: str,
    *,
    noise_kw: float = 1.0,
    seed: int = 1,
    interval: timedelta = timedelta(minutes=15),
    context: timedelta = timedelta(hours=3),
    time_limit_s: float = 60.0,
) -> EventReview:
    """Plan ``scenario`` without and with ``event_id``, meter the second, and settle.

    The baseline is the plan without the event (the scenario's other events stay), as the
    service captures it at acceptance. Metered power is ``simulated_telemetry`` of the plan
    with the event, plus base load, PV and the site battery, binned to 1 minute. Delivery is
    valued at the scenario's day-ahead import price of each interval.
    """
    problem = load_scenario(scenario)
    by_id = {e.event_id: e for e in problem.events}
    if event_id not in by_id:
        raise ValueError(f"{scenario}: no event {event_id!r} (has {sorted(by_id)})")
    event = by_id[event_id]
    if event.cap_kw is None and event.shed_kw is None:  # pragma: no cover - domain forbids
        raise ValueError(f"event {event_id} has neither cap nor shed")
    sites = problem.event_sites(event)
    planner = PyomoPlanner(PlannerSettings(time_limit_s=time_limit_s))
    others = tuple(e for e in problem.events if e.event_id != event_id)
    baseline = planner.plan(replace(problem, events=others))
    with_event = planner.plan(problem)

    grid = problem.grid
    since = max(grid.start, event.start - context)
    until = min(grid.end, event.end + context)
    # Readings run a few minutes past the window, so its last minute has one to hold.
    readings = simulated_telemetry(
        with_event, problem, sites, since, until + _MARGIN, noise_kw=noise_kw, seed=seed
    )
    metered = {
        site: _site_meter(
            [r for r in readings if r.site_id == site],
            _behind_meter(with_event, problem, [site]),
            since,
            until,
        )
        for site in sites
    }
    limits = split_event(event, interval)
    settlement = settle_event(event_id, limits, sites, metered=metered, plan=baseline, use="plan")
    prices = pd.Series(
        problem.prices.import_per_mwh,
        index=pd.DatetimeIndex(list(grid.slot_starts())),
    )
    interval_prices = [float(prices[prices.index <= g.start].iloc[-1]) for g in limits]
    window = (baseline_kw := _slot_series(baseline, sites)).index
    in_context = (window >= since) & (window < until)
    return EventReview(
        event_id=event_id,
        site_ids=tuple(sites),
        settlement=settlement,
        intervals=interval_table(settlement, interval_prices),
        price_note="NL day-ahead price of each interval (the scenario's price file)",
        source=(
            f"simulated from {scenario.name}: baseline = plan without {event_id}, metered = "
            f"plan with it, charger readings every minute with {noise_kw:g} kW noise "
            f"(seed {seed})"
        ),
        baseline_kw=baseline_kw[in_context],
        planned_kw=_slot_series(with_event, sites)[in_context],
        metered_kw=sum(metered.values(), pd.Series(0.0, index=metered[sites[0]].index)),
        extra_cost_eur=with_event.cost.energy_cost - baseline.cost.energy_cost,
        simulated=True,
    )


# --------------------------------------------------------------------------- the store


def stored_event(url: str, event_id: str | None = None, *, price_per_mwh: float) -> EventReview:
    """A settled event from the store at ``url`` (the latest settled one if no id is given).

    The store keeps per-interval figures, not the power around the event, and no prices:
    the delivery is valued at the flat ``price_per_mwh``.
    """
    with open_store(url) as repo:
        store = SqlSettlementStore(repo)
        if event_id is None:
            settled = [r for r in store.settlements() if r.settlement is not None]
            if not settled:
                raise LookupError("the store holds no settled event")
            record = max(settled, key=lambda r: r.settled_at)
        else:
            found = store.settlement(event_id)
            if found is None:
                raise LookupError(f"the store holds no settlement of event {event_id!r}")
            if found.settlement is None:
                raise LookupError(f"event {event_id!r} could not be settled: {found.reason}")
            record = found
    settlement = record.settlement
    assert settlement is not None
    prices = [price_per_mwh] * len(settlement.intervals)
    return EventReview(
        event_id=record.event_id,
        site_ids=settlement.site_ids,
        settlement=settlement,
        intervals=interval_table(settlement, prices),
        price_note=f"a flat {price_per_mwh:g} EUR/MWh (given; the store keeps no prices)",
        source=(
            f"stored settlement of {record.event_id} (modification {record.modification_number}"
            f", settled {record.settled_at:%Y-%m-%d %H:%M} UTC against the {settlement.baseline}"
            f" baseline){': ' + record.reason if record.reason else ''}"
        ),
    )


# --------------------------------------------------------------------------- figures


def interval_table(settlement: Settlement, price_per_mwh: Sequence[float]) -> pd.DataFrame:
    """One row per interval: commitment, baseline, metered, delivered, compliance, value."""
    rows = []
    for i, price in zip(settlement.intervals, price_per_mwh, strict=True):
        hours = (i.end - i.start) / timedelta(hours=1)
        delivered_kwh = i.delivered_kw * hours
        rows.append(
            {
                "start": i.start,
                "end": i.end,
                "cap_kw": np.nan if i.cap_kw is None else i.cap_kw,
                "shed_kw": np.nan if i.shed_kw is None else i.shed_kw,
                "baseline_kw": i.baseline_kw,
                "metered_kw": i.metered_kw,
                "committed_kw": i.committed_kw,
                "delivered_kw": i.delivered_kw,
                "delivered_kwh": delivered_kwh,
                "compliance": i.compliance,
                "cap_met": i.cap_met,
                "price_eur_per_mwh": price,
                "value_eur": delivered_kwh * price / 1e3,
            }
        )
    return pd.DataFrame(rows).set_index("start")


def summary(review: EventReview) -> pd.Series:
    """The event in a few numbers: commitment, delivery, compliance, value."""
    s = review.settlement
    table = review.intervals
    out = {
        "event": review.event_id,
        "sites": ", ".join(review.site_ids),
        "window (UTC)": f"{table.index[0]:%Y-%m-%d %H:%M} to {table['end'].iloc[-1]:%H:%M}",
        "intervals": len(table),
        "baseline": s.baseline,
        "committed_kwh": round(s.committed_kwh, 2),
        "delivered_kwh": round(s.delivered_kwh, 2),
        "compliance_pct": round(s.compliance_pct, 1),
        "caps_met": s.caps_met,
        "value_eur": round(float(table["value_eur"].sum()), 2),
        "valued_at": review.price_note,
    }
    if review.extra_cost_eur is not None:
        out["extra_energy_cost_eur"] = round(review.extra_cost_eur, 2)
    return pd.Series(out, name=review.event_id)


def event_figure(review: EventReview, tz: str = DEFAULT_TZ) -> Figure:
    """Top: baseline, plan and metered power with the cap; bottom: delivered per interval."""
    table = review.intervals
    fig = Figure(figsize=(12.0, 7.5), layout="constrained")
    ax_power, ax_del = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    starts = local_naive(pd.DatetimeIndex(table.index), tz)
    ends = local_naive(pd.DatetimeIndex(table["end"].to_list()), tz)
    edges = starts.append(ends[-1:])

    if review.baseline_kw is not None:
        slots = pd.DatetimeIndex(review.baseline_kw.index)
        step = slots[1] - slots[0] if len(slots) > 1 else pd.Timedelta(minutes=15)
        slot_edges = local_naive(pd.DatetimeIndex(slots.append(slots[-1:] + step)), tz)
        ax_power.step(
            slot_edges,
            hold(review.baseline_kw.to_numpy()),
            where="post",
            color="0.35",
            label="baseline: plan without the event",
        )
        if review.planned_kw is not None:
            ax_power.step(
                slot_edges,
                hold(review.planned_kw.to_numpy()),
                where="post",
                color="tab:blue",
                ls="--",
                lw=0.9,
                label="plan with the event",
            )
    else:
        ax_power.step(
            edges,
            hold(table["baseline_kw"].to_numpy()),
            where="post",
            color="0.35",
            label="baseline",
        )
    if review.metered_kw is not None:
        metered_idx = local_naive(pd.DatetimeIndex(review.metered_kw.index), tz)
        ax_power.plot(
            metered_idx,
            review.metered_kw.to_numpy(),
            color="tab:green",
            lw=0.7,
            alpha=0.8,
            label="metered, 1 min" + (" (simulated)" if review.simulated else ""),
        )
    ax_power.step(
        edges,
        hold(table["metered_kw"].to_numpy()),
        where="post",
        color="tab:green",
        lw=2.0,
        label="metered, interval mean",
    )
    if table["cap_kw"].notna().any():
        ax_power.step(
            edges,
            hold(table["cap_kw"].astype(float).to_numpy()),
            where="post",
            color="tab:red",
            ls=":",
            lw=1.5,
            label="cap",
        )
    ax_power.axvspan(edges[0], edges[-1], color="tab:orange", alpha=0.1, label="event")
    ax_power.axhline(0.0, color="0.6", lw=0.6)
    ax_power.set_ylabel("net site power [kW]\n(+ import)")
    ax_power.set_title(f"{review.event_id} at {', '.join(review.site_ids)}")
    ax_power.legend(**LEGEND)

    width = (ends - starts) * 0.8
    ax_del.bar(
        starts,
        table["delivered_kw"],
        width=width,
        align="edge",
        color="tab:green",
        alpha=0.7,
        label="delivered",
    )
    ax_del.step(
        edges,
        hold(table["committed_kw"].to_numpy()),
        where="post",
        color="k",
        lw=1.2,
        label="committed",
    )
    for x, y, c, k in zip(
        starts, table["delivered_kw"], table["compliance"], table["committed_kw"], strict=True
    ):
        if k > 0:
            ax_del.annotate(
                f"{c:.0%}", (x, y), textcoords="offset points", xytext=(1, 3), fontsize=7
            )
    ax_del.axhline(0.0, color="0.6", lw=0.6)
    ax_del.set_ylabel("per interval [kW]")
    s = review.settlement
    title = (
        f"delivered {s.delivered_kwh:.1f} of {s.committed_kwh:.1f} kWh committed: "
        f"{s.compliance_pct:.0f} % compliance, worth {table['value_eur'].sum():.2f} EUR"
    )
    if s.committed_kwh <= 0 and s.caps_met:
        title = "nothing committed (the baseline already stayed under the cap); " + title
    ax_del.set_title(title)
    ax_del.legend(**LEGEND)
    time_axis(ax_del, tz, "%d %b\n%H:%M")
    return fig
