"""The human task on the time-skipping server, with real activities on a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.workflow_updates import update_when_ready
from erp.models import AuditEntry, Outbox, Process, Task, TaskDecision
from schemas.approval import ApprovalRequestInput
from schemas.human_task import (
    Candidates,
    DecisionRequest,
    DecisionRule,
    FieldSpec,
    OutcomeSpec,
    SignatureIntent,
    SignatureMeaning,
    TaskKind,
    TaskSpec,
    TaskStatus,
)
from tests.helpers import audit_actions, eventually, task_by_workflow
from worker import build_worker
from workflows.approval import ApprovalRequestWorkflow
from workflows.human_task import HumanTaskWorkflow


def spec(**overrides: object) -> TaskSpec:
    values: dict[str, object] = {
        "step": "qa-approval",
        "kind": TaskKind.APPROVE,
        "title": "Approve SOP-0042 rev C",
        "process_kind": "approval",
        "process_id": "apr-test",
        "business_key": "SOP-0042",
        "initiator": "alice",
        "candidates": Candidates(groups=["qa"]),
        "outcomes": [
            OutcomeSpec(name="approve", label="Approve"),
            OutcomeSpec(name="reject", label="Reject", required_fields=["reason"]),
        ],
        "fields": [FieldSpec(name="reason", label="Reason")],
        "sla": timedelta(hours=48),
        "reminder_before": timedelta(hours=8),
    }
    values.update(overrides)
    return TaskSpec.model_validate(values)


def decision(task_id: int, decider: str, outcome: str = "approve", **kw: object) -> DecisionRequest:
    values: dict[str, object] = {
        "task_id": task_id,
        "decider": decider,
        "decider_name": decider.title(),
        "outcome": outcome,
        "qualifying_groups": ["qa"],
    }
    values.update(kw)
    return DecisionRequest.model_validate(values)


async def start_task(env: WorkflowEnvironment, task_queue: str, task_spec: TaskSpec, wf_id: str):
    return await env.client.start_workflow(
        HumanTaskWorkflow.run, task_spec, id=wf_id, task_queue=task_queue
    )


async def opened_task_id(sessions, wf_id: str) -> int:
    task = await eventually(lambda: task_by_workflow(sessions, wf_id), what="task row")
    return task.id


async def test_sla_reminds_then_escalates_through_three_levels(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    wf_id = "apr-sla.qa-approval"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(
            env, task_queue, spec(escalation_chain=["qa-managers", "quality-director"]), wf_id
        )
        task_id = await opened_task_id(sessions, wf_id)

        await env.sleep(timedelta(hours=41))  # reminder is due at 40 h
        await eventually(
            lambda: _has(sessions, str(task_id), "task.reminded"), what="first reminder"
        )
        assert "task.escalated" not in await audit_actions(sessions, str(task_id))

        await env.sleep(timedelta(hours=8))  # 49 h: first due time passed
        row = await eventually(
            lambda: _task_at_level(sessions, wf_id, 2), what="escalation to level 2"
        )
        assert row.candidate_groups == ["qa", "qa-managers"]

        await env.sleep(timedelta(hours=48))  # 97 h: second due time passed
        row = await eventually(
            lambda: _task_at_level(sessions, wf_id, 3), what="escalation to level 3"
        )
        assert row.candidate_groups == ["qa", "qa-managers", "quality-director"]
        assert row.status == "open"  # escalation never decides

        result = await handle.execute_update(
            HumanTaskWorkflow.decide,
            decision(task_id, "victor", qualifying_groups=["quality-director"]),
        )
        assert result.task_status is TaskStatus.COMPLETED
        final = await handle.result()
        assert final.outcome == "approve" and final.escalation_level == 3

    actions = await audit_actions(sessions, str(task_id))
    assert actions == [
        "task.opened",
        "task.reminded",
        "task.escalated",
        "task.reminded",
        "task.escalated",
        "task.decided",
    ]
    async with sessions() as session:
        notices = (await session.scalars(select(Outbox.subject).order_by(Outbox.id))).all()
    assert sum("Escalated" in s for s in notices) == 2
    row = await task_by_workflow(sessions, wf_id)
    assert row is not None and row.status == "completed" and row.outcome == "approve"


async def test_k_of_n_needs_k_distinct_approvals(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    wf_id = "apr-kofn.qa-approval"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, spec(rule=DecisionRule.K_OF_N, k=2), wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        first = await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "bob"))
        assert first.task_status is TaskStatus.OPEN
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "bob"))
        assert "already decided" in str(again.value.cause)
        second = await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "carol"))
        assert second.task_status is TaskStatus.COMPLETED and second.final_outcome == "approve"
        await handle.result()
        # the workflow has ended with its task: the server itself refuses another decision
        with pytest.raises(RPCError):
            await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "dave"))
    async with sessions() as session:
        deciders = (
            await session.scalars(select(TaskDecision.decided_by).order_by(TaskDecision.seq))
        ).all()
    assert deciders == ["bob", "carol"]


async def test_all_of_needs_every_group_and_named_user(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    wf_id = "apr-all.ccb"
    task_spec = spec(
        step="ccb",
        rule=DecisionRule.ALL,
        candidates=Candidates(groups=["qa", "ra"], users=["erin"]),
    )
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, task_spec, wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        r1 = await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "bob"))
        r2 = await handle.execute_update(
            HumanTaskWorkflow.decide, decision(task_id, "bea", qualifying_groups=["qa"])
        )  # a second QA member does not stand for RA
        r3 = await handle.execute_update(
            HumanTaskWorkflow.decide, decision(task_id, "frank", qualifying_groups=["ra"])
        )
        assert [r.task_status for r in (r1, r2, r3)] == [TaskStatus.OPEN] * 3
        r4 = await handle.execute_update(
            HumanTaskWorkflow.decide, decision(task_id, "erin", qualifying_groups=[])
        )
        assert r4.task_status is TaskStatus.COMPLETED
        assert (await handle.result()).outcome == "approve"


async def test_a_rejection_decides_an_all_of_task_at_once(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    wf_id = "apr-all-reject.ccb"
    task_spec = spec(step="ccb", rule=DecisionRule.ALL, candidates=Candidates(groups=["qa", "ra"]))
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, task_spec, wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        with pytest.raises(WorkflowUpdateFailedError) as no_reason:
            await handle.execute_update(
                HumanTaskWorkflow.decide, decision(task_id, "bob", outcome="reject")
            )
        assert "required field(s) missing for 'reject': reason" in str(no_reason.value.cause)
        result = await handle.execute_update(
            HumanTaskWorkflow.decide,
            decision(task_id, "bob", outcome="reject", fields={"reason": "risk file not updated"}),
        )
        assert result.task_status is TaskStatus.COMPLETED and result.final_outcome == "reject"
        final = await handle.result()
        assert final.fields == {"reason": "risk file not updated"}


async def test_sequential_chain_moves_stage_by_stage(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    wf_id = "apr-seq.chain"
    task_spec = spec(
        step="chain",
        rule=DecisionRule.SEQUENTIAL,
        candidates=Candidates(),
        stages=[Candidates(groups=["qa"]), Candidates(users=["carol"])],
    )
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, task_spec, wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await handle.execute_update(
                HumanTaskWorkflow.decide, decision(task_id, "carol", qualifying_groups=[])
            )
        assert "not a candidate" in str(early.value.cause)
        r1 = await handle.execute_update(HumanTaskWorkflow.decide, decision(task_id, "bob"))
        assert r1.task_status is TaskStatus.OPEN
        row = await task_by_workflow(sessions, wf_id)
        assert row is not None and row.stage == 2 and row.candidate_users == ["carol"]
        r2 = await handle.execute_update(
            HumanTaskWorkflow.decide, decision(task_id, "carol", qualifying_groups=[])
        )
        assert r2.task_status is TaskStatus.COMPLETED
        await handle.result()


async def test_initiator_and_delegate_of_initiator_are_refused(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    wf_id = "apr-sod.qa-approval"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, spec(), wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        for request in (
            decision(task_id, "alice"),
            decision(task_id, "bob", on_behalf_of="alice"),
        ):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(HumanTaskWorkflow.decide, request)
            assert "segregation of duties" in str(refused.value.cause)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert await audit_actions(sessions, str(task_id)) == ["task.opened", "task.cancelled"]


async def test_signing_decision_needs_signature_and_stores_it(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    wf_id = "apr-sign.release"
    task_spec = spec(
        step="release",
        outcomes=[
            OutcomeSpec(
                name="release", label="Release", signature_meaning=SignatureMeaning.RELEASED
            )
        ],
        fields=[],
    )
    async with build_worker(env.client, task_queue, sessions):
        handle = await start_task(env, task_queue, task_spec, wf_id)
        task_id = await opened_task_id(sessions, wf_id)
        # the row is committed an instant before the workflow learns its id (NotReady): retry
        # that as the API does, so what is checked is the refusal of an unsigned decision
        with pytest.raises(WorkflowUpdateFailedError) as unsigned:
            await update_when_ready(handle, "decide", decision(task_id, "bob", outcome="release"))
        assert "re-enter your password" in str(unsigned.value.cause)
        signature = SignatureIntent(
            meaning=SignatureMeaning.RELEASED, signer="bob", printed_name="Bob Quality"
        )
        await handle.execute_update(
            HumanTaskWorkflow.decide,
            decision(task_id, "bob", outcome="release", signature=signature),
        )
        await handle.result()
    async with sessions() as session:
        row = await session.scalar(select(TaskDecision).where(TaskDecision.task_id == task_id))
        assert row is not None and row.signature_id is not None


async def test_cancelling_a_process_closes_its_open_task(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    request = ApprovalRequestInput(
        process_id="apr-cancel",
        title="Approve deviation DV-7",
        initiator="alice",
        approver_groups=["qa"],
    )
    async with build_worker(env.client, task_queue, sessions):
        handle = await env.client.start_workflow(
            ApprovalRequestWorkflow.run, request, id="apr-cancel", task_queue=task_queue
        )
        task = await eventually(
            lambda: task_by_workflow(sessions, "apr-cancel.approval"), what="task row"
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        closed = await eventually(
            lambda: _task_with_status(sessions, "apr-cancel.approval", "cancelled"),
            what="task cancelled",
        )
        assert closed.id == task.id
    async with sessions() as session:
        process = await session.get(Process, "apr-cancel")
        assert process is not None and process.status == "cancelled"


async def _has(sessions, entity_id: str, action: str) -> bool:
    return action in await audit_actions(sessions, entity_id)


async def _task_at_level(sessions, wf_id: str, level: int):
    row = await task_by_workflow(sessions, wf_id)
    return row if row is not None and row.level == level else None


async def _task_with_status(sessions, wf_id: str, status: str):
    row = await task_by_workflow(sessions, wf_id)
    return row if row is not None and row.status == status else None


_ = AuditEntry


async def test_cancelling_at_any_moment_leaves_no_open_task(dev_env, sessions, task_queue):
    """Cancel right after the start, while the process registers or its task is being opened:
    whatever was written is closed, nothing is left open."""
    env = dev_env  # cancellation races on the real server
    async with build_worker(env.client, task_queue, sessions):
        for n, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.1, 0.2)):
            pid = f"apr-race-{n}-{task_queue}"
            request = ApprovalRequestInput(
                process_id=pid,
                title="Approve deviation DV-9",
                initiator="alice",
                approver_groups=["qa"],
            )
            handle = await env.client.start_workflow(
                ApprovalRequestWorkflow.run, request, id=pid, task_queue=task_queue
            )
            await asyncio.sleep(delay)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        async def all_closed():  # a task opened as the parent closed is cancelled by its policy
            async with sessions() as session:
                open_tasks = (
                    await session.scalars(select(Task).where(Task.status == "open"))
                ).all()
                running = (
                    await session.scalars(select(Process).where(Process.status == "running"))
                ).all()
            return not open_tasks and not running

        await eventually(all_closed, what="every task and process closed")
