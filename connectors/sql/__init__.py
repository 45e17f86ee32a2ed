"""SQL store: the durable ``Repository`` on SQLite (default) or PostgreSQL, via SQLAlchemy.

``open_repository(url)`` is the entry point: it creates the store and migrates it to the
newest schema (Alembic, shipped in ``migrations/``).
"""

from connectors.sql.repository import SqlRepository, open_repository

__all__ = ["SqlRepository", "open_repository"]
