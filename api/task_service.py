"""The inbox's services: list, show, claim, release and decide tasks.

Who may decide is checked here (candidate, delegate, claim, segregation of duties, signature);
the decision itself goes to the task's workflow as an update, whose validator checks it again and
whose audited activity records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, Message, conflict, forbidden, not_found, unavailable
from api.security import Principal, active_delegators, groups_of
from api.workflow_updates import refusal_message, update_when_ready
from erp.audit import AuditRecord, append_audit
from erp.models import AppUser, AuditEntry, ESignature, Outbox, Task, TaskDecision
from erp.passwords import verify_password
from erp.queries import inbox_query
from schemas.api import (
    AuditOut,
    DecisionIn,
    DecisionOut,
    DecisionOutcome,
    SignatureOut,
    TaskDetail,
    TaskOut,
)
from schemas.human_task import (
    DecisionRequest,
    DecisionResult,
    SignatureIntent,
    TaskSpec,
    TaskStatus,
)
from workflows.human_task import refusal

_STATUS_OF_REFUSAL = {"Conflict": 409, "Invalid": 422, "Forbidden": 403, "NotReady": 409}


def task_out(task: Task) -> TaskOut:
    spec = task.spec
    now = datetime.now(UTC)
    return TaskOut(
        id=task.id,
        title=task.title,
        description=task.description,
        title_template=spec.get("title_template"),
        title_values=spec.get("title_values"),
        description_template=spec.get("description_template"),
        description_values=spec.get("description_values"),
        kind=task.kind,
        process_id=task.process_id,
        process_kind=task.process_kind,
        business_key=task.business_key,
        step=task.step,
        status=task.status,
        outcome=task.outcome,
        rule=task.rule,
        k=task.k,
        stage=task.stage,
        stage_count=task.stage_count,
        level=task.level,
        due_at=task.due_at,
        overdue=bool(task.status == "open" and task.due_at and task.due_at < now),
        candidate_groups=list(task.candidate_groups),
        candidate_users=list(task.candidate_users),
        initiator=task.initiator,
        claimed_by=task.claimed_by,
        created_at=task.created_at,
        closed_at=task.closed_at,
        outcomes=spec.get("outcomes", []),
        fields=spec.get("fields", []),
        context=spec.get("context", {}),
        context_wording=spec.get("context_wording") or {},
    )


def audit_out(entry: AuditEntry) -> AuditOut:
    return AuditOut.model_validate(entry, from_attributes=True)


@dataclass
class Eligibility:
    """How a person may act on a task: as themselves or standing in for a delegator."""

    on_behalf_of: str | None
    qualifying_groups: list[str]
    why_not: str | None = None


async def eligibility(session: AsyncSession, task: Task, principal: Principal) -> Eligibility:
    identities: list[tuple[str, frozenset[str], str | None]] = [
        (principal.username, principal.groups, None)
    ]
    for delegator in await active_delegators(session, principal.user_id):
        groups = await groups_of(session, delegator.id)
        identities.append((delegator.username, groups, delegator.username))
    people = {name for name, _, _ in identities}
    if task.initiator and task.initiator in people:
        if task.initiator == principal.username:
            why = Message("segregation of duties: you initiated this request")
        else:
            why = Message(
                "segregation of duties: %(initiator)s, for whom you stand in, initiated this request",
                initiator=task.initiator,
            )
        return Eligibility(None, [], why)
    if people & set(task.excluded_users):
        return Eligibility(None, [], "segregation of duties: you took part in this work")
    for name, groups, on_behalf in identities:
        qualifying = sorted(groups & set(task.candidate_groups))
        if name in task.candidate_users or qualifying:
            return Eligibility(on_behalf, qualifying)
    return Eligibility(None, [], "you are not a candidate for this task (nor standing in for one)")


async def visible_names_and_groups(
    session: AsyncSession, principal: Principal
) -> tuple[list[str], list[str]]:
    names = [principal.username]
    groups = set(principal.groups)
    for delegator in await active_delegators(session, principal.user_id):
        names.append(delegator.username)
        groups |= await groups_of(session, delegator.id)
    return names, sorted(groups)


async def list_tasks(
    *,
    session: AsyncSession,
    principal: Principal,
    scope: str,
    status: str,
    overdue: bool | None,
    process_kind: str | None,
    business_key: str | None,
    process_id: str | None = None,
    text: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TaskOut], int]:
    principal.require("tasks:read")
    if scope == "everything" and not (principal.is_admin or not principal.is_person):
        raise forbidden("only administrators and integrated systems may list every task")
    names, groups = await visible_names_and_groups(session, principal)
    query = inbox_query(
        usernames=names,
        groups=groups,
        scope=scope,
        status=status,
        overdue=overdue,
        process_kind=process_kind,
        business_key=business_key,
        process_id=process_id,
        text=text,
        everything=True,
    )
    tasks = (await session.scalars(query.limit(limit).offset(offset))).all()
    if tasks and len(tasks) < limit:
        # a short page is the last one: the tasks before it and on it are all there are, so the
        # count (which reads every visible open task from the heap) is not needed
        total: int | None = offset + len(tasks)
    else:  # a full page, or an empty one (an offset past the end): count
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = await session.scalar(counted)
    return [task_out(t) for t in tasks], int(total or 0)


async def load_task(session: AsyncSession, task_id: int, *, for_update: bool = False) -> Task:
    task = await session.get(Task, task_id, with_for_update=for_update)
    if task is None:
        raise not_found(Message("Task %(id)s", id=task_id))
    return task


async def may_view(session: AsyncSession, task: Task, principal: Principal) -> bool:
    if principal.is_admin or not principal.is_person or principal.may("audit:read"):
        return True
    names, groups = await visible_names_and_groups(session, principal)
    return bool(
        set(names) & ({task.initiator, task.claimed_by} | set(task.candidate_users))
        or set(groups) & set(task.candidate_groups)
        or await session.scalar(
            select(TaskDecision.id).where(
                TaskDecision.task_id == task.id, TaskDecision.decided_by.in_(names)
            )
        )
    )


async def task_detail(*, session: AsyncSession, principal: Principal, task_id: int) -> TaskDetail:
    principal.require("tasks:read")
    task = await load_task(session, task_id)
    if not await may_view(session, task, principal):
        raise forbidden("this task is not in your inbox or your groups' inboxes")
    rows = await session.execute(
        select(TaskDecision, ESignature)
        .outerjoin(ESignature, ESignature.id == TaskDecision.signature_id)
        .where(TaskDecision.task_id == task.id)
        .order_by(TaskDecision.seq)
    )
    decisions = [
        DecisionOut(
            seq=d.seq,
            decided_by=d.decided_by,
            on_behalf_of=d.on_behalf_of,
            outcome=d.outcome,
            fields=d.fields,
            comment=d.comment,
            stage=d.stage,
            decided_at=d.decided_at,
            signature=SignatureOut.model_validate(s, from_attributes=True) if s else None,
        )
        for d, s in rows.all()
    ]
    history = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "task", AuditEntry.entity_id == str(task.id))
        .order_by(AuditEntry.id)
    )
    base = task_out(task).model_dump()
    return TaskDetail(**base, decisions=decisions, history=[audit_out(a) for a in history])


async def record_refusal(
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    action: str,
    task: Task,
    reason: str,
    source: str,
    on_behalf_of: str | None = None,
    attempted: dict[str, object] | None = None,
) -> None:
    """Refused attempts are audited too: who tried what, and why it was refused."""
    async with sessions() as session, session.begin():
        await append_audit(
            session,
            AuditRecord(
                actor=principal.username,
                on_behalf_of=on_behalf_of,
                action=action,
                entity_type="task",
                entity_id=str(task.id),
                outcome="refused",
                reason=reason,
                after=attempted,
                workflow_id=task.workflow_id,
                source=source,
            ),
        )


async def _refuse(
    sessions: async_sessionmaker[AsyncSession],
    error: ApiError,
    *,
    principal: Principal,
    action: str,
    task: Task,
    source: str,
    on_behalf_of: str | None = None,
    attempted: dict[str, object] | None = None,
) -> ApiError:
    await record_refusal(
        sessions,
        principal=principal,
        action=action,
        task=task,
        reason=error.detail,
        source=source,
        on_behalf_of=on_behalf_of,
        attempted=attempted,
    )
    return error


@dataclass
class Refuser:
    """Audits a refused attempt on a task and hands back the error to raise."""

    sessions: async_sessionmaker[AsyncSession]
    principal: Principal
    action: str
    task: Task
    source: str
    attempted: dict[str, object] | None = None
    on_behalf_of: str | None = None

    async def __call__(self, error: ApiError) -> ApiError:
        return await _refuse(
            self.sessions,
            error,
            principal=self.principal,
            action=self.action,
            task=self.task,
            source=self.source,
            on_behalf_of=self.on_behalf_of,
            attempted=self.attempted,
        )


async def claim_task(
    *, sessions: async_sessionmaker[AsyncSession], principal: Principal, task_id: int, source: str
) -> TaskOut:
    """Take a task so others see it is being worked on (single-decider tasks only)."""
    async with sessions() as session, session.begin():
        task = await load_task(session, task_id, for_update=True)
        error = await _claim_refusal(session, task, principal)
        if error is None:
            task.claimed_by = principal.username
            task.claimed_at = await session.scalar(select(func.now()))
            await append_audit(
                session,
                AuditRecord(
                    actor=principal.username,
                    action="task.claimed",
                    entity_type="task",
                    entity_id=str(task.id),
                    after={"claimed_by": principal.username},
                    workflow_id=task.workflow_id,
                    source=source,
                ),
            )
            return task_out(task)
    assert error is not None
    raise await Refuser(sessions, principal, "task.claim_refused", task, source)(error)


async def _claim_refusal(
    session: AsyncSession, task: Task, principal: Principal
) -> ApiError | None:
    if not principal.is_person:
        return forbidden("systems cannot claim tasks; a person must")
    if task.status != "open":
        return conflict(
            "task %(id)s is already %(status)s; it cannot be claimed",
            id=task.id,
            status=task.status,
        )
    if task.rule != "any" and not (task.rule == "sequential"):
        return conflict(
            "this task needs several people's decisions; it is not claimed by one person"
        )
    if task.claimed_by == principal.username:
        return conflict("you have already claimed this task")
    if task.claimed_by:
        return conflict(
            "task %(id)s is claimed by %(who)s; ask them to release it",
            id=task.id,
            who=task.claimed_by,
        )
    allowed = await eligibility(session, task, principal)
    if allowed.why_not:
        return forbidden(allowed.why_not)
    return None


async def release_task(
    *, sessions: async_sessionmaker[AsyncSession], principal: Principal, task_id: int, source: str
) -> TaskOut:
    async with sessions() as session, session.begin():
        task = await load_task(session, task_id, for_update=True)
        error: ApiError | None = None
        if task.status != "open":
            error = conflict("task %(id)s is already %(status)s", id=task.id, status=task.status)
        elif not task.claimed_by:
            error = conflict("task %(id)s is not claimed", id=task.id)
        elif task.claimed_by != principal.username and not principal.is_admin:
            error = forbidden(
                "only %(who)s or an administrator may release this task", who=task.claimed_by
            )
        if error is None:
            previous = task.claimed_by
            task.claimed_by = None
            task.claimed_at = None
            await append_audit(
                session,
                AuditRecord(
                    actor=principal.username,
                    action="task.released",
                    entity_type="task",
                    entity_id=str(task.id),
                    before={"claimed_by": previous},
                    after={"claimed_by": None},
                    workflow_id=task.workflow_id,
                    source=source,
                ),
            )
            return task_out(task)
    assert error is not None
    raise await Refuser(sessions, principal, "task.release_refused", task, source)(error)


async def decide_task(
    *,
    sessions: async_sessionmaker[AsyncSession],
    client: Client | None,
    principal: Principal,
    task_id: int,
    decision: DecisionIn,
    signature_max_failures: int,
    source: str,
) -> DecisionOutcome:
    """Check who may decide, verify a signature, and send the decision to the task's workflow."""
    attempted: dict[str, object] = {"outcome": decision.outcome, "fields": decision.fields}
    async with sessions() as session:
        task = await load_task(session, task_id)
        allowed = await eligibility(session, task, principal)
        closed = await _closed_conflict(session, task)
    refuse = Refuser(
        sessions, principal, "task.decision_refused", task, source, attempted, allowed.on_behalf_of
    )
    if not principal.is_person:
        raise await refuse(forbidden("systems cannot decide tasks; a person must"))
    if closed is not None:
        raise await refuse(closed)
    if allowed.why_not:
        raise await refuse(forbidden(allowed.why_not))
    if task.claimed_by and task.claimed_by != principal.username:
        raise await refuse(
            conflict(
                "task %(id)s is claimed by %(who)s; ask them to release it first",
                id=task.id,
                who=task.claimed_by,
            )
        )
    spec = TaskSpec.model_validate(task.spec)
    request = DecisionRequest(
        task_id=task.id,
        decider=principal.username,
        decider_name=principal.full_name,
        on_behalf_of=allowed.on_behalf_of,
        qualifying_groups=allowed.qualifying_groups,
        outcome=decision.outcome,
        fields={k: v.strip() for k, v in decision.fields.items()},
        comment=decision.comment.strip(),
    )
    outcome_spec = spec.outcome(decision.outcome)
    if outcome_spec is not None and outcome_spec.signature_meaning is not None:
        # check what can be checked before asking for the password, so a typo costs no attempt
        early = refusal(
            spec,
            TaskStatus.OPEN,
            task.stage,
            task.level,
            [],
            request.model_copy(
                update={
                    "signature": SignatureIntent(
                        meaning=outcome_spec.signature_meaning,
                        signer=principal.username,
                        printed_name=principal.full_name,
                    )
                }
            ),
        )
        if early is not None and early.kind == "Invalid":
            raise await refuse(ApiError(422, refusal_message(early.message)))
        await _verify_signature(
            sessions, principal, decision.password, task, signature_max_failures, source
        )
        request.signature = SignatureIntent(
            meaning=outcome_spec.signature_meaning,
            signer=principal.username,
            printed_name=principal.full_name,
        )
    early = refusal(spec, TaskStatus.OPEN, task.stage, task.level, [], request)
    if early is not None:
        raise await refuse(ApiError(_STATUS_OF_REFUSAL[early.kind], refusal_message(early.message)))
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    result = await _send_decision(client, task, request, refuse)
    signature = None
    if request.signature is not None:
        async with sessions() as session:
            row = await session.scalar(
                select(ESignature)
                .join(TaskDecision, TaskDecision.signature_id == ESignature.id)
                .where(
                    TaskDecision.task_id == task.id, TaskDecision.decided_by == principal.username
                )
            )
            signature = SignatureOut.model_validate(row, from_attributes=True) if row else None
    return DecisionOutcome(
        task_id=task.id,
        outcome=result.outcome,
        task_status=result.task_status.value,
        final_outcome=result.final_outcome,
        message=result.message,
        message_template=result.message_template,
        message_values=result.message_values,
        signature=signature,
    )


async def _closed_conflict(session: AsyncSession, task: Task) -> ApiError | None:
    """The 409 for a task no longer open, naming who decided it (a second person deciding at
    the same moment learns who was first); None while the task is open."""
    if task.status == "open":
        return None
    rows = await session.execute(
        select(TaskDecision.decided_by, TaskDecision.on_behalf_of)
        .where(TaskDecision.task_id == task.id)
        .order_by(TaskDecision.seq)
    )
    names = [f"{who} for {behalf}" if behalf else who for who, behalf in rows]
    by = ", ".join(dict.fromkeys(names))
    said = "task %(id)s is already %(status)s"
    said += (" by %(by)s" if names else "") + (" (outcome: %(outcome)s)" if task.outcome else "")
    # the template is one of four, each in the catalog (see ui/locales/zh_Hans/errors.po)
    return conflict(
        said + "; nothing was changed", id=task.id, status=task.status, by=by, outcome=task.outcome
    )


async def _send_decision(
    client: Client,
    task: Task,
    request: DecisionRequest,
    refuse: Refuser,
) -> DecisionResult:
    handle = client.get_workflow_handle(task.workflow_id)
    try:
        result: DecisionResult = await update_when_ready(
            handle, "decide", request, result_type=DecisionResult
        )
        return result
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in _STATUS_OF_REFUSAL:
            error = ApiError(_STATUS_OF_REFUSAL[cause.type], refusal_message(cause))
            if cause.type == "Conflict":  # decided a moment ago by someone else: say by whom
                async with refuse.sessions() as session:
                    now = await load_task(session, task.id)
                    error = await _closed_conflict(session, now) or error
        else:
            error = conflict("the decision could not be recorded; reload the task and try again")
        raise await refuse(error) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            # the task's workflow has ended: decided a moment ago (the decision is recorded in
            # the update that closes it), cancelled, or gone; the ERP says which, and by whom
            async with refuse.sessions() as session:
                now = await load_task(session, task.id)
                error = await _closed_conflict(session, now) or conflict(
                    "task %(id)s is no longer open (its step has ended); nothing was changed",
                    id=task.id,
                )
            raise await refuse(error) from None
        raise unavailable("The workflow service (Temporal)") from None


async def _verify_signature(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    password: str | None,
    task: Task,
    max_failures: int,
    source: str,
) -> None:
    """Part 11 §11.200: the signer re-enters the password; repeated failures lock signing."""
    async with sessions() as session, session.begin():
        user = await session.get_one(AppUser, principal.user_id, with_for_update=True)
        if user.signature_locked_at is not None:
            error = forbidden(
                "signing is locked for your account after repeated wrong passwords; "
                "an administrator has been notified and must unlock it"
            )
        elif not password:
            error = ApiError(422, "this decision signs: re-enter your password to sign it")
        elif verify_password(password, user.password_hash):
            user.failed_signature_count = 0
            return
        else:
            user.failed_signature_count += 1
            left = max_failures - user.failed_signature_count
            if left <= 0:
                user.signature_locked_at = await session.scalar(select(func.now()))
                error = forbidden(
                    "wrong password; signing is now locked for your account and an "
                    "administrator has been notified"
                )
                session.add(
                    Outbox(
                        channel="email",
                        recipient="group:admin",
                        subject=f"Signing locked for {user.username}",
                        body=f"{user.full_name} entered a wrong signing password {max_failures} times (task {task.id}).",
                        payload={"event": "signature.locked", "user": user.username},
                    )
                )
            else:
                error = forbidden(
                    "wrong password; the signature was not applied (%(left)s attempt(s) left)",
                    left=left,
                )
        await append_audit(
            session,
            AuditRecord(
                actor=principal.username,
                action="signature.locked" if user.signature_locked_at else "signature.refused",
                entity_type="task",
                entity_id=str(task.id),
                outcome="refused",
                reason=error.detail,
                workflow_id=task.workflow_id,
                source=source,
            ),
        )
    raise error
