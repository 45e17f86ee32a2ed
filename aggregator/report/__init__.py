"""Plan outputs: the summary (pure data), schedule.csv, summary.json and plan.png.

An edge module shared by the CLI, and later the API and notebooks.
"""

from __future__ import annotations

import json
from pathlib import Path

from aggregator.domain import FleetProblem, FlexibilityEnvelope, Plan
from aggregator.report.plot import plan_figure, write_plan_png
from aggregator.report.schedule import SCHEDULE_COLUMNS, schedule_rows, write_schedule_csv
from aggregator.report.summary import JsonDict, iso_utc, plan_summary

SCHEDULE_FILE = "schedule.csv"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "plan.png"

__all__ = [
    "PLOT_FILE",
    "SCHEDULE_COLUMNS",
    "SCHEDULE_FILE",
    "SUMMARY_FILE",
    "JsonDict",
    "iso_utc",
    "plan_figure",
    "plan_summary",
    "schedule_rows",
    "summary_json",
    "write_outputs",
    "write_plan_png",
    "write_schedule_csv",
]


def summary_json(summary: JsonDict) -> str:
    """The summary as JSON text; NaN or infinity is a bug, not something to write."""
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"


def write_outputs(
    out_dir: Path, problem: FleetProblem, plan: Plan, envelope: FlexibilityEnvelope | None
) -> JsonDict:
    """Write schedule.csv, summary.json and plan.png into ``out_dir``; return the summary."""
    summary = plan_summary(plan, problem, envelope)
    write_schedule_csv(plan, out_dir / SCHEDULE_FILE)
    (out_dir / SUMMARY_FILE).write_text(summary_json(summary), encoding="utf-8")
    write_plan_png(plan, problem, envelope, out_dir / PLOT_FILE)
    return summary
