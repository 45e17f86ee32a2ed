"""Accounts (operator only), health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aggregator.api.auth import Ctx, needs, needs_any, new_token, token_sha256
from aggregator.api.common import conflict, idempotent, not_found, store, unprocessable
from aggregator.api.context import ApiContext
from aggregator.api.schemas import ERRORS, AccountBody, AccountCreated, AccountOut
from aggregator.domain import Account

router = APIRouter(tags=["accounts", "operations"])

Operator = Annotated[Account, Depends(needs("accounts:write"))]


def _out(a: Account) -> AccountOut:
    return AccountOut(
        account_id=a.account_id,
        name=a.name,
        role=a.role,
        fleet_ids=sorted(a.fleet_ids),
        created_at=a.created_at,
    )


async def create_account(ctx: ApiContext, body: AccountBody) -> AccountCreated:
    """Store a new account; its token is returned once and never stored."""
    if body.role != "fleet_manager" and body.fleet_ids:
        raise unprocessable("fleet_ids", "only a fleet_manager is granted fleets")
    known = {f.fleet_id for f in await store(ctx.accounts.fleets)}
    for fleet_id in body.fleet_ids:
        if fleet_id not in known:
            raise unprocessable("fleet_ids", f"unknown fleet {fleet_id!r}")
    account = Account(
        body.account_id, body.name, body.role, ctx.clock.now(), frozenset(body.fleet_ids)
    )
    token = new_token()
    try:
        await store(ctx.accounts.create_account, account, token_sha256(token))
    except ValueError as exc:
        raise conflict(str(exc)) from exc
    return AccountCreated(**_out(account).model_dump(), token=token)


@router.post("/api/v1/accounts", status_code=201, response_model=AccountCreated, responses=ERRORS)
async def post_account(
    body: AccountBody,
    request: Request,
    ctx: Ctx,
    account: Operator,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    async def act() -> tuple[int, object]:
        return 201, await create_account(ctx, body)

    return await idempotent(ctx, account, request, key, act)


@router.get("/api/v1/accounts", response_model=list[AccountOut], responses=ERRORS)
async def list_accounts(ctx: Ctx, _: Operator) -> list[AccountOut]:
    return [_out(a) for a in await store(ctx.accounts.accounts)]


@router.get("/api/v1/me", response_model=AccountOut, responses=ERRORS)
async def me(account: Annotated[Account, Depends(needs_any)]) -> AccountOut:
    return _out(account)


@router.delete("/api/v1/accounts/{account_id}", status_code=204, responses=ERRORS)
async def delete_account(account_id: str, ctx: Ctx, caller: Operator) -> Response:
    if account_id == caller.account_id:
        raise conflict("an operator cannot delete its own account")
    if not await store(ctx.accounts.delete_account, account_id):
        raise not_found(f"account {account_id}")
    return Response(status_code=204)


# ---------------------------------------------------------------------- operations


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(ctx: Ctx) -> JSONResponse:
    """Ready when every dependency answers: store, broker, VEN (if configured)."""
    names = list(ctx.ready_checks)

    async def one(name: str) -> str | None:
        try:
            return await asyncio.wait_for(ctx.ready_checks[name](), timeout=3.0)
        except TimeoutError:
            return "no answer within 3 s"
        except Exception as exc:  # a failing check is a not-ready dependency, not a 500
            return f"{type(exc).__name__}: {exc}"

    results = await asyncio.gather(*(one(n) for n in names))
    checks = {n: (r or "ok") for n, r in zip(names, results, strict=True)}
    ready = all(r is None for r in results)
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
