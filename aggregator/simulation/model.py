"""The simulated site: its chargers, the scenario's plug-ins and plug-outs, and telemetry.

Pure (no I/O, no clock of its own): the caller says what time it is. Between two calls the
site integrates exactly, splitting time at every setpoint expiry, arrival and departure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from aggregator.domain import FleetProblem, Session, Setpoint, Site, Telemetry
from aggregator.simulation.charger import PluggedVehicle, SimCharger

# A session whose battery ends at most this far below its target counts as reached. [kWh]
REACHED_TOLERANCE_KWH = 0.01

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How a simulated session went: at its departure, or so far if still plugged in.

    ``target_kwh`` is the energy wanted in the battery at departure; ``energy_kwh`` the energy
    in it at departure (or now); ``shortfall_kwh`` how far below the target it is.
    """

    session_id: str
    vehicle_id: str
    charger_id: str
    site_id: str
    departure: datetime
    departed: bool
    target_kwh: float
    target_soc: float
    energy_kwh: float
    soc: float
    delivered_kwh: float

    @property
    def shortfall_kwh(self) -> float:
        return max(0.0, self.target_kwh - self.energy_kwh)

    @property
    def reached(self) -> bool:
        return self.shortfall_kwh <= REACHED_TOLERANCE_KWH


@dataclass(frozen=True, slots=True)
class _PlugEvent:
    at: datetime
    plug_in: bool
    session: Session


class SimulatedSite:
    """The chargers of one site of a ``FleetProblem`` and the vehicles its sessions plug in.

    Sessions that arrived before ``start`` (default: the problem's start) are plugged in at
    ``start`` with ``arrival_soc``, as the scenario format says; those gone by then are skipped.
    ``safe_power_kw`` and ``reports_soc`` are one value for every charger or a mapping from
    charger id (chargers it does not name get 0 kW and True).
    """

    def __init__(
        self,
        problem: FleetProblem,
        site_id: str,
        *,
        start: datetime | None = None,
        safe_power_kw: float | Mapping[str, float] = 0.0,
        reports_soc: bool | Mapping[str, bool] = True,
    ) -> None:
        if site_id not in problem.site_by_id:
            raise ValueError(f"site {site_id!r} is not in the problem")
        self.problem = problem
        self.site: Site = problem.site_by_id[site_id]
        if start is not None and (start.tzinfo is None or start.utcoffset() is None):
            raise ValueError(f"start: must be timezone-aware, got {start!r}")
        self._now = problem.grid.start if start is None else start
        self.chargers: dict[str, SimCharger] = {
            c.charger_id: SimCharger(
                c,
                safe_power_kw=_pick(safe_power_kw, c.charger_id, 0.0),
                reports_soc=_pick(reports_soc, c.charger_id, True),
            )
            for c in problem.chargers
            if c.site_id == site_id
        }
        self._events = self._plug_events()
        self._next_event = 0
        self._results: list[SessionResult] = []
        self._process_events()

    @property
    def site_id(self) -> str:
        return self.site.site_id

    @property
    def now(self) -> datetime:
        """The time the site has been integrated up to."""
        return self._now

    def apply_setpoint(self, sp: Setpoint, at: datetime | None = None) -> bool:
        """Store ``sp`` for its charger; False if not for this site or not newer (``seq``).

        With ``at``, the site first integrates up to ``at`` so the old setpoint holds until then.
        """
        charger = self.chargers.get(sp.charger_id)
        if sp.site_id != self.site_id or charger is None:
            return False
        if at is not None:
            self.advance(at)
        return charger.apply(sp)

    def advance(self, now: datetime) -> None:
        """Integrate every charger from the last time to ``now``; time never goes back."""
        if now < self._now:
            raise ValueError(f"cannot go back from {self._now.isoformat()} to {now.isoformat()}")
        while self._now < now:
            until = min([now, *self._breakpoints_after(self._now)])
            for charger in self.chargers.values():
                charger.integrate(self._now, until)
            self._now = until
            self._process_events()

    def telemetry(self, now: datetime) -> list[Telemetry]:
        """One reading per charger at ``now`` (after integrating up to it)."""
        self.advance(now)
        return [c.reading(self.site_id, now) for c in self.chargers.values()]

    def ev_power_kw(self, now: datetime) -> float:
        """Sum of the chargers' power at ``now``. [kW]"""
        self.advance(now)
        return sum(c.power_kw(now) for c in self.chargers.values())

    def site_power_kw(self, now: datetime) -> float:
        """Net power at the site's meter at ``now``: chargers + base load - PV. [kW]

        Base load and PV are the scenario's series at the slot containing ``now`` (zero outside
        the horizon or when the scenario gives none).
        """
        return self.ev_power_kw(now) + self._base_load_kw(now) - self._pv_kw(now)

    def report(self, *, include_plugged: bool = False) -> list[SessionResult]:
        """Every session that has left, in departure order; then, with ``include_plugged``,
        every one still plugged in, as of ``now`` (``departed=False``).
        """
        if not include_plugged:
            return list(self._results)
        plugged = [
            self._result(c.plugged, departed=False)
            for c in self.chargers.values()
            if c.plugged is not None
        ]
        return [*self._results, *plugged]

    def next_plug_at(self) -> datetime | None:
        """When the next vehicle plugs in or out (None when no more will)."""
        if self._next_event < len(self._events):
            return self._events[self._next_event].at
        return None

    # --- internals

    def _plug_events(self) -> list[_PlugEvent]:
        events: list[_PlugEvent] = []
        for session in self.problem.sessions:
            if session.charger_id not in self.chargers or session.departure <= self._now:
                continue
            events.append(_PlugEvent(max(session.arrival, self._now), True, session))
            events.append(_PlugEvent(session.departure, False, session))
        # Plug-outs first at equal times: back-to-back sessions share a charger.
        events.sort(key=lambda e: (e.at, e.plug_in))
        return events

    def _breakpoints_after(self, t: datetime) -> list[datetime]:
        points = [c.expiry_after(t) for c in self.chargers.values()]
        if self._next_event < len(self._events):
            points.append(self._events[self._next_event].at)
        return [p for p in points if p is not None and p > t]

    def _process_events(self) -> None:
        while self._next_event < len(self._events):
            event = self._events[self._next_event]
            if event.at > self._now:
                return
            self._next_event += 1
            charger = self.chargers[event.session.charger_id]
            if event.plug_in:
                vehicle = self.problem.vehicle_by_id[event.session.vehicle_id]
                energy = event.session.arrival_soc * vehicle.battery_kwh
                charger.plugged = PluggedVehicle(event.session, vehicle, energy, energy)
            elif charger.plugged is not None:
                self._results.append(self._result(charger.plugged, departed=True))
                charger.plugged = None

    def _result(self, plugged: PluggedVehicle, *, departed: bool) -> SessionResult:
        session, battery = plugged.session, plugged.vehicle.battery_kwh
        target = session.target_energy_kwh(battery)
        return SessionResult(
            session_id=session.session_id,
            vehicle_id=session.vehicle_id,
            charger_id=session.charger_id,
            site_id=self.site_id,
            departure=session.departure,
            departed=departed,
            target_kwh=target,
            target_soc=target / battery,
            energy_kwh=plugged.energy_kwh,
            soc=plugged.soc,
            delivered_kwh=plugged.energy_kwh - plugged.arrival_energy_kwh,
        )

    def _slot_value(self, series: tuple[float, ...], now: datetime) -> float:
        if not series:
            return 0.0
        try:
            return series[self.problem.grid.index_of(now)]
        except IndexError:
            return 0.0

    def _base_load_kw(self, now: datetime) -> float:
        return self._slot_value(self.site.base_load_kw, now)

    def _pv_kw(self, now: datetime) -> float:
        return self._slot_value(self.site.pv_kw, now)


def _pick(value: _T | Mapping[str, _T], key: str, default: _T) -> _T:
    if isinstance(value, Mapping):
        return value.get(key, default)
    return value
