"""The opt-in check: meet the event with no departure shortfall, or within a tolerance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aggregator.domain import GridEvent
from models.feasibility import BaselineLookup, EnvelopeFeasibility, plan_baseline
from tests.fleet_builders import START, ev, make_problem

H = timedelta(hours=1)
# One vehicle needing 36 kWh over 8 one-hour slots at up to 10 kW: it can pause 4.4 hours.
PROBLEM = make_problem([ev(0, 8, arrival_soc=0.2, target_soc=0.8)], n_slots=8)


def cap(hours: int, kw: float = 0.0) -> GridEvent:
    return GridEvent("e/0", START + H, START + (1 + hours) * H, cap_kw=kw)


def test_an_event_the_fleet_can_absorb_is_feasible() -> None:
    ok, why = EnvelopeFeasibility(lambda: PROBLEM).check([cap(4)])
    assert (ok, why) == (True, "the fleet can meet every interval with no departure shortfall")


def test_an_event_that_would_leave_a_vehicle_short_is_not_and_says_by_how_much() -> None:
    # Six hours at 0 kW leave two hours at 10 kW: 20 of the 36 kWh, 16 kWh short.
    ok, why = EnvelopeFeasibility(lambda: PROBLEM).check([cap(6)])
    assert not ok
    assert (
        why == "e/0: vehicles must take 16.0 kWh during the event to leave charged, "
        "the limit leaves room for 0.0 kWh"
    )


@pytest.mark.parametrize(("tolerance", "ok"), [(15.9, False), (16.0, True), (30.0, True)])
def test_a_shortfall_tolerance_lets_the_fleet_opt_in_up_to_it(tolerance: float, ok: bool) -> None:
    check = EnvelopeFeasibility(lambda: PROBLEM, tolerance_kwh=tolerance)
    answer, why = check.check([cap(6)])
    assert answer is ok
    if ok:
        assert why == "e/0: feasible within tolerance (at least 16.0 kWh short)"
    else:
        assert why.endswith("tolerance 15.9 kWh")


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance_kwh: must be >= 0"):
        EnvelopeFeasibility(lambda: PROBLEM, tolerance_kwh=-1.0)


def test_a_shed_is_judged_against_the_plan_the_fleet_follows() -> None:
    def lookup(kw: float) -> BaselineLookup:
        return plan_baseline({"site-0": [kw] * 8}, START, 3600.0)

    shed = GridEvent("e/0", START + H, START + 3 * H, shed_kw=6.0)
    # From 10 kW, shedding 6 leaves 4 kW: fine. From 5 kW it would mean -1 kW, impossible
    # without V2G, and the vehicle cannot make up the shed energy elsewhere either.
    assert EnvelopeFeasibility(lambda: PROBLEM, lookup(10.0)).check([shed])[0]
    ok, why = EnvelopeFeasibility(lambda: PROBLEM, lookup(5.0)).check([shed])
    assert not ok and "cannot go below 0.0 kW" in why
    ok, why = EnvelopeFeasibility(lambda: PROBLEM).check([shed])
    assert (ok, why) == (False, "e/0: no baseline to shed from at 01:00")
