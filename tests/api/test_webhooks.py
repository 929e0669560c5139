"""Webhook subscriptions over REST on the real stack: who may manage them, what is refused and
why, the audit rows; and end to end, a task opened by a real workflow reaches a real local
receiver as a signed POST, with its delivery status readable over the API."""

from __future__ import annotations

import hashlib
import hmac
import json

from sqlalchemy import select

from erp.dispatcher import OutboxDispatcher
from erp.models import (
    ApiKey,
    AppUser,
    AuditEntry,
    MailboxMessage,
    Outbox,
    WebhookDelivery,
    WebhookSubscription,
)
from erp.passwords import token_digest
from tests.activities.test_notify_dispatcher import NO_WAIT, Receiver
from tests.api.test_tasks_api import open_task_of, start_approval
from tests.helpers import eventually

HOOKS_KEY = "ll_test_hooks_0123456789abcdef"


async def test_only_admins_and_scoped_keys_manage_subscriptions(stack):
    admin, bob = await stack.token("admin"), await stack.token("bob")
    body = {"url": "https://erp.example.com/hooks", "event_types": ["task.escalated"]}
    assert (await stack.http.get("/api/v1/webhooks")).status_code == 401
    refused = await stack.http.post("/api/v1/webhooks", json=body, headers=bob)
    assert refused.status_code == 403
    assert "only administrators" in refused.json()["detail"]
    assert (await stack.http.get("/api/v1/webhooks", headers=stack.mes)).status_code == 403
    async with stack.sessions() as session, session.begin():  # a system with the scope may
        mes = await session.scalar(select(AppUser.id).where(AppUser.username == "mes"))
        session.add(
            ApiKey(
                name="hooks",
                key_hash=token_digest(HOOKS_KEY),
                scopes=["webhooks:manage"],
                user_id=mes,
            )
        )
    assert (await stack.http.get("/api/v1/webhooks", headers={"X-API-Key": HOOKS_KEY})).json() == []

    bad = await stack.http.post(
        "/api/v1/webhooks", json=body | {"event_types": ["task.escalatd"]}, headers=admin
    )
    assert bad.status_code == 422
    assert "unknown event(s) task.escalatd" in bad.json()["detail"]
    assert "task.escalated" in bad.json()["detail"]
    not_http = await stack.http.post(
        "/api/v1/webhooks", json=body | {"url": "ftp://example.com/x"}, headers=admin
    )
    assert not_http.status_code == 422 and "http://" in not_http.json()["detail"]

    created = await stack.http.post("/api/v1/webhooks", json=body, headers=admin)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert len(hook["secret"]) >= 32 and hook["created_by"] == "admin" and hook["active"]
    listed = (await stack.http.get("/api/v1/webhooks", headers=admin)).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]

    deleted = await stack.http.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (await stack.http.get("/api/v1/webhooks", headers=admin)).json() == []
    again = await stack.http.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    assert again.status_code == 404

    async with stack.sessions() as session:
        audits = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.after, AuditEntry.before)
                .where(AuditEntry.entity_type == "webhook_subscription")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(a.action, a.actor) for a in audits] == [
        ("webhook.subscribed", "admin"),
        ("webhook.deleted", "admin"),
    ]
    assert hook["secret"] not in json.dumps([a.after for a in audits] + [a.before for a in audits])


async def test_a_task_opened_reaches_the_subscriber_signed_and_the_approvers_mailbox(stack):
    admin = await stack.token("admin")
    receiver = Receiver([503])  # down at first: retried
    try:
        created = await stack.http.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "event_types": ["task.opened"], "secret": "k" * 24},
            headers=admin,
        )
        hook = created.json()
        process_id = await start_approval(stack, await stack.token("alice"))
        task = await open_task_of(stack, process_id)
        dispatcher = OutboxDispatcher(stack.sessions, smtp=None, retry=NO_WAIT)

        async def delivered() -> list[dict] | None:
            await dispatcher.dispatch_once()
            response = await stack.http.get(
                f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin
            )
            rows = response.json()
            return rows if rows and rows[0]["status"] == "delivered" else None

        [delivery] = await eventually(delivered, what="the webhook delivery")
    finally:
        receiver.close()
    assert delivery["event_type"] == "task.opened"
    assert (delivery["attempts"], delivery["last_status_code"]) == (2, 200)
    headers, body = receiver.requests[-1]
    signed = hmac.new(
        b"k" * 24, headers["X-Lotline-Timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["X-Lotline-Signature"] == "sha256=" + signed.hexdigest()
    event = json.loads(body)
    assert event["id"] == delivery["event_id"] == headers["X-Lotline-Event-Id"]
    assert event["data"] == {"task_id": task.id, "event": "task.opened"}

    async with stack.sessions() as session:  # and the qa people have the mail
        addresses = set(
            await session.scalars(
                select(MailboxMessage.address).where(MailboxMessage.subject.like("New task:%"))
            )
        )
    assert addresses == {"bob@example.com", "carol@example.com"}


async def test_a_failed_message_or_delivery_is_retried_by_an_admin_and_audited(stack):
    admin, bob = await stack.token("admin"), await stack.token("bob")
    async with stack.sessions() as session, session.begin():
        failed = Outbox(
            channel="email", recipient="supplier:ACME", subject="PO", body="b", payload={}
        )
        sent = Outbox(channel="email", recipient="user:bob", subject="s", body="b", payload={})
        session.add_all([failed, sent])
        await session.flush()
        failed.status, failed.attempts, failed.last_error = "failed", 8, "no e-mail address"
        sent.status = "sent"
        hook = WebhookSubscription(
            url="https://erp.example.com/h", event_types=["*"], secret="s" * 20, created_by="admin"
        )
        session.add(hook)
        await session.flush()
        delivery = WebhookDelivery(
            subscription_id=hook.id,
            outbox_id=failed.id,
            event_id="evt_retry",
            event_type="task.opened",
            status="failed",
            attempts=8,
            last_error="POST answered 500",
        )
        session.add(delivery)
        await session.flush()
        ids = failed.id, sent.id, delivery.id

    outbox_url, sent_url = f"/api/v1/outbox/{ids[0]}/retry", f"/api/v1/outbox/{ids[1]}/retry"
    delivery_url = f"/api/v1/webhooks/deliveries/{ids[2]}/retry"
    refused = await stack.http.post(outbox_url, headers=bob)
    assert refused.status_code == 403 and "only administrators" in refused.json()["detail"]
    assert (await stack.http.post(delivery_url, headers=stack.mes)).status_code == 403
    unknown = await stack.http.post("/api/v1/outbox/2147483647/retry", headers=admin)
    assert unknown.status_code == 404 and "outbox message 2147483647" in unknown.json()["detail"]
    not_failed = await stack.http.post(sent_url, headers=admin)
    assert not_failed.status_code == 409
    assert "is sent, not failed" in not_failed.json()["detail"]

    retried = await stack.http.post(outbox_url, headers=admin)
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"id": ids[0], "status": "pending", "attempts": 0}
    assert (await stack.http.post(outbox_url, headers=admin)).status_code == 409  # not twice
    again = await stack.http.post(delivery_url, headers=admin)
    assert again.json() == {"id": ids[2], "status": "pending", "attempts": 0}
    chinese = await stack.http.post(delivery_url, headers=admin | {"Accept-Language": "zh-CN"})
    assert chinese.status_code == 409 and "并非投递失败" in chinese.json()["detail"]

    async with stack.sessions() as session:
        row = await session.get_one(Outbox, ids[0])
        audits = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.before)
                .where(AuditEntry.action.in_(["outbox.retried", "webhook.delivery_retried"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert (row.status, row.attempts) == ("pending", 0)
    assert [(a.action, a.actor) for a in audits] == [
        ("outbox.retried", "admin"),
        ("webhook.delivery_retried", "admin"),
    ]
    assert audits[0].before == {
        "status": "failed",
        "attempts": 8,
        "last_error": "no e-mail address",
    }
