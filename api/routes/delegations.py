"""Delegations (out of office) over REST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import delegation_service
from api.deps import CurrentPrincipal, DbSession
from schemas.api import DelegationIn, DelegationOut

router = APIRouter(prefix="/api/v1/delegations", tags=["delegations"])


@router.get("", response_model=list[DelegationOut])
async def list_delegations(principal: CurrentPrincipal, session: DbSession) -> list[DelegationOut]:
    return await delegation_service.list_delegations(session=session, principal=principal)


@router.post("", response_model=DelegationOut, status_code=201)
async def create(
    body: DelegationIn, principal: CurrentPrincipal, session: DbSession
) -> DelegationOut:
    created = await delegation_service.create_delegation(
        session=session, principal=principal, body=body, source="api"
    )
    await session.commit()
    return created


@router.delete("/{delegation_id}", status_code=204)
async def revoke(
    delegation_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    principal: CurrentPrincipal,
    session: DbSession,
) -> None:
    await delegation_service.revoke_delegation(
        session=session, principal=principal, delegation_id=delegation_id, source="api"
    )
    await session.commit()
