"""SqlRepository: every Repository method round-trips, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.domain import (
    Charger,
    DepartureConstraint,
    EventRecord,
    Fleet,
    GridEvent,
    Plan,
    Session,
    Setpoint,
    Site,
    SiteBattery,
    Telemetry,
    Vehicle,
)
from connectors.sql import SqlRepository

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _fleet() -> Fleet:
    return Fleet(
        sites=(Site("depot", 250.0, 50.0, base_load_kw=(10.0, 12.5), pv_kw=(0.0, 3.25)),),
        chargers=(Charger("c1", "depot", 22.0), Charger("c2", "depot", 11.0, 11.0)),
        vehicles=(Vehicle("v1", 60.0, 11.0, 11.0, True, 0.9, 0.91), Vehicle("v2", 40.0, 7.4)),
        batteries=(SiteBattery("depot", 100.0, 50.0, 40.0, initial_soc=0.6, min_soc=0.1),),
    )


def _session(session_id: str = "s1", **changes: object) -> Session:
    session = Session(session_id, "v1", "c1", T0, T0 + timedelta(hours=8), 0.25, target_soc=0.8)
    return replace(session, **changes)


def _setpoint(seq: int, issued_at: datetime = T0, charger_id: str = "c1") -> Setpoint:
    return Setpoint(
        charger_id, "depot", -3.5, issued_at, issued_at + timedelta(minutes=5), "p1", seq
    )


def _reading(site_id: str, minute: int, charger_id: str = "c1") -> Telemetry:
    return Telemetry(site_id, charger_id, T0 + timedelta(minutes=minute), 7.5, True, "v1", 0.5)


def test_fleet_round_trips(repo: SqlRepository) -> None:
    fleet = _fleet()
    repo.save_fleet(fleet)
    assert repo.load_fleet() == fleet


def test_fleet_upsert_updates_given_assets_and_keeps_the_others(repo: SqlRepository) -> None:
    repo.save_fleet(_fleet())
    repo.save_fleet(
        Fleet(
            sites=(Site("yard", 100.0),),
            chargers=(Charger("c1", "depot", 7.4),),
            vehicles=(),
        )
    )
    fleet = repo.load_fleet()
    assert [s.site_id for s in fleet.sites] == ["depot", "yard"]
    assert fleet.charger("c1") == Charger("c1", "depot", 7.4)
    assert fleet.charger("c2") == Charger("c2", "depot", 11.0, 11.0)
    assert fleet.vehicles == _fleet().vehicles
    assert fleet.batteries == _fleet().batteries


def test_constraint_is_replaced_per_vehicle_and_deleted(repo: SqlRepository) -> None:
    first = DepartureConstraint("v1", T0 + timedelta(hours=9), target_soc=0.8, min_soc=0.2)
    second = DepartureConstraint("v1", T0 + timedelta(hours=10), energy_kwh=25.0)
    other = DepartureConstraint("v2", T0 + timedelta(hours=7), target_soc=1.0)
    repo.save_constraint(first)
    repo.save_constraint(other)
    repo.save_constraint(second)
    assert repo.constraints() == [second, other]
    assert repo.delete_constraint("v1") is True
    assert repo.delete_constraint("v1") is False
    assert repo.constraints() == [other]


def test_session_saved_updated_and_closed(repo: SqlRepository) -> None:
    repo.save_session(_session("s1"))
    repo.save_session(_session("s2", arrival=T0 + timedelta(hours=1), charger_id="c2"))
    updated = _session("s1", departure=T0 + timedelta(hours=5), target_soc=None, energy_kwh=20.0)
    repo.save_session(updated)
    assert repo.open_sessions() == [
        updated,
        _session("s2", arrival=T0 + timedelta(hours=1), charger_id="c2"),
    ]
    repo.close_session("s1", T0 + timedelta(hours=4))
    assert [s.session_id for s in repo.open_sessions()] == ["s2"]
    # Saving a closed session again (a late update) does not reopen it.
    repo.save_session(updated)
    assert [s.session_id for s in repo.open_sessions()] == ["s2"]


def test_closing_an_unknown_session_raises(repo: SqlRepository) -> None:
    with pytest.raises(KeyError, match="nope"):
        repo.close_session("nope", T0)


def test_event_upsert_by_id_keeps_modification_number_and_status(repo: SqlRepository) -> None:
    event = GridEvent(
        "dr-1", T0, T0 + timedelta(hours=2), frozenset({"depot", "yard"}), cap_kw=80.0
    )
    everywhere = GridEvent("dr-0", T0 - timedelta(hours=1), T0, shed_kw=15.0)
    repo.save_event(EventRecord(event, 0, "active", T0 - timedelta(days=1)))
    repo.save_event(EventRecord(everywhere))
    changed = EventRecord(replace(event, cap_kw=60.0), 3, "cancelled", T0 - timedelta(hours=2))
    repo.save_event(changed)
    assert repo.events() == [EventRecord(everywhere), changed]


def test_save_plan_supersedes_older_and_latest_rebuilds_it(
    repo: SqlRepository, real_plan: Plan
) -> None:
    assert repo.latest_plan() is None
    repo.save_plan("p1", T0, real_plan)
    heuristic = replace(real_plan, solver_path="heuristic", solver_status="timeout")
    repo.save_plan("p2", T0 + timedelta(minutes=5), heuristic)

    latest = repo.latest_plan()
    assert latest is not None
    record, plan = latest
    assert plan == heuristic
    assert record.plan_id == "p2"
    assert record.created_at == T0 + timedelta(minutes=5)
    assert record.created_at.tzinfo is UTC
    assert (record.solver_path, record.solver_status) == ("heuristic", "timeout")
    assert record.objective == pytest.approx(heuristic.cost.total)
    assert record.shortfall_kwh == pytest.approx(heuristic.total_shortfall_kwh)
    assert not record.superseded
    assert [(r.plan_id, r.superseded) for r in repo.plans()] == [("p2", False), ("p1", True)]
    assert [r.plan_id for r in repo.plans(limit=1)] == ["p2"]


def test_setpoints_keep_their_seq_and_are_found_since(repo: SqlRepository) -> None:
    assert repo.last_setpoint_seq() == 0
    early = [_setpoint(1), _setpoint(2, charger_id="c2")]
    late = [_setpoint(3, T0 + timedelta(minutes=5))]
    repo.record_setpoints(early)
    repo.record_setpoints(late)
    repo.record_setpoints([])
    assert repo.last_setpoint_seq() == 3
    assert repo.setpoints_since(T0) == early + late
    assert repo.setpoints_since(T0 + timedelta(minutes=1)) == late
    assert all(s.issued_at.tzinfo is UTC for s in repo.setpoints_since(T0))


def test_telemetry_range_query_by_site_and_time(repo: SqlRepository) -> None:
    batch = [_reading("depot", m) for m in range(0, 600, 2)] + [_reading("yard", m) for m in (0, 1)]
    batch.append(Telemetry("depot", "c9", T0 + timedelta(minutes=3), 0.0, False, status="fault"))
    repo.add_telemetry(batch)
    repo.add_telemetry([])

    window = repo.telemetry(T0 + timedelta(minutes=2), T0 + timedelta(minutes=6), "depot")
    assert window == [
        _reading("depot", 2),
        Telemetry("depot", "c9", T0 + timedelta(minutes=3), 0.0, False, status="fault"),
        _reading("depot", 4),
    ]
    assert all(t.ts.tzinfo is UTC for t in window)
    assert len(repo.telemetry(T0, T0 + timedelta(minutes=2))) == 3  # both sites, end excluded
    assert len(repo.telemetry(T0, T0 + timedelta(days=1), "depot")) == 301


def test_times_given_in_another_offset_come_back_as_utc(repo: SqlRepository) -> None:
    # The domain only accepts UTC, but a +00:00 offset object other than datetime.UTC is legal.
    other_utc = timezone(timedelta(0), "Z")
    repo.add_telemetry([Telemetry("depot", "c1", T0.replace(tzinfo=other_utc), 1.0, True)])
    [reading] = repo.telemetry(T0, T0 + timedelta(seconds=1))
    assert reading.ts == T0
    assert reading.ts.tzinfo is UTC
