"""Turn a validated scenario document into a ``FleetProblem``.

Every domain object is built through ``Entries`` so a domain ``ValidationError`` is reported
against the YAML entry the user wrote, with the domain's field names translated to YAML keys.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

from aggregator.domain import (
    Charger,
    FleetProblem,
    GridEvent,
    Prices,
    Session,
    Site,
    SiteBattery,
    TimeGrid,
    ValidationError,
    Vehicle,
)
from aggregator.scenario.csv_fleet import CsvFleet, build_csv_fleet
from aggregator.scenario.entries import Entries, Where, label
from aggregator.scenario.errors import DataError, InputError
from aggregator.scenario.prices import prices_on_grid, read_price_csv
from aggregator.scenario.schema import (
    ChargerIn,
    EventIn,
    PricesIn,
    ScenarioIn,
    SessionIn,
    SessionsCsvIn,
    SiteIn,
    SlotSeries,
    VehicleIn,
)
from aggregator.scenario.sessions_csv import read_sessions_csv, within_horizon
from aggregator.scenario.specs import ModelSpec, read_vehicle_specs

# Domain field name -> YAML key, per kind of entry (names not listed are the same in both).
_GRID = {"step": "step_minutes", "n_slots": "horizon_hours"}
_SITE = {"site_id": "id"}
_CHARGER = {"charger_id": "id", "site_id": "site"}
_VEHICLE = {"vehicle_id": "id", "v2g_allowed": "v2g"}
_SESSION = {"session_id": "id", "vehicle_id": "vehicle", "charger_id": "charger"}
_EVENT = {"event_id": "id", "site_ids": "sites"}
_PRICES = {"import_per_mwh": "import", "export_per_mwh": "export"}


def _given(explicit: float | None, default: float | None) -> float | None:
    return explicit if explicit is not None else default


def _per_slot(value: SlotSeries, n_slots: int, *, zero_is_empty: bool) -> tuple[float, ...]:
    """Expand a scalar to one value per slot; lists pass through (their length is checked)."""
    if isinstance(value, tuple):
        return value
    if zero_is_empty and value == 0:
        return ()
    return (value,) * n_slots


class _Builder:
    def __init__(self, doc: ScenarioIn, base_dir: Path) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.entries = Entries()

    def build(self) -> FleetProblem:
        doc = self.doc
        grid = self.grid()
        prices = self.prices(doc.prices, grid)
        specs = self.specs()
        sites = [self.site(i, s, grid.n_slots) for i, s in enumerate(doc.sites)]
        batteries = [self.battery(i, s) for i, s in enumerate(doc.sites) if s.battery]
        chargers = [self.charger(i, c) for i, c in enumerate(doc.chargers)]
        vehicles = [self.vehicle(i, v, specs) for i, v in enumerate(doc.vehicles)]
        sessions = [self.session(i, s) for i, s in enumerate(doc.sessions)]
        if doc.sessions_csv is not None:
            fleet = self.csv_fleet(doc.sessions_csv, grid, sites, chargers)
            chargers += fleet.chargers
            vehicles += fleet.vehicles
            sessions += fleet.sessions
        events = [self.event(i, e) for i, e in enumerate(doc.events)]
        try:
            return FleetProblem(
                grid=grid,
                sites=tuple(sites),
                chargers=tuple(chargers),
                vehicles=tuple(vehicles),
                sessions=tuple(sessions),
                prices=prices,
                events=tuple(events),
                batteries=tuple(batteries),
                degradation_cost_per_mwh=doc.degradation_cost_per_mwh,
            )
        except ValidationError as err:
            raise self.entries.translate(err) from None

    def grid(self) -> TimeGrid:
        doc = self.doc
        slots = doc.horizon_hours * 60.0 / doc.step_minutes
        n_slots = round(slots)
        if n_slots < 1 or abs(slots - n_slots) > 1e-9:
            raise InputError(
                "horizon_hours",
                f"{doc.horizon_hours:g} h is not a whole number of {doc.step_minutes}-minute slots",
            )
        start = doc.start.astimezone(UTC)
        step = timedelta(minutes=doc.step_minutes)
        return self.entries.make(
            "time grid", Where("", _GRID), lambda: TimeGrid(start, step, n_slots)
        )

    def prices(self, spec: PricesIn, grid: TimeGrid) -> Prices:
        n = grid.n_slots
        if spec.csv is not None:
            imports = self.price_file(spec.csv, "prices.csv", spec.column, grid)
            exports = imports
            if spec.export_csv is not None:
                exports = self.price_file(spec.export_csv, "prices.export_csv", spec.column, grid)
        else:
            assert spec.import_ is not None  # the schema demands import or csv
            imports = _per_slot(spec.import_, n, zero_is_empty=False)
            exports = (
                imports if spec.export is None else _per_slot(spec.export, n, zero_is_empty=False)
            )
            for key, values in (("import", imports), ("export", exports)):
                if len(values) != n:
                    raise InputError(
                        "prices", f"{key}: has {len(values)} values, the horizon has {n} slots"
                    )
        where = Where("prices", _PRICES)
        return self.entries.make("prices", where, lambda: Prices(imports, exports))

    def price_file(self, name: str, entry: str, column: str, grid: TimeGrid) -> tuple[float, ...]:
        try:
            return prices_on_grid(read_price_csv(self.base_dir / name, name, column), grid, name)
        except DataError as err:
            raise InputError(entry, str(err)) from None

    def specs(self) -> dict[str, ModelSpec] | None:
        name = self.doc.vehicle_specs
        if name is None:
            return None
        try:
            return read_vehicle_specs(self.base_dir / name, name)
        except DataError as err:
            raise InputError("vehicle_specs", str(err)) from None

    def site(self, index: int, s: SiteIn, n_slots: int) -> Site:
        base = _per_slot(s.base_load_kw, n_slots, zero_is_empty=True)
        pv = _per_slot(s.pv_kw, n_slots, zero_is_empty=True)
        where = Where(label("sites", index, s.id), _SITE)
        return self.entries.make(
            f"site {s.id}",
            where,
            lambda: Site(s.id, s.import_limit_kw, s.export_limit_kw, base, pv),
        )

    def battery(self, index: int, s: SiteIn) -> SiteBattery:
        b = s.battery
        assert b is not None
        optional = {
            k: v
            for k, v in (
                ("charge_efficiency", b.charge_efficiency),
                ("discharge_efficiency", b.discharge_efficiency),
                ("initial_soc", b.initial_soc),
                ("min_soc", b.min_soc),
            )
            if v is not None
        }
        where = Where(label("sites", index, s.id), _SITE, prefix="battery.")
        return self.entries.make(
            f"battery of site {s.id}",
            where,
            lambda: SiteBattery(
                s.id, b.capacity_kwh, b.max_charge_kw, b.max_discharge_kw, **optional
            ),
        )

    def charger(self, index: int, c: ChargerIn) -> Charger:
        where = Where(label("chargers", index, c.id), _CHARGER)
        return self.entries.make(
            f"charger {c.id}",
            where,
            lambda: Charger(c.id, c.site, c.max_charge_kw, c.max_discharge_kw),
        )

    def vehicle(self, index: int, v: VehicleIn, specs: dict[str, ModelSpec] | None) -> Vehicle:
        where = Where(label("vehicles", index, v.id), _VEHICLE)
        spec: ModelSpec | None = None
        if v.model is not None:
            if specs is None:
                raise where.error("model", "needs a top-level vehicle_specs file")
            spec = specs.get(v.model)
            if spec is None:
                known = ", ".join(sorted(specs))
                raise where.error("model", f"unknown model {v.model!r} (known: {known})")
        # Explicit keys win over the model's specs.
        battery_kwh = _given(v.battery_kwh, spec.battery_kwh if spec else None)
        max_charge_kw = _given(v.max_charge_kw, spec.max_charge_kw if spec else None)
        if battery_kwh is None:
            raise where.error("battery_kwh", "field required (or give model)")
        if max_charge_kw is None:
            raise where.error("max_charge_kw", "field required (or give model)")
        max_discharge_kw = (
            _given(v.max_discharge_kw, spec.max_discharge_kw if spec else None) or 0.0
        )
        charge_eff = _given(v.charge_efficiency, spec.charge_efficiency if spec else None)
        optional = {
            k: x
            for k, x in (
                ("charge_efficiency", charge_eff),
                ("discharge_efficiency", v.discharge_efficiency),
            )
            if x is not None
        }
        return self.entries.make(
            f"vehicle {v.id}",
            where,
            lambda: Vehicle(v.id, battery_kwh, max_charge_kw, max_discharge_kw, v.v2g, **optional),
        )

    def session(self, index: int, s: SessionIn) -> Session:
        where = Where(label("sessions", index, s.id), _SESSION)
        return self.entries.make(
            f"session {s.id}",
            where,
            lambda: Session(
                s.id,
                s.vehicle,
                s.charger,
                s.arrival.astimezone(UTC),
                s.departure.astimezone(UTC),
                s.arrival_soc,
                target_soc=s.target_soc,
                energy_kwh=s.energy_kwh,
                min_soc=s.min_soc,
            ),
        )

    def event(self, index: int, e: EventIn) -> GridEvent:
        where = Where(label("events", index, e.id), _EVENT)
        return self.entries.make(
            f"event {e.id}",
            where,
            lambda: GridEvent(
                e.id,
                e.start.astimezone(UTC),
                e.end.astimezone(UTC),
                frozenset(e.sites),
                cap_kw=e.cap_kw,
                shed_kw=e.shed_kw,
            ),
        )

    def csv_fleet(
        self, cfg: SessionsCsvIn, grid: TimeGrid, sites: list[Site], chargers: list[Charger]
    ) -> CsvFleet:
        if cfg.site not in {s.site_id for s in sites}:
            raise InputError("sessions_csv", f"site: unknown site {cfg.site!r}")
        try:
            rows = read_sessions_csv(self.base_dir / cfg.path, cfg.path)
        except DataError as err:
            raise InputError("sessions_csv.path", str(err)) from None
        declared = {c.charger_id for c in chargers}
        return build_csv_fleet(cfg, within_horizon(rows, grid), declared, self.entries)


def build_problem(doc: ScenarioIn, base_dir: Path) -> FleetProblem:
    """The problem a scenario describes; files it names are read relative to ``base_dir``.

    Raises ``InputError`` naming the YAML entry and the reason.
    """
    return _Builder(doc, base_dir).build()
