"""The SQL store as a whole: durable across re-opening, migrations, URLs, concurrent use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import StatementError

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
    Telemetry,
)
from connectors.sql import SqlRepository, open_repository
from connectors.sql.schema import Base

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _fill(repo: SqlRepository, plan: Plan) -> None:
    repo.save_fleet(Fleet((Site("depot", 100.0),), (Charger("c1", "depot", 11.0),), ()))
    repo.save_constraint(DepartureConstraint("v1", T0 + timedelta(hours=9), target_soc=0.9))
    repo.save_session(Session("s1", "v1", "c1", T0, T0 + timedelta(hours=9), 0.2, target_soc=0.9))
    repo.save_event(EventRecord(GridEvent("dr-1", T0, T0 + timedelta(hours=1), cap_kw=50.0), 2))
    repo.save_plan("p1", T0, plan)
    repo.record_setpoints([Setpoint("c1", "depot", 11.0, T0, T0 + timedelta(minutes=5), "p1", 41)])
    repo.add_telemetry([Telemetry("depot", "c1", T0, 11.0, True, "v1", 0.2)])


def test_state_survives_reopening_the_store(db_url: str, real_plan: Plan) -> None:
    first = open_repository(db_url)
    try:
        _fill(first, real_plan)
        # A second store on the same database sees everything at once: writes were committed.
        second = SqlRepository(db_url)
        try:
            assert len(second.open_sessions()) == 1
        finally:
            second.dispose()
    finally:
        first.dispose()

    reopened = open_repository(db_url)
    try:
        assert reopened.load_fleet().charger("c1") == Charger("c1", "depot", 11.0)
        assert [c.vehicle_id for c in reopened.constraints()] == ["v1"]
        assert [s.session_id for s in reopened.open_sessions()] == ["s1"]
        assert [e.modification_number for e in reopened.events()] == [2]
        latest = reopened.latest_plan()
        assert latest is not None
        assert latest[1] == real_plan
        assert reopened.last_setpoint_seq() == 41
        assert len(reopened.telemetry(T0, T0 + timedelta(seconds=1))) == 1
    finally:
        reopened.dispose()


def test_migrations_are_idempotent_and_match_the_orm_tables(db_url: str) -> None:
    open_repository(db_url).dispose()
    repo = open_repository(db_url)
    try:
        with repo.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("0005",)
            ]
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        repo.dispose()


def test_sqlite_store_creates_its_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "store.db"
    repo = open_repository(f"sqlite:///{path}")
    try:
        assert path.exists()
        with repo.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        repo.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://u:secret@host/db", "unsupported backend"),
    ],
)
def test_unusable_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        SqlRepository(url)
    assert "secret" not in str(info.value)


def test_naive_times_are_refused_not_stored(repo: SqlRepository) -> None:
    repo.save_session(Session("s1", "v1", "c1", T0, T0 + timedelta(hours=1), 0.5, target_soc=1.0))
    with pytest.raises(StatementError, match="naive datetime"):
        repo.close_session("s1", datetime(2025, 1, 6, 9, 0))
    assert [s.session_id for s in repo.open_sessions()] == ["s1"]


def _in_threads(*jobs: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_reads_during_writes_from_other_threads_do_not_fail(
    repo: SqlRepository, real_plan: Plan
) -> None:
    def write_telemetry(site_id: str) -> Callable[[], None]:
        def job() -> None:
            for batch in range(15):
                repo.add_telemetry(
                    [
                        Telemetry(site_id, f"c{i}", T0 + timedelta(seconds=batch), 1.0, True)
                        for i in range(300)
                    ]
                )

        return job

    def write_plans() -> None:
        for n in range(10):
            repo.save_plan(f"p{n}", T0 + timedelta(minutes=n), real_plan)

    def read() -> None:
        for _ in range(30):
            repo.telemetry(T0, T0 + timedelta(hours=1), "depot")
            repo.latest_plan()
            repo.last_setpoint_seq()

    errors = _in_threads(write_telemetry("depot"), write_telemetry("yard"), write_plans, read)
    assert errors == []
    assert len(repo.telemetry(T0, T0 + timedelta(hours=1))) == 2 * 15 * 300
    assert [r.plan_id for r in repo.plans() if not r.superseded] == ["p9"]
