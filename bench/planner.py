"""Benchmark the production fleet planner against a bare highspy build and solve of the same LP.

    python bench/planner.py            # 100, 1,000, 10,000 vehicles and the Caltech month
    python bench/planner.py --quick    # without the 10,000-vehicle fleet

Three paths start from the same ``FleetProblem`` and run interleaved in one process (each
repeat runs every path once, in alternating order, after a garbage collection), so the ratios
are fair on a noisy, shared machine. Wall time is the measure; process CPU time is reported
beside it because other jobs on the machine move it far less:

- **ours**: the production planner, ``PyomoPlanner(settings).plan(problem)`` (the lean array
  build), wall time of the whole call: compile, build the LP arrays, HiGHS, and extracting the
  ``Plan`` (schedules, SoC, site power, costs, outcomes, event results).
- **ref**: the least a direct highspy user would do for the identical LP: compile, build the
  arrays (``build_direct``), pass them to ``highspy.Highs``, run, read ``col_value``. Nothing
  else: no status handling beyond the model status, no plan.
- **pyomo**: the same planner with ``builder="pyomo"``, the readable Pyomo model compiled by
  Pyomo's standard-form compiler (the reference statement of the LP, not the production path).
  ``--no-pyomo-10k`` skips it on the 10,000-vehicle fleet.

Objectives: every path's plan is costed by the same ``build_plan`` (the reference's solution is
turned into a plan outside its timed region), and the table shows the relative differences
against the reference's. The reference's LP objective is in the JSON as well.

Results: a table on stdout and JSON in ``bench/results/planner.json`` (not committed).
"""

from __future__ import annotations

import argparse
import gc
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
from models.planner.direct import build_direct  # noqa: E402
from models.planner.evaluate import build_plan  # noqa: E402
from models.planner.layout import layout_of, powers_from_solution  # noqa: E402


def caltech_march() -> FleetProblem:
    """All March 2019 Caltech sessions as one month-long LP (``scenarios/caltech_2019-03.yaml``)."""
    return load_scenario(HERE / "scenarios" / "caltech_2019-03.yaml")


@dataclass
class Case:
    name: str
    make: Callable[[], FleetProblem]
    repeats: int
    pyomo_repeats: int


@dataclass
class RefResult:
    x: np.ndarray[Any, np.dtype[np.float64]]
    objective: float
    status: str
    timings_s: dict[str, float]


def reference_solve(problem: FleetProblem, settings: PlannerSettings) -> RefResult:
    """Compile, build the arrays, hand them to highspy, run, read col_value. Nothing else."""
    if any(e.shed_kw is not None for e in problem.events):
        raise ValueError("the reference has no shed baseline solve; use cap events only")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    cp = compile_problem(problem)
    lp, _ = build_direct(cp, settings)
    t1 = time.perf_counter()
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(settings.threads))
    h.setOptionValue("time_limit", float(settings.time_limit_s))
    n_rows, n_cols = lp.shape
    # highspy's fastest route: the array form of passModel (CSC starts without the last).
    h.passModel(
        n_cols,
        n_rows,
        int(lp.a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        lp.c,
        lp.col_lb,
        lp.col_ub,
        lp.row_lb,
        lp.row_ub,
        lp.a.indptr[:-1].astype(np.int32),
        lp.a.indices.astype(np.int32),
        lp.a.data,
        np.zeros(n_cols, dtype=np.int32),
    )
    t2 = time.perf_counter()
    h.run()
    t3 = time.perf_counter()
    x = np.asarray(h.getSolution().col_value, dtype=float)
    t4 = time.perf_counter()
    cpu = time.process_time() - cpu0
    status = h.modelStatusToString(h.getModelStatus()).lower()
    objective = float(h.getInfo().objective_function_value)
    timings = {
        "build_s": t1 - t0,
        "pass_s": t2 - t1,
        "solve_s": t3 - t2,
        "read_s": t4 - t3,
        "wall_s": t4 - t0,
        "cpu_s": cpu,
    }
    return RefResult(x, objective, status, timings)


def reference_plan(problem: FleetProblem, ref: RefResult, settings: PlannerSettings) -> Plan:
    """The reference's solution costed by the shared evaluator (outside any timed region)."""
    cp = compile_problem(problem)
    pc, pd, batt = powers_from_solution(cp, layout_of(cp), ref.x)
    return build_plan(cp, pc, pd, batt, settings, solver_path="lp", solver_status=ref.status)


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


def timed_plan(planner: PyomoPlanner, problem: FleetProblem) -> tuple[Plan, dict[str, float]]:
    cpu0 = time.process_time()
    start = time.perf_counter()
    plan = planner.plan(problem)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    if plan.solver_path != "lp":
        raise RuntimeError(f"{planner.builder} path ended in the heuristic: {plan.solver_status}")
    t = plan.timings_s
    return plan, {
        "build_s": t.get("compile_s", 0.0) + t.get("build_s", 0.0),
        "solve_s": t.get("solve_s", 0.0),
        "extract_s": t.get("extract_s", 0.0),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def run_case(case: Case, settings: PlannerSettings, console: Console) -> dict[str, Any]:
    problem = case.make()
    cp = compile_problem(problem)
    ours_planner = PyomoPlanner(settings)  # the production default
    pyomo_planner = PyomoPlanner(settings, builder="pyomo")
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "ref": [], "pyomo": []}
    plans: dict[str, Plan] = {}
    ref: RefResult | None = None
    for rep in range(case.repeats):
        order = ["ref", "ours", "pyomo"] if rep % 2 == 0 else ["ours", "ref", "pyomo"]
        for path in order:
            if path == "pyomo" and rep >= case.pyomo_repeats:
                continue
            gc.collect()
            if path == "ref":
                ref = reference_solve(problem, settings)
                runs["ref"].append(ref.timings_s)
            else:
                planner = ours_planner if path == "ours" else pyomo_planner
                plans[path], timings = timed_plan(planner, problem)
                runs[path].append(timings)
            wall = runs[path][-1]["wall_s"]
            console.print(f"[dim]  {case.name} repeat {rep + 1}: {path} {wall:.2f} s[/dim]")
    assert ref is not None
    plans["ref"] = reference_plan(problem, ref, settings)

    def med(path: str, key: str) -> float | None:
        values = [r[key] for r in runs[path] if key in r]
        return statistics.median(values) if values else None

    ours_total, ref_total = med("ours", "wall_s"), med("ref", "wall_s")
    pyomo_total = med("pyomo", "wall_s")
    ours_cpu, ref_cpu, pyomo_cpu = med("ours", "cpu_s"), med("ref", "cpu_s"), med("pyomo", "cpu_s")
    assert ours_cpu is not None and ref_cpu is not None
    # Each repeat ran ours and ref back to back: the median of their ratios resists load that
    # drifts over the run better than the ratio of the medians.
    paired = statistics.median(
        o["wall_s"] / r["wall_s"] for o, r in zip(runs["ours"], runs["ref"], strict=True)
    )
    assert ours_total is not None and ref_total is not None
    cost = {path: plan.cost.total for path, plan in plans.items()}
    base = uncontrolled_cost(problem, settings)
    ours = plans["ours"]
    return {
        "case": case.name,
        "vehicles": len(problem.vehicles),
        "sessions": len(problem.sessions),
        "slots": problem.grid.n_slots,
        "session_slots": cp.n_session_slots,
        "repeats": case.repeats,
        "pyomo_repeats": len(runs["pyomo"]),
        "status": ours.solver_status,
        "ref_status": ref.status,
        "ours_build_s": med("ours", "build_s"),
        "ours_solve_s": med("ours", "solve_s"),
        "ours_extract_s": med("ours", "extract_s"),
        "ours_total_s": ours_total,
        "ref_build_s": med("ref", "build_s"),
        "ref_solve_s": med("ref", "solve_s"),
        "ref_total_s": ref_total,
        "pyomo_build_s": med("pyomo", "build_s"),
        "pyomo_solve_s": med("pyomo", "solve_s"),
        "pyomo_total_s": pyomo_total,
        "ratio_ours_ref": ours_total / ref_total,
        "ratio_ours_ref_paired": paired,
        "ours_cpu_s": ours_cpu,
        "ref_cpu_s": ref_cpu,
        "pyomo_cpu_s": pyomo_cpu,
        "ratio_ours_ref_cpu": ours_cpu / ref_cpu,
        "ratio_pyomo_ref_cpu": pyomo_cpu / ref_cpu if pyomo_cpu is not None else None,
        "ratio_pyomo_ref": pyomo_total / ref_total if pyomo_total is not None else None,
        "cost_ours": cost["ours"],
        "cost_ref": cost["ref"],
        "cost_pyomo": cost.get("pyomo"),
        "lp_objective_ref": ref.objective,
        "rel_diff_ours_ref": rel_diff(cost["ours"], cost["ref"]),
        "rel_diff_pyomo_ref": rel_diff(cost["pyomo"], cost["ref"]) if "pyomo" in cost else None,
        "energy_cost": ours.cost.energy_cost,
        "uncontrolled_energy_cost": base.cost.energy_cost,
        "uncontrolled_site_limit_excess_kwh": base.cost.site_limit_penalty
        / settings.site_limit_penalty_per_mwh
        * 1000.0,
        "saving_pct": 100.0 * (1 - ours.cost.energy_cost / base.cost.energy_cost),
        "shortfall_kwh": ours.total_shortfall_kwh,
        "uncontrolled_shortfall_kwh": base.total_shortfall_kwh,
        "runs": runs,
    }


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "skipped" if value is None else f"{value:{spec}}{suffix}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-vehicle fleet")
    parser.add_argument(
        "--no-pyomo-10k", action="store_true", help="skip the Pyomo path at 10,000 vehicles"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "planner.json")
    args = parser.parse_args()
    settings = PlannerSettings(time_limit_s=600.0)
    cases = [
        Case("fleet-100", lambda: synthetic_fleet(100), 7, 7),
        Case("fleet-1000", lambda: synthetic_fleet(1000), 9, 3),
        Case("caltech-2019-03", caltech_march, 5, 3),
    ]
    if not args.quick:
        cases.append(
            Case("fleet-10000", lambda: synthetic_fleet(10_000), 3, 0 if args.no_pyomo_10k else 1)
        )
    console = Console(width=240)
    rows = []
    for case in cases:
        console.print(
            f"[dim]running {case.name} ({case.repeats} repeats of ours and ref, "
            f"{case.pyomo_repeats} of pyomo)...[/dim]"
        )
        rows.append(run_case(case, settings, console))

    table = Table(
        title="Fleet planner: production (lean array) path vs a bare highspy build and solve of "
        "the same LP, and the Pyomo reference build (medians, interleaved)"
    )
    for col in (
        "case",
        "vehicles",
        "session-slots",
        "ours build s",
        "ours solve s",
        "ours extract s",
        "ours total s",
        "ref total s",
        "pyomo total s",
        "ours/ref",
        "paired",
        "CPU ours/ref",
        "pyomo/ref",
        "cost EUR",
        "Δ ours/ref",
        "Δ pyomo/ref",
        "saving",
        "shortfall kWh",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["case"],
            f"{r['vehicles']:,}",
            f"{r['session_slots']:,}",
            f"{r['ours_build_s']:.3f}",
            f"{r['ours_solve_s']:.2f}",
            f"{r['ours_extract_s']:.3f}",
            f"{r['ours_total_s']:.2f}",
            f"{r['ref_total_s']:.2f}",
            fmt(r["pyomo_total_s"], ".2f"),
            f"{r['ratio_ours_ref']:.3f}x",
            f"{r['ratio_ours_ref_paired']:.3f}x",
            f"{r['ratio_ours_ref_cpu']:.3f}x",
            fmt(r["ratio_pyomo_ref"], ".2f", "x"),
            f"{r['cost_ours']:,.2f}",
            f"{r['rel_diff_ours_ref']:.1e}",
            fmt(r["rel_diff_pyomo_ref"], ".1e"),
            f"{r['saving_pct']:.1f} %",
            f"{r['shortfall_kwh']:.1f}",
        )
    console.print(table)
    console.print(
        "ours/ref = median ours total / median ref total; paired = median over repeats of "
        "ours/ref measured back to back; CPU = the same with process CPU time, which machine "
        "load barely moves (HiGHS runs on one thread). cost = plan cost incl. penalties, "
        "every path's plan costed by the same build_plan; Δ = |cost - ref cost| / "
        "max(1, |ref cost|); saving = energy cost vs uncontrolled"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "pyomo": pyomo.version.version,
        "highspy": highspy.Highs().version(),  # type: ignore[no-untyped-call]
        "machine": platform.machine(),
        "time_limit_s": settings.time_limit_s,
        "threads": settings.threads,
    }
    args.out.write_text(json.dumps({"meta": meta, "cases": rows}, indent=2))
    console.print(f"JSON written to {args.out}")


if __name__ == "__main__":
    main()
