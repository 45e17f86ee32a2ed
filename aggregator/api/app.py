"""The FastAPI application: ``/api/v1`` (OpenAPI at ``/docs``), health, metrics, dashboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from aggregator.api import admin, assets, dashboard, departures, grid, plans
from aggregator.api.context import ApiContext
from aggregator.api.metrics import registry_for
from aggregator.domain import ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before any route reads them."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLargeError:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = b'{"detail":"request body larger than %d bytes"}' % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLargeError(Exception):
    pass


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="EV fleet flexibility aggregator",
        version="1",
        description="Fleet managers, operators and traders: assets, departures, plans, "
        "utility events and settlements. Authenticate with `Authorization: Bearer <API key>`.",
    )
    app.state.ctx = ctx
    app.state.registry = registry_for(ctx.runtime)

    @app.exception_handler(ValidationError)
    async def domain_error(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]},
            status_code=422,
        )

    @app.exception_handler(SQLAlchemyError)
    async def store_error(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Nothing was accepted: the client may retry (with its Idempotency-Key).
        return JSONResponse(
            {"detail": f"store unavailable: {type(exc).__name__}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for module in (assets, departures, plans, grid, admin, dashboard):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=ctx.max_body_bytes)
    return app
