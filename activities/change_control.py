"""Activities of change control: register, triage, impact, assessments, revisions, status, and
the atomic application of an approved change to master data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import activity_origin, with_reason_wording
from activities.process import mirror_status
from erp.audit import AuditRecord, already_recorded, append_audit
from erp.change_control import CHANGE_NUMBER, ChangeAssessment, ChangeRequest, ChangeRevision
from erp.changes import ApplyRefused, apply_actions, compute_impact, problems_in
from erp.db import database_now
from erp.models import AppUser, AuditEntry
from erp.numbering import next_in_series
from schemas.change_control import (
    ApplyChangeInput,
    ApplyChangeResult,
    ChangeContent,
    ComputeImpactInput,
    ImpactList,
    RecordAssessmentInput,
    RecordTriageInput,
    RegisterChangeInput,
    RegisterChangeResult,
    ReviseChangeInput,
    SetChangeStatusInput,
)
from workflows.wording import refuse, said_again

TERMINAL = {"closed": "completed", "withdrawn": "cancelled", "cancelled": "cancelled"}


async def _content(session: AsyncSession, change: ChangeRequest) -> ChangeContent:
    revision = await session.scalar(
        select(ChangeRevision.content).where(
            ChangeRevision.change_id == change.id, ChangeRevision.revision == change.revision
        )
    )
    return ChangeContent.model_validate(revision)


class ChangeControlActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    @activity.defn(name="register_change")
    async def register_change(self, data: RegisterChangeInput) -> RegisterChangeResult:
        async with self._sessions() as session, session.begin():
            existing = await session.get(ChangeRequest, data.process_id)
            if existing is not None:
                return RegisterChangeResult(number=existing.number)
            year = (await session.scalar(select(func.now()))).year  # type: ignore[union-attr]
            number = f"CR-{year}-{await next_in_series(session, CHANGE_NUMBER):04d}"
            content = data.content
            change = ChangeRequest(
                id=data.process_id,
                number=number,
                change_type=content.change_type.value,
                title=content.title,
                reason=content.reason,
                risk=content.risk.value,
                requester=data.requester,
                status="triage",
                revision=1,
                required_assessments=[],
                requested_effective_on=content.requested_effective_on,
            )
            session.add(change)
            await session.flush()
            session.add(
                ChangeRevision(
                    change_id=change.id,
                    revision=1,
                    content=content.model_dump(mode="json"),
                    revised_by=data.requester,
                    why="initial request",
                )
            )
            await append_audit(
                session,
                AuditRecord(
                    actor=data.requester,
                    action="change.requested",
                    entity_type="change_request",
                    entity_id=number,
                    after=content.model_dump(mode="json"),
                    idempotency_key=f"{data.process_id}:{data.run_id}:change-registered",
                    **activity_origin(),
                ),
            )
            return RegisterChangeResult(number=number)

    @activity.defn(name="set_change_status")
    async def set_change_status(self, data: SetChangeStatusInput) -> None:
        key = f"{data.process_id}:status:{data.seq}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            change = await session.get(ChangeRequest, data.process_id, with_for_update=True)
            if change is None:  # cancelled before it was registered: nothing to update
                return
            before = change.status
            change.status = data.status
            now = await database_now(session)
            if data.status in TERMINAL:
                change.closed_at = now
            await mirror_status(
                session,
                data.process_id,
                step=data.status,
                ended=TERMINAL.get(data.status),
                outcome="implemented" if data.status == "closed" else data.status,
                at=now,
            )
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action=f"change.{data.status}",
                    entity_type="change_request",
                    entity_id=change.number,
                    reason=data.reason,
                    before={"status": before},
                    after=with_reason_wording(
                        {"status": data.status}, said_again(data.reason_wording, data.reason)
                    ),
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )

    @activity.defn(name="record_triage")
    async def record_triage(self, data: RecordTriageInput) -> str:
        """Store the triage; answer a problem (then the workflow triages again) or ''."""
        key = f"{data.process_id}:triage:{data.attempt}"
        async with self._sessions() as session, session.begin():
            change = await session.get_one(ChangeRequest, data.process_id, with_for_update=True)
            earlier = await session.scalar(
                select(AuditEntry.reason).where(AuditEntry.idempotency_key == key)
            )
            if earlier is not None:
                return earlier  # this triage was recorded before a retry: same answer
            implementer = await session.scalar(
                select(AppUser).where(AppUser.username == data.implementer)
            )
            problem = ""
            if implementer is None or not implementer.is_active or implementer.is_system:
                problem = f"'{data.implementer}' is not an active person's username; name the implementer again"
            else:
                found = await problems_in(session, await _content(session, change))
                problem = "; ".join(found)
            before = {
                "classification": change.classification,
                "required_assessments": list(change.required_assessments),
                "implementer": change.implementer,
            }
            if not problem:
                change.classification = data.classification
                change.required_assessments = data.required_assessments
                change.implementer = data.implementer
            await append_audit(
                session,
                AuditRecord(
                    actor=data.triaged_by,
                    action="change.triaged",
                    entity_type="change_request",
                    entity_id=change.number,
                    outcome="refused" if problem else "ok",
                    reason=problem,
                    before=before,
                    after={
                        "classification": data.classification,
                        "required_assessments": data.required_assessments,
                        "implementer": data.implementer,
                    },
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )
            return problem

    @activity.defn(name="compute_change_impact")
    async def compute_change_impact(self, data: ComputeImpactInput) -> ImpactList:
        async with self._sessions() as session:
            change = await session.get_one(ChangeRequest, data.process_id)
            return await compute_impact(session, await _content(session, change))

    @activity.defn(name="record_change_assessment")
    async def record_change_assessment(self, data: RecordAssessmentInput) -> None:
        key = f"{data.process_id}:assessment:{data.revision}:{data.function}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            change = await session.get_one(ChangeRequest, data.process_id)
            session.add(
                ChangeAssessment(
                    change_id=change.id,
                    revision=data.revision,
                    function=data.function,
                    outcome=data.outcome,
                    assessment=data.assessment,
                    assessed_by=data.assessed_by,
                    impact=data.impact.model_dump(),
                )
            )
            await append_audit(
                session,
                AuditRecord(
                    actor=data.assessed_by,
                    action="change.assessed",
                    entity_type="change_request",
                    entity_id=change.number,
                    reason=data.assessment,
                    after={
                        "function": data.function,
                        "outcome": data.outcome,
                        "revision": data.revision,
                        "impact": data.impact.counts,
                    },
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )

    @activity.defn(name="revise_change")
    async def revise_change(self, data: ReviseChangeInput) -> None:
        key = f"{data.process_id}:revision:{data.revision}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            change = await session.get_one(ChangeRequest, data.process_id, with_for_update=True)
            before = (await _content(session, change)).model_dump(mode="json")
            content = data.content
            session.add(
                ChangeRevision(
                    change_id=change.id,
                    revision=data.revision,
                    content=content.model_dump(mode="json"),
                    revised_by=data.revised_by,
                    why=data.why,
                )
            )
            change.revision, change.title, change.reason = (
                data.revision,
                content.title,
                content.reason,
            )
            change.requested_effective_on = content.requested_effective_on
            await append_audit(
                session,
                AuditRecord(
                    actor=data.revised_by,
                    action="change.revised",
                    entity_type="change_request",
                    entity_id=change.number,
                    reason=data.why,
                    before=before,
                    after=content.model_dump(mode="json") | {"revision": data.revision},
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )

    @activity.defn(name="apply_change")
    async def apply_change(self, data: ApplyChangeInput) -> ApplyChangeResult:
        """All actions of the approved revision, at once, in one transaction, or none."""
        key = f"{data.process_id}:applied"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                change = await session.get_one(ChangeRequest, data.process_id)
                return ApplyChangeResult(
                    applied=[a.describe() for a in (await _content(session, change)).actions]
                )
            change = await session.get_one(ChangeRequest, data.process_id, with_for_update=True)
            content = await _content(session, change)
            now = await database_now(session)
            assert isinstance(now, datetime)
            try:
                applied = await apply_actions(
                    session,
                    change_id=change.number,
                    content=content,
                    today=now.astimezone(UTC).date(),
                    where=activity_origin(),
                )
            except ApplyRefused as err:
                problem = err.args[0] if err.args else str(err)  # a Said: its template travels
                raise refuse("ApplyRefused", problem, non_retryable=True) from None
            change.effective_at = now
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="change.effective",
                    entity_type="change_request",
                    entity_id=change.number,
                    reason="the approved change took effect",
                    after={"applied": applied, "revision": change.revision},
                    idempotency_key=key,
                    **activity_origin(),
                ),
            )
            return ApplyChangeResult(applied=applied)
