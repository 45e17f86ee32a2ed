"""Bearer API keys: a random token per account, only its SHA-256 kept (docs/api.md)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aggregator.api.context import ApiContext
from aggregator.domain import Account
from aggregator.services.access import allowed

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer agg_...`")


def new_token() -> str:
    """A new API key: 256 random bits."""
    return "agg_" + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


async def current_account(
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    if credentials is None:
        raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    account = await asyncio.to_thread(
        ctx.accounts.account_by_token, token_sha256(credentials.credentials)
    )
    if account is None:
        raise HTTPException(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
    return account


def needs(scope: str) -> Callable[[Account], Awaitable[Account]]:
    """A dependency: the caller's account, if its role has ``scope``; else 403."""

    async def check(account: Annotated[Account, Depends(current_account)]) -> Account:
        if not allowed(account, scope):
            raise HTTPException(403, f"role {account.role} may not {scope.replace(':', ' ')}")
        return account

    return check


async def needs_any(account: Annotated[Account, Depends(current_account)]) -> Account:
    """Any signed-in account."""
    return account
