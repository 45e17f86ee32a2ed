"""Engines for the SQL store: SQLite (WAL, busy timeout, explicit BEGIN) or PostgreSQL.

Writes run in connections carrying ``WRITE_OPTIONS``; on SQLite those begin with
``BEGIN IMMEDIATE`` so a writer takes the write lock up front (waiting up to the busy timeout)
instead of failing when a read transaction cannot be upgraded. Readers never wait (WAL).
"""

from __future__ import annotations

import json
import sqlite3
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_URL = "sqlite:///var/aggregator.db"
URL_ENV = "AGGREGATOR_DATABASE_URL"
BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "aggregator_write"

# JSON columns hold only finite numbers (plan_codec writes non-finite floats as strings), and
# PostgreSQL rejects NaN in json: refuse it on every backend alike.
_dumps = partial(json.dumps, allow_nan=False)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``: ``sqlite:///path.db`` (parent folder created) or
    ``postgresql+psycopg://...``. ValueError for anything else or an in-memory SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise ValueError(
                f"database url {url!r}: an in-memory SQLite database is not durable and is not "
                "shared between connections; give a file, e.g. sqlite:///var/aggregator.db"
            )
        if not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False}, json_serializer=_dumps
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, json_serializer=_dumps)
    raise ValueError(
        f"database url {parsed.render_as_string(hide_password=True)!r}: unsupported backend "
        f"{backend!r}; use sqlite:///path.db or postgresql+psycopg://user@host/db"
    )


def writer(engine: Engine) -> Engine:
    """The same engine (same pool), marked so that its transactions are writes."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is off; _sqlite_on_begin emits BEGIN itself, so every
    # statement (DDL included) runs inside a real transaction.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = bool(conn.get_execution_options().get(WRITE_OPTION, False))
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
