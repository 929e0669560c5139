"""The outbox dispatcher on the test database: the embedded mailbox, a real local SMTP server
(aiosmtpd), a real local HTTP receiver for webhooks; retries, backoff, leases and giving up."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update
from temporalio.testing import ActivityEnvironment

from activities.human_task import HumanTaskActivities
from erp.dispatcher import OutboxDispatcher, RetryRule, SmtpConfig
from erp.models import (
    AppUser,
    MailboxMessage,
    Outbox,
    Task,
    WebhookDelivery,
    WebhookSubscription,
)
from erp.seed import seed_demo
from schemas.activities import EscalateTaskInput, OpenTaskInput
from tests.activities.test_human_task_activities import SPEC, WF
from workflows.wording import titled

NO_WAIT = RetryRule(max_attempts=3, first_delay=timedelta(0), max_delay=timedelta(0))


# --- real servers on localhost ------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the Controller cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver: answers the statuses it is given in turn (then 200), keeps requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver([500])  # the first delivery fails, the retry is accepted
    yield found
    found.close()


# --- helpers ------------------------------------------------------------------------------------


async def add_rows(sessions, *rows: Outbox) -> list[int]:
    async with sessions() as session, session.begin():
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def row(sessions, outbox_id: int) -> Outbox:
    async with sessions() as session:
        return await session.get_one(Outbox, outbox_id)


async def make_due(sessions) -> None:
    """What waiting out a backoff does: everything pending is due now."""
    async with sessions() as session, session.begin():
        await session.execute(update(Outbox).values(next_attempt_at=func.now()))
        await session.execute(update(WebhookDelivery).values(next_attempt_at=func.now()))


def mail(recipient: str, event: str = "task.opened", **payload: Any) -> Outbox:
    return Outbox(
        channel="email",
        recipient=recipient,
        subject=f"Subject for {recipient}",
        body="Body text",
        payload={"event": event, **payload},
    )


# --- tests --------------------------------------------------------------------------------------


async def test_the_embedded_mailbox_gets_each_mail_once_per_person(sessions):
    await seed_demo(sessions, master_data=False)
    ids = await add_rows(
        sessions, mail("group:qa,user:bob", task_id=1), mail("supplier:ACME", task_id=2)
    )
    dispatcher = OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT)

    assert await dispatcher.dispatch_once() == 2
    assert await dispatcher.dispatch_once() == 0  # nothing twice

    async with sessions() as session:
        boxes = (
            await session.execute(
                select(
                    MailboxMessage.outbox_id, MailboxMessage.address, MailboxMessage.user_id
                ).order_by(MailboxMessage.outbox_id, MailboxMessage.address)
            )
        ).all()
    by_row = {i: [(a, u is not None) for o, a, u in boxes if o == i] for i in ids}
    # bob is in qa and named: one mail; carol through qa
    assert by_row[ids[0]] == [("bob@example.com", True), ("carol@example.com", True)]
    assert by_row[ids[1]] == [("supplier:ACME", False)]  # for an admin to see
    first, second = await row(sessions, ids[0]), await row(sessions, ids[1])
    assert (first.status, first.attempts, first.sent_at is not None) == ("sent", 1, True)
    assert second.status == "sent" and "no e-mail address for supplier:ACME" in second.last_error


async def test_smtp_delivery_retries_with_backoff_and_gives_up_with_the_last_error(
    sessions, smtp_server
):
    inbox, port = smtp_server
    await seed_demo(sessions, master_data=False)
    sent, nobody = await add_rows(sessions, mail("user:alice"), mail("supplier:ACME"))
    config = SmtpConfig(host="127.0.0.1", port=port, sender="lotline@test", starttls=False)
    await OutboxDispatcher(sessions, smtp=config, retry=NO_WAIT).dispatch_once()

    [(rcpt, message)] = inbox.received
    assert rcpt == ["alice@example.com"]
    assert message["Subject"] == "Subject for user:alice"
    assert message["Message-ID"] == f"<outbox-{sent}@lotline>"
    assert (await row(sessions, sent)).status == "sent"
    unknown = await row(sessions, nobody)  # retrying cannot find an address: failed at once
    assert (unknown.status, unknown.attempts) == ("failed", 1)
    assert "no e-mail address for supplier:ACME" in unknown.last_error

    # a server that is down: retried after a backoff, then failed with the last error
    down = SmtpConfig(host="127.0.0.1", port=1, starttls=False)
    [late] = await add_rows(sessions, mail("user:bob"))
    backoff = RetryRule(max_attempts=2, first_delay=timedelta(minutes=10))
    dispatcher = OutboxDispatcher(sessions, smtp=down, retry=backoff)
    await dispatcher.dispatch_once()
    waiting = await row(sessions, late)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert "SMTP 127.0.0.1:1" in waiting.last_error
    assert waiting.next_attempt_at - waiting.created_at > timedelta(minutes=9)
    assert await dispatcher.dispatch_once() == 0  # not due yet
    await make_due(sessions)
    await dispatcher.dispatch_once()
    given_up = await row(sessions, late)
    assert (given_up.status, given_up.attempts) == ("failed", 2)
    assert "SMTP 127.0.0.1:1" in given_up.last_error
    assert len(inbox.received) == 1


async def test_a_row_whose_sender_died_is_claimed_again_after_its_lease(sessions):
    await seed_demo(sessions, master_data=False)
    [stuck] = await add_rows(sessions, mail("user:erin"))
    async with sessions() as session, session.begin():  # what a claim by a dead process left
        await session.execute(
            update(Outbox)
            .where(Outbox.id == stuck)
            .values(status="sending", attempts=1, next_attempt_at=func.now() + timedelta(minutes=5))
        )
    dispatcher = OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT)
    assert await dispatcher.dispatch_once() == 0  # leased: left alone
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox).values(next_attempt_at=func.now() - timedelta(seconds=1))
        )
    assert await dispatcher.dispatch_once() == 1
    again = await row(sessions, stuck)
    assert (again.status, again.attempts) == ("sent", 2)


async def test_webhooks_are_signed_retried_and_sent_once_per_event(sessions, receiver):
    await seed_demo(sessions, master_data=False)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                WebhookSubscription(
                    url=receiver.url,
                    event_types=["recall.notice", "task.escalated"],
                    secret="s3cret-s3cret-s3cret",
                    created_by="admin",
                ),
                WebhookSubscription(
                    url=receiver.url + "/other",
                    event_types=["task.opened"],
                    secret="another-secret-value",
                    created_by="admin",
                ),
            ]
        )
    document = {"type": "recall.notice", "recall": "RCL-1", "consignee": "CUS-1"}
    # a recall notice's e-mail and its webhook copy: one transaction, one event
    await add_rows(
        sessions,
        Outbox(channel="email", recipient="x@example.com", subject="s", body="b", payload=document),
        Outbox(channel="email", recipient="x@example.com", subject="s", body="b", payload=document),
    )
    dispatcher = OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT)
    await dispatcher.dispatch_once()
    async with sessions() as session:
        [delivery] = (await session.scalars(select(WebhookDelivery))).all()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert "answered 500" in delivery.last_error

    await dispatcher.dispatch_once()
    async with sessions() as session:
        delivered = await session.get_one(WebhookDelivery, delivery.id)
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        "delivered",
        2,
        200,
    )
    assert len(receiver.requests) == 2
    (first_headers, _), (headers, body) = receiver.requests
    assert headers["X-Lotline-Event-Id"] == first_headers["X-Lotline-Event-Id"]
    assert headers["X-Lotline-Event"] == "recall.notice"
    expected = hmac.new(
        b"s3cret-s3cret-s3cret",
        headers["X-Lotline-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-Lotline-Signature"] == f"sha256={expected}"
    sent = json.loads(body)
    assert sent["id"] == headers["X-Lotline-Event-Id"] and sent["type"] == "recall.notice"
    assert sent["data"] == document


async def test_a_deleted_subscription_gets_nothing_more(sessions, receiver):
    await seed_demo(sessions, master_data=False)
    async with sessions() as session, session.begin():
        subscription = WebhookSubscription(
            url=receiver.url, event_types=["*"], secret="x" * 20, created_by="admin"
        )
        session.add(subscription)
    await add_rows(sessions, mail("user:bob", event="task.escalated", task_id=7, level=2))
    dispatcher = OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT)
    await dispatcher.dispatch_once()  # the receiver answers 500: pending
    async with sessions() as session, session.begin():
        await session.execute(
            update(WebhookSubscription).values(active=False, deleted_at=func.now())
        )
    await dispatcher.dispatch_once()
    async with sessions() as session:
        [delivery] = (await session.scalars(select(WebhookDelivery))).all()
    assert delivery.status == "failed"
    assert delivery.last_error == "the subscription was deleted or deactivated"
    assert len(receiver.requests) == 1


async def test_an_escalation_notifies_the_new_level_even_when_claimed_and_fires_its_event(
    sessions, receiver
):
    await seed_demo(sessions, master_data=False)
    receiver.statuses.clear()  # accepts at once
    async with sessions() as session, session.begin():
        session.add(
            WebhookSubscription(
                url=receiver.url,
                event_types=["task.escalated"],
                secret="y" * 20,
                created_by="admin",
            )
        )
    acts, env = HumanTaskActivities(sessions), ActivityEnvironment()
    due = datetime.now(UTC) + timedelta(hours=1)
    opened = await env.run(
        acts.open_task, OpenTaskInput(workflow_id=WF, run_id="r1", spec=SPEC, due_at=due)
    )
    async with sessions() as session, session.begin():
        await session.execute(update(Task).values(claimed_by="bob"))  # bob (qa) claimed it
    await env.run(
        acts.escalate_task,
        EscalateTaskInput(
            task_id=opened.task_id,
            workflow_id=WF,
            new_level=2,
            added_group="qa-manager",
            due_at=due,
        ),
    )
    await OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT).dispatch_once()

    async with sessions() as session:
        notice = await session.scalar(select(Outbox).where(Outbox.subject.startswith("Escalated")))
        assert notice is not None and notice.status == "sent"
        got = set(
            await session.scalars(
                select(MailboxMessage.address).where(MailboxMessage.outbox_id == notice.id)
            )
        )
        [delivery] = (await session.scalars(select(WebhookDelivery))).all()
    assert notice.recipient == "user:bob,group:qa,group:qa-manager"
    assert got == {"bob@example.com", "carol@example.com"}  # carol is the qa-manager
    assert (delivery.event_type, delivery.status) == ("task.escalated", "delivered")
    headers, body = receiver.requests[0]
    assert json.loads(body)["data"] == {
        "task_id": opened.task_id,
        "event": "task.escalated",
        "level": 2,
    }


async def test_a_group_notice_reaches_each_member_in_their_language(sessions, smtp_server):
    """bob reads English, carol Chinese: one mailbox row each in their language; over SMTP one
    message per language with its own stable Message-ID; the webhook copy has no wording."""
    inbox, port = smtp_server
    await seed_demo(sessions, master_data=False)
    async with sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "carol").values(locale="zh_Hans")
        )
    spec = SPEC.model_copy(update=titled("Close %(number)s", number="NC-7"))
    acts, env = HumanTaskActivities(sessions), ActivityEnvironment()
    due = datetime(2030, 1, 15, 9, 30, tzinfo=UTC)
    opened = await env.run(
        acts.open_task, OpenTaskInput(workflow_id=WF, run_id="r1", spec=spec, due_at=due)
    )
    await env.run(
        acts.escalate_task,
        EscalateTaskInput(
            task_id=opened.task_id, workflow_id=WF, new_level=2, added_group="mrb", due_at=due
        ),
    )
    await OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT).dispatch_once()

    async with sessions() as session:
        rows = {r.payload["event"]: r for r in (await session.scalars(select(Outbox))).all()}
        boxes = (
            await session.execute(
                select(
                    MailboxMessage.outbox_id,
                    MailboxMessage.address,
                    MailboxMessage.subject,
                    MailboxMessage.body,
                )
            )
        ).all()
    opened_row, escalated_row = rows["task.opened"], rows["task.escalated"]
    # the row keeps its English texts (what old readers and the audit see)
    assert opened_row.subject == "New task: Close NC-7"
    got = {(o, a): (s, b) for o, a, s, b in boxes}
    assert got[(opened_row.id, "bob@example.com")] == (
        "New task: Close NC-7",
        "Close NC-7 (L-1) awaits you; due 2030-01-15 09:30 UTC.",
    )
    assert got[(opened_row.id, "carol@example.com")] == (
        "新任务：关闭 NC-7",
        "关闭 NC-7（L-1）等待您处理；截止时间 2030年1月15日 09:30 UTC。",
    )
    assert got[(escalated_row.id, "carol@example.com")] == (
        "已升级（第 2 级）：关闭 NC-7",
        f"任务 {opened.task_id}（L-1）已逾期：已逾期；已升级到第 2 级，已加入用户组 mrb。",
    )
    assert got[(escalated_row.id, "bob@example.com")][1] == (
        f"Task {opened.task_id} (L-1) is overdue: overdue; escalated to level 2, group mrb added."
    )

    # the same rows over a real SMTP server: one message per language
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox).values(status="pending", attempts=1, next_attempt_at=func.now())
        )
    config = SmtpConfig(host="127.0.0.1", port=port, sender="lotline@test", starttls=False)
    await OutboxDispatcher(sessions, smtp=config, retry=NO_WAIT).dispatch_once()
    sent = {  # read as a mail client does: headers decoded, the body as text
        message["Message-ID"]: (rcpt, message_from_bytes(message.as_bytes(), policy=default))
        for rcpt, message in inbox.received
    }
    english, chinese = (
        sent[f"<outbox-{opened_row.id}-en@lotline>"],
        sent[f"<outbox-{opened_row.id}-zh_Hans@lotline>"],
    )
    assert english[0] == ["bob@example.com"] and chinese[0] == ["carol@example.com"]
    assert english[1]["Subject"] == "New task: Close NC-7"
    assert chinese[1]["Subject"] == "新任务：关闭 NC-7"
    assert chinese[1]["Content-Language"] == "zh-Hans"
    assert "截止时间 2030年1月15日 09:30 UTC" in chinese[1].get_content()
    # the escalation went to bob, carol (qa) and the mrb members, grouped by language
    escalated = [m for m in sent if m.startswith(f"<outbox-{escalated_row.id}-")]
    assert sorted(escalated) == [
        f"<outbox-{escalated_row.id}-en@lotline>",
        f"<outbox-{escalated_row.id}-zh_Hans@lotline>",
    ]
    assert "carol@example.com" in sent[f"<outbox-{escalated_row.id}-zh_Hans@lotline>"][0]
    assert "carol@example.com" not in sent[f"<outbox-{escalated_row.id}-en@lotline>"][0]


async def test_a_failed_row_set_back_to_pending_is_delivered(sessions):
    """What the retry (api/outbox_service.py) does to a row: it is claimed again from attempt 1."""
    await seed_demo(sessions, master_data=False)
    [failed] = await add_rows(sessions, mail("user:erin"))
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox)
            .where(Outbox.id == failed)
            .values(status="failed", attempts=3, last_error="SMTP down")
        )
    dispatcher = OutboxDispatcher(sessions, smtp=None, retry=NO_WAIT)
    assert await dispatcher.dispatch_once() == 0
    async with sessions() as session, session.begin():
        await session.execute(
            update(Outbox)
            .where(Outbox.id == failed)
            .values(status="pending", attempts=0, next_attempt_at=func.now())
        )
    assert await dispatcher.dispatch_once() == 1
    again = await row(sessions, failed)
    assert (again.status, again.attempts) == ("sent", 1)
