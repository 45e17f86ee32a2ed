"""Scenario test data: a small valid scenario as a dict, and price CSV writing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "config" / "scenarios"
# The summary.json contract, pinned here rather than read from the code under test.
SUMMARY_KEYS = {
    "status",
    "issues",
    "solver_path",
    "solver_status",
    "timings_s",
    "horizon",
    "objective",
    "totals",
    "sessions",
    "sites",
    "events",
    "envelope",
}

_BASE: dict[str, Any] = {
    "start": "2024-05-14T00:00:00Z",
    "step_minutes": 15,
    "horizon_hours": 4,
    "prices": {"import": 50.0},
    "sites": [{"id": "depot", "import_limit_kw": 50}],
    "chargers": [
        {"id": "c1", "site": "depot", "max_charge_kw": 11, "max_discharge_kw": 11},
        {"id": "c2", "site": "depot", "max_charge_kw": 11},
    ],
    "vehicles": [
        {"id": "v1", "battery_kwh": 60, "max_charge_kw": 11, "max_discharge_kw": 11, "v2g": True},
        {"id": "v2", "battery_kwh": 40, "max_charge_kw": 7.4},
    ],
    "sessions": [
        {
            "id": "s1",
            "vehicle": "v1",
            "charger": "c1",
            "arrival": "2024-05-14T00:00:00Z",
            "departure": "2024-05-14T03:00:00Z",
            "arrival_soc": 0.2,
            "target_soc": 0.6,
        },
        {
            "id": "s2",
            "vehicle": "v2",
            "charger": "c2",
            "arrival": "2024-05-14T00:00:00Z",
            "departure": "2024-05-14T02:00:00Z",
            "arrival_soc": 0.3,
            "energy_kwh": 8,
        },
        {
            "id": "s3",
            "vehicle": "v1",
            "charger": "c1",
            "arrival": "2024-05-14T03:00:00Z",
            "departure": "2024-05-14T04:00:00Z",
            "arrival_soc": 0.5,
            "energy_kwh": 5,
        },
    ],
    "events": [
        {"id": "e1", "start": "2024-05-14T01:00:00Z", "end": "2024-05-14T02:00:00Z", "cap_kw": 20}
    ],
}


def base_doc() -> dict[str, Any]:
    """A small valid scenario: one site, two chargers, two vehicles, three sessions, one event."""
    return copy.deepcopy(_BASE)


def write_price_csv(path: Path, rows: list[tuple[str, float | str]]) -> Path:
    lines = ["start,price_eur_per_mwh", *(f"{start},{price}" for start, price in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
