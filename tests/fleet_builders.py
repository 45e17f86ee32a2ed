"""Small builders for ``FleetProblem``s in tests: one vehicle and one charger per session.

Defaults keep the arithmetic easy: one-hour slots starting at midnight UTC, one site
``"site-0"`` with a generous import limit, flat prices, unit efficiencies unless a test asks.

    problem = make_problem(
        [ev(0, 4, arrival_soc=0.5, target_soc=0.9)],
        n_slots=6,
        site_limit_kw=20.0,
    )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aggregator.domain import (
    Charger,
    FleetProblem,
    GridEvent,
    Prices,
    Session,
    Site,
    SiteBattery,
    TimeGrid,
    Vehicle,
)

START = datetime(2025, 1, 6, tzinfo=UTC)
STEP = timedelta(hours=1)
DEFAULT_SITE = "site-0"


@dataclass(frozen=True)
class EvSpec:
    """One session and the vehicle/charger it needs. Slots may be fractional (e.g. 1.5).

    Giving ``energy_kwh`` makes it the departure need (``target_soc`` is then ignored).
    """

    arrival_slot: float
    departure_slot: float
    arrival_soc: float = 0.2
    target_soc: float | None = 0.8
    energy_kwh: float | None = None
    min_soc: float = 0.0
    battery_kwh: float = 60.0
    max_charge_kw: float = 10.0
    # None: V2G follows the problem-wide ``v2g`` flag; discharge power defaults to charge power.
    v2g: bool | None = None
    max_discharge_kw: float | None = None
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    site: str = DEFAULT_SITE


# ``ev(0, 4, target_soc=0.9)`` reads better in a test than the class name.
ev = EvSpec


def slot_time(slot: float, *, start: datetime = START, step: timedelta = STEP) -> datetime:
    """Start time of (possibly fractional) slot ``slot`` of the default grid."""
    return start + step * slot


def cap_event(
    event_id: str,
    start_slot: float,
    end_slot: float,
    *,
    cap_kw: float | None = None,
    shed_kw: float | None = None,
    sites: Sequence[str] = (),
    step: timedelta = STEP,
) -> GridEvent:
    """A grid event over slots ``[start_slot, end_slot)``; empty ``sites`` = every site."""
    return GridEvent(
        event_id=event_id,
        start=slot_time(start_slot, step=step),
        end=slot_time(end_slot, step=step),
        site_ids=frozenset(sites),
        cap_kw=cap_kw,
        shed_kw=shed_kw,
    )


def _per_site(
    value: Sequence[float] | Mapping[str, Sequence[float]], site_id: str
) -> tuple[float, ...]:
    if isinstance(value, Mapping):
        return tuple(value.get(site_id, ()))
    return tuple(value)


def _per_site_float(value: float | Mapping[str, float], site_id: str, default: float) -> float:
    if isinstance(value, Mapping):
        return float(value.get(site_id, default))
    return float(value)


def make_problem(
    sessions: Sequence[EvSpec] = (),
    *,
    n_slots: int = 8,
    step: timedelta = STEP,
    sites: Sequence[str] = (),
    site_limit_kw: float | Mapping[str, float] = 1000.0,
    export_limit_kw: float | Mapping[str, float] = 0.0,
    base_load_kw: Sequence[float] | Mapping[str, Sequence[float]] = (),
    pv_kw: Sequence[float] | Mapping[str, Sequence[float]] = (),
    prices: float | Sequence[float] | Prices = 50.0,
    events: Sequence[GridEvent] = (),
    v2g: bool = False,
    batteries: Sequence[SiteBattery] = (),
    degradation_cost_per_mwh: float = 0.0,
) -> FleetProblem:
    """A valid ``FleetProblem`` from session specs.

    Sites are ``sites`` plus every site a session, a mapping argument or a battery names, in
    first-seen order (``"site-0"`` when nothing names one). A sequence for ``base_load_kw`` /
    ``pv_kw`` applies to every site; a mapping gives it per site. ``prices`` is a flat price,
    an import-price series (export = import) or a full ``Prices``.
    """
    site_ids: list[str] = []
    named: list[str] = list(sites) + [s.site for s in sessions] + [b.site_id for b in batteries]
    for arg in (site_limit_kw, export_limit_kw, base_load_kw, pv_kw):
        if isinstance(arg, Mapping):
            named.extend(arg)
    for sid in named:
        if sid not in site_ids:
            site_ids.append(sid)
    if not site_ids:
        site_ids.append(DEFAULT_SITE)

    site_objs = tuple(
        Site(
            site_id=sid,
            import_limit_kw=_per_site_float(site_limit_kw, sid, 1000.0),
            export_limit_kw=_per_site_float(export_limit_kw, sid, 0.0),
            base_load_kw=_per_site(base_load_kw, sid),
            pv_kw=_per_site(pv_kw, sid),
        )
        for sid in site_ids
    )

    vehicles, chargers, session_objs = [], [], []
    for n, spec in enumerate(sessions):
        bidir = v2g if spec.v2g is None else spec.v2g
        p_d = spec.max_charge_kw if spec.max_discharge_kw is None else spec.max_discharge_kw
        p_d = p_d if bidir else 0.0
        vehicles.append(
            Vehicle(
                vehicle_id=f"v{n}",
                battery_kwh=spec.battery_kwh,
                max_charge_kw=spec.max_charge_kw,
                max_discharge_kw=p_d,
                v2g_allowed=bidir,
                charge_efficiency=spec.charge_efficiency,
                discharge_efficiency=spec.discharge_efficiency,
            )
        )
        chargers.append(
            Charger(
                charger_id=f"c{n}",
                site_id=spec.site,
                max_charge_kw=spec.max_charge_kw,
                max_discharge_kw=p_d,
            )
        )
        session_objs.append(
            Session(
                session_id=f"s{n}",
                vehicle_id=f"v{n}",
                charger_id=f"c{n}",
                arrival=slot_time(spec.arrival_slot, step=step),
                departure=slot_time(spec.departure_slot, step=step),
                arrival_soc=spec.arrival_soc,
                target_soc=spec.target_soc if spec.energy_kwh is None else None,
                energy_kwh=spec.energy_kwh,
                min_soc=spec.min_soc,
            )
        )

    if isinstance(prices, Prices):
        price_obj = prices
    elif isinstance(prices, int | float):
        price_obj = Prices.flat(float(prices), n_slots)
    else:
        price_obj = Prices(tuple(prices), tuple(prices))

    return FleetProblem(
        grid=TimeGrid(START, step, n_slots),
        sites=site_objs,
        chargers=tuple(chargers),
        vehicles=tuple(vehicles),
        sessions=tuple(session_objs),
        prices=price_obj,
        events=tuple(events),
        batteries=tuple(batteries),
        degradation_cost_per_mwh=degradation_cost_per_mwh,
    )
