"""Activities every process uses for its read model: register, move a step, close."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from erp.audit import AuditRecord, already_recorded, append_audit
from erp.db import database_now
from erp.models import Process
from schemas.activities import RegisterProcessInput, UpdateProcessInput


async def mirror_status(
    session: AsyncSession,
    process_id: str,
    *,
    step: str,
    ended: str | None,
    outcome: str,
    at: datetime,
) -> None:
    """A process's own record moved to a status: its process row shows it as the current step,
    and once the record ended (`ended`: completed or cancelled), how and when."""
    process = await session.get(Process, process_id, with_for_update=True)
    if process is None:
        return
    process.current_step = step
    if ended is not None:
        process.status, process.closed_at = ended, at
        process.outcome = outcome


class ProcessActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    @activity.defn(name="register_process")
    async def register_process(self, data: RegisterProcessInput) -> None:
        info = activity.info()
        async with self._sessions() as session, session.begin():
            if await session.get(Process, data.process_id) is not None:
                return
            process = Process(
                id=data.process_id,
                run_id=data.run_id,
                kind=data.kind,
                title=data.title,
                title_wording=(
                    {"template": data.title_template, "values": dict(data.title_values or {})}
                    if data.title_template
                    else None
                ),
                business_key=data.business_key,
                initiator=data.initiator,
                status="running",
                current_step="started",
            )
            session.add(process)
            await append_audit(
                session,
                AuditRecord(
                    actor=data.initiator or "system",
                    action="process.started",
                    entity_type="process",
                    entity_id=data.process_id,
                    after={"kind": data.kind, "title": data.title},
                    workflow_id=info.workflow_id,
                    run_id=info.workflow_run_id,
                    activity=info.activity_type,
                    source="worker",
                    idempotency_key=f"{data.process_id}:{data.run_id}:registered",
                ),
            )

    @activity.defn(name="update_process")
    async def update_process(self, data: UpdateProcessInput) -> None:
        info = activity.info()
        key = f"{data.process_id}:{info.workflow_run_id}:step:{data.step}:{data.status}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            process = await session.get(Process, data.process_id, with_for_update=True)
            if process is None:  # cancelled before it was registered: nothing to update
                activity.logger.warning(
                    "no process row %s; step %s not recorded", data.process_id, data.step
                )
                return
            before = {"status": process.status, "step": process.current_step}
            process.current_step = data.step
            process.status = data.status
            process.outcome = data.outcome or process.outcome
            if data.status != "running":
                process.closed_at = await database_now(session)
            after: dict[str, Any] = {
                "status": data.status,
                "step": data.step,
                "outcome": data.outcome,
            }
            if data.reason_wording:  # only when given: older inputs write the row as before
                after["reason_wording"] = data.reason_wording
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action=f"process.{data.status}" if data.status != "running" else "process.step",
                    entity_type="process",
                    entity_id=data.process_id,
                    reason=data.reason,
                    before=before,
                    after=after,
                    workflow_id=info.workflow_id,
                    run_id=info.workflow_run_id,
                    activity=info.activity_type,
                    source="worker",
                    idempotency_key=key,
                ),
            )
