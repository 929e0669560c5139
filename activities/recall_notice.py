"""Activities of a recall notice (one consignee): send the notice, remind, escalate, record the
consignee's answers and the goods it returns.

Each write is one transaction with its audit row (entity `recall_consignee`, id
`<recall number>/<customer code>`), keyed by the notice's process id and step (and the event id for
an answer or a return), so a retried activity writes nothing twice. In a drill nothing goes to the
outbox: the audit row keeps the notice as "suppressed (drill)". The notice's own process row moves
in the same transaction (no extra activity per step: thousands of notices stay cheap).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.process import mirror_status
from activities.records import recorded_answer
from erp.db import database_now
from erp.master_data import Lot
from erp.models import Outbox
from erp.recall import Recall, RecallConsignee, RecallResponse, RecallReturn
from erp.recall_notice import NoticeContent, compose_notice, compose_reminder, notice_facts
from erp.supply import Customer
from schemas.recall_notice import (
    ConsigneePosition,
    EscalateConsigneeInput,
    RecordConsigneeResponseInput,
    RecordRecallReturnInput,
    SendRecallNoticeInput,
    SendReminderInput,
    SentRecallNotice,
)
from workflows.wording import said

SUPPRESSED = "suppressed (drill)"
REMINDER_DAYS = 7  # the notice asks for an answer within 7 days; reminders follow at that pace


class Consignee:
    """A recall's consignee row, its customer and its recall, read (and locked) together."""

    def __init__(self, recall: Recall, row: RecallConsignee, customer: Customer) -> None:
        self.recall, self.row, self.customer = recall, row, customer

    @property
    def entity_id(self) -> str:
        return f"{self.recall.number}/{self.customer.code}"

    def position(self) -> ConsigneePosition:
        row = self.row
        return ConsigneePosition(
            status=row.status,
            shipped_quantity=row.shipped_quantity,
            acknowledged=row.acknowledged_at is not None,
            quantity_on_hand=row.quantity_on_hand,
            quantity_returned=row.quantity_returned,
            quantity_corrected=row.quantity_corrected,
            quantity_received_back=row.quantity_received_back,
        )


async def _consignee(session: AsyncSession, recall_process_id: str, code: str) -> Consignee:
    found = (
        await session.execute(
            select(Recall, RecallConsignee, Customer)
            .join(RecallConsignee, RecallConsignee.recall_id == Recall.id)
            .join(Customer, Customer.id == RecallConsignee.customer_id)
            .where(Recall.process_id == recall_process_id, Customer.code == code)
            .with_for_update(of=RecallConsignee)
        )
    ).first()
    if found is None:
        raise ApplicationError(
            f"consignee {code} is not in the scope of recall {recall_process_id}",
            type="NotFound",
            non_retryable=True,
        )
    return Consignee(*found)


def _messages(customer: Customer, content: NoticeContent) -> list[Outbox]:
    """The e-mail (to the customer's address) and, when it has one, the webhook with the JSON."""
    messages = [
        Outbox(
            channel="email",
            recipient=customer.email or f"customer:{customer.code}",
            subject=content.subject,
            body=content.text,
            payload=content.document,
        )
    ]
    if customer.webhook_url:
        messages.append(
            Outbox(
                channel="webhook",
                recipient=customer.webhook_url,
                subject=content.subject,
                body=json.dumps(content.document),
                payload=content.document,
            )
        )
    return messages


class RecallNoticeActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.send_recall_notice,
            self.send_recall_reminder,
            self.escalate_recall_consignee,
            self.record_consignee_response,
            self.record_recall_return,
        ]

    @activity.defn(name="send_recall_notice")
    async def send_recall_notice(self, data: SendRecallNoticeInput) -> SentRecallNotice:
        """The notice through the outbox (none in a drill); the consignee notified, audited."""
        key = f"{data.process_id}:notice-sent"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, SentRecallNotice, "answer")
            if earlier is not None:
                return earlier
            consignee = await _consignee(session, data.recall_process_id, data.consignee_code)
            content = compose_notice(
                await notice_facts(session, consignee.recall, consignee.row, consignee.customer)
            )
            messages = [] if data.drill else _messages(consignee.customer, content)
            session.add_all(messages)
            now = await database_now(session)
            row = consignee.row
            before = {"status": row.status, "notified_at": None}
            row.notified_at, row.status = now, "notified"
            row.notice_process_id = data.process_id
            answer = SentRecallNotice(
                recall_number=consignee.recall.number,
                consignee_code=consignee.customer.code,
                consignee_name=consignee.customer.name,
                lot_numbers=[
                    lot["lot_number"] for p in content.document["products"] for lot in p["lots"]
                ],
                notified_at=now,
                channels=[m.channel for m in messages],
                position=consignee.position(),
            )
            await audit(
                session,
                actor="system",
                action="recall.notice_sent",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                outcome=SUPPRESSED if data.drill else "sent",
                before=before,
                after={
                    "subject": content.subject,
                    "recipients": [f"{m.channel}:{m.recipient}" for m in messages],
                    "notice": content.document,
                    "answer": answer.model_dump(mode="json"),
                },
                key=key,
            )
            await mirror_status(
                session, data.process_id, step="notified", ended=None, outcome="", at=now
            )
            return answer

    @activity.defn(name="send_recall_reminder")
    async def send_recall_reminder(self, data: SendReminderInput) -> None:
        """The notice again, as reminder n (none in a drill); reminders + 1, audited."""
        key = f"{data.process_id}:reminder-{data.reminder}"
        async with self._sessions() as session, session.begin():
            if await recorded_answer(session, key, ConsigneePosition, "position") is not None:
                return
            consignee = await _consignee(session, data.recall_process_id, data.consignee_code)
            notice = compose_notice(
                await notice_facts(session, consignee.recall, consignee.row, consignee.customer)
            )
            content = compose_reminder(notice, data.reminder, data.reminder * REMINDER_DAYS)
            messages = [] if data.drill else _messages(consignee.customer, content)
            session.add_all(messages)
            consignee.row.reminders += 1
            await audit(
                session,
                actor="system",
                action="recall.reminder_sent",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                outcome=SUPPRESSED if data.drill else "sent",
                reason=said(
                    "no answer %(days)s days after the notice", days=data.reminder * REMINDER_DAYS
                ),
                after={
                    "reminder": data.reminder,
                    "reminders": consignee.row.reminders,
                    "subject": content.subject,
                    "recipients": [f"{m.channel}:{m.recipient}" for m in messages],
                    "position": consignee.position().model_dump(mode="json"),
                },
                key=key,
            )
            await mirror_status(
                session,
                data.process_id,
                step=f"reminder-{data.reminder}",
                ended=None,
                outcome="",
                at=await database_now(session),
            )

    @activity.defn(name="escalate_recall_consignee")
    async def escalate_recall_consignee(self, data: EscalateConsigneeInput) -> None:
        """The consignee stayed silent: escalated to a person (the task), audited."""
        key = f"{data.process_id}:escalated"
        async with self._sessions() as session, session.begin():
            if await recorded_answer(session, key, ConsigneePosition, "position") is not None:
                return
            consignee = await _consignee(session, data.recall_process_id, data.consignee_code)
            row = consignee.row
            now = await database_now(session)
            before = {"status": row.status}
            row.escalated_at = now
            if row.status == "notified":
                row.status = "escalated"
            await audit(
                session,
                actor="system",
                action="recall.consignee_escalated",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                reason=said("no answer after %(reminders)s reminders", reminders=row.reminders),
                before=before,
                after={
                    "task": data.task_workflow_id,
                    "position": consignee.position().model_dump(mode="json"),
                },
                key=key,
            )
            await mirror_status(
                session, data.process_id, step="escalated", ended=None, outcome="", at=now
            )

    @activity.defn(name="record_consignee_response")
    async def record_consignee_response(
        self, data: RecordConsigneeResponseInput
    ) -> ConsigneePosition:
        """The consignee's answer (its totals so far; the latest replaces the earlier), and
        where that leaves it: responded, or reconciled (see ConsigneePosition.reconciled)."""
        key = f"{data.process_id}:response:{data.event_id}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, ConsigneePosition, "position")
            if earlier is not None:
                return earlier
            consignee = await _consignee(
                session, data.recall_process_id, data.response.consignee_code
            )
            response = data.response
            problem = consignee.position().response_problem(response)
            if problem:
                raise ApplicationError(problem, type="Invalid", non_retryable=True)
            row = consignee.row
            now = await database_now(session)
            before = consignee.position().model_dump(mode="json")
            session.add(
                RecallResponse(
                    recall_consignee_id=row.id,
                    event_id=f"{data.process_id}:{data.event_id}",
                    acknowledged=response.acknowledged,
                    quantity_on_hand=response.quantity_on_hand,
                    quantity_returned=response.quantity_returned,
                    quantity_corrected=response.quantity_corrected,
                    note=response.note,
                    recorded_by=data.recorded_by,
                )
            )
            if response.acknowledged and row.acknowledged_at is None:
                row.acknowledged_at = now
            row.quantity_on_hand = response.quantity_on_hand
            row.quantity_returned = response.quantity_returned
            row.quantity_corrected = response.quantity_corrected
            if response.acknowledged and row.status in ("pending", "notified", "escalated"):
                row.status = "responded"
            reconciled = await self._settle(session, consignee, data.process_id, now)
            position = consignee.position()
            await audit(
                session,
                actor=data.recorded_by,
                action="recall.response_recorded",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                reason=response.note,
                before=before,
                after={
                    "event_id": data.event_id,
                    "response": response.model_dump(mode="json"),
                    "position": position.model_dump(mode="json"),
                },
                key=key,
            )
            await self._audit_reconciled(session, consignee, reconciled, key)
            return position

    @activity.defn(name="record_recall_return")
    async def record_recall_return(self, data: RecordRecallReturnInput) -> ConsigneePosition:
        """Recalled goods received back from the consignee, and where that leaves it."""
        key = f"{data.process_id}:return:{data.event_id}"
        received = data.received
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, ConsigneePosition, "position")
            if earlier is not None:
                return earlier
            consignee = await _consignee(session, data.recall_process_id, received.consignee_code)
            problem = consignee.position().return_problem(received.quantity)
            if problem:
                raise ApplicationError(problem, type="Invalid", non_retryable=True)
            row = consignee.row
            now = await database_now(session)
            before = consignee.position().model_dump(mode="json")
            lot_id = await session.scalar(
                select(Lot.id).where(Lot.lot_number == received.lot_number)
            )
            session.add(
                RecallReturn(
                    recall_consignee_id=row.id,
                    lot_id=lot_id,
                    quantity=received.quantity,
                    event_id=f"{data.process_id}:{data.event_id}",
                    received_by=data.received_by,
                )
            )
            row.quantity_received_back = row.quantity_received_back + received.quantity
            reconciled = await self._settle(session, consignee, data.process_id, now)
            position = consignee.position()
            await audit(
                session,
                actor=data.received_by,
                action="recall.return_received",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                before=before,
                after={
                    "event_id": data.event_id,
                    "return": received.model_dump(mode="json"),
                    "position": position.model_dump(mode="json"),
                },
                key=key,
            )
            await self._audit_reconciled(session, consignee, reconciled, key)
            return position

    async def _settle(
        self, session: AsyncSession, consignee: Consignee, process_id: str, now: datetime
    ) -> bool:
        """Reconciled once everything shipped is accounted for: stamped and the notice's process
        row completed (True); otherwise the row shows the consignee's status (False)."""
        row = consignee.row
        if consignee.position().reconciled and row.reconciled_at is None:
            row.reconciled_at, row.status = now, "reconciled"
            await mirror_status(
                session,
                process_id,
                step="reconciled",
                ended="completed",
                outcome="reconciled",
                at=now,
            )
            return True
        if row.reconciled_at is None:
            await mirror_status(
                session, process_id, step=row.status, ended=None, outcome="", at=now
            )
        return False

    async def _audit_reconciled(
        self, session: AsyncSession, consignee: Consignee, reconciled: bool, key: str
    ) -> None:
        if reconciled:
            await audit(
                session,
                actor="system",
                action="recall.consignee_reconciled",
                entity_type="recall_consignee",
                entity_id=consignee.entity_id,
                after=consignee.position().model_dump(mode="json"),
                key=f"{key}:reconciled",
            )
