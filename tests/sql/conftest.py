"""Fixtures: a migrated store on a fresh SQLite file and on a fresh PostgreSQL database.

The PostgreSQL case skips when no server answers at 127.0.0.1:5432. Otherwise each test gets
its own database ``agg_test_<random>``, created through the ``test`` database and dropped
afterwards, so tests never see each other's rows (or another engineer's).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from aggregator.domain import Plan, SiteBattery
from connectors.sql import SqlRepository, open_repository
from models.planner import PyomoPlanner
from tests.fleet_builders import cap_event, ev, make_problem

PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB = "127.0.0.1", 5432, "postgres", "test"


@cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None if it can); asked once per test run."""
    try:
        _admin_connect().close()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL answering at {PG_HOST}:{PG_PORT} ({first_line})"
    return None


def _admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname=PG_ADMIN_DB,
        connect_timeout=2,
        autocommit=True,
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty PostgreSQL database, dropped after the test."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    name = f"agg_test_{uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend: a SQLite file in a folder that does not exist yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'aggregator.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def repo(db_url: str) -> Iterator[SqlRepository]:
    store = open_repository(db_url)
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def real_plan() -> Plan:
    """A plan from the real planner: V2G, a site battery and a grid event, so every part of a
    ``Plan`` (schedules, site series, outcomes, event results, costs, timings) is filled."""
    problem = make_problem(
        [ev(0, 5, arrival_soc=0.3, target_soc=0.9), ev(1, 6, arrival_soc=0.6, target_soc=0.7)],
        n_slots=6,
        v2g=True,
        export_limit_kw=20.0,
        prices=[80.0, 40.0, 20.0, 120.0, 60.0, 30.0],
        events=[cap_event("dr-1", 3, 5, cap_kw=5.0)],
        batteries=[SiteBattery("site-0", 20.0, 5.0, 5.0)],
    )
    return PyomoPlanner().plan(problem)
