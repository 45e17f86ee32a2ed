"""The fleet behind a sessions file: a charger per station, a vehicle and a session per row.

ACN-style files record no vehicle, so every row gets its own vehicle with the settings of the
scenario's ``sessions_csv.vehicle`` entry.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from aggregator.domain import Charger, Session, Vehicle
from aggregator.scenario.entries import Entries, Where
from aggregator.scenario.schema import SessionsCsvIn
from aggregator.scenario.sessions_csv import CsvSession

# Domain field name -> the key to blame: a column of the file or a setting of the entry.
_CHARGER = {"charger_id": "station_id", "site_id": "site", "max_charge_kw": "charger_max_kw"}
_SESSION = {
    "session_id": "session_id",
    "charger_id": "station_id",
    "vehicle_id": "session_id",
    "energy_kwh": "energy_requested_kwh",
    "arrival_soc": "vehicle.arrival_soc",
    "min_soc": "vehicle.min_soc",
}


@dataclass(frozen=True)
class CsvFleet:
    chargers: tuple[Charger, ...]
    vehicles: tuple[Vehicle, ...]
    sessions: tuple[Session, ...]


def build_csv_fleet(
    cfg: SessionsCsvIn, rows: list[CsvSession], declared: Collection[str], entries: Entries
) -> CsvFleet:
    """Chargers for the stations not ``declared`` in the YAML, vehicles and sessions of ``rows``."""
    stations = dict.fromkeys(r.station_id for r in rows)  # ordered, unique
    chargers = tuple(
        _charger(cfg, station, [r for r in rows if r.station_id == station], entries)
        for station in stations
        if station not in declared
    )
    pairs = [_vehicle_and_session(cfg, row, entries) for row in rows]
    return CsvFleet(
        chargers=chargers,
        vehicles=tuple(v for v, _ in pairs),
        sessions=tuple(s for _, s in pairs),
    )


def _charger(cfg: SessionsCsvIn, station: str, rows: list[CsvSession], entries: Entries) -> Charger:
    max_kw = cfg.charger_max_kw
    if max_kw is None:
        max_kw = max(r.max_power_kw for r in rows)
    where = Where(f"sessions_csv {cfg.path} station {station}", _CHARGER)
    return entries.make(f"charger {station}", where, lambda: Charger(station, cfg.site, max_kw))


def _vehicle_and_session(
    cfg: SessionsCsvIn, row: CsvSession, entries: Entries
) -> tuple[Vehicle, Session]:
    label = f"sessions_csv {cfg.path} line {row.line} (session_id {row.session_id})"
    v = cfg.vehicle
    vehicle_id = f"ev-{row.session_id}"
    optional = {
        k: x
        for k, x in (
            ("charge_efficiency", v.charge_efficiency),
            ("discharge_efficiency", v.discharge_efficiency),
        )
        if x is not None
    }
    # Without a setting, the vehicle charges as fast as the row's station allowed.
    max_charge_kw = v.max_charge_kw if v.max_charge_kw is not None else row.max_power_kw
    vehicle = entries.make(
        f"vehicle {vehicle_id}",
        Where(label, {"vehicle_id": "session_id"}, prefix="vehicle."),
        lambda: Vehicle(
            vehicle_id, v.battery_kwh, max_charge_kw, v.max_discharge_kw, v.v2g, **optional
        ),
    )
    session = entries.make(
        f"session {row.session_id}",
        Where(label, _SESSION),
        lambda: Session(
            row.session_id,
            vehicle_id,
            row.station_id,
            row.arrival,
            row.departure,
            v.arrival_soc,
            energy_kwh=row.energy_requested_kwh,
            min_soc=v.min_soc,
        ),
    )
    return vehicle, session
