"""Synthetic fleets for the benchmarks: depots of 50 chargers, real NL prices, real EV specs.

Sites have binding grid limits, 30 % of vehicles and chargers are V2G-capable, and a fleet-wide
demand-response cap covers the evening peak.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from aggregator.domain import (
    Charger,
    FleetProblem,
    GridEvent,
    Prices,
    Session,
    Site,
    TimeGrid,
    Vehicle,
)
from aggregator.scenario.prices import prices_on_grid, read_price_csv

HERE = Path(__file__).resolve().parent
SPECS = HERE.parent / "config" / "scenarios" / "data" / "ev_specs_v2g_2024.json"
PRICES_2024 = HERE / "data" / "nl_day_ahead_prices_2024-01-15_22.csv"
CHARGERS_PER_SITE = 50


def synthetic_fleet(
    n_vehicles: int,
    *,
    seed: int = 7,
    n_slots: int = 96,
    chargers_per_site: int = CHARGERS_PER_SITE,
    step: timedelta = timedelta(minutes=15),
) -> FleetProblem:
    """``n_vehicles`` vehicles on depots of ``chargers_per_site``; one session per vehicle per day.

    The horizon is ``n_slots`` of ``step``. Every day of it brings a session per vehicle (arrival in
    the day's first 10 h, 5-16 h dwell) and the fleet-wide evening cap of 110 kW per site.
    """
    rng = np.random.default_rng(seed)
    grid = TimeGrid(datetime(2024, 1, 16, 12, tzinfo=UTC), step, n_slots)
    days = max(1, math.ceil((grid.end - grid.start) / timedelta(days=1)))
    specs = list(json.loads(SPECS.read_text()).values())
    weights = np.asarray([s["number_of_registrations"] for s in specs], dtype=float)
    weights /= weights.sum()
    n_sites = math.ceil(n_vehicles / chargers_per_site)
    hours = np.arange(n_slots) * grid.step_hours + grid.start.hour
    sites = []
    for i in range(n_sites):
        # Office/depot base load: higher in the working day, a small evening bump.
        base = 25 + 20 * np.exp(-(((hours % 24) - 14) ** 2) / 8) + rng.uniform(0, 5)
        sites.append(
            Site(
                f"site-{i:04d}",
                import_limit_kw=260.0,
                export_limit_kw=150.0,
                base_load_kw=tuple(map(float, base)),
            )
        )
    chargers, vehicles, sessions = [], [], []
    for n in range(n_vehicles):
        spec = specs[int(rng.choice(len(specs), p=weights))]
        v2g = bool(rng.random() < 0.3)
        p_max = float(min(11.0, spec["max_ac_charge_power"]))
        p_dis = float(min(11.0, spec["max_ac_discharge_power"])) if v2g else 0.0
        site = sites[n // chargers_per_site].site_id
        chargers.append(Charger(f"cp-{n:05d}", site, 11.0, 11.0 if v2g else 0.0))
        vehicles.append(
            Vehicle(f"ev-{n:05d}", float(spec["battery_capacity"]), p_max, p_dis, v2g_allowed=v2g)
        )
        for day in range(days):
            arrival = grid.start + timedelta(days=day, minutes=float(rng.uniform(0, 10 * 60)))
            if arrival >= grid.end:
                break
            dwell = timedelta(hours=float(rng.uniform(5, 16)))
            # Gone before the next day's arrival: one vehicle, one charger, one session at once.
            departure = min(arrival + dwell, grid.start + timedelta(days=day + 1), grid.end)
            soc = float(rng.uniform(0.1, 0.5))
            sessions.append(
                Session(
                    f"s-{n:05d}" + (f"-d{day}" if day else ""),
                    f"ev-{n:05d}",
                    f"cp-{n:05d}",
                    arrival,
                    departure,
                    arrival_soc=soc,
                    target_soc=float(rng.choice([0.8, 0.9])),
                    min_soc=min(soc, 0.2),
                )
            )
    prices = prices_on_grid(read_price_csv(PRICES_2024, PRICES_2024.name), grid, PRICES_2024.name)
    evenings = tuple(
        GridEvent(
            "dr-evening" + (f"-d{day}" if day else ""),
            grid.start + timedelta(days=day, hours=5),
            grid.start + timedelta(days=day, hours=7),
            cap_kw=float(n_sites * 110.0),
        )
        for day in range(days)
        if grid.start + timedelta(days=day, hours=5) < grid.end
    )
    return FleetProblem(
        grid,
        tuple(sites),
        tuple(chargers),
        tuple(vehicles),
        tuple(sessions),
        Prices(prices, prices),
        evenings,
        degradation_cost_per_mwh=40.0,
    )
