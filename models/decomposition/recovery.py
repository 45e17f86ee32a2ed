"""Last resort of the decomposition: every site re-plans under its share of each fleet-wide cap.

Used when the coordination stops with a plan over a cap: each capped slot's cap is shared
among the sites in proportion to their import in the last plan, and each site plans cold (a
fresh ``SiteModel``) with its share as a local cap. The shares add up to the cap, so the fleet
holds it wherever every site can hold its share.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from dask.distributed import Client

from aggregator.domain import FleetProblem, GridEvent, Plan
from models.decomposition.sites import SiteModel
from models.decomposition.split import SiteSplit
from models.planner.compiled import FloatArray
from models.planner.settings import PlannerSettings

# Event ids of the per-site shares of a coupled cap; not reported in the plan.
SHARE = "/share/"


def plan_site(sub: FleetProblem, settings: PlannerSettings) -> Plan:
    """One site's plan at its real prices, cold (the heuristic's if its LP fails)."""
    site = SiteModel(sub, settings)
    column = site.price(np.zeros(sub.grid.n_slots))
    return site.plan([(column.index, 1.0)], "cap shares")


def share_caps(
    split: SiteSplit, net: FloatArray, client: Client, settings: PlannerSettings
) -> list[Plan]:
    """Every site's plan under its share of each coupled cap; ``net``: (sites, T) last plan."""
    site_ids = split.site_ids
    grid = split.sub_problems[0].grid
    extra: dict[int, list[GridEvent]] = {i: [] for i in range(len(site_ids))}
    for c in split.coupled:
        for j, t in enumerate(c.slots):
            members = c.site_index
            use = np.clip(net[members, t], 0.0, None)
            weights = use / use.sum() if use.sum() > 0 else np.full(members.size, 1 / members.size)
            slot_start = grid.start + grid.step * int(t)
            for s, w in zip(members, weights, strict=True):
                sid = site_ids[s]
                extra[int(s)].append(
                    GridEvent(
                        f"{c.event.event_id}{SHARE}{sid}/{int(t)}",
                        slot_start,
                        slot_start + grid.step,
                        frozenset({sid}),
                        cap_kw=float(c.cap_kw[j] * w),
                    )
                )
    futures = [
        client.submit(
            plan_site, replace(sub, events=(*sub.events, *extra[i])), settings, pure=False
        )
        for i, sub in enumerate(split.sub_problems)
    ]
    return list(client.gather(futures))  # type: ignore[no-untyped-call]
