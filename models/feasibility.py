"""Can the fleet meet an event's limits with no departure shortfall? A fast, envelope check.

For each limit, the problem is cut down to the affected sites; the least aggregate power the
fleet can take in a slot while every vehicle can still reach its departure energy (the
flexibility envelope's lower bound), plus base load minus PV, must stay at or under the cap,
or at or under the baseline minus the shed. The envelope bounds each slot on its own, so a
long event can pass here and still cost a shortfall in the full plan; the plan is made right
after the answer, and an event that turns out infeasible is opted out then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from aggregator.domain import FleetProblem, GridEvent
from models.envelope import envelope_bounds
from models.planner.compiled import CompiledProblem, compile_problem, event_slots

_EPS_KW = 1e-6

# Site net power per slot start, from the plan the fleet follows now (the shed baseline).
BaselineLookup = Callable[[str, datetime], float | None]


class EnvelopeFeasibility:
    """Implements the ``FeasibilityCheck`` port."""

    def __init__(
        self,
        problem: Callable[[], FleetProblem],
        baseline: BaselineLookup | None = None,
        tolerance_kwh: float = 0.0,
    ) -> None:
        if not tolerance_kwh >= 0:
            raise ValueError(f"tolerance_kwh: must be >= 0, got {tolerance_kwh}")
        self._problem = problem
        self._baseline = baseline
        self.tolerance_kwh = tolerance_kwh

    def check(self, limits: Sequence[GridEvent]) -> tuple[bool, str]:
        problem = self._problem()
        within = []
        for limit in limits:
            ok, why = self._check_one(problem, limit)
            if not ok:
                return False, why
            if why.startswith("feasible within"):
                within.append(f"{limit.event_id}: {why}")
        if within:
            return True, "; ".join(within)
        return True, "the fleet can meet every interval with no departure shortfall"

    def _check_one(self, problem: FleetProblem, limit: GridEvent) -> tuple[bool, str]:
        sites = problem.event_sites(limit)
        sub = _restrict(problem, set(sites))
        slots = event_slots(sub, limit)
        if slots.size == 0:
            return True, "outside the planning horizon"
        cp = compile_problem(sub)
        least_ev, _ = envelope_bounds(cp)
        base = cp.net_base_kw.sum(axis=0)
        least = least_ev + base
        room_kwh, over_kwh, worst = 0.0, 0.0, None
        for t in slots.tolist():
            start = sub.grid.slot_start(t)
            if limit.cap_kw is not None:
                bound = limit.cap_kw
            else:
                assert limit.shed_kw is not None
                shed_from = self._baseline_at(sites, start)
                if shed_from is None:
                    return False, f"{limit.event_id}: no baseline to shed from at {start:%H:%M}"
                bound = shed_from - limit.shed_kw
            excess = least[t] - bound
            if excess > _EPS_KW:
                over_kwh += excess * cp.dt_h
                if worst is None or excess > worst[0]:
                    worst = (excess, start, least[t], bound)
            room_kwh += max(0.0, bound - base[t]) * cp.dt_h
        # The slots above are bounded one at a time; over the whole window, the energy every
        # vehicle must still take inside it must fit under the limit too.
        must_kwh = _least_energy_inside(cp, slots)
        # The energy some vehicle must then go without: a lower bound on the shortfall.
        short_kwh = max(over_kwh, must_kwh - room_kwh)
        if short_kwh > self.tolerance_kwh + _EPS_KW * cp.dt_h:
            allowed = f", tolerance {self.tolerance_kwh:.1f} kWh" if self.tolerance_kwh else ""
            if worst is not None and over_kwh >= must_kwh - room_kwh:
                _, at, lo, bound = worst
                return False, (
                    f"{limit.event_id}: at {at:%Y-%m-%d %H:%M} the fleet cannot go below "
                    f"{lo:.1f} kW without leaving a vehicle short (limit {bound:.1f} kW); "
                    f"at least {short_kwh:.1f} kWh short{allowed}"
                )
            return False, (
                f"{limit.event_id}: vehicles must take {must_kwh:.1f} kWh during the event to "
                f"leave charged, the limit leaves room for {room_kwh:.1f} kWh{allowed}"
            )
        if short_kwh > _EPS_KW * cp.dt_h:
            return True, f"feasible within tolerance (at least {short_kwh:.1f} kWh short)"
        return True, "feasible"

    def _baseline_at(self, sites: Sequence[str], when: datetime) -> float | None:
        if self._baseline is None:
            return None
        values = [self._baseline(site, when) for site in sites]
        if any(v is None for v in values):
            return None
        return float(np.sum([v for v in values if v is not None]))


def _least_energy_inside(cp: CompiledProblem, slots: npt.NDArray[np.int64]) -> float:
    """Grid energy the sessions must draw in ``slots`` even charging flat out elsewhere. [kWh]"""
    inside = np.isin(cp.k_slot, slots)
    stored_outside = np.where(inside, 0.0, cp.eta_c[cp.k_sess] * cp.dt_h * cp.pc_ub_kw)
    outside = np.bincount(cp.k_sess, weights=stored_outside, minlength=cp.n_sessions)
    short = np.maximum(0.0, cp.e_req_kwh - cp.e0_kwh - outside)
    return float((short / cp.eta_c).sum())


def _restrict(problem: FleetProblem, sites: set[str]) -> FleetProblem:
    chargers = tuple(c for c in problem.chargers if c.site_id in sites)
    charger_ids = {c.charger_id for c in chargers}
    sessions = tuple(s for s in problem.sessions if s.charger_id in charger_ids)
    return replace(
        problem,
        sites=tuple(s for s in problem.sites if s.site_id in sites),
        chargers=chargers,
        sessions=sessions,
        events=(),
        batteries=tuple(b for b in problem.batteries if b.site_id in sites),
    )


def plan_baseline(
    site_power: Mapping[str, Sequence[float]], grid_start: datetime, step_s: float
) -> BaselineLookup:
    """A baseline lookup from a plan's per-site net power on its grid."""

    def lookup(site: str, when: datetime) -> float | None:
        series = site_power.get(site)
        if series is None:
            return None
        index = int((when - grid_start).total_seconds() // step_s)
        return float(series[index]) if 0 <= index < len(series) else None

    return lookup
