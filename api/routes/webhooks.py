"""Webhook subscriptions over REST: admins (or API keys with scope `webhooks:manage`) create,
list and delete them, and read each delivery's status. Every change has its audit row."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select

from api.deps import CurrentPrincipal, DbSession
from api.errors import ApiError, Message, not_found
from api.security import Principal
from erp.audit import AuditRecord, append_audit
from erp.models import WebhookDelivery, WebhookSubscription
from erp.notify import ALL_EVENTS, KNOWN_EVENTS
from schemas.notify import WebhookCreated, WebhookDeliveryOut, WebhookIn, WebhookOut

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
SCOPE = "webhooks:manage"
SubscriptionId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _require_manager(principal: Principal) -> None:
    allowed = principal.is_admin if principal.is_person else principal.may(SCOPE)
    if not allowed:
        raise ApiError(
            403,
            "only administrators (or API keys with scope %(scope)s) may manage webhook "
            "subscriptions",
            scope=SCOPE,
        )


def _check(body: WebhookIn) -> None:
    parts = urlsplit(body.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(422, "url: %(url)r is not an http:// or https:// URL", url=body.url)
    unknown = sorted(set(body.event_types) - set(KNOWN_EVENTS) - {ALL_EVENTS})
    if unknown:
        raise ApiError(
            422,
            "event_types: unknown event(s) %(unknown)s; use %(all)r or any of %(known)s",
            unknown=", ".join(unknown),
            all=ALL_EVENTS,
            known=", ".join(KNOWN_EVENTS),
        )


def _out(row: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def _live(session: DbSession, subscription_id: int) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if row is None or row.deleted_at is not None:
        raise not_found(Message("webhook subscription %(id)s", id=subscription_id))
    return row


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(principal: CurrentPrincipal, session: DbSession) -> list[WebhookOut]:
    _require_manager(principal)
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.deleted_at.is_(None))
        .order_by(WebhookSubscription.id)
    )
    return [_out(row) for row in rows]


@router.post("", response_model=WebhookCreated, status_code=201)
async def create_webhook(
    body: WebhookIn, principal: CurrentPrincipal, session: DbSession
) -> WebhookCreated:
    _require_manager(principal)
    _check(body)
    row = WebhookSubscription(
        url=body.url,
        event_types=sorted(set(body.event_types)),
        secret=body.secret or secrets.token_urlsafe(32),
        description=body.description,
        active=True,
        created_by=principal.username,
    )
    session.add(row)
    await session.flush()
    await _audit(session, principal, "webhook.subscribed", row, after=_facts(row))
    await session.commit()
    await session.refresh(row)
    return WebhookCreated(**_out(row).model_dump(), secret=row.secret)


@router.delete("/{subscription_id}", status_code=204)
async def delete_webhook(
    subscription_id: SubscriptionId, principal: CurrentPrincipal, session: DbSession
) -> None:
    _require_manager(principal)
    row = await _live(session, subscription_id)
    before = _facts(row)
    row.active = False
    row.deleted_at = func.now()
    await _audit(session, principal, "webhook.deleted", row, before=before)
    await session.commit()


@router.get("/{subscription_id}/deliveries", response_model=list[WebhookDeliveryOut])
async def list_deliveries(
    subscription_id: SubscriptionId,
    principal: CurrentPrincipal,
    session: DbSession,
    status: Annotated[str | None, Query(pattern="^(pending|sending|delivered|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WebhookDeliveryOut]:
    """The newest deliveries first, with attempts, the last HTTP status and error."""
    _require_manager(principal)
    if await session.get(WebhookSubscription, subscription_id) is None:
        raise not_found(Message("webhook subscription %(id)s", id=subscription_id))
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    rows = await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))
    return [
        WebhookDeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
        )
        for d in rows
    ]


def _facts(row: WebhookSubscription) -> dict[str, object]:
    """What the audit row keeps: never the secret."""
    return {"url": row.url, "event_types": list(row.event_types), "active": row.active}


async def _audit(
    session: DbSession,
    principal: Principal,
    action: str,
    row: WebhookSubscription,
    **change: dict[str, object],
) -> None:
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action=action,
            entity_type="webhook_subscription",
            entity_id=str(row.id),
            source="api",
            **change,  # type: ignore[arg-type]
        ),
    )
