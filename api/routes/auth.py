"""Tokens for people calling the API."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from api.deps import AppSettings, CurrentPrincipal, DbSession
from api.errors import ApiError
from api.security import active_delegators, authenticate_password, open_session, revoke_session
from schemas.api import Me, TokenRequest, TokenResponse

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenResponse)
async def issue_token(
    body: TokenRequest, session: DbSession, settings: AppSettings
) -> TokenResponse:
    """Exchange a username and password for a bearer token."""
    try:
        user = await authenticate_password(
            session,
            username=body.username,
            password=body.password,
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            source="api",
        )
    except ApiError:
        await session.commit()  # the failed attempt and any lockout are kept
        raise
    token, row = await open_session(session, user, kind="bearer", hours=settings.session_hours)
    await session.commit()
    return TokenResponse(access_token=token, expires_at=row.expires_at)


@router.post("/auth/logout", status_code=204)
async def logout(principal: CurrentPrincipal, session: DbSession) -> None:
    """Revoke the bearer token used for this call."""
    if principal.session_id is not None:
        await revoke_session(session, principal.session_id)
        await session.commit()


@router.get("/me", response_model=Me)
async def me(principal: CurrentPrincipal, session: DbSession) -> Me:
    delegators = await active_delegators(session, principal.user_id)
    return Me(
        username=principal.username,
        full_name=principal.full_name,
        groups=sorted(principal.groups),
        via=principal.via,
        stands_in_for=[d.username for d in delegators],
    )
