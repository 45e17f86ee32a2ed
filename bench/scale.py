"""Monolithic fleet LP vs the per-site decomposition on Dask, at 1,000 and 10,000 vehicles.

    python bench/scale.py                 # 1k monolithic + decomposed, 10k decomposed
    python bench/scale.py --quick         # 1k only
    python bench/scale.py --mono-10k      # also the 10k monolithic LP (gap measurable there)

Each case runs in a fresh Python process so its peak memory (``ru_maxrss``: the process's
peak resident set, Dask workers included as they are threads here) is its own. Fleets are
``bench/fleets.synthetic_fleet`` (50 chargers per site, 96 slots of 15 min, one fleet-wide
evening cap). The decomposition runs on a two-worker ``LocalCluster`` (threads). The cost gap is
(decomposed - monolithic) / |monolithic| on the planner's total objective (penalties included);
``bound_gap`` is the decomposition's own gap to its best Lagrangian lower bound. Results: a
table on stdout and JSON in ``bench/results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_case(kind: str, n: int, max_iter: int, cap_per_site: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from dataclasses import replace

    from bench.fleets import synthetic_fleet
    from models.decomposition import DecompositionSettings, plan_decomposed
    from models.planner.planner import PyomoPlanner

    problem = synthetic_fleet(n)
    if cap_per_site > 0:
        (event,) = problem.events
        event = replace(event, cap_kw=cap_per_site * len(problem.sites))
        problem = replace(problem, events=(event,))
    start = time.perf_counter()
    row: dict[str, Any] = {
        "kind": kind,
        "vehicles": n,
        "sites": len(problem.sites),
        "cap_per_site_kw": cap_per_site or 110.0,
    }
    if kind == "monolithic":
        plan = PyomoPlanner(builder="direct").plan(problem)
        row.update(iterations=1, solver_path=plan.solver_path)
    else:
        res = plan_decomposed(problem, DecompositionSettings(max_iterations=max_iter))
        plan = res.plan
        row.update(
            iterations=res.iterations,
            converged=res.converged,
            recovery=res.recovery,
            bound_gap=res.gap,
            lower_bound=res.lower_bound,
            max_cap_excess_kw=res.max_cap_excess_kw,
            solver_path=plan.solver_path,
        )
    row["wall_s"] = time.perf_counter() - start
    row["cost_total"] = plan.cost.total
    row["energy_cost"] = plan.cost.energy_cost
    row["event_violation_kwh"] = sum(e.violation_kwh for e in plan.events)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return row


def spawn(kind: str, n: int, max_iter: int, cap: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--case", kind, str(n)),
            *("--max-iter", str(max_iter), "--cap-per-site", str(cap)),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mono-10k", action="store_true")
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--cap-per-site", type=float, default=0.0, help="0: the fleet's 110 kW")
    parser.add_argument("--case", nargs=2, metavar=("KIND", "N"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = parser.parse_args()
    if args.case:
        print(
            json.dumps(run_case(args.case[0], int(args.case[1]), args.max_iter, args.cap_per_site))
        )
        return
    # The fleet's own evening cap (110 kW per site) does not bind; 60 kW per site does.
    cases = [(k, 1000, c) for c in (0.0, 60.0) for k in ("monolithic", "decomposed")]
    if not args.quick:
        if args.mono_10k:
            cases.append(("monolithic", 10_000, 60.0))
        cases.append(("decomposed", 10_000, 60.0))
    rows = []
    for kind, n, cap in cases:
        row = spawn(kind, n, args.max_iter, cap)
        same = (n, row["cap_per_site_kw"])
        mono = next(
            (
                r
                for r in rows
                if r["kind"] == "monolithic" and (r["vehicles"], r["cap_per_site_kw"]) == same
            ),
            None,
        )
        if kind == "decomposed" and mono is not None:
            row["cost_gap"] = (row["cost_total"] - mono["cost_total"]) / abs(mono["cost_total"])
        rows.append(row)
        print(
            f"{kind:>10} {n:>6} veh {row['sites']:>4} sites cap {row['cap_per_site_kw']:>5.0f}  "
            f"wall {row['wall_s']:7.2f} s  "
            f"iter {row['iterations']:>3}  gap {row.get('cost_gap', float('nan')):+.4%}  "
            f"bound_gap {row.get('bound_gap', float('nan')):.4%}  "
            f"recovery {row.get('recovery', '-'):>10}  peak {row['peak_rss_mb']:7.0f} MB",
            flush=True,
        )
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "max_iterations": args.max_iter,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cases": rows}, indent=2))


if __name__ == "__main__":
    main()
