"""The schedule table: one row per session per plugged-in slot, as written to schedule.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from aggregator.domain import Plan
from aggregator.report.summary import iso_utc

SCHEDULE_COLUMNS = (
    "slot_start",
    "session_id",
    "vehicle_id",
    "charger_id",
    "site_id",
    "power_kw",
    "soc",
)


def _num(value: float, digits: int) -> str:
    return repr(round(value, digits) + 0.0)


def schedule_rows(plan: Plan) -> list[tuple[str, ...]]:
    """Rows in time order, then by session id. ``power_kw`` > 0 charges; ``soc`` is at slot end."""
    keyed: list[tuple[int, str, tuple[str, ...]]] = []
    for s in plan.schedules:
        for offset, (power_kw, soc) in enumerate(zip(s.power_kw, s.soc, strict=True)):
            slot = s.first_slot + offset
            row = (
                iso_utc(plan.grid.slot_start(slot)),
                s.session_id,
                s.vehicle_id,
                s.charger_id,
                s.site_id,
                _num(power_kw, 3),
                _num(soc, 4),
            )
            keyed.append((slot, s.session_id, row))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [row for _, _, row in keyed]


def write_schedule_csv(plan: Plan, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SCHEDULE_COLUMNS)
        writer.writerows(schedule_rows(plan))
