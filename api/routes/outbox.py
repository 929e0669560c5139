"""Retrying failed deliveries over REST (administrators, or API keys with scope
`webhooks:manage`): a failed outbox message, or a failed webhook delivery, back to pending with
its attempts reset; 409 when it is not failed, 404 when unknown. Each retry is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import outbox_service
from api.deps import CurrentPrincipal, DbSession
from schemas.notify import RetriedOut

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post("/outbox/{outbox_id}/retry", response_model=RetriedOut)
async def retry_outbox(
    outbox_id: RowId, principal: CurrentPrincipal, session: DbSession
) -> RetriedOut:
    row = await outbox_service.retry_outbox(session, principal, outbox_id, source="api")
    await session.commit()
    return RetriedOut(id=outbox_id, status=row.status, attempts=row.attempts)


@router.post("/webhooks/deliveries/{delivery_id}/retry", response_model=RetriedOut)
async def retry_delivery(
    delivery_id: RowId, principal: CurrentPrincipal, session: DbSession
) -> RetriedOut:
    row = await outbox_service.retry_delivery(session, principal, delivery_id, source="api")
    await session.commit()
    return RetriedOut(id=delivery_id, status=row.status, attempts=row.attempts)
