"""The SQL ``DrEventStore``: utility events and our answers, durable across restarts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlalchemy import select

from aggregator.domain import (
    DrEvent,
    DrEventRecord,
    DrState,
    DrStatus,
    GridEvent,
    OptChoice,
    PriceSignal,
)
from connectors.sql.repository import SqlRepository, upsert
from connectors.sql.schema import DrEventRow


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def event_to_json(e: DrEvent) -> dict[str, Any]:
    return {
        "start": e.start.isoformat(),
        "end": e.end.isoformat(),
        "site_ids": sorted(e.site_ids),
        "program": e.program,
        "unsupported": list(e.unsupported),
        "limits": [
            {
                "event_id": g.event_id,
                "start": g.start.isoformat(),
                "end": g.end.isoformat(),
                "site_ids": sorted(g.site_ids),
                "cap_kw": g.cap_kw,
                "shed_kw": g.shed_kw,
            }
            for g in e.limits
        ],
        "prices": [
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "price_per_mwh": p.price_per_mwh,
                "mode": p.mode,
            }
            for p in e.prices
        ],
    }


def _choice(value: str, allowed: tuple[str, ...], what: str, event_id: str) -> str:
    if value not in allowed:
        raise ValueError(f"dr event {event_id} {what}: unknown value {value!r} in the store")
    return value


def record_from(row: DrEventRow) -> DrEventRecord:
    d = row.event_json
    status = _choice(row.status, get_args(DrStatus), "status", row.event_id)
    event = DrEvent(
        event_id=row.event_id,
        modification_number=row.modification_number,
        status=status,  # type: ignore[arg-type]
        start=_time(d["start"]),
        end=_time(d["end"]),
        site_ids=frozenset(d["site_ids"]),
        limits=tuple(
            GridEvent(
                g["event_id"],
                _time(g["start"]),
                _time(g["end"]),
                frozenset(g["site_ids"]),
                cap_kw=g["cap_kw"],
                shed_kw=g["shed_kw"],
            )
            for g in d["limits"]
        ),
        prices=tuple(
            PriceSignal(_time(p["start"]), _time(p["end"]), p["price_per_mwh"], p["mode"])
            for p in d["prices"]
        ),
        unsupported=tuple(d["unsupported"]),
        program=d["program"],
    )
    opt = _choice(row.opt, get_args(OptChoice), "opt", row.event_id)
    state = _choice(row.state, get_args(DrState), "state", row.event_id)
    return DrEventRecord(event, opt, row.reason, state, row.received_at)  # type: ignore[arg-type]


class SqlDrEventStore:
    """Implements the ``DrEventStore`` port on the repository's database."""

    def __init__(self, repo: SqlRepository) -> None:
        self._repo = repo

    def get(self, event_id: str) -> DrEventRecord | None:
        with self._repo.reader.begin() as s:
            row = s.get(DrEventRow, event_id)
            return record_from(row) if row is not None else None

    def save(self, record: DrEventRecord) -> None:
        e = record.event
        row = {
            "event_id": e.event_id,
            "modification_number": e.modification_number,
            "status": e.status,
            "state": record.state,
            "opt": record.opt,
            "reason": record.reason,
            "received_at": record.received_at,
            "event_json": event_to_json(e),
        }
        with self._repo.writer.begin() as s:
            upsert(s, DrEventRow, [row], "event_id")

    def all(self) -> list[DrEventRecord]:
        with self._repo.reader.begin() as s:
            rows = s.scalars(select(DrEventRow).order_by(DrEventRow.event_id))
            return [record_from(r) for r in rows]
