"""Column blocks of the fleet LP, in one fixed order shared by both LP builders.

Both builders (Pyomo and direct arrays) produce the same variables in the same order, which is
what lets a test compare them block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.planner.compiled import CompiledProblem, FloatArray

# Block name -> meaning. [kW] unless stated.
BLOCKS = (
    "pc",  # charge power per session-slot
    "pd",  # discharge power per V2G session-slot
    "e",  # energy per V2G session-slot, end of slot [kWh]
    "sf",  # departure shortfall per session [kWh]
    "imp",  # site import within the limit, per site-slot
    "imp_over",  # site import above the limit (penalised)
    "exp",  # site export within the limit
    "exp_over",  # site export above the limit (penalised)
    "bc",  # site battery charge per battery-slot
    "bd",  # site battery discharge per battery-slot
    "eb",  # site battery energy per battery-slot [kWh]
    "ev_slack",  # event cap excess per event-slot
)


@dataclass(frozen=True)
class Layout:
    sizes: dict[str, int]
    offsets: dict[str, int]

    @property
    def n_cols(self) -> int:
        return sum(self.sizes.values())

    def slice(self, block: str) -> slice:
        start = self.offsets[block]
        return slice(start, start + self.sizes[block])

    def take(self, x: FloatArray, block: str) -> FloatArray:
        return np.asarray(x[self.slice(block)], dtype=float)


def layout_of(cp: CompiledProblem) -> Layout:
    n_site_slots = cp.n_sites * cp.n_slots
    n_batt_slots = int(cp.batt_site.size) * cp.n_slots
    n_v2g = int(cp.v2g_k.size)
    sizes = {
        "pc": cp.n_session_slots,
        "pd": n_v2g,
        "e": n_v2g,
        "sf": cp.n_sessions,
        "imp": n_site_slots,
        "imp_over": n_site_slots,
        "exp": n_site_slots,
        "exp_over": n_site_slots,
        "bc": n_batt_slots,
        "bd": n_batt_slots,
        "eb": n_batt_slots,
        "ev_slack": sum(int(c.slots.size) for c in cp.caps),
    }
    offsets, at = {}, 0
    for name in BLOCKS:
        offsets[name] = at
        at += sizes[name]
    return Layout(sizes, offsets)


def powers_from_solution(
    cp: CompiledProblem, lay: Layout, x: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(pc per k, pd per k, site battery power (B, T)) from a solution vector."""
    pc = np.clip(lay.take(x, "pc"), 0.0, None)
    pd = np.zeros(cp.n_session_slots)
    pd[cp.v2g_k] = np.clip(lay.take(x, "pd"), 0.0, None)
    n_b = int(cp.batt_site.size)
    batt = (lay.take(x, "bc") - lay.take(x, "bd")).reshape(n_b, cp.n_slots)
    return pc, pd, batt
