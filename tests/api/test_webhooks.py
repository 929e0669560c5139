"""Webhook subscriptions over REST on the real stack: who may manage them, what is refused and
why, the audit rows; and end to end, a task opened by a real workflow reaches a real local
receiver as a signed POST, with its delivery status readable over the API."""

from __future__ import annotations

import hashlib
import hmac
import json

from sqlalchemy import select

from erp.dispatcher import OutboxDispatcher
from erp.models import ApiKey, AppUser, AuditEntry, MailboxMessage
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
