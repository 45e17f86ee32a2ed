"""Split a ``FleetProblem`` into one sub-problem per site plus the fleet-wide coupling.

A sub-problem holds one site with its chargers, their sessions and vehicles, its battery and
the events that concern that site alone. Events whose sites span several sites (an event that
names no site covers all of them) are the coupling: a cap on the aggregate net import of their
sites in every slot their window touches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.domain import Charger, FleetProblem, GridEvent, Session, SiteBattery
from models.planner.compiled import FloatArray, IntArray, event_slots


@dataclass(frozen=True)
class CoupledCap:
    """A fleet-wide cap: sum over ``site_index`` of net import <= ``cap_kw`` in ``slots``."""

    event: GridEvent
    site_index: IntArray  # positions in ``SiteSplit.site_ids``
    slots: IntArray
    cap_kw: FloatArray


@dataclass(frozen=True)
class SiteSplit:
    site_ids: tuple[str, ...]
    sub_problems: tuple[FleetProblem, ...]
    coupled: tuple[CoupledCap, ...]


def _is_coupling(problem: FleetProblem, event: GridEvent) -> bool:
    return len(problem.event_sites(event)) > 1


def split_by_site(problem: FleetProblem) -> SiteSplit:
    """One sub-problem per site; shed events that span sites are not supported yet."""
    site_ids = tuple(s.site_id for s in problem.sites)
    index = {sid: i for i, sid in enumerate(site_ids)}
    coupled: list[CoupledCap] = []
    local: dict[str, list[GridEvent]] = {sid: [] for sid in site_ids}
    for event in problem.events:
        if _is_coupling(problem, event):
            if event.cap_kw is None:
                raise NotImplementedError(
                    f"event {event.event_id}: a shed spanning several sites needs a fleet "
                    "baseline; the decomposition supports fleet-wide caps only"
                )
            slots = event_slots(problem, event)
            if slots.size:
                sites = np.asarray([index[s] for s in problem.event_sites(event)], dtype=np.int64)
                coupled.append(CoupledCap(event, sites, slots, np.full(slots.size, event.cap_kw)))
        else:
            for sid in problem.event_sites(event):
                local[sid].append(event)
    # One pass over chargers, sessions and vehicles (a fleet has 100,000s of them).
    site_of_charger = {c.charger_id: c.site_id for c in problem.chargers}
    chargers: dict[str, list[Charger]] = {sid: [] for sid in site_ids}
    sessions: dict[str, list[Session]] = {sid: [] for sid in site_ids}
    for c in problem.chargers:
        chargers[c.site_id].append(c)
    for sess in problem.sessions:
        sessions[site_of_charger[sess.charger_id]].append(sess)
    vehicle_by_id = {v.vehicle_id: v for v in problem.vehicles}
    batteries: dict[str, list[SiteBattery]] = {sid: [] for sid in site_ids}
    for b in problem.batteries:
        batteries[b.site_id].append(b)
    subs = []
    for site in problem.sites:
        sid = site.site_id
        wanted = dict.fromkeys(s.vehicle_id for s in sessions[sid])
        subs.append(
            FleetProblem(
                problem.grid,
                (site,),
                tuple(chargers[sid]),
                tuple(vehicle_by_id[v] for v in wanted),
                tuple(sessions[sid]),
                problem.prices,
                tuple(local[sid]),
                tuple(batteries[sid]),
                problem.degradation_cost_per_mwh,
            )
        )
    return SiteSplit(site_ids, tuple(subs), tuple(coupled))
