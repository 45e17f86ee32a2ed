"""Small scenario files for the end-to-end tests, written where a test wants them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

SITE_LIMIT_KW = 20.0
BASE_LOAD_KW = 2.0


def write_depot(path: Path, start: datetime, *, hours: float = 4.0, events: str = "") -> Path:
    """One 20 kW site, three 10 kW chargers, three vehicles due to leave within the horizon."""
    t = start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def at(minutes: int) -> str:
        from datetime import timedelta

        return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    path.write_text(
        f"""
start: {t}
step_minutes: 15
horizon_hours: {hours}
prices: {{import: 50}}
sites:
  - {{id: depot, import_limit_kw: {SITE_LIMIT_KW}, base_load_kw: {BASE_LOAD_KW}}}
chargers:
  - {{id: c0, site: depot, max_charge_kw: 10}}
  - {{id: c1, site: depot, max_charge_kw: 10}}
  - {{id: c2, site: depot, max_charge_kw: 10}}
vehicles:
  - {{id: v0, battery_kwh: 40, max_charge_kw: 10}}
  - {{id: v1, battery_kwh: 40, max_charge_kw: 10}}
  - {{id: v2, battery_kwh: 40, max_charge_kw: 10}}
sessions:
  - {{id: s0, vehicle: v0, charger: c0, arrival: {at(0)}, departure: {at(150)},
     arrival_soc: 0.2, target_soc: 0.5}}
  - {{id: s1, vehicle: v1, charger: c1, arrival: {at(10)}, departure: {at(170)},
     arrival_soc: 0.2, target_soc: 0.5}}
  - {{id: s2, vehicle: v2, charger: c2, arrival: {at(30)}, departure: {at(190)},
     arrival_soc: 0.2, target_soc: 0.5}}
{events}
"""
    )
    return path
