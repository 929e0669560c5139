"""Typed dependencies: the database session, the Temporal client, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.errors import ApiError
from api.security import Principal, principal_from_api_key, principal_from_token
from settings import Settings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


# async, though they await nothing: FastAPI runs a plain `def` dependency in its thread pool, a
# thread hop per dependency per request (~9 % of the API's CPU when starting processes, bench/start)
async def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions  # type: ignore[no-any-return]


async def _temporal(request: Request) -> Client | None:
    return request.app.state.temporal  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="POST /api/v1/auth/token gives one")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="a system's key")


async def _api_principal(
    session: Annotated[AsyncSession, Depends(_session)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """REST callers authenticate with a bearer token (people) or an X-API-Key (systems)."""
    if key:
        principal = await principal_from_api_key(session, key.strip())
        if principal is None:
            raise ApiError(
                401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
        return principal
    if bearer is not None and bearer.credentials.strip():
        principal = await principal_from_token(session, bearer.credentials.strip(), "bearer")
        if principal is None:
            raise ApiError(
                401,
                "the bearer token is invalid or expired; get a new one at POST /api/v1/auth/token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal
    raise ApiError(
        401,
        "authentication required: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token) "
        "or 'X-API-Key: <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


DbSession = Annotated[AsyncSession, Depends(_session)]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
Temporal = Annotated[Client | None, Depends(_temporal)]
AppSettings = Annotated[Settings, Depends(_settings)]
CurrentPrincipal = Annotated[Principal, Depends(_api_principal)]
