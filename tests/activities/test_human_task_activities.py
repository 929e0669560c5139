"""The human task's activities on real PostgreSQL: a retried activity writes nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from activities.human_task import HumanTaskActivities
from erp.audit import verify_chain
from erp.models import AuditEntry, ESignature, Outbox, Task, TaskDecision
from schemas.activities import (
    CancelTaskInput,
    EscalateTaskInput,
    OpenTaskInput,
    RecordDecisionInput,
    RemindTaskInput,
)
from schemas.human_task import (
    Candidates,
    DecisionRequest,
    OutcomeSpec,
    SignatureIntent,
    SignatureMeaning,
    TaskKind,
    TaskSpec,
    TaskStatus,
)

WF = "apr-retry.release"
SPEC = TaskSpec(
    step="release",
    kind=TaskKind.APPROVE,
    title="Release lot L-1",
    process_kind="approval",
    process_id="apr-retry",
    business_key="L-1",
    initiator="alice",
    candidates=Candidates(groups=["qa"]),
    outcomes=[
        OutcomeSpec(name="release", label="Release", signature_meaning=SignatureMeaning.RELEASED)
    ],
)


async def counts(sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Task, TaskDecision, ESignature, Outbox, AuditEntry)
        }


async def test_every_activity_run_twice_writes_once(sessions):
    acts = HumanTaskActivities(sessions)
    env = ActivityEnvironment()
    due = datetime.now(UTC) + timedelta(hours=48)
    opened = await env.run(
        acts.open_task, OpenTaskInput(workflow_id=WF, run_id="r1", spec=SPEC, due_at=due)
    )
    again = await env.run(
        acts.open_task, OpenTaskInput(workflow_id=WF, run_id="r1", spec=SPEC, due_at=due)
    )
    assert again.task_id == opened.task_id
    remind = RemindTaskInput(task_id=opened.task_id, workflow_id=WF, level=1, due_at=due)
    await env.run(acts.remind_task, remind)
    await env.run(acts.remind_task, remind)
    escalate = EscalateTaskInput(
        task_id=opened.task_id,
        workflow_id=WF,
        new_level=2,
        added_group="qa-manager",
        due_at=due + timedelta(hours=48),
    )
    await env.run(acts.escalate_task, escalate)
    await env.run(acts.escalate_task, escalate)
    decision = RecordDecisionInput(
        task_id=opened.task_id,
        workflow_id=WF,
        run_id="r1",
        seq=1,
        request=DecisionRequest(
            task_id=opened.task_id,
            decider="bob",
            decider_name="Bob Okafor",
            outcome="release",
            qualifying_groups=["qa"],
            signature=SignatureIntent(
                meaning=SignatureMeaning.RELEASED, signer="bob", printed_name="Bob Okafor"
            ),
        ),
        counted_for=None,
        stage=1,
        task_status=TaskStatus.COMPLETED,
        final_outcome="release",
    )
    first = await env.run(acts.record_decision, decision)
    second = await env.run(acts.record_decision, decision)
    assert first.decision_id == second.decision_id and first.signature_id == second.signature_id
    cancel = CancelTaskInput(task_id=opened.task_id, workflow_id=WF, reason="late cancel")
    await env.run(acts.cancel_task, cancel)  # the task is completed: cancelling changes nothing

    assert await counts(sessions) == {
        "task": 1,
        "task_decision": 1,
        "e_signature": 1,
        "outbox": 3,  # opened, reminded, escalated
        "audit_entry": 4,  # opened, reminded, escalated, decided
    }
    async with sessions() as session:
        task = await session.get_one(Task, opened.task_id)
        assert task.status == "completed" and task.outcome == "release" and task.level == 2
        assert task.candidate_groups == ["qa", "qa-manager"]
        assert (await verify_chain(session)).ok


async def test_a_tasks_context_keeps_the_order_the_process_wrote(sessions):
    context = {"Lot": "R2611-00012", "Part": "MT-0730", "Accept number": "0", "Checked by": "QC"}
    spec = SPEC.model_copy(update={"context": context})
    opened = await ActivityEnvironment().run(
        HumanTaskActivities(sessions).open_task,
        OpenTaskInput(
            workflow_id=WF, run_id="r1", spec=spec, due_at=datetime.now(UTC) + timedelta(hours=1)
        ),
    )
    async with sessions() as session:
        task = await session.get(Task, opened.task_id)
    assert task is not None and list(task.spec["context"]) == list(context)  # not sorted
