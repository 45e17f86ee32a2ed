"""Domain objects reject invalid values at construction, naming the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.domain import (
    Charger,
    GridEvent,
    Prices,
    Session,
    Setpoint,
    Site,
    SiteBattery,
    TimeGrid,
    ValidationError,
    Vehicle,
)
from tests.fleet_builders import ev, make_problem

T0 = datetime(2025, 1, 6, tzinfo=UTC)
H = timedelta(hours=1)


def session(**overrides: object) -> Session:
    fields: dict[str, object] = dict(
        session_id="s",
        vehicle_id="v",
        charger_id="c",
        arrival=T0,
        departure=T0 + H,
        arrival_soc=0.2,
        target_soc=0.8,
    )
    fields.update(overrides)
    return Session(**fields)  # type: ignore[arg-type]


def test_departure_must_be_after_arrival() -> None:
    with pytest.raises(ValidationError) as err:
        session(departure=T0)
    assert (err.value.field, err.value.reason) == ("departure", "must be after arrival")


@pytest.mark.parametrize("field", ["arrival_soc", "target_soc", "min_soc"])
@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan")])
def test_soc_outside_zero_one_is_rejected(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as err:
        session(**{field: value})
    assert err.value.field == field


def test_min_soc_above_target_is_rejected() -> None:
    with pytest.raises(ValidationError, match="min_soc: must be <= target_soc"):
        session(min_soc=0.9, target_soc=0.8)


def test_exactly_one_departure_need() -> None:
    with pytest.raises(ValidationError):
        session(target_soc=None)
    with pytest.raises(ValidationError):
        session(energy_kwh=10.0)  # target_soc is set as well
    assert session(target_soc=None, energy_kwh=10.0).target_energy_kwh(60.0) == 22.0


def test_energy_need_is_capped_at_the_battery() -> None:
    s = session(target_soc=None, energy_kwh=100.0)
    assert s.target_energy_kwh(60.0) == 60.0


@pytest.mark.parametrize(
    "when", [datetime(2025, 1, 6), datetime(2025, 1, 6, tzinfo=timezone(timedelta(hours=1)))]
)
def test_times_must_be_aware_utc(when: datetime) -> None:
    with pytest.raises(ValidationError, match="timezone-aware UTC"):
        session(arrival=when, departure=T0 + 2 * H)
    with pytest.raises(ValidationError, match="timezone-aware UTC"):
        TimeGrid(when, H, 4)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Site("a", import_limit_kw=-1.0),
        lambda: Site("a", import_limit_kw=10.0, export_limit_kw=-1.0),
        lambda: Site("a", import_limit_kw=10.0, pv_kw=(1.0, -2.0)),
        lambda: Charger("c", "a", max_charge_kw=-1.0),
        lambda: Charger("c", "a", max_charge_kw=11.0, max_discharge_kw=-1.0),
        lambda: Vehicle("v", battery_kwh=60.0, max_charge_kw=-11.0),
        lambda: Vehicle("v", battery_kwh=0.0, max_charge_kw=11.0),
        lambda: SiteBattery("a", capacity_kwh=-1.0, max_charge_kw=1.0, max_discharge_kw=1.0),
        lambda: GridEvent("e", T0, T0 + H, shed_kw=-5.0),
    ],
)
def test_negative_limits_are_rejected(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="must be"):
        build()


def test_efficiency_must_be_in_zero_one() -> None:
    with pytest.raises(ValidationError, match="charge_efficiency"):
        Vehicle("v", 60.0, 11.0, charge_efficiency=0.0)
    with pytest.raises(ValidationError, match="discharge_efficiency"):
        Vehicle("v", 60.0, 11.0, discharge_efficiency=1.2)


def test_event_needs_exactly_one_of_cap_and_shed() -> None:
    with pytest.raises(ValidationError):
        GridEvent("e", T0, T0 + H)
    with pytest.raises(ValidationError):
        GridEvent("e", T0, T0 + H, cap_kw=5.0, shed_kw=5.0)
    with pytest.raises(ValidationError, match="end: must be after start"):
        GridEvent("e", T0, T0, cap_kw=5.0)


def test_setpoint_validity_follows_issue_time() -> None:
    with pytest.raises(ValidationError, match="valid_until"):
        Setpoint("c", "a", 7.0, issued_at=T0, valid_until=T0, plan_id="p", seq=1)


def test_time_grid_indexes_slots() -> None:
    grid = TimeGrid(T0, timedelta(minutes=15), 96)
    assert grid.end == T0 + timedelta(days=1)
    assert grid.step_hours == 0.25
    assert grid.index_of(T0 + timedelta(minutes=44)) == 2
    assert grid.overlap_fraction(0, T0 + timedelta(minutes=5), T0 + H) == pytest.approx(2 / 3)
    with pytest.raises(IndexError):
        grid.index_of(T0 + timedelta(days=1))


def test_problem_rejects_overlapping_sessions_on_one_charger() -> None:
    problem = make_problem([ev(0, 4), ev(2, 6)])
    sessions = list(problem.sessions)
    sessions[1] = Session("s1", "v1", "c0", sessions[1].arrival, sessions[1].departure, 0.2, 0.8)
    with pytest.raises(ValidationError, match="overlaps session s0 on charger c0"):
        make_problem_with(problem, sessions=tuple(sessions))


def test_problem_rejects_unknown_ids_and_series_of_wrong_length() -> None:
    problem = make_problem([ev(0, 4)])
    bad = Session(
        "s9", "v0", "nope", problem.sessions[0].arrival, problem.sessions[0].departure, 0.2, 0.8
    )
    with pytest.raises(ValidationError, match="unknown charger 'nope'"):
        make_problem_with(problem, sessions=(bad,))
    with pytest.raises(ValidationError, match="has 3 slots, grid has 8"):
        make_problem_with(problem, prices=Prices.flat(50.0, 3))


def make_problem_with(problem, **changes):  # type: ignore[no-untyped-def]
    from dataclasses import fields, replace

    init = {f.name for f in fields(problem) if f.init}
    return replace(problem, **{k: v for k, v in changes.items() if k in init})
