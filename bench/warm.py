"""Benchmark warm re-plans (issue 9, item 2): cold plan vs warm re-plan of a 1,000-vehicle fleet.

    python bench/warm.py               # 1,000 vehicles, 3 repeats
    python bench/warm.py --vehicles 200 --repeats 1

Per repeat and update: a fresh ``WarmPlanner`` plans the fleet cold (compile + build + solve +
extract, from the ``FleetProblem``), then re-plans warm after the update; then, interleaved,
a fresh ``WarmPlanner`` plans the updated state cold (same solver options: the ratio is the
warm start alone) and so does the production cold path, ``PyomoPlanner(builder="direct")``
with HiGHS' default options. Updates: the same state again, a price update (every price moved
by up to +-15 %, seeded), a telemetry-like SoC update (every session's SoC moved by up to +-5
points), a new event cap (a fleet-wide cap of 70 kW per site over hours 2-4: rows added),
a departure energy update (every session's target SoC moved by up to +-5 points) and the
horizon starting 5 minutes later (the runtime's next periodic re-plan: slot shares move and
sessions arriving or leaving cross slot boundaries, so the kept basis is carried over). Times
are wall seconds of ``plan()``, medians over repeats. Results: a table on stdout and JSON in
``bench/results/warm.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import highspy
import numpy as np
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from fleets import synthetic_fleet  # noqa: E402

from aggregator.domain import FleetProblem, GridEvent, Prices, TimeGrid  # noqa: E402
from models.planner import PlannerSettings, PyomoPlanner  # noqa: E402
from models.planner.warm import WarmPlanner  # noqa: E402


def price_update(problem: FleetProblem, seed: int) -> FleetProblem:
    rng = np.random.default_rng(seed)
    factor = 1.0 + rng.uniform(-0.15, 0.15, problem.grid.n_slots)
    imp = tuple(float(p * f) for p, f in zip(problem.prices.import_per_mwh, factor, strict=True))
    exp = tuple(float(p * f) for p, f in zip(problem.prices.export_per_mwh, factor, strict=True))
    return replace(problem, prices=Prices(imp, exp))


def soc_update(problem: FleetProblem, seed: int) -> FleetProblem:
    rng = np.random.default_rng(seed)
    sessions = []
    for s in problem.sessions:
        soc = float(np.clip(s.arrival_soc + rng.uniform(-0.05, 0.05), 0.05, 0.95))
        sessions.append(replace(s, arrival_soc=soc, min_soc=min(s.min_soc, soc)))
    return replace(problem, sessions=tuple(sessions))


def new_cap(problem: FleetProblem, _seed: int) -> FleetProblem:
    start = problem.grid.start + timedelta(hours=2)
    cap = GridEvent("dr-new", start, start + timedelta(hours=2), cap_kw=70.0 * len(problem.sites))
    return replace(problem, events=(*problem.events, cap))


def departure_update(problem: FleetProblem, seed: int) -> FleetProblem:
    rng = np.random.default_rng(seed)
    sessions = []
    for s in problem.sessions:
        target = s.target_soc if s.target_soc is not None else 0.8
        target = float(np.clip(target + rng.uniform(-0.05, 0.05), 0.5, 1.0))
        sessions.append(replace(s, target_soc=target))
    return replace(problem, sessions=tuple(sessions))


def roll(problem: FleetProblem, _seed: int) -> FleetProblem:
    """The horizon 5 minutes later, as the runtime's next periodic re-plan sees it."""
    g = problem.grid
    return replace(problem, grid=TimeGrid(g.start + timedelta(minutes=5), g.step, g.n_slots))


UPDATES: dict[str, Callable[[FleetProblem, int], FleetProblem]] = {
    "same state": lambda p, _seed: p,
    "price update": price_update,
    "SoC update": soc_update,
    "new event cap": new_cap,
    "departure energy": departure_update,
    "horizon +5 min": roll,
}


def timed(planner: PyomoPlanner, problem: FleetProblem) -> tuple[float, Any]:
    start = time.perf_counter()
    plan = planner.plan(problem)
    return time.perf_counter() - start, plan


def run(n_vehicles: int, repeats: int, settings: PlannerSettings) -> dict[str, Any]:
    base = synthetic_fleet(n_vehicles)
    cold_s: list[float] = []
    rows: dict[str, dict[str, list[float]]] = {
        name: {
            k: []
            for k in (
                "warm_s",
                "warm_solve_s",
                "iters",
                "cold_s",
                "cold_iters",
                "gap",
                "default_cold_s",
            )
        }
        for name in UPDATES
    }
    warm_flags: dict[str, str] = {}
    for rep in range(repeats):
        for name, update in UPDATES.items():
            warm = WarmPlanner(settings)
            t, first = timed(warm, base)
            cold_s.append(t)
            cold_iters = first.timings_s["iterations"]
            new = update(base, 100 + rep)
            t_warm, plan = timed(warm, new)
            warm_flags[name] = warm.last_kind
            t_cold, ref = timed(WarmPlanner(settings), new)
            t_default, _ = timed(PyomoPlanner(settings, builder="direct"), new)
            r = rows[name]
            r["default_cold_s"].append(t_default)
            r["warm_s"].append(t_warm)
            r["warm_solve_s"].append(plan.timings_s["solve_s"])
            r["iters"].append(plan.timings_s["iterations"])
            r["cold_s"].append(t_cold)
            r["cold_iters"].append(
                ref.timings_s["iterations"] if name != "same state" else cold_iters
            )
            r["gap"].append(abs(plan.cost.total - ref.cost.total) / max(1.0, abs(ref.cost.total)))
    out = []
    for name, r in rows.items():
        warm_med = statistics.median(r["warm_s"])
        cold_med = statistics.median(r["cold_s"])
        out.append(
            {
                "update": name,
                "warm": warm_flags[name],
                "default_cold_s": statistics.median(r["default_cold_s"]),
                "cold_s": cold_med,
                "warm_s": warm_med,
                "warm_solve_s": statistics.median(r["warm_solve_s"]),
                "cold_iterations": statistics.median(r["cold_iters"]),
                "warm_iterations": statistics.median(r["iters"]),
                "ratio": cold_med / warm_med,
                "max_rel_objective_gap": max(r["gap"]),
                "target_met": warm_med <= 0.3,
                "runs": r,
            }
        )
    return {
        "vehicles": n_vehicles,
        "sessions": len(base.sessions),
        "slots": base.grid.n_slots,
        "repeats": repeats,
        "cold_first_plan_s": statistics.median(cold_s),
        "updates": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "warm.json")
    args = parser.parse_args()
    settings = PlannerSettings(time_limit_s=600.0)
    console = Console(width=160)
    console.print(f"[dim]{args.vehicles} vehicles, {args.repeats} repeats...[/dim]")
    result = run(args.vehicles, args.repeats, settings)
    table = Table(
        title=f"Warm re-plan vs cold plan, {args.vehicles:,} vehicles x 96 slots (medians, s)"
    )
    for col in (
        "update",
        "warm path",
        "cold (default HiGHS) s",
        "cold plan s",
        "warm re-plan s",
        "of which solve s",
        "cold/warm",
        "iters cold",
        "iters warm",
        "obj gap",
        "<= 0.3 s",
    ):
        table.add_column(col, justify="right")
    for r in result["updates"]:
        table.add_row(
            r["update"],
            r["warm"],
            f"{r['default_cold_s']:.3f}",
            f"{r['cold_s']:.3f}",
            f"{r['warm_s']:.3f}",
            f"{r['warm_solve_s']:.3f}",
            f"{r['ratio']:.1f}x",
            f"{r['cold_iterations']:,.0f}",
            f"{r['warm_iterations']:,.0f}",
            f"{r['max_rel_objective_gap']:.1e}",
            "yes" if r["target_met"] else "no",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "highspy": highspy.Highs().version(),
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps({"meta": meta, **result}, indent=2))
    console.print(f"JSON written to {args.out}")


if __name__ == "__main__":
    main()
