"""Starting, reading and cancelling processes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, Message, forbidden, not_found, unavailable
from api.security import Principal
from api.task_service import audit_out, task_out
from api.workflow_updates import refusal_message, update_when_ready
from erp.audit import AuditRecord, append_audit
from erp.models import AppGroup, AppUser, Process, Task
from erp.queries import escape_like, process_signatures, process_timeline
from schemas.api import ApprovalStart, ProcessDetail, ProcessOut, SignatureOut
from schemas.approval import ApprovalRequestInput
from schemas.change_control import WithdrawRequest

KINDS_AVAILABLE = (
    "approval",
    "change-control",
    "procure-to-deliver",
    "purchase",
    "work-order",
    "shipment",
    "nonconformance",
    "capa",
    "recall",
)
KINDS_PLANNED: tuple[str, ...] = ()


def process_id_for(kind_prefix: str, principal: Principal, key: str | None) -> str:
    """The workflow id: derived from the caller's idempotency key, so a repeat finds the same run."""
    if key:
        digest = hashlib.sha256(f"{principal.username}\x00{key}".encode()).hexdigest()[:16]
        return f"{kind_prefix}-{digest}"
    return f"{kind_prefix}-{datetime.now(UTC):%Y}-{secrets.token_hex(4)}"


async def _check_names(session: AsyncSession, groups: list[str], users: list[str]) -> None:
    known_groups = set(
        await session.scalars(select(AppGroup.name).where(AppGroup.name.in_(groups)))
    )
    unknown = sorted(set(groups) - known_groups)
    if unknown:
        raise ApiError(
            422,
            "unknown group(s): %(names)s; use existing group names",
            names=", ".join(unknown),
        )
    known_users = set(
        await session.scalars(
            select(AppUser.username).where(AppUser.username.in_(users), AppUser.is_active)
        )
    )
    unknown = sorted(set(users) - known_users)
    if unknown:
        raise ApiError(422, "unknown or inactive user(s): %(names)s", names=", ".join(unknown))


async def start_approval(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    body: ApprovalStart,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Start an approval request; returns (process id, created). A repeat returns the first one."""
    principal.require("processes:start")
    await _check_names(session, body.approver_groups + body.escalation_chain, body.approver_users)
    if (
        body.rule.value == "k_of_n"
        and body.k > 1
        and not body.approver_groups
        and len(body.approver_users) < body.k
    ):
        raise ApiError(422, "k is larger than the number of approvers")
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    process_id = process_id_for("apr", principal, idempotency_key or body.external_id)
    request = ApprovalRequestInput(
        process_id=process_id,
        initiator=principal.username,
        **body.model_dump(exclude={"external_id"}),
    )
    created = await start_once(
        client, "ApprovalRequest", request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


async def start_once(
    client: Client, workflow_type: str, arg: object, *, process_id: str, task_queue: str
) -> bool:
    """Start a process's workflow unless one with this id ever ran; True when started now."""
    try:
        await client.start_workflow(
            workflow_type,
            arg,
            id=process_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        return False
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            return False
        raise unavailable("The workflow service (Temporal)") from None
    return True


def process_out(process: Process) -> ProcessOut:
    return ProcessOut.model_validate(process, from_attributes=True)


async def process_detail(
    *, session: AsyncSession, client: Client | None, principal: Principal, process_id: str
) -> ProcessDetail:
    principal.require("processes:read")
    process = await session.get(Process, process_id)
    if process is None:
        if client is not None and await _workflow_exists(client, process_id):
            return ProcessDetail(
                id=process_id,
                kind="",
                title="",
                business_key=process_id,
                initiator=None,
                status="starting",
                current_step="starting",
                outcome=None,
                started_at=None,
                closed_at=None,
                open_tasks=[],
                timeline=[],
            )
        raise not_found(Message("Process %(id)s", id=process_id))
    tasks = await session.scalars(
        select(Task).where(Task.process_id == process_id, Task.status == "open").order_by(Task.id)
    )
    timeline = await process_timeline(session, process_id)
    signatures = await process_signatures(session, process_id)
    return ProcessDetail(
        **process_out(process).model_dump(),
        open_tasks=[task_out(t) for t in tasks],
        timeline=[audit_out(a) for a in timeline],
        signatures=[SignatureOut.model_validate(s, from_attributes=True) for s in signatures],
    )


async def process_facts(session: AsyncSession, process_id: str) -> dict[str, Any]:
    """A process's open tasks (its own and its children's), timeline and signatures, as the
    fields of a detail model."""
    tasks = await session.scalars(
        select(Task)
        .where(
            or_(
                Task.process_id == process_id,
                Task.process_id.like(escape_like(process_id) + ".%", escape="\\"),
            ),
            Task.status == "open",
        )
        .order_by(Task.id)
    )
    return {
        "open_tasks": [task_out(t) for t in tasks],
        "timeline": [audit_out(a) for a in await process_timeline(session, process_id)],
        "signatures": [
            SignatureOut.model_validate(s, from_attributes=True)
            for s in await process_signatures(session, process_id)
        ],
    }


async def not_registered(session: AsyncSession, key: str, what: str) -> ApiError:
    """404 for a record not found, saying so when its process exists but has not written the
    record yet."""
    process = await session.get(Process, key)
    if process is not None:
        return ApiError(
            404,
            "%(what)s %(key)s is being registered (%(status)s, step %(step)s); ask again in a moment",
            headers={"Retry-After": "2"},
            what=what,
            key=key,
            status=process.status,
            step=process.current_step or "starting",
        )
    return not_found(Message("%(what)s %(key)s", what=what, key=key))


async def _workflow_exists(client: Client, process_id: str) -> bool:
    try:
        await client.get_workflow_handle(process_id).describe()
        return True
    except RPCError:
        return False


async def list_processes(
    *,
    session: AsyncSession,
    principal: Principal,
    kind: str | None,
    status: str | None,
    initiator: str | None,
    limit: int,
    offset: int,
) -> tuple[list[ProcessOut], int]:
    principal.require("processes:read")
    query = select(Process)
    if kind:
        query = query.where(Process.kind == kind)
    if status:
        query = query.where(Process.status == status)
    if initiator:
        query = query.where(Process.initiator == initiator)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Process.started_at.desc(), Process.id).limit(limit).offset(offset)
    )
    return [process_out(p) for p in rows], int(total or 0)


async def cancel_process(
    *,
    sessions: async_sessionmaker[AsyncSession],
    client: Client | None,
    principal: Principal,
    process_id: str,
    reason: str,
    source: str,
) -> ProcessOut:
    """Withdraw a process: its initiator or an administrator; open tasks close as cancelled.
    A change can be withdrawn only before approval, which its workflow decides."""
    async with sessions() as session:
        process = await session.get(Process, process_id)
    if process is None:
        raise not_found(Message("Process %(id)s", id=process_id))
    error: ApiError | None = None
    if not principal.is_person:
        error = forbidden("systems cannot withdraw processes; a person must")
    elif process.initiator != principal.username and not principal.is_admin:
        error = forbidden("only the initiator or an administrator may withdraw this process")
    elif process.status != "running":
        error = ApiError(
            409, "process %(id)s is already %(status)s", id=process_id, status=process.status
        )
    elif client is None:
        raise unavailable("The workflow service (Temporal)")
    else:
        error = await _withdraw(client, process, principal, reason)
    async with sessions() as session, session.begin():
        await append_audit(
            session,
            AuditRecord(
                actor=principal.username,
                action="process.withdrawn" if error is None else "process.withdraw_refused",
                entity_type="process",
                entity_id=process_id,
                outcome="ok" if error is None else "refused",
                reason=reason if error is None else error.detail,
                workflow_id=process_id,
                source=source,
            ),
        )
    if error is not None:
        raise error
    return process_out(process)


async def _withdraw(
    client: Client, process: Process, principal: Principal, reason: str
) -> ApiError | None:
    """Ask the process's workflow to end; its refusal (e.g. approved already) comes back."""
    handle = client.get_workflow_handle(process.id)
    try:
        if process.kind == "change-control":
            await update_when_ready(
                handle, "withdraw", WithdrawRequest(by=principal.username, reason=reason)
            )
            return None
        await handle.cancel()
        return None
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        return ApiError(
            409, refusal_message(cause if isinstance(cause, ApplicationError) else None)
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return ApiError(409, "process %(id)s has already ended", id=process.id)
        raise unavailable("The workflow service (Temporal)") from None
