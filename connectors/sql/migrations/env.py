"""Alembic environment of the SQL store.

``migrate.upgrade_to_head`` passes an open connection in ``config.attributes["connection"]``.
From the ``alembic`` command line (see docs/storage.md) the database is ``-x url=...``, else
``$AGGREGATOR_DATABASE_URL``, else the default SQLite file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from connectors.sql.engine import DEFAULT_URL, URL_ENV, create_store_engine, writer
from connectors.sql.schema import Base

config = context.config


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        URL_ENV, DEFAULT_URL
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = create_store_engine(_url())
    try:
        with writer(engine).connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
