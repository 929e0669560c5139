"""Recall notices on the time-skipping server, with real activities on the demo catalogue: the
notice goes out (e-mail and webhook, none in a drill) and the recall hears of it; a silent
consignee gets reminders at 7 and 14 days and a task at 21, where its answer is keyed in; answers
and returns arrive as events, checked, recorded once, until the consignee is reconciled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from erp.models import AuditEntry, Process, Task
from erp.recall import RecallResponse
from erp.seed import seed_demo
from schemas.recall import RecallNoticeRequest, RecallNoticeResult, notice_process_id
from schemas.supply import EventResult, ProcessEvent
from tests.activities.test_recall_notice_activities import (
    RECALL_PID,
    add_recall,
    consignee_row,
    outbox_to,
)
from tests.helpers import decide_task, eventually, task_by_workflow
from worker import WORKFLOWS, activities_for
from workflows.recall_notice import RecallNoticeWorkflow

EMAIL_1 = "pharmacy@st-aurelia.example"
EMAIL_2 = "orders@meridian-med.example"
HOOK = "https://erp.st-aurelia.example/recalls"


@workflow.defn(name="RecallProbe")
class RecallProbe:
    """Stands in for the recall: hears "notice-sent"."""

    def __init__(self) -> None:
        self.notified: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name="notice-sent")
    def notice_sent(self, consignee_code: str) -> None:
        self.notified.append(consignee_code)

    @workflow.query(name="notified")
    def notified_codes(self) -> list[str]:
        return self.notified


def notice_worker(
    client: Any, task_queue: str, sessions: async_sessionmaker[AsyncSession]
) -> Worker:
    """The worker as built, with the probe standing in for the recall."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, RecallProbe],
        activities=activities_for(sessions),
    )


async def start(
    env: Any,
    task_queue: str,
    code: str,
    *,
    recall: str = RECALL_PID,
    number: str = "RCL-2026-0042",
    drill: bool = False,
) -> WorkflowHandle[Any, RecallNoticeResult]:
    pid = notice_process_id(recall, code)
    return await env.client.start_workflow(
        RecallNoticeWorkflow.run,
        RecallNoticeRequest(
            process_id=pid,
            recall_process_id=recall,
            recall_number=number,
            consignee_code=code,
            drill=drill,
        ),
        id=pid,
        task_queue=task_queue,
    )


async def status(handle: WorkflowHandle[Any, RecallNoticeResult]) -> RecallNoticeResult:
    return await handle.query(RecallNoticeWorkflow.status)


async def notified(handle: WorkflowHandle[Any, RecallNoticeResult]) -> RecallNoticeResult:
    async def probe() -> RecallNoticeResult | None:
        result = await status(handle)
        return result if result.status != "sending" else None

    return await eventually(probe, what="the notice sent")


async def send(
    handle: WorkflowHandle[Any, RecallNoticeResult],
    event: str,
    event_id: str,
    sent_by: str = "aurelia-erp",
    **data: Any,
) -> EventResult:
    result: EventResult = await handle.execute_update(
        "event",
        ProcessEvent(event=event, event_id=event_id, sent_by=sent_by, data=data),
        result_type=EventResult,
    )
    return result


async def refused(handle: WorkflowHandle[Any, RecallNoticeResult], event: str, **data: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await send(handle, event, "refused", **data)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Invalid"
    return cause.message


async def audit_of(sessions: async_sessionmaker[AsyncSession], entity_id: str) -> list[str]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == entity_id)
                .order_by(AuditEntry.id)
            )
        )


def subjects(messages: Sequence[Any]) -> list[str]:
    return [m.subject.split(":")[0] for m in messages]


# ---------------------------------------------------------------- tests


async def test_the_notice_goes_out_the_recall_hears_and_a_response_then_returns_reconcile(
    sessions, time_skipping_env, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    lots = await add_recall(sessions, webhook=HOOK)
    async with notice_worker(env.client, task_queue, sessions):
        probe = await env.client.start_workflow(
            RecallProbe.run, id=RECALL_PID, task_queue=task_queue
        )
        handle = await start(env, task_queue, "CUS-0001")
        result = await notified(handle)
        assert result.status == "notified" and result.notified_at is not None

        assert await eventually(lambda: probe.query(RecallProbe.notified_codes)) == ["CUS-0001"]
        email, webhook = await outbox_to(sessions, EMAIL_1, HOOK)
        assert email.channel == "email" and webhook.channel == "webhook"
        assert email.subject.startswith("URGENT: MEDICAL DEVICE RECALL RCL-2026-0042")
        assert f"lot {lots['infusion']}: 10 ea" in email.body
        assert webhook.payload["consignee"]["code"] == "CUS-0001"
        row = await consignee_row(sessions, "CUS-0001")
        assert row.status == "notified" and row.notified_at == result.notified_at

        answer = await send(
            handle,
            "consignee-response",
            "ev-1",
            consignee_code="CUS-0001",
            quantity_on_hand="7",
            quantity_returned="8",
            note="7 pumps and sets quarantined on ward 3",
        )
        assert answer.data["status"] == "responded" and not answer.repeated
        assert "on hand 7, returned 8, corrected 0 of 15 shipped" in answer.message

        # a repeat answers as the first time and changes nothing
        again = await send(
            handle, "consignee-response", "ev-1", consignee_code="CUS-0001", quantity_on_hand="0"
        )
        assert again.repeated and again.message == answer.message
        # a response stops the reminders: weeks pass, nothing more goes out, nobody is asked
        await env.sleep(timedelta(days=30))
        assert len(await outbox_to(sessions, EMAIL_1, HOOK)) == 2
        assert await task_by_workflow(sessions, f"{handle.id}.escalation") is None
        row = await consignee_row(sessions, "CUS-0001")
        assert row.reminders == 0 and row.status == "responded"
        assert row.quantity_on_hand == 7 and row.quantity_returned == 8
        assert row.acknowledged_at is not None

        # impossible or misdirected events are refused, saying why
        assert "more than the 15 shipped" in await refused(
            handle,
            "consignee-response",
            consignee_code="CUS-0001",
            quantity_on_hand="10",
            quantity_returned="8",
        )
        assert "not to CUS-0002" in await refused(
            handle, "consignee-response", consignee_code="CUS-0002"
        )
        assert "consignee-response, return-received" in await refused(handle, "delivered")
        assert "was not shipped to CUS-0001" in await refused(
            handle, "return-received", consignee_code="CUS-0001", lot_number="X-1", quantity="1"
        )
        assert "quantity" in await refused(
            handle, "return-received", consignee_code="CUS-0001", lot_number=lots["pumps"]
        )

        # returns arrive; with the rest on hand corrected, everything is accounted for
        await send(
            handle,
            "return-received",
            "rt-1",
            sent_by="grace",
            consignee_code="CUS-0001",
            lot_number=lots["pumps"],
            quantity="5",
        )
        await send(
            handle,
            "return-received",
            "rt-2",
            sent_by="grace",
            consignee_code="CUS-0001",
            lot_number=lots["infusion"],
            quantity="3",
        )
        last = await send(
            handle,
            "consignee-response",
            "ev-2",
            consignee_code="CUS-0001",
            quantity_on_hand="0",
            quantity_returned="8",
            quantity_corrected="7",
        )
        assert last.data == {
            "recall": "RCL-2026-0042",
            "consignee": "CUS-0001",
            "status": "reconciled",
            "reconciled": "yes",
        }
        final = await handle.result()
    assert final.status == "reconciled" and final.reminders == 0
    assert final.responded_at is not None
    row = await consignee_row(sessions, "CUS-0001")
    assert row.status == "reconciled" and row.reconciled_at is not None
    assert row.quantity_received_back == 8
    async with sessions() as session:
        process = await session.get(Process, handle.id)
    assert process is not None and process.kind == "recall-notice"
    assert process.status == "completed" and process.outcome == "reconciled"
    assert await audit_of(sessions, "RCL-2026-0042/CUS-0001") == [
        "recall.notice_sent",
        "recall.response_recorded",
        "recall.return_received",
        "recall.return_received",
        "recall.response_recorded",
        "recall.consignee_reconciled",
    ]


async def test_a_silent_consignee_is_reminded_at_7_and_14_days_then_ra_keys_in_its_answer(
    sessions, time_skipping_env, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    lots = await add_recall(sessions)
    async with notice_worker(env.client, task_queue, sessions):
        # no recall listens: the notice goes on all the same
        handle = await start(env, task_queue, "CUS-0002")
        await notified(handle)
        await env.sleep(timedelta(days=6, hours=23))
        assert len(await outbox_to(sessions, EMAIL_2)) == 1
        await env.sleep(timedelta(hours=2))
        assert subjects(await outbox_to(sessions, EMAIL_2)) == ["URGENT", "REMINDER 1"]
        await env.sleep(timedelta(days=7))
        assert subjects(await outbox_to(sessions, EMAIL_2)) == [
            "URGENT",
            "REMINDER 1",
            "REMINDER 2",
        ]
        assert (await consignee_row(sessions, "CUS-0002")).reminders == 2
        assert await task_by_workflow(sessions, f"{handle.id}.escalation") is None

        await env.sleep(timedelta(days=7))
        task = await eventually(
            lambda: task_by_workflow(sessions, f"{handle.id}.escalation"), what="escalation"
        )
        assert task.title == "RCL-2026-0042: Meridian Medical Distribution B.V. has not answered"
        assert task.candidate_groups == ["ra"]
        assert (await status(handle)).status == "escalated"
        row = await consignee_row(sessions, "CUS-0002")
        assert row.status == "escalated" and row.escalated_at is not None

        # an answer that cannot be true is not taken: the next task says why
        await decide_task(
            env.client,
            f"{handle.id}.escalation",
            "erin",
            "recorded",
            groups=["ra"],
            what_done="Phoned the buyer",
            acknowledged="yes",
            quantity_on_hand="3",
            quantity_returned="3",
        )
        retry = await eventually(
            lambda: task_by_workflow(sessions, f"{handle.id}.escalation-2"), what="second task"
        )
        assert "more than the 4 shipped" in retry.spec["context"]["Not taken"]
        await decide_task(
            env.client,
            f"{handle.id}.escalation-2",
            "erin",
            "recorded",
            groups=["ra"],
            what_done="Phoned the buyer again",
            acknowledged="yes",
            quantity_on_hand="0",
            quantity_returned="4",
        )

        async def responded() -> RecallNoticeResult | None:
            result = await status(handle)
            return result if result.status == "responded" else None

        assert (await eventually(responded)).reminders == 2
        async with sessions() as session:
            response = await session.scalar(select(RecallResponse))
        assert response is not None and response.recorded_by == "erin"
        assert response.quantity_returned == 4 and "Phoned the buyer again" in response.note

        # the goods come back weeks later: reconciled
        await env.sleep(timedelta(days=20))
        await send(
            handle,
            "return-received",
            "rt-1",
            sent_by="grace",
            consignee_code="CUS-0002",
            lot_number=lots["infusion"],
            quantity="4",
        )
        final = await handle.result()
    assert final.status == "reconciled" and final.reminders == 2
    assert len(await outbox_to(sessions, EMAIL_2)) == 3
    assert await audit_of(sessions, "RCL-2026-0042/CUS-0002") == [
        "recall.notice_sent",
        "recall.reminder_sent",
        "recall.reminder_sent",
        "recall.consignee_escalated",
        "recall.response_recorded",
        "recall.return_received",
        "recall.consignee_reconciled",
    ]


async def test_a_drill_sends_nothing_an_event_closes_the_open_task_and_the_recall_ends_it(
    sessions, time_skipping_env, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    await add_recall(sessions, process_id="rcl-drill", number="DRL-2026-0001", drill=True)
    async with notice_worker(env.client, task_queue, sessions):
        handle = await start(
            env, task_queue, "CUS-0002", recall="rcl-drill", number="DRL-2026-0001", drill=True
        )
        result = await notified(handle)
        assert result.notified_at is not None
        await env.sleep(timedelta(days=21, hours=1))
        task = await eventually(
            lambda: task_by_workflow(sessions, f"{handle.id}.escalation"), what="escalation"
        )
        assert task.title.startswith("DRL-2026-0001: Meridian")
        assert await outbox_to(sessions, EMAIL_2) == []  # neither notice nor reminders
        row = await consignee_row(sessions, "CUS-0002", "rcl-drill")
        assert row.notified_at is not None and row.reminders == 2

        await send(
            handle,
            "consignee-response",
            "ev-1",
            sent_by="erin",
            consignee_code="CUS-0002",
            quantity_on_hand="4",
        )

        async def closed() -> Task | None:
            found = await task_by_workflow(sessions, f"{handle.id}.escalation")
            return found if found is not None and found.status == "cancelled" else None

        cancelled = await eventually(closed)
        async with sessions() as session:
            why = await session.scalar(
                select(AuditEntry.reason).where(
                    AuditEntry.action == "task.cancelled",
                    AuditEntry.entity_id == str(cancelled.id),
                )
            )
        assert why == "Meridian Medical Distribution B.V. answered the recall notice"
        assert (await status(handle)).status == "responded"

        await handle.cancel()  # the recall ended
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert isinstance(failed.value.cause, CancelledError)
    async with sessions() as session:
        process = await session.get(Process, handle.id)
    assert process is not None and process.status == "cancelled"
    assert process.outcome == "responded"
    row = await consignee_row(sessions, "CUS-0002", "rcl-drill")
    assert row.status == "responded" and row.reconciled_at is None
    drill_audit = await audit_of(sessions, "DRL-2026-0001/CUS-0002")
    assert drill_audit == [
        "recall.notice_sent",
        "recall.reminder_sent",
        "recall.reminder_sent",
        "recall.consignee_escalated",
        "recall.response_recorded",
    ]
    async with sessions() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEntry.outcome)
                .where(AuditEntry.entity_id == "DRL-2026-0001/CUS-0002")
                .order_by(AuditEntry.id)
            )
        )
    assert outcomes[:3] == ["suppressed (drill)"] * 3
