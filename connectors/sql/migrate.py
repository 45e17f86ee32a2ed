"""Runs the shipped Alembic migrations (``migrations/``) programmatically; no alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from connectors.sql.engine import writer

# "package:folder" lets Alembic find the scripts inside the installed package.
SCRIPT_LOCATION = "connectors.sql:migrations"
# Any constant: serialises concurrent migrations of one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x45564147


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the package's scripts, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest schema, in one transaction. Idempotent."""
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), "head")
