"""The planner at scale: monolithic LP vs the per-site decomposition on Dask, 1k to 100k vehicles.

    python bench/scale.py            # 1k and 10k (monolithic and decomposed), 100k decomposed,
                                     # and the event-to-setpoint latency at 1,000 vehicles
    python bench/scale.py --quick    # 1k only, and the latency

Fleets are ``bench/fleets.synthetic_fleet``: 1k and 10k vehicles on depots of 50 chargers over
24 h (96 slots of 15 min); 100k vehicles on 1,000 depots of 100 over 48 h, a session per
vehicle per day, in hourly slots (48; the day-ahead prices are hourly, and the control loop
re-plans each site at 15 min). ``--quarter-48h`` adds 10k vehicles on 100 depots of 100 over 48 h
at 15 min (192 slots), to show what that resolution costs. Every day has a fleet-wide evening
cap; at 60 kW per site it binds (the fleets' own 110 kW does not), so the decomposition must
coordinate the sites.

Each case runs in a fresh Python process so its memory is its own. The decomposition runs on a
``LocalCluster`` of two worker processes started before the clock starts (start-up is reported
apart); wall time covers splitting, every round, the master LPs and assembling the plan. Peak
memory: the main process's peak resident set plus each worker's. The cost gap is (decomposed -
monolithic) / |monolithic| on the planner's objective (penalties included), where the
monolithic LP solves; ``bound gap`` is the decomposition's own certificate: its plan's objective
against its best Lagrangian lower bound, the only gap there is at 100k. Results: a table on
stdout and JSON in ``bench/results/scale.json``.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUARTER = timedelta(minutes=15)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# Fleet layouts: (slots, chargers per site, slot length).
LAYOUTS = {
    "day": (96, 50, QUARTER),
    "2days-hourly": (48, 100, timedelta(hours=1)),
    "2days-quarter": (192, 100, QUARTER),
}


def run_case(kind: str, n: int, cap_per_site: float, max_iter: int, layout: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from dataclasses import replace

    from dask.distributed import Client, LocalCluster

    from bench.fleets import synthetic_fleet
    from models.decomposition import DecompositionSettings, plan_decomposed
    from models.planner.planner import PyomoPlanner

    slots, per_site, step = LAYOUTS[layout]
    problem = synthetic_fleet(n, n_slots=slots, chargers_per_site=per_site, step=step)
    events = tuple(replace(e, cap_kw=cap_per_site * len(problem.sites)) for e in problem.events)
    problem = replace(problem, events=events)
    row: dict[str, Any] = {
        "kind": kind,
        "vehicles": n,
        "layout": layout,
        "sites": len(problem.sites),
        "sessions": len(problem.sessions),
        "slots": slots,
        "step_min": step.total_seconds() / 60,
        "cap_per_site_kw": cap_per_site,
    }
    if kind == "monolithic":
        start = time.perf_counter()
        plan = PyomoPlanner(builder="direct").plan(problem)
        row.update(iterations=1, solver_path=plan.solver_path, wall_s=time.perf_counter() - start)
        row["peak_rss_mb"] = _peak_mb()
    else:
        start = time.perf_counter()
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)  # type: ignore[no-untyped-call]
        row["cluster_start_s"] = time.perf_counter() - start
        start = time.perf_counter()
        res = plan_decomposed(
            problem, DecompositionSettings(max_iterations=max_iter), scheduler=client
        )
        row["wall_s"] = time.perf_counter() - start
        workers = client.run(_peak_mb)  # type: ignore[no-untyped-call]
        client.close()  # type: ignore[no-untyped-call]
        cluster.close()  # type: ignore[no-untyped-call]
        plan = res.plan
        row.update(
            iterations=res.iterations,
            converged=res.converged,
            recovery=res.recovery,
            bound_gap=res.gap,
            lower_bound=res.lower_bound,
            max_cap_excess_kw=res.max_cap_excess_kw,
            solver_path=plan.solver_path,
            timings_s=res.timings_s,
            peak_rss_mb=_peak_mb() + sum(workers.values()),
            worker_peak_rss_mb=workers,
        )
    row["cost_total"] = plan.cost.total
    row["energy_cost"] = plan.cost.energy_cost
    row["shortfall_kwh"] = plan.total_shortfall_kwh
    row["event_violation_kwh"] = sum(e.violation_kwh for e in plan.events)
    return row


def spawn(kind: str, n: int, cap: float, max_iter: int, layout: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--case", kind, str(n)),
            *("--cap-per-site", str(cap), "--max-iter", str(max_iter), "--layout", layout),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def latency(repeats: int) -> dict[str, Any] | None:
    """Event-to-setpoint latency at 1,000 vehicles (``bench/latency.py``), if it is there."""
    try:
        sys.path.insert(0, str(HERE))
        from latency import measure  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return dict(measure(n_vehicles=1000, repeats=repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k only (and the latency)")
    parser.add_argument("--max-iter", type=int, default=40)
    parser.add_argument("--cap-per-site", type=float, default=60.0)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument(
        "--quarter-48h", action="store_true", help="also 10k vehicles, 100 per site, 48 h at 15 min"
    )
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="day")
    parser.add_argument("--case", nargs=2, metavar=("KIND", "N"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = parser.parse_args()
    if args.case:
        kind, n = args.case[0], int(args.case[1])
        print(json.dumps(run_case(kind, n, args.cap_per_site, args.max_iter, args.layout)))
        return
    cap = args.cap_per_site
    cases = [(k, 1000, 110.0, "day") for k in ("monolithic", "decomposed")]
    cases += [(k, 1000, cap, "day") for k in ("monolithic", "decomposed")]
    if not args.quick:
        cases += [(k, 10_000, cap, "day") for k in ("monolithic", "decomposed")]
        cases += [("decomposed", 100_000, cap, "2days-hourly")]
    if args.quarter_48h:
        cases += [("decomposed", 10_000, cap, "2days-quarter")]
    rows: list[dict[str, Any]] = []
    header = (
        f"{'kind':>10} {'vehicles':>8} {'sites':>5} {'slots':>5} {'cap kW':>6} {'wall s':>8} "
        f"{'iter':>4} {'conv':>5} {'cost gap':>9} {'bound gap':>9} {'excess kW':>9} "
        f"{'peak MB':>8}"
    )
    print(header, flush=True)
    for kind, n, c, layout in cases:
        row = spawn(kind, n, c, args.max_iter, layout)
        mono = next(
            (
                r
                for r in rows
                if r["kind"] == "monolithic"
                and (r["vehicles"], r["cap_per_site_kw"], r["layout"]) == (n, c, layout)
            ),
            None,
        )
        if kind == "decomposed" and mono is not None:
            row["cost_gap"] = (row["cost_total"] - mono["cost_total"]) / abs(mono["cost_total"])
            row["mono_over_decomposed_wall"] = mono["wall_s"] / row["wall_s"]
        rows.append(row)
        print(
            f"{kind:>10} {n:>8,} {row['sites']:>5} {row['slots']:>5} {c:>6.0f} "
            f"{row['wall_s']:>8.2f} {row['iterations']:>4} {row.get('converged', '-')!s:>5} "
            f"{row.get('cost_gap', float('nan')):>+9.4%} "
            f"{row.get('bound_gap', float('nan')):>9.4%} "
            f"{row.get('max_cap_excess_kw', 0.0):>9.4f} {row['peak_rss_mb']:>8.0f}",
            flush=True,
        )
    lat = None if args.no_latency else latency(repeats=20)
    if lat is not None:
        print(
            f"event-to-setpoint latency, 1,000 vehicles, {lat['repeats']} events "
            f"({lat['broker']}): p50 {lat['p50_s']:.3f} s, p95 {lat['p95_s']:.3f} s, "
            f"max {lat['max_s']:.3f} s (target 1 s: {'met' if lat['target_met'] else 'not met'})"
        )
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "max_iterations": args.max_iter,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cases": rows, "latency": lat}, indent=2))
    print(f"JSON written to {args.out}")


if __name__ == "__main__":
    main()
