"""Benchmark the fleet planner against the same LP built directly with highspy arrays.

    python bench/planner.py            # 100, 1,000, 10,000 vehicles and the Caltech month
    python bench/planner.py --quick    # without the 10,000-vehicle fleet

Both paths start from the same ``FleetProblem`` and run interleaved in one process, so the
ratio (ours / reference) is fair on a noisy machine. "ours" is the production path: the Pyomo
model compiled by Pyomo's standard-form compiler and solved by HiGHS; the reference hands
arrays built with numpy straight to highspy. Results: a table on stdout and JSON in
``bench/results/planner.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pyomo
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fleets import synthetic_fleet  # noqa: E402

from aggregator.domain import FleetProblem, Plan  # noqa: E402
from aggregator.scenario import load_scenario  # noqa: E402
from models.envelope import uncontrolled_powers  # noqa: E402
from models.planner import PlannerSettings, PyomoPlanner, compile_problem  # noqa: E402
from models.planner.evaluate import build_plan  # noqa: E402


def caltech_march() -> FleetProblem:
    """All March 2019 Caltech sessions as one month-long LP (``scenarios/caltech_2019-03.yaml``)."""
    return load_scenario(HERE / "scenarios" / "caltech_2019-03.yaml")


@dataclass
class Case:
    name: str
    make: Callable[[], FleetProblem]
    repeats: int


def uncontrolled_cost(problem: FleetProblem, settings: PlannerSettings) -> Plan:
    cp = compile_problem(problem)
    pc = uncontrolled_powers(cp)
    return build_plan(
        cp,
        pc,
        np.zeros_like(pc),
        np.zeros((cp.batt_site.size, cp.n_slots)),
        settings,
        solver_path="heuristic",
        solver_status="uncontrolled",
    )


def run_case(case: Case, settings: PlannerSettings) -> dict[str, Any]:
    problem = case.make()
    cp = compile_problem(problem)
    runs: dict[str, list[dict[str, float]]] = {"pyomo": [], "direct": []}
    plans: dict[str, Plan] = {}
    for _ in range(case.repeats):
        for builder in ("direct", "pyomo"):  # interleaved: both see the same machine load
            start = time.perf_counter()
            plan = PyomoPlanner(settings, builder=builder).plan(problem)
            wall = time.perf_counter() - start
            runs[builder].append({**plan.timings_s, "wall_s": wall})
            plans[builder] = plan

    def med(builder: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in runs[builder])

    ours, ref = plans["pyomo"], plans["direct"]
    base = uncontrolled_cost(problem, settings)
    row = {
        "case": case.name,
        "vehicles": len(problem.vehicles),
        "sessions": len(problem.sessions),
        "slots": problem.grid.n_slots,
        "session_slots": cp.n_session_slots,
        "repeats": case.repeats,
        "status": ours.solver_status,
        "path": ours.solver_path,
        "ours_build_s": med("pyomo", "compile_s") + med("pyomo", "build_s"),
        "ours_solve_s": med("pyomo", "solve_s"),
        "ours_total_s": med("pyomo", "wall_s"),
        "ref_build_s": med("direct", "compile_s") + med("direct", "build_s"),
        "ref_solve_s": med("direct", "solve_s"),
        "ref_total_s": med("direct", "wall_s"),
        "objective_ours": ours.cost.total,
        "objective_ref": ref.cost.total,
        "energy_cost": ours.cost.energy_cost,
        "uncontrolled_energy_cost": base.cost.energy_cost,
        "uncontrolled_site_limit_excess_kwh": base.cost.site_limit_penalty
        / settings.site_limit_penalty_per_mwh
        * 1000.0,
        "shortfall_kwh": ours.total_shortfall_kwh,
        "uncontrolled_shortfall_kwh": base.total_shortfall_kwh,
        "runs": runs,
    }
    row["ratio"] = row["ours_total_s"] / row["ref_total_s"]
    row["saving_pct"] = 100.0 * (1 - row["energy_cost"] / row["uncontrolled_energy_cost"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-vehicle fleet")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "planner.json")
    args = parser.parse_args()
    settings = PlannerSettings(time_limit_s=600.0)
    cases = [
        Case("fleet-100", lambda: synthetic_fleet(100), 5),
        Case("fleet-1000", lambda: synthetic_fleet(1000), 5),
        Case("caltech-2019-03", caltech_march, 3),
    ]
    if not args.quick:
        cases.append(Case("fleet-10000", lambda: synthetic_fleet(10_000), 1))
    console = Console(width=200)
    rows = []
    for case in cases:
        console.print(f"[dim]running {case.name} ({case.repeats} repeats per path)...[/dim]")
        rows.append(run_case(case, settings))

    table = Table(title="Fleet planner: Pyomo path vs direct highspy reference (medians)")
    for col in (
        "case",
        "vehicles",
        "session-slots",
        "build s",
        "solve s",
        "total s",
        "ref total s",
        "ours/ref",
        "cost EUR",
        "uncontrolled EUR",
        "saving",
        "shortfall kWh",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["case"],
            f"{r['vehicles']:,}",
            f"{r['session_slots']:,}",
            f"{r['ours_build_s']:.2f}",
            f"{r['ours_solve_s']:.2f}",
            f"{r['ours_total_s']:.2f}",
            f"{r['ref_total_s']:.2f}",
            f"{r['ratio']:.2f}x",
            f"{r['energy_cost']:,.0f}",
            f"{r['uncontrolled_energy_cost']:,.0f}",
            f"{r['saving_pct']:.1f} %",
            f"{r['shortfall_kwh']:.1f}",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "pyomo": pyomo.version.version,
        "highspy": highspy.Highs().version(),
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps({"meta": meta, "cases": rows}, indent=2))
    console.print(f"JSON written to {args.out}")


if __name__ == "__main__":
    main()
