"""Retrying what the dispatcher gave up on: a failed outbox row or webhook delivery is set back to
`pending`, its attempts reset and due now, with an audit row in the same transaction. Who may:
administrators, or API keys with scope `webhooks:manage`. The API (api/routes/outbox.py) and the
admin's Mailbox page (ui/mailbox_views.py) both call this. docs/notifications.md."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ApiError, Message, not_found
from api.security import Principal
from erp.audit import AuditRecord, append_audit
from erp.models import Outbox, WebhookDelivery, WebhookSubscription

SCOPE = "webhooks:manage"


def require_retrier(principal: Principal) -> None:
    allowed = principal.is_admin if principal.is_person else principal.may(SCOPE)
    if not allowed:
        raise ApiError(
            403,
            "only administrators (or API keys with scope %(scope)s) may retry failed deliveries",
            scope=SCOPE,
        )


def _facts(row: Outbox | WebhookDelivery) -> dict[str, object]:
    return {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}


async def retry_outbox(
    session: AsyncSession, principal: Principal, outbox_id: int, *, source: str
) -> Outbox:
    """Set a failed outbox row back to pending (the caller commits)."""
    require_retrier(principal)
    row = await session.get(Outbox, outbox_id, with_for_update=True)
    if row is None:
        raise not_found(Message("outbox message %(id)s", id=outbox_id))
    if row.status != "failed":
        raise ApiError(
            409,
            "outbox message %(id)s is %(status)s, not failed; only a failed message can be retried",
            id=outbox_id,
            status=row.status,
        )
    before = _facts(row)
    row.status, row.attempts, row.next_attempt_at = "pending", 0, func.now()
    await _audit(session, principal, "outbox.retried", "outbox", row.id, before, source)
    return row


async def retry_delivery(
    session: AsyncSession, principal: Principal, delivery_id: int, *, source: str
) -> WebhookDelivery:
    """Set a failed webhook delivery back to pending (the caller commits)."""
    require_retrier(principal)
    row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if row is None:
        raise not_found(Message("webhook delivery %(id)s", id=delivery_id))
    if row.status != "failed":
        raise ApiError(
            409,
            "webhook delivery %(id)s is %(status)s, not failed; only a failed delivery can be "
            "retried",
            id=delivery_id,
            status=row.status,
        )
    subscription = await session.get(WebhookSubscription, row.subscription_id)
    if subscription is None or subscription.deleted_at is not None or not subscription.active:
        raise ApiError(
            409,
            "webhook delivery %(id)s belongs to a deleted subscription; subscribe again instead",
            id=delivery_id,
        )
    before = _facts(row)
    row.status, row.attempts, row.next_attempt_at = "pending", 0, func.now()
    await _audit(
        session, principal, "webhook.delivery_retried", "webhook_delivery", row.id, before, source
    )
    return row


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: int,
    before: dict[str, object],
    source: str,
) -> None:
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=before,
            after={"status": "pending", "attempts": 0},
            source=source,
        ),
    )
