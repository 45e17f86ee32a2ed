"""Column types: aware UTC datetimes on every backend (SQLite keeps no offset)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL, naive UTC text on SQLite; always aware UTC in Python.

    Naive values are refused on the way in: a time without an offset is ambiguous, and the
    domain never produces one.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text; a fixed UTC offset keeps its ordering and comparisons right.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
