"""plan.png: per site, net power against its limits over time, with prices and events.

Uses matplotlib's object API (``Figure``) rather than pyplot, so no GUI backend or global figure
state is involved: safe in a CLI, a server or a test run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from aggregator.domain import FleetProblem, FlexibilityEnvelope, Plan, Site, TimeGrid

# Legends sit right of the panels so they never hide the curves.
_LEGEND: dict[str, Any] = {
    "loc": "upper left",
    "bbox_to_anchor": (1.07, 1.0),
    "fontsize": "small",
    "frameon": False,
}


def _edges(grid: TimeGrid) -> np.ndarray:
    """Slot boundaries as naive-UTC datetime64, which matplotlib plots as dates."""
    start = np.datetime64(grid.start.astimezone(UTC).replace(tzinfo=None), "s")
    step = np.timedelta64(int(grid.step.total_seconds()), "s")
    return start + step * np.arange(grid.n_slots + 1)


def _day_number(when: datetime) -> float:
    # matplotlib.dates ships without type hints; date2num is its documented conversion.
    return float(mdates.date2num(when))  # type: ignore[no-untyped-call]


def _hold(values: Sequence[float]) -> list[float]:
    """Values for slot edges: a step plot of n slots needs n + 1 points."""
    return [*values, values[-1]] if values else []


def _ev_power_kw(plan: Plan) -> list[float]:
    total = [0.0] * plan.grid.n_slots
    for s in plan.schedules:
        for offset, p in enumerate(s.power_kw):
            total[s.first_slot + offset] += p
    return total


def _site_panel(ax: Axes, plan: Plan, problem: FleetProblem, site: Site) -> None:
    grid = problem.grid
    edges = _edges(grid)
    power = plan.site_power_kw.get(site.site_id, ())
    if power:
        ax.step(edges, _hold(power), where="post", color="tab:blue", label="net site power")
    battery = plan.site_battery_kw.get(site.site_id, ())
    if battery:
        ax.step(edges, _hold(battery), where="post", color="tab:cyan", ls=":", label="site battery")
    ax.axhline(site.import_limit_kw, color="tab:red", ls="--", label="import limit")
    if site.export_limit_kw > 0:
        ax.axhline(-site.export_limit_kw, color="tab:purple", ls="--", label="export limit")
    ax.axhline(0.0, color="0.6", lw=0.6)
    for event in problem.events:
        if site.site_id in problem.event_sites(event):
            kind = "cap" if event.cap_kw is not None else "shed"
            ax.axvspan(
                _day_number(max(event.start, grid.start)),
                _day_number(min(event.end, grid.end)),
                color="tab:orange" if kind == "cap" else "tab:green",
                alpha=0.15,
                label=f"{event.event_id} ({kind})",
            )
    ax.set_title(f"site {site.site_id}")
    ax.set_ylabel("power [kW]  (+ import)")
    prices = ax.twinx()
    prices.step(
        edges,
        _hold(problem.prices.import_per_mwh),
        where="post",
        color="0.35",
        lw=0.8,
        label="import price",
    )
    prices.set_ylabel("price [EUR/MWh]")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = prices.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, **_LEGEND)


def _envelope_panel(ax: Axes, plan: Plan, envelope: FlexibilityEnvelope) -> None:
    grid = envelope.grid
    edges = _edges(grid)
    ax.fill_between(
        edges,
        _hold(envelope.min_kw),
        _hold(envelope.max_kw),
        step="post",
        color="tab:blue",
        alpha=0.2,
        label="flexibility envelope",
    )
    ax.step(edges, _hold(envelope.baseline_kw), where="post", color="0.4", label="uncontrolled")
    ax.step(edges, _hold(_ev_power_kw(plan)), where="post", color="tab:blue", label="planned")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_title("fleet EV power")
    ax.set_ylabel("power [kW]")
    ax.legend(**_LEGEND)


def plan_figure(
    plan: Plan, problem: FleetProblem, envelope: FlexibilityEnvelope | None = None
) -> Figure:
    """One panel per site, plus the fleet's flexibility envelope when there is one."""
    n_panels = len(problem.sites) + (1 if envelope is not None else 0)
    fig = Figure(figsize=(11.0, 3.2 * n_panels), layout="constrained")
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    for ax, site in zip(axes, problem.sites, strict=False):
        _site_panel(ax, plan, problem, site)
    if envelope is not None:
        _envelope_panel(axes[-1], plan, envelope)
    last: Axes = axes[-1]
    formatter = mdates.DateFormatter("%H:%M\n%d %b", tz=UTC)  # type: ignore[no-untyped-call]
    last.xaxis.set_major_formatter(formatter)
    last.set_xlabel("time (UTC)")
    start: datetime = problem.grid.start
    fig.suptitle(f"plan from {start:%Y-%m-%d %H:%M} UTC ({plan.solver_path})")
    return fig


def write_plan_png(
    plan: Plan, problem: FleetProblem, envelope: FlexibilityEnvelope | None, path: Path
) -> None:
    plan_figure(plan, problem, envelope).savefig(path, dpi=110)
