"""The recall process on the time-skipping server, with real activities on a real database and the
demo catalogue: scope exactly what the genealogy reached, stock held at once (the database then
refuses a shipment naming the recall), hazard, classification, a rejected then approved strategy,
one notice per consignee, widening with a new consignee notified, termination refused until the
recall is effective, the Part 806 report task due at the end of the 10th working day and
escalated after it, and a drill that holds nothing, opens no report task and reports its times.

The notices are the real RecallNotice workflows; the consignees' answers are written to
recall_consignee directly (what the notice workflows record; their own tests send the events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from erp.business_calendar import add_working_days
from erp.models import AuditEntry, Task
from erp.recall import Recall, RecallConsignee
from erp.seed import seed_demo
from schemas.human_task import SignatureMeaning
from schemas.recall import RecallRequest, RecallResult
from schemas.recall_activities import TerminationRequest, WidenScopeRequest
from tests.activities.test_nonconformance_activities import demo_lot, lot_named, ship_refusal
from tests.activities.test_recall_activities import field_story, recall_of, recall_request
from tests.helpers import decide_task, eventually, task_by_workflow
from worker import build_worker
from workflows.recall import RecallWorkflow

APPROVED, CLOSED = SignatureMeaning.APPROVED, SignatureMeaning.CLOSED


def recall_worker(env: Any, task_queue: str, sessions: async_sessionmaker[AsyncSession]) -> Any:
    """The worker as built: the recall, its notices and every activity."""
    return build_worker(env.client, task_queue, sessions)


async def start(env: Any, task_queue: str, pid: str, request: RecallRequest) -> WorkflowHandle:
    return await env.client.start_workflow(
        RecallWorkflow.run,
        request.model_copy(update={"process_id": pid}),
        id=pid,
        task_queue=task_queue,
    )


async def decide(
    client: Any,
    workflow_id: str,
    who: str,
    outcome: str,
    groups: list[str],
    sign: Any = None,
    **fields: str,
) -> Any:
    return await decide_task(client, workflow_id, who, outcome, groups=groups, sign=sign, **fields)


async def classify(client: Any, pid: str, attempt: int, level: str = "C") -> None:
    await decide(
        client,
        f"{pid}.classification-{attempt}",
        "erin",
        "classified",
        ["ra"],
        classification="II",
        depth="retail",
        public_warning="no",
        effectiveness_level=level,
    )


async def through_approval(client: Any, pid: str, level: str = "C") -> None:
    await decide(
        client, f"{pid}.health-hazard", "erin", "evaluated", ["ra"], hazard="Leak: air embolism"
    )
    await classify(client, pid, 1, level)
    await decide(
        client,
        f"{pid}.strategy-1",
        "dave",
        "reject",
        ["quality-director"],
        reason="depth must reach the hospitals",
    )
    await classify(client, pid, 2, level)
    await decide(client, f"{pid}.strategy-2", "dave", "approve", ["quality-director"], APPROVED)


async def status_is(handle: WorkflowHandle, status: str) -> RecallResult | None:
    result: RecallResult = await handle.query(RecallWorkflow.status)
    return result if result.status == status else None


async def audited(sessions: async_sessionmaker[AsyncSession], number: str, action: str) -> bool:
    async with sessions() as session:
        found = await session.scalar(
            select(AuditEntry.id).where(AuditEntry.entity_id == number, AuditEntry.action == action)
        )
    return found is not None


async def answer_all(sessions: async_sessionmaker[AsyncSession], pid: str) -> None:
    """Every consignee acknowledged and reconciled (what the notice workflows record)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        recall_id = select(Recall.id).where(Recall.process_id == pid).scalar_subquery()
        await session.execute(
            update(RecallConsignee)
            .where(RecallConsignee.recall_id == recall_id)
            .values(acknowledged_at=now, reconciled_at=now, status="reconciled")
        )


async def test_recall_from_scope_to_closure(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    tubing = await field_story(sessions)
    other = (await demo_lot(sessions, 3)).lot_number
    pid = "rcl-main"
    async with recall_worker(env, task_queue, sessions):
        handle = await start(env, task_queue, pid, recall_request([tubing]))
        await eventually(lambda: status_is(handle, "hazard_evaluation"), what="held")
        result: RecallResult = await handle.query(RecallWorkflow.status)
        assert result.number.startswith("RCL-") and result.scope_version == 1
        assert result.consignees == 2 and len(result.scope_hash) == 64
        assert (await lot_named(sessions, "F-1")).status == "ON_HOLD"
        assert f"recall {result.number}" in await ship_refusal(sessions, "F-3")
        assert (await lot_named(sessions, "F-4")).status == "RELEASED"

        await through_approval(env.client, pid)
        recall = await eventually(lambda: _notified(sessions, pid), what="every consignee notified")
        assert recall.strategy_approved_at is not None and recall.classification == "II"
        for code in ("CUS-0001", "CUS-0002"):
            await env.client.get_workflow_handle(f"{pid}.notice-{code}").describe()

        # widening: a new version, F-4 held, CUS-0003 notified
        widened = await handle.execute_update(
            RecallWorkflow.widen_scope,
            WidenScopeRequest(
                lot_numbers=[other], reason="same extruder", requested_by="erin", groups=["ra"]
            ),
        )
        assert widened.version == 2 and widened.consignees_added == ["CUS-0003"]
        assert "F-4" in widened.held
        await env.client.get_workflow_handle(f"{pid}.notice-CUS-0003").describe()
        try:
            await handle.execute_update(
                RecallWorkflow.widen_scope,
                WidenScopeRequest(
                    lot_numbers=["NOPE-1"], reason="typo lot", requested_by="erin", groups=["ra"]
                ),
            )
            raise AssertionError("an unknown lot was accepted")
        except WorkflowUpdateFailedError as err:
            assert "NOPE-1" in str(err.cause)

        # level C: one of three consignees sampled for a check
        await eventually(lambda: status_is(handle, "effectiveness"), what="effectiveness")
        check = await eventually(lambda: _open_check(sessions, pid), what="sampled check")

        # termination asked before the recall is effective: approval refused
        await handle.execute_update(
            RecallWorkflow.request_termination,
            TerminationRequest(requested_by="erin", reason="all found", groups=["ra"]),
        )
        try:
            await handle.execute_update(
                RecallWorkflow.widen_scope,
                WidenScopeRequest(
                    lot_numbers=[other], reason="too late now", requested_by="erin", groups=["ra"]
                ),
            )
            raise AssertionError("widened after termination was asked for")
        except WorkflowUpdateFailedError as err:
            assert "termination" in str(err.cause)
        await decide(
            env.client, f"{pid}.termination-1", "dave", "approve", ["quality-director"], APPROVED
        )
        await eventually(
            lambda: audited(sessions, result.number, "recall.termination_refused"),
            what="termination refused",
        )
        await eventually(lambda: status_is(handle, "effectiveness"), what="back to effectiveness")

        # the consignees answer, the check is verified: effective, RA asks, approved
        await answer_all(sessions, pid)
        await decide(env.client, check.workflow_id, "erin", "verified", ["ra"], note="found")
        await decide(
            env.client, f"{pid}.termination-request-2", "erin", "request", ["ra"], summary="done"
        )
        await decide(
            env.client, f"{pid}.termination-2", "dave", "approve", ["quality-director"], APPROVED
        )
        await decide(
            env.client,
            f"{pid}.report-806",
            "erin",
            "submitted",
            ["ra"],
            report_number="Z-0042-2026",
        )
        await decide(env.client, f"{pid}.closure", "carol", "close", ["qa-manager"], CLOSED)
        final: RecallResult = await handle.result()
    assert final.status == "closed" and final.scope_version == 2 and final.consignees == 3
    recall = await recall_of(sessions, pid)
    assert recall.status == "closed" and recall.terminated_at is not None
    assert recall.report_number == "Z-0042-2026" and recall.effectiveness_waived_by is None


async def _notified(sessions: async_sessionmaker[AsyncSession], pid: str) -> Recall | None:
    recall = await recall_of(sessions, pid)
    return recall if recall.notified_at is not None else None


async def _open_check(sessions: async_sessionmaker[AsyncSession], pid: str) -> Task | None:
    async with sessions() as session:
        return await session.scalar(
            select(Task).where(
                Task.process_id == pid, Task.step.like("check-%"), Task.status == "open"
            )
        )


async def test_the_report_task_is_due_at_the_end_of_the_tenth_working_day_then_escalates(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    tubing = await field_story(sessions)
    pid = "rcl-clock"
    async with recall_worker(env, task_queue, sessions):
        handle = await start(env, task_queue, pid, recall_request([tubing]))
        task = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.report-806"), what="report task"
        )
        recall = await recall_of(sessions, pid)
        due_on = add_working_days(recall.initiated_at.astimezone(UTC).date(), 10, "US")
        assert recall.report_due_on == due_on
        assert task.candidate_groups == ["ra"] and task.kind == "perform"
        assert task.title.endswith(f"(due {due_on.isoformat()})")
        assert task.due_at is not None
        end_of_due_day = datetime.combine(due_on + timedelta(days=1), datetime.min.time(), UTC)
        assert abs(task.due_at - end_of_due_day) < timedelta(seconds=5)
        # escalation comes only after the due day
        await env.sleep(task.due_at - datetime.now(UTC) - timedelta(hours=2))
        assert (await task_by_workflow(sessions, f"{pid}.report-806")).level == 1  # type: ignore[union-attr]
        await env.sleep(timedelta(hours=3))
        escalated = await eventually(
            lambda: _at_level(sessions, f"{pid}.report-806", 2), what="escalation"
        )
        assert escalated.candidate_groups == ["ra", "qa-manager"]
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    # cancelled: recorded so, the report task closed, what it held stays held
    assert (await recall_of(sessions, pid)).status == "cancelled"
    assert (await task_by_workflow(sessions, f"{pid}.report-806")).status == "cancelled"  # type: ignore[union-attr]
    assert (await lot_named(sessions, "F-1")).status == "ON_HOLD"


async def _at_level(sessions: async_sessionmaker[AsyncSession], wf: str, level: int) -> Task | None:
    task = await task_by_workflow(sessions, wf)
    return task if task is not None and task.level == level else None


async def test_a_drill_holds_nothing_sends_nothing_and_reports_its_times(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    tubing = await field_story(sessions)
    pid = "rcl-drill"
    async with recall_worker(env, task_queue, sessions):
        handle = await start(env, task_queue, pid, recall_request([tubing], drill=True))
        await eventually(lambda: status_is(handle, "hazard_evaluation"), what="scoped")
        for lot in ("F-1", "F-3", tubing):
            assert (await lot_named(sessions, lot)).status == "RELEASED"
        await through_approval(env.client, pid, level="A")
        await eventually(lambda: status_is(handle, "effectiveness"), what="effectiveness")
        await handle.execute_update(
            RecallWorkflow.request_termination,
            TerminationRequest(requested_by="carol", reason="drill over", groups=["qa-manager"]),
        )
        await decide(
            env.client,
            f"{pid}.termination-1",
            "dave",
            "waive",
            ["quality-director"],
            APPROVED,
            reason="a drill: nobody answers",
        )
        await decide(env.client, f"{pid}.closure", "carol", "close", ["qa-manager"], CLOSED)
        final: RecallResult = await handle.result()
    assert final.drill and final.number.startswith("DRL-") and final.status == "closed"
    assert final.time_to_scope is not None and final.time_to_hold is not None
    assert final.time_to_notify is not None
    assert 0 <= final.time_to_scope <= final.time_to_hold <= final.time_to_notify
    assert await task_by_workflow(sessions, f"{pid}.report-806") is None
    recall = await recall_of(sessions, pid)
    assert recall.effectiveness_waived_by == "dave" and recall.report_due_on is not None
    assert (await lot_named(sessions, "F-1")).status == "RELEASED"
