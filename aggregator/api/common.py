"""Shared pieces of the routes: errors as FastAPI shapes them, CSV answers, idempotent POSTs."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from aggregator.api.context import ApiContext
from aggregator.domain import Account

P = ParamSpec("P")
T = TypeVar("T")


async def store(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a (blocking) store call off the event loop; store errors become 503 (app.py)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def unprocessable(field: str, reason: str, where: str = "body") -> HTTPException:
    """422 in FastAPI's own shape: ``{"detail": [{"loc": [where, field], "msg": reason}]}``."""
    return HTTPException(422, [{"loc": [where, field], "msg": reason, "type": "value_error"}])


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def conflict(reason: str) -> HTTPException:
    return HTTPException(409, reason)


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


def table(request: Request, rows: Sequence[BaseModel], columns: Sequence[str]) -> Any:
    """The rows as JSON, or as CSV (one column per field) when the client asks for text/csv."""
    if not wants_csv(request):
        return rows
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        data = jsonable_encoder(row)
        writer.writerow({k: data.get(k) for k in columns})
    return Response(out.getvalue(), media_type="text/csv")


async def idempotent(
    ctx: ApiContext,
    account: Account,
    request: Request,
    key: str | None,
    act: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """Do ``act`` once per ``Idempotency-Key``: a retry gets the stored answer.

    The key is per account. Reusing it for a different request (method, path or body) is
    refused with 422. Only successful answers are kept, so a corrected retry can succeed.
    """
    if key is None:
        status, body = await act()
        return JSONResponse(jsonable_encoder(body), status_code=status)
    if not 1 <= len(key) <= 255:
        raise unprocessable("Idempotency-Key", "must be 1-255 characters", "header")
    raw = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw
    ).hexdigest()
    held = await store(ctx.accounts.idempotent_response, account.account_id, key)
    if held is not None:
        if held[0] != fingerprint:
            raise unprocessable("Idempotency-Key", "was used for a different request", "header")
        return JSONResponse(held[2], status_code=held[1], headers={"Idempotent-Replayed": "true"})
    status, body = await act()
    encoded = json.loads(json.dumps(jsonable_encoder(body)))
    if 200 <= status < 300:
        await store(
            ctx.accounts.save_idempotent_response,
            account.account_id,
            key,
            fingerprint,
            status,
            encoded,
            ctx.clock.now(),
        )
    return JSONResponse(encoded, status_code=status)
