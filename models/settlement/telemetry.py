"""Site power from charger telemetry: per-charger sample-and-hold, summed, binned. [kW]

Alignment rule: each charger's reading holds from its ``ts`` until that charger's next reading
(or for at most ``max_hold``, after which the charger counts 0 kW); a charger counts 0 kW before
its first reading. The site's EV power is the sum of these step functions, and each output
value is its exact time-weighted mean over one bin ``[t, t + resolution)`` (bins aligned to the
epoch, labelled by their start). The first bin is averaged from the first reading on; the last
bin is the one holding the latest reading, which holds to the bin's end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from aggregator.domain import Telemetry, ValidationError
from models.settlement.series import (
    MeterData,
    Samples,
    interval_means,
    step_integrals,
    to_samples,
)

_ENTITY = "site power from telemetry"


def _charger_steps(
    readings: Sequence[Telemetry], max_hold_s: float | None
) -> list[tuple[float, tuple[str, str], float]]:
    """(time [s], charger key, power [kW]) changes, with 0 kW where a reading goes stale."""
    by_charger: dict[tuple[str, str], list[Telemetry]] = {}
    for r in readings:
        by_charger.setdefault((r.site_id, r.charger_id), []).append(r)
    steps: list[tuple[float, tuple[str, str], float]] = []
    for key, rows in by_charger.items():
        rows.sort(key=lambda r: r.ts)  # stable: of two readings at one instant, the later wins
        times = [r.ts.timestamp() for r in rows]
        for i, r in enumerate(rows):
            steps.append((times[i], key, r.power_kw))
            nxt = times[i + 1] if i + 1 < len(rows) else math.inf
            if max_hold_s is not None and nxt - times[i] > max_hold_s:
                steps.append((times[i] + max_hold_s, key, 0.0))
    steps.sort(key=lambda s: s[0])
    return steps


def site_power_from_telemetry(
    readings: Sequence[Telemetry],
    base_load_kw: float | MeterData = 0.0,
    *,
    resolution: timedelta = timedelta(minutes=1),
    max_hold: timedelta | None = None,
) -> pd.Series[float]:
    """Site net power per bin: the chargers' power summed, plus base load. [kW]

    Parameters
    ----------
    readings : Sequence[Telemetry]
        Readings of one site's chargers (readings of several sites add up to their aggregate).
    base_load_kw : float or MeterData
        Load behind the meter the chargers do not see (buildings, PV as negative): a constant,
        or samples held until the next one, which must cover every bin. [kW]
    resolution : timedelta
        Bin length; bins are aligned to multiples of it since the epoch.
    max_hold : timedelta or None
        How long a reading stays valid without a newer one from the same charger.
    """
    if not readings:
        raise ValidationError(_ENTITY, "readings", "must not be empty")
    if resolution <= timedelta(0):
        raise ValidationError(_ENTITY, "resolution", f"must be positive, got {resolution}")
    if max_hold is not None and max_hold <= timedelta(0):
        raise ValidationError(_ENTITY, "max_hold", f"must be positive, got {max_hold}")
    res_s = resolution.total_seconds()
    steps = _charger_steps(readings, None if max_hold is None else max_hold.total_seconds())

    current: dict[tuple[str, str], float] = {}
    times, totals = [], []
    for t, key, kw in steps:
        current[key] = kw
        times.append(t)
        totals.append(sum(current.values()))
    site = Samples(t_s=np.array(times), kw=np.array(totals))

    first = math.floor(times[0] / res_s) * res_s
    latest = max(r.ts for r in readings).timestamp()  # stale-outs do not extend the series
    starts = np.arange(first, latest + 1e-9, res_s)
    ends = starts + res_s
    energy, cov = step_integrals(site, starts, ends, None)
    ev_kw = energy / cov
    index = pd.to_datetime(starts, unit="s", utc=True)
    if isinstance(base_load_kw, int | float):
        base = np.full(len(starts), float(base_load_kw))
    else:
        base = interval_means(
            "base load",
            to_samples("base load", base_load_kw),
            list(index),
            list(index + resolution),
            None,
        )
    return pd.Series(ev_kw + base, index=index, name="site_power_kw", dtype=float)
