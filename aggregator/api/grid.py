"""Utility events with our opt decision and, once settled, the settlement; telemetry."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from aggregator.api.auth import Ctx, needs
from aggregator.api.common import not_found, store, table
from aggregator.api.schemas import ERRORS
from aggregator.domain import Account, DrEventRecord, SettlementRecord, Telemetry

router = APIRouter(prefix="/api/v1", tags=["grid events", "telemetry"], responses=ERRORS)

GridReader = Annotated[Account, Depends(needs("grid:read"))]
TelemetryReader = Annotated[Account, Depends(needs("telemetry:read"))]


class Limit(BaseModel):
    limit_id: str
    start: datetime
    end: datetime
    cap_kw: float | None
    shed_kw: float | None


class GridEventOut(BaseModel):
    event_id: str
    modification_number: int
    status: str
    state: str
    opt: str
    reason: str
    received_at: datetime
    start: datetime
    end: datetime
    site_ids: list[str]
    program: str | None
    limits: list[Limit]
    settlement_status: str | None = None
    compliance: float | None = None
    delivered_kwh: float | None = None
    committed_kwh: float | None = None


class GridEventDetail(GridEventOut):
    settlement: dict[str, Any] | None = None


def _event(record: DrEventRecord, settled: SettlementRecord | None) -> dict[str, Any]:
    e = record.event
    out: dict[str, Any] = {
        "event_id": e.event_id,
        "modification_number": e.modification_number,
        "status": e.status,
        "state": record.state,
        "opt": record.opt,
        "reason": record.reason,
        "received_at": record.received_at,
        "start": e.start,
        "end": e.end,
        "site_ids": sorted(e.site_ids),
        "program": e.program,
        "limits": [
            Limit(limit_id=g.event_id, start=g.start, end=g.end, cap_kw=g.cap_kw, shed_kw=g.shed_kw)
            for g in e.limits
        ],
    }
    if settled is not None:
        out["settlement_status"] = settled.status
        if settled.settlement is not None:
            out["compliance"] = settled.settlement.compliance
            out["delivered_kwh"] = settled.settlement.delivered_kwh
            out["committed_kwh"] = settled.settlement.committed_kwh
    return out


@router.get("/events", response_model=list[GridEventOut])
async def list_events(request: Request, ctx: Ctx, _: GridReader) -> object:
    events, settlements = ctx.events, ctx.settlements
    if events is None:  # no VEN configured: no utility events
        return table(request, [], [])
    settled = {s.event_id: s for s in await store(settlements.settlements)} if settlements else {}
    rows = [
        GridEventOut(**_event(r, settled.get(r.event.event_id))) for r in await store(events.all)
    ]
    columns = [c for c in GridEventOut.model_fields if c != "limits"]
    return table(request, rows, columns)


@router.get("/events/{event_id}", response_model=GridEventDetail)
async def get_event(event_id: str, ctx: Ctx, _: GridReader) -> GridEventDetail:
    events, settlements = ctx.events, ctx.settlements
    record = await store(events.get, event_id) if events is not None else None
    if record is None:
        raise not_found(f"event {event_id}")
    settled = await store(settlements.settlement, event_id) if settlements else None
    detail = GridEventDetail(**_event(record, settled))
    if settled is not None:
        detail.settlement = {
            "status": settled.status,
            "reason": settled.reason,
            "settled_at": settled.settled_at,
            "result": asdict(settled.settlement) if settled.settlement else None,
            "sites": [asdict(x) for x in settled.sites],
        }
    return detail


# ---------------------------------------------------------------------- telemetry


class Reading(BaseModel):
    site_id: str
    charger_id: str
    ts: datetime
    power_kw: float
    plugged: bool
    vehicle_id: str | None
    soc: float | None
    status: str


def _reading(t: Telemetry) -> Reading:
    return Reading(**asdict(t))


@router.get("/telemetry/latest", response_model=list[Reading])
async def latest(request: Request, ctx: Ctx, _: TelemetryReader) -> object:
    rows = [_reading(t) for t in await store(ctx.repo.latest_telemetry)]
    return table(request, rows, list(Reading.model_fields))


MAX_RANGE = timedelta(days=7)


@router.get("/sites/{site_id}/telemetry", response_model=list[Reading])
async def site_telemetry(
    site_id: str,
    request: Request,
    ctx: Ctx,
    _: TelemetryReader,
    since: Annotated[datetime | None, Query(description="default: an hour before until")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> object:
    now = ctx.clock.now()
    until = until or now
    since = since or until - timedelta(hours=1)
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise HTTPException(
                422, [{"loc": ["query", name], "msg": "needs a timezone", "type": "value_error"}]
            )
    if not since < until or until - since > MAX_RANGE:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["query", "since"],
                    "msg": "must be before until, at most 7 days",
                    "type": "value_error",
                }
            ],
        )
    if not any(s.site_id == site_id for s in ctx.runtime.controller.fleet.sites):
        raise not_found(f"site {site_id}")
    rows = [_reading(t) for t in await store(ctx.repo.telemetry, since, until, site_id)]
    return table(request, rows, list(Reading.model_fields))
