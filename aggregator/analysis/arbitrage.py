"""V2G arbitrage over a week: the fleet's plan against real prices, and what it is worth.

Three ways to charge the same week of sessions, each costed by the planner's own evaluation
(``models.planner.evaluate.build_plan``, so the numbers compare):

* ``uncontrolled``: every vehicle charges at full power from plug-in until its departure
  energy is reached (``models.envelope.uncontrolled_powers``; site limits ignored, as dumb
  chargers do). The baseline.
* ``smart``: the planner (Pyomo/HiGHS), with V2G switched off for every vehicle.
* ``v2g``: the planner with V2G where vehicle and charger allow it.

Costs are at the sites' meters (import cost - export revenue + degradation, as
``CostBreakdown.energy_cost``). Base load and PV are the same in all three cases, so the
differences between them are the fleet's doing.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aggregator.analysis._plot import DEFAULT_TZ, LEGEND, hold, local_naive, slot_edges, time_axis
from aggregator.analysis.data import read_prices
from aggregator.domain import FleetProblem, Plan, Prices, Session, Site, TimeGrid
from aggregator.scenario import load_scenario
from aggregator.scenario.prices import prices_on_grid
from models.envelope import uncontrolled_powers
from models.planner import PlannerSettings, PyomoPlanner, compile_problem
from models.planner.evaluate import build_plan

CASES = ("uncontrolled", "smart", "v2g")
CASE_LABELS = {
    "uncontrolled": "uncontrolled (full power on arrival)",
    "smart": "smart charging (planner, no V2G)",
    "v2g": "V2G (planner)",
}
_COLORS = {"uncontrolled": "0.45", "smart": "tab:blue", "v2g": "tab:green"}
_DAY = timedelta(days=1)


# --------------------------------------------------------------------------- the week


def _rephase(values: tuple[float, ...], day_grid: TimeGrid, grid: TimeGrid) -> tuple[float, ...]:
    """A one-day profile on ``day_grid`` repeated on ``grid`` by time of day."""
    if not values:
        return ()
    out = []
    for t in grid.slot_starts():
        offset = ((t - day_grid.start) % _DAY) // day_grid.step
        out.append(values[int(offset)])
    return tuple(out)


def simulated_week(
    scenario: Path,
    prices_csv: Path,
    first_day: date,
    *,
    days: int = 7,
    weekday_only_sites: Collection[str] = (),
    tz: str = DEFAULT_TZ,
) -> FleetProblem:
    """A week of the scenario's first day, repeated, priced with the prices in ``prices_csv``.

    The week is ``days`` local days (``tz``) from midnight of ``first_day``. The template is
    every session that arrives on the scenario's first local day; it is repeated on each day
    of the week at the same local times, except at the ``weekday_only_sites`` on Saturdays and
    Sundays. Base load and PV repeat by time of day. The grid runs from the first midnight
    until the last departure. Grid events and site batteries are left out: this is about the
    vehicles and the prices. Export is paid the import price.
    """
    day = load_scenario(scenario)
    grid0 = day.grid
    if grid0.step * grid0.n_slots != _DAY:
        raise ValueError(f"{scenario}: the template scenario must cover exactly one day")
    zone = ZoneInfo(tz)
    start = datetime.combine(first_day, time(0), zone).astimezone(UTC)
    template_day = grid0.start.astimezone(zone).date()
    template = [s for s in day.sessions if s.arrival.astimezone(zone).date() == template_day]
    weekday_only = set(weekday_only_sites)
    sessions: list[Session] = []
    for n in range(days):
        shift = first_day + timedelta(days=n) - template_day
        for s in template:
            # Python adds a timedelta to an aware time on the wall clock: same local time.
            arrival = (s.arrival.astimezone(zone) + shift).astimezone(UTC)
            departure = (s.departure.astimezone(zone) + shift).astimezone(UTC)
            local = arrival.astimezone(zone)
            if day.site_of(s) in weekday_only and local.weekday() >= 5:
                continue
            sid = f"{s.session_id}-{local:%m%d}"
            sessions.append(replace(s, session_id=sid, arrival=arrival, departure=departure))
    if not sessions:
        raise ValueError(f"{scenario}: no session to repeat (or only at weekday-only sites)")
    end = max(s.departure for s in sessions)
    grid = TimeGrid(start, grid0.step, math.ceil((end - start) / grid0.step))
    prices = prices_on_grid(read_prices(prices_csv), grid, str(prices_csv))
    sites: list[Site] = [
        replace(
            site,
            base_load_kw=_rephase(site.base_load_kw, grid0, grid),
            pv_kw=_rephase(site.pv_kw, grid0, grid),
        )
        for site in day.sites
    ]
    return FleetProblem(
        grid=grid,
        sites=tuple(sites),
        chargers=day.chargers,
        vehicles=day.vehicles,
        sessions=tuple(sorted(sessions, key=lambda s: (s.arrival, s.session_id))),
        prices=Prices(prices, prices),
        degradation_cost_per_mwh=day.degradation_cost_per_mwh,
    )


def session_table(problem: FleetProblem, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """One row per session: vehicle, site, local arrival and departure, whether it can do V2G."""
    zone = ZoneInfo(tz)
    rows = [
        {
            "session": s.session_id,
            "vehicle": s.vehicle_id,
            "site": problem.site_of(s),
            "arrival": s.arrival.astimezone(zone).strftime("%a %d %b %H:%M"),
            "departure": s.departure.astimezone(zone).strftime("%a %d %b %H:%M"),
            "v2g": problem.vehicle_by_id[s.vehicle_id].v2g_allowed
            and problem.charger_by_id[s.charger_id].max_discharge_kw > 0,
        }
        for s in problem.sessions
    ]
    return pd.DataFrame(rows).set_index("session")


def without_v2g(problem: FleetProblem) -> FleetProblem:
    """The same problem with V2G switched off for every vehicle."""
    vehicles = tuple(replace(v, v2g_allowed=False) for v in problem.vehicles)
    return replace(problem, vehicles=vehicles)


def uncontrolled_plan(problem: FleetProblem, settings: PlannerSettings | None = None) -> Plan:
    """Full power from plug-in until the departure energy is reached, costed like a plan."""
    cp = compile_problem(problem)
    pc = uncontrolled_powers(cp)
    return build_plan(
        cp,
        pc,
        np.zeros_like(pc),
        np.zeros((cp.batt_site.size, cp.n_slots)),
        settings or PlannerSettings(),
        solver_path="heuristic",
        solver_status="uncontrolled",
    )


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class ArbitrageStudy:
    """The week's problem (with V2G) and the plan of each case (``CASES``)."""

    problem: FleetProblem
    plans: dict[str, Plan]
    settings: PlannerSettings

    @property
    def grid(self) -> TimeGrid:
        return self.problem.grid


def run_study(problem: FleetProblem, *, time_limit_s: float = 60.0) -> ArbitrageStudy:
    """Plan the week three ways: uncontrolled, smart charging without V2G, and with V2G."""
    settings = PlannerSettings(time_limit_s=time_limit_s)
    planner = PyomoPlanner(settings)
    plans = {
        "uncontrolled": uncontrolled_plan(problem, settings),
        "smart": planner.plan(without_v2g(problem)),
        "v2g": planner.plan(problem),
    }
    return ArbitrageStudy(problem, plans, settings)


def _ev_power(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Fleet charge (>= 0) and discharge (<= 0) power per slot. [kW]"""
    charge = np.zeros(plan.grid.n_slots)
    discharge = np.zeros(plan.grid.n_slots)
    for s in plan.schedules:
        p = np.asarray(s.power_kw, dtype=float)
        sl = slice(s.first_slot, s.first_slot + p.size)
        charge[sl] += np.maximum(p, 0.0)
        discharge[sl] += np.minimum(p, 0.0)
    return charge, discharge


def _site_net(plan: Plan) -> np.ndarray:
    """Net power of all sites together per slot. [kW]"""
    total = np.zeros(plan.grid.n_slots)
    for values in plan.site_power_kw.values():
        total += np.asarray(values, dtype=float)
    return total


def slot_costs(study: ArbitrageStudy, case: str) -> pd.Series:
    """Energy cost of one case per slot [EUR]: import - export + degradation, per site meter.

    Sums to the plan's ``cost.energy_cost`` (the planner's own accounting).
    """
    plan, problem = study.plans[case], study.problem
    dt = plan.grid.step_hours
    imp_price = np.asarray(problem.prices.import_per_mwh, dtype=float)
    exp_price = np.minimum(np.asarray(problem.prices.export_per_mwh, dtype=float), imp_price)
    cost = np.zeros(plan.grid.n_slots)
    for values in plan.site_power_kw.values():
        net = np.asarray(values, dtype=float)
        cost += (imp_price * np.maximum(net, 0.0) - exp_price * np.maximum(-net, 0.0)) * dt / 1e3
    _, discharge = _ev_power(plan)
    cost += problem.degradation_cost_per_mwh * -discharge * dt / 1e3
    return pd.Series(cost, index=_index(plan.grid), name=case)


def _index(grid: TimeGrid) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(grid.slot_starts()), name="start")


def power_frame(study: ArbitrageStudy) -> pd.DataFrame:
    """Per slot (UTC index): price [EUR/MWh], each case's fleet EV power and site net [kW]."""
    frame = pd.DataFrame(index=_index(study.grid))
    frame["price_eur_per_mwh"] = study.problem.prices.import_per_mwh
    for case in CASES:
        charge, discharge = _ev_power(study.plans[case])
        frame[f"{case}_ev_kw"] = charge + discharge
        frame[f"{case}_site_kw"] = _site_net(study.plans[case])
    charge, discharge = _ev_power(study.plans["v2g"])
    frame["v2g_charge_kw"] = charge
    frame["v2g_discharge_kw"] = discharge
    return frame


def cost_table(study: ArbitrageStudy) -> pd.DataFrame:
    """One row per case: the plan's cost breakdown [EUR] and energy figures over the week.

    ``discharge_value_eur`` is what the discharged energy was worth at the day-ahead price of
    its slot (exported, or import avoided behind the meter): V2G's gross arbitrage revenue.
    ``left_above_target_kwh`` is energy the vehicles leave with beyond their targets (the
    planner may fill batteries when prices are negative); it is not credited in the costs.
    ``over_site_limit_kwh`` is energy drawn beyond the sites' grid connections.
    """
    dt = study.grid.step_hours
    price = np.asarray(study.problem.prices.import_per_mwh, dtype=float)
    capacity = {v.vehicle_id: v.battery_kwh for v in study.problem.vehicles}
    rows = {}
    base = study.plans["uncontrolled"].cost.energy_cost
    over_per_kwh = study.settings.site_limit_penalty_per_mwh / 1e3
    for case in CASES:
        plan = study.plans[case]
        charge, discharge = _ev_power(plan)
        net = _site_net(plan)
        c = plan.cost
        above = sum(
            max(o.soc_at_departure * capacity[o.vehicle_id] - o.target_kwh, 0.0)
            for o in plan.outcomes
        )
        rows[CASE_LABELS[case]] = {
            "import_cost_eur": c.import_cost,
            "export_revenue_eur": c.export_revenue,
            "degradation_cost_eur": c.degradation_cost,
            "energy_cost_eur": c.energy_cost,
            "saving_vs_uncontrolled_eur": base - c.energy_cost,
            "ev_charged_kwh": float(charge.sum() * dt),
            "ev_discharged_kwh": float(-discharge.sum() * dt),
            "discharge_value_eur": float(price @ -discharge * dt / 1e3),
            "left_above_target_kwh": above,
            "shortfall_kwh": plan.total_shortfall_kwh,
            "peak_import_kw": float(net.max()),
            "over_site_limit_kwh": c.site_limit_penalty / over_per_kwh,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case"
    return table.round(2) + 0.0  # + 0.0 turns -0.0 into 0.0


def daily_costs(study: ArbitrageStudy, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Energy cost per local day and case [EUR], with V2G's saving against each other case."""
    frame = pd.DataFrame({case: slot_costs(study, case) for case in CASES})
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(tz)
    daily = frame.groupby(frame.index.date).sum()
    daily.index.name = f"day ({tz})"
    daily["v2g_vs_uncontrolled_eur"] = daily["uncontrolled"] - daily["v2g"]
    daily["v2g_vs_smart_eur"] = daily["smart"] - daily["v2g"]
    return daily


def arbitrage_figure(study: ArbitrageStudy, tz: str = DEFAULT_TZ) -> Figure:
    """Price; fleet EV power per case (V2G's charge and discharge shaded); cumulative cost."""
    grid = study.grid
    edges = slot_edges(grid, tz)
    frame = power_frame(study)
    fig = Figure(figsize=(12.0, 9.0), layout="constrained")
    ax_price, ax_power, ax_cost = fig.subplots(3, 1, sharex=True)

    ax_price.step(edges, hold(frame["price_eur_per_mwh"]), where="post", color="0.2", lw=1.0)
    ax_price.axhline(0.0, color="0.6", lw=0.6)
    ax_price.set_ylabel("day-ahead price\n[EUR/MWh]")
    ax_price.set_title("NL day-ahead price")

    ax_power.fill_between(
        edges,
        0,
        hold(frame["v2g_charge_kw"]),
        step="post",
        color="tab:green",
        alpha=0.35,
        label="V2G plan: charging",
    )
    ax_power.fill_between(
        edges,
        0,
        hold(frame["v2g_discharge_kw"]),
        step="post",
        color="tab:red",
        alpha=0.35,
        label="V2G plan: discharging",
    )
    for case in ("uncontrolled", "smart"):
        ax_power.step(
            edges,
            hold(frame[f"{case}_ev_kw"]),
            where="post",
            color=_COLORS[case],
            lw=0.9,
            ls="-" if case == "uncontrolled" else "--",
            label=CASE_LABELS[case],
        )
    ax_power.axhline(0.0, color="0.6", lw=0.6)
    ax_power.set_ylabel("fleet EV power [kW]\n(+ charge, - discharge)")
    ax_power.set_title("what the fleet does")
    ax_power.legend(**LEGEND)

    times = local_naive(pd.DatetimeIndex(frame.index) + pd.Timedelta(grid.step), tz)
    for case in CASES:
        ax_cost.plot(
            times,
            slot_costs(study, case).cumsum().to_numpy(),
            color=_COLORS[case],
            label=f"{CASE_LABELS[case]}: {study.plans[case].cost.energy_cost:,.0f} EUR",
        )
    ax_cost.set_ylabel("cumulative energy\ncost [EUR]")
    ax_cost.set_title("energy cost at the meters (import - export + degradation)")
    ax_cost.legend(**LEGEND)
    time_axis(ax_cost, tz)
    start = pd.Timestamp(grid.start).tz_convert(tz)
    fig.suptitle(f"V2G arbitrage, week from {start:%a %d %b %Y %H:%M} ({tz})")
    return fig


def cost_figure(study: ArbitrageStudy) -> Figure:
    """Per case, the week's import cost, export revenue and degradation cost as bars [EUR]."""
    table = cost_table(study)
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(table))
    width = 0.25
    parts = (
        ("import_cost_eur", 1.0, "import cost", "tab:orange"),
        ("export_revenue_eur", -1.0, "export revenue (-)", "tab:green"),
        ("degradation_cost_eur", 1.0, "degradation cost", "tab:red"),
    )
    for j, (column, sign, label, color) in enumerate(parts):
        ax.bar(x + (j - 1) * width, sign * table[column], width, label=label, color=color)
    ax.scatter(x, table["energy_cost_eur"], color="k", zorder=3, label="net energy cost")
    for xi, value in zip(x, table["energy_cost_eur"], strict=True):
        ax.annotate(f"{value:,.0f}", (xi, value), textcoords="offset points", xytext=(8, 4))
    ax.set_xticks(x, [c.split(" (")[0] for c in table.index])
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_ylabel("EUR over the week")
    ax.set_title("the week's energy cost, by part")
    ax.legend(**LEGEND)
    return fig
