"""Benchmark the forecasts against seasonal naive baselines on the full data.

    python bench/forecast.py            # every day of the 10-year NL price file, the Caltech month
    python bench/forecast.py --quick    # prices of 2024 only

Prices: an origin every day at 00:00 UTC, each refitted on the 8 weeks before it, forecasting
the next 48 h; the baseline is the same hour last week with the spread of weekly changes.
Sessions: every day of March 2019 after a week's warm-up; the baseline is the same weekday
last week. Reports MAE, pinball loss per quantile and coverage, and model / naive ratios
(< 1: the model is better), overall, per horizon day and per year. Results: tables on stdout
and JSON in ``bench/results/forecast.json``.

The price file is not in the repository: by default it is read from ``../shared/data`` beside
the repository root (``--prices`` to point elsewhere).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from aggregator.backtest import (  # noqa: E402
    BacktestOptions,
    BacktestReport,
    by_year,
    run_backtests,
    tables,
)

PRICES = ROOT.parent / "shared" / "data" / "nl_day_ahead_prices_2015-2024.csv"
SESSIONS = HERE / "data" / "acn_caltech_2019-03_sessions.csv"


def year_table(report: BacktestReport) -> Table:
    table = Table(title="Prices per year of the target hour", title_justify="left")
    for name in (
        "year",
        "hours",
        "MAE model",
        "MAE naive",
        "ratio",
        "PL model",
        "PL naive",
        "ratio",
        "in q10-q90",
    ):
        table.add_column(name, justify="right")
    assert report.prices is not None
    for year, row in by_year(report.prices).items():
        table.add_row(
            year,
            f"{row['n']:,}",
            f"{row['model_mae']:.2f}",
            f"{row['naive_mae']:.2f}",
            f"{row['model_mae'] / row['naive_mae']:.2f}",
            f"{row['model_mean_pinball']:.2f}",
            f"{row['naive_mean_pinball']:.2f}",
            f"{row['model_mean_pinball'] / row['naive_mean_pinball']:.2f}",
            f"{row['model_coverage']:.0%}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--sessions", type=Path, default=SESSIONS)
    parser.add_argument("--quick", action="store_true", help="prices of 2024 only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "forecast.json")
    args = parser.parse_args()
    if not args.prices.is_file():
        sys.exit(f"{args.prices}: no such file (pass --prices)")
    options = BacktestOptions(
        prices=args.prices,
        sessions=args.sessions,
        start=date(2024, 1, 1) if args.quick else None,
    )
    console = Console(width=120)
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"  price origins {done}/{total}, {now - started:.0f} s", file=sys.stderr)

    report = run_backtests(options, progress)
    for table in tables(report):
        console.print(table)
    console.print(year_table(report))
    result = report.as_dict(options)
    result["meta"] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
        "quick": args.quick,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out} ({result['meta']['seconds']} s)", highlight=False)


if __name__ == "__main__":
    main()
