"""Activities of the human task: the inbox row, reminders, escalation, decisions, signatures.

Each write commits its business rows and its audit row in one transaction, keyed by an
idempotency key derived from the workflow id and the step, so a retried activity writes nothing
twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import activity_origin, with_reason_wording
from erp.audit import AuditRecord, already_recorded, append_audit
from erp.db import database_now
from erp.mail_wording import WORDING, moment, phrase, task_title
from erp.models import ESignature, Outbox, Task, TaskDecision
from erp.signatures import signed_record_hash
from schemas.activities import (
    CancelTaskInput,
    EscalateTaskInput,
    OpenTaskInput,
    OpenTaskResult,
    RecordDecisionInput,
    RecordDecisionResult,
    RemindTaskInput,
)
from schemas.human_task import TaskStatus
from workflows.wording import said


def _task_snapshot(task: Task) -> dict[str, Any]:
    return {
        "status": task.status,
        "level": task.level,
        "stage": task.stage,
        "candidate_groups": list(task.candidate_groups),
        "candidate_users": list(task.candidate_users),
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "outcome": task.outcome,
    }


class HumanTaskActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    @activity.defn(name="open_task")
    async def open_task(self, data: OpenTaskInput) -> OpenTaskResult:
        spec = data.spec
        async with self._sessions() as session, session.begin():
            existing = await session.scalar(
                select(Task.id).where(Task.workflow_id == data.workflow_id)
            )
            if existing is not None:
                return OpenTaskResult(task_id=existing)
            first = spec.stage_candidates(1)
            task = Task(
                workflow_id=data.workflow_id,
                run_id=data.run_id,
                process_id=spec.process_id,
                process_kind=spec.process_kind,
                step=spec.step,
                kind=spec.kind.value,
                title=spec.title,
                description=spec.description,
                business_key=spec.business_key,
                initiator=spec.initiator,
                excluded_users=spec.excluded_users,
                candidate_groups=first.groups,
                candidate_users=first.users,
                rule=spec.rule.value,
                k=spec.k,
                stage=1,
                stage_count=max(1, len(spec.stages)),
                spec=spec.model_dump(mode="json"),
                status=TaskStatus.OPEN.value,
                level=1,
                due_at=data.due_at,
            )
            session.add(task)
            await session.flush()
            session.add(
                Outbox(
                    channel="email",
                    recipient=",".join(
                        [f"group:{g}" for g in first.groups] + [f"user:{u}" for u in first.users]
                    ),
                    subject=f"New task: {spec.title}",
                    body=f"{spec.title} ({spec.business_key}) awaits you; due {data.due_at:%Y-%m-%d %H:%M} UTC.",
                    payload={
                        "task_id": task.id,
                        "event": "task.opened",
                        # the same texts as templates: each person reads them in their language
                        WORDING: _opened_wording(spec.model_dump(mode="json"), spec, data),
                    },
                )
            )
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    on_behalf_of=spec.initiator,
                    action="task.opened",
                    entity_type="task",
                    entity_id=str(task.id),
                    after=_task_snapshot(task) | {"title": spec.title, "step": spec.step},
                    idempotency_key=f"{data.workflow_id}:open",
                    **activity_origin(),
                ),
            )
            return OpenTaskResult(task_id=task.id)

    @activity.defn(name="remind_task")
    async def remind_task(self, data: RemindTaskInput) -> None:
        key = f"{data.workflow_id}:remind:{data.level}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            task = await session.get_one(Task, data.task_id, with_for_update=True)
            if task.status != TaskStatus.OPEN.value:
                return
            task.reminded_at = await database_now(session)
            session.add(
                Outbox(
                    channel="email",
                    recipient=_recipients(task),
                    subject=f"Reminder: {task.title} is due {data.due_at:%Y-%m-%d %H:%M} UTC",
                    body=f"Task {task.id} ({task.business_key}) is still open at level {data.level}.",
                    payload={
                        "task_id": task.id,
                        "event": "task.reminded",
                        "level": data.level,
                        WORDING: {
                            "subject": phrase(
                                "Reminder: %(title)s is due %(when)s",
                                title=task_title(task.spec, task.title),
                                when=moment(data.due_at),
                            ),
                            "body": phrase(
                                "Task %(id)s (%(key)s) is still open at level %(level)s.",
                                id=task.id,
                                key=task.business_key,
                                level=data.level,
                            ),
                        },
                    },
                )
            )
            due = said("due %(when)s", when=data.due_at.isoformat())
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="task.reminded",
                    entity_type="task",
                    entity_id=str(task.id),
                    reason=due,
                    after=with_reason_wording({"level": data.level}, due),
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )

    @activity.defn(name="escalate_task")
    async def escalate_task(self, data: EscalateTaskInput) -> None:
        event = "escalate" if data.added_group else "overdue"
        key = f"{data.workflow_id}:{event}:{data.new_level}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            task = await session.get_one(Task, data.task_id, with_for_update=True)
            if task.status != TaskStatus.OPEN.value:
                return
            before = _task_snapshot(task)
            task.level = data.new_level
            task.escalated_at = await database_now(session)
            if data.added_group and data.added_group not in task.candidate_groups:
                task.candidate_groups = [*task.candidate_groups, data.added_group]
            if data.due_at is not None:
                task.due_at = data.due_at
            reason = (
                f"overdue; escalated to level {data.new_level}, group {data.added_group} added"
                if data.added_group
                else "overdue at the last level of the escalation chain"
            )
            said_reason = (
                phrase(
                    "overdue; escalated to level %(level)s, group %(group)s added",
                    level=data.new_level,
                    group=data.added_group,
                )
                if data.added_group
                else phrase("overdue at the last level of the escalation chain")
            )
            session.add(
                Outbox(
                    channel="email",
                    # everyone of the new level, even when someone has claimed the task
                    recipient=_recipients(task, everyone=True),
                    subject=f"Escalated (level {data.new_level}): {task.title}",
                    body=f"Task {task.id} ({task.business_key}) is overdue: {reason}.",
                    payload={
                        "task_id": task.id,
                        "event": "task.escalated",
                        "level": data.new_level,
                        WORDING: {
                            "subject": phrase(
                                "Escalated (level %(level)s): %(title)s",
                                level=data.new_level,
                                title=task_title(task.spec, task.title),
                            ),
                            "body": phrase(
                                "Task %(id)s (%(key)s) is overdue: %(reason)s.",
                                id=task.id,
                                key=task.business_key,
                                reason=said_reason,
                            ),
                        },
                    },
                )
            )
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="task.escalated" if data.added_group else "task.overdue",
                    entity_type="task",
                    entity_id=str(task.id),
                    reason=reason,
                    before=before,
                    after=_task_snapshot(task),
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )

    @activity.defn(name="record_decision")
    async def record_decision(self, data: RecordDecisionInput) -> RecordDecisionResult:
        key = f"{data.workflow_id}:decision:{data.seq}"
        try:
            async with self._sessions() as session, session.begin():
                done = await session.scalar(
                    select(TaskDecision).where(
                        TaskDecision.task_id == data.task_id, TaskDecision.seq == data.seq
                    )
                )
                if done is not None:
                    return RecordDecisionResult(
                        decision_id=done.id,
                        signature_id=done.signature_id,
                        decided_at=done.decided_at,
                    )
                return await self._write_decision(session, data, key)
        except IntegrityError:
            # a concurrent attempt of the same activity committed first: report its row
            async with self._sessions() as session:
                done = await session.scalar(
                    select(TaskDecision).where(
                        TaskDecision.task_id == data.task_id, TaskDecision.seq == data.seq
                    )
                )
                assert done is not None
                return RecordDecisionResult(
                    decision_id=done.id, signature_id=done.signature_id, decided_at=done.decided_at
                )

    async def _write_decision(
        self, session: AsyncSession, data: RecordDecisionInput, key: str
    ) -> RecordDecisionResult:
        request = data.request
        task = await session.get_one(Task, data.task_id, with_for_update=True)
        before = _task_snapshot(task)
        decided_at = await database_now(session)
        signature_id = None
        if request.signature is not None:
            content = {
                "record_type": "task_decision",
                "task_id": task.id,
                "workflow_id": task.workflow_id,
                "process_id": task.process_id,
                "business_key": task.business_key,
                "title": task.title,
                "context": task.spec.get("context", {}),
                "outcome": request.outcome,
                "fields": request.fields,
                "comment": request.comment,
                "signer": request.signature.signer,
                "printed_name": request.signature.printed_name,
                "meaning": request.signature.meaning.value,
                "signed_at": decided_at.isoformat(),
            }
            signature = ESignature(
                signer=request.signature.signer,
                printed_name=request.signature.printed_name,
                meaning=request.signature.meaning.value,
                signed_at=decided_at,
                record_type="task_decision",
                record_id=f"{task.id}:{data.seq}",
                record_hash=signed_record_hash(content),
                signed_content=content,
                authenticated_by=request.signature.authenticated_by,
                workflow_id=data.workflow_id,
            )
            session.add(signature)
            await session.flush()
            signature_id = signature.id
        decision = TaskDecision(
            task_id=task.id,
            seq=data.seq,
            decided_by=request.decider,
            on_behalf_of=request.on_behalf_of,
            outcome=request.outcome,
            fields=request.fields,
            comment=request.comment,
            stage=data.stage,
            counted_for=data.counted_for,
            signature_id=signature_id,
            decided_at=decided_at,
        )
        session.add(decision)
        if data.task_status is not TaskStatus.OPEN:
            task.status = data.task_status.value
            task.outcome = data.final_outcome
            task.closed_at = decided_at
        elif data.next_stage is not None and data.next_candidates is not None:
            task.stage = data.next_stage
            task.candidate_groups = data.next_candidates.groups
            task.candidate_users = data.next_candidates.users
            task.claimed_by = None
            task.claimed_at = None
        await session.flush()
        await append_audit(
            session,
            AuditRecord(
                actor=request.decider,
                on_behalf_of=request.on_behalf_of,
                action="task.decided",
                entity_type="task",
                entity_id=str(task.id),
                reason=request.comment,
                before=before,
                after=_task_snapshot(task)
                | {
                    "decision_outcome": request.outcome,
                    "fields": request.fields,
                    "signature_id": signature_id,
                    "seq": data.seq,
                },
                idempotency_key=key,
                **activity_origin(),
            ),
        )
        return RecordDecisionResult(
            decision_id=decision.id, signature_id=signature_id, decided_at=decided_at
        )

    @activity.defn(name="cancel_task")
    async def cancel_task(self, data: CancelTaskInput) -> None:
        key = f"{data.workflow_id}:cancel"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            task = await session.scalar(
                select(Task).where(Task.workflow_id == data.workflow_id).with_for_update()
            )
            if task is None or task.status != TaskStatus.OPEN.value:
                return
            before = _task_snapshot(task)
            task.status = TaskStatus.CANCELLED.value
            task.closed_at = await database_now(session)
            after = _task_snapshot(task)
            if data.reason_wording:  # only when given: older inputs write the row as before
                after["reason_wording"] = data.reason_wording
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="task.cancelled",
                    entity_type="task",
                    entity_id=str(task.id),
                    reason=data.reason,
                    before=before,
                    after=after,
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )


def _opened_wording(spec_json: dict[str, Any], spec: Any, data: OpenTaskInput) -> dict[str, Any]:
    title = task_title(spec_json, spec.title)
    return {
        "subject": phrase("New task: %(title)s", title=title),
        "body": phrase(
            "%(title)s (%(key)s) awaits you; due %(when)s.",
            title=title,
            key=spec.business_key,
            when=moment(data.due_at),
        ),
    }


def _recipients(task: Task, *, everyone: bool = False) -> str:
    if task.claimed_by and not everyone:
        return f"user:{task.claimed_by}"
    claimer = [f"user:{task.claimed_by}"] if task.claimed_by else []
    named = [f"user:{u}" for u in task.candidate_users if u != task.claimed_by]
    return ",".join(claimer + [f"group:{g}" for g in task.candidate_groups] + named)
