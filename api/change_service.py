"""Change requests over REST and in the UI: start, list, and the change page's facts."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.errors import ApiError, Message, joined, not_found, unavailable
from api.process_service import process_id_for, start_once
from api.security import Principal
from api.task_service import audit_out, task_out
from api.validation_problems import problems_of
from erp.change_control import ChangeAssessment, ChangeRequest, ChangeRevision
from erp.changes import compute_impact, problems_in
from erp.master_data import AslEntry, Document, Item, Supplier
from erp.models import AuditEntry, Task
from erp.queries import escape_like, process_signatures, process_timeline
from schemas.api import (
    ChangeAssessmentOut,
    ChangeDetail,
    ChangeOut,
    ChangeRevisionOut,
    ChangeStart,
    RevisionSideBySide,
    SignatureOut,
)
from schemas.change_control import ActionKind, ChangeContent, ChangeRequestInput, ProposedAction


def readable(err: ValidationError) -> str:
    return problems_of(err, "body")  # translatable parts (api/validation_problems.py)


def content_of(body: ChangeStart) -> ChangeContent:
    try:
        return ChangeContent.model_validate(body.model_dump(exclude={"external_id"}))
    except ValidationError as err:
        raise ApiError(
            422, "the change request is not valid: %(problems)s", problems=readable(err)
        ) from None


async def start_change(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    body: ChangeStart,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Start a change request; a repeat with the same key returns the first one."""
    principal.require("processes:start")
    content = content_of(body)
    problems = await problems_in(session, content)
    if problems:
        raise ApiError(
            422,
            "the change request does not match the ERP: %(problems)s",
            problems=joined(problems),
        )
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    process_id = process_id_for("cr", principal, idempotency_key or body.external_id)
    request = ChangeRequestInput(
        process_id=process_id, requester=principal.username, content=content
    )
    created = await start_once(
        client, "ChangeControl", request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


def change_out(change: ChangeRequest) -> ChangeOut:
    return ChangeOut.model_validate(change, from_attributes=True)


async def list_changes(
    *,
    session: AsyncSession,
    principal: Principal,
    status: str | None,
    change_type: str | None,
    requester: str | None,
    text: str | None,
    limit: int,
    offset: int,
) -> tuple[list[ChangeOut], int]:
    principal.require("processes:read")
    query = select(ChangeRequest)
    if status == "open":
        query = query.where(ChangeRequest.status.not_in(("closed", "withdrawn", "cancelled")))
    elif status:
        query = query.where(ChangeRequest.status == status)
    if change_type:
        query = query.where(ChangeRequest.change_type == change_type)
    if requester:
        query = query.where(ChangeRequest.requester == requester)
    if text:
        pattern = f"%{escape_like(text)}%"
        query = query.where(
            or_(
                ChangeRequest.title.ilike(pattern, escape="\\"),
                ChangeRequest.number.ilike(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(ChangeRequest.created_at.desc()).limit(limit).offset(offset)
    )
    return [change_out(c) for c in rows], int(total or 0)


async def find_change(session: AsyncSession, key: str) -> ChangeRequest:
    change = await session.scalar(
        select(ChangeRequest).where(or_(ChangeRequest.id == key, ChangeRequest.number == key))
    )
    if change is None:
        raise not_found(Message("Change %(id)s", id=key))
    return change


async def change_detail(*, session: AsyncSession, principal: Principal, key: str) -> ChangeDetail:
    principal.require("processes:read")
    change = await find_change(session, key[:200])
    revisions = list(
        await session.scalars(
            select(ChangeRevision)
            .where(ChangeRevision.change_id == change.id)
            .order_by(ChangeRevision.revision)
        )
    )
    assessments = list(
        await session.scalars(
            select(ChangeAssessment)
            .where(ChangeAssessment.change_id == change.id)
            .order_by(ChangeAssessment.revision, ChangeAssessment.function)
        )
    )
    content = ChangeContent.model_validate(revisions[-1].content)
    current = [a for a in assessments if a.revision == change.revision]
    impact = current[0].impact if current else (await compute_impact(session, content)).model_dump()
    tasks = await session.scalars(
        select(Task).where(Task.process_id == change.id, Task.status == "open").order_by(Task.id)
    )
    return ChangeDetail(
        **change_out(change).model_dump(),
        revisions=[ChangeRevisionOut.model_validate(r, from_attributes=True) for r in revisions],
        assessments=[
            ChangeAssessmentOut.model_validate(a, from_attributes=True) for a in assessments
        ],
        impact=impact,
        side_by_side=[
            await _side_by_side(session, change, n, a) for n, a in enumerate(content.actions, 1)
        ],
        open_tasks=[task_out(t) for t in tasks],
        timeline=[audit_out(a) for a in await process_timeline(session, change.id)],
        signatures=[
            SignatureOut.model_validate(s, from_attributes=True)
            for s in await process_signatures(session, change.id)
        ],
    )


def _item(item: Item | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "revision": item.revision,
        "status": item.status,
        "description": item.description,
        "device class": item.device_class,
        "GTIN": item.gtin,
        "shelf life (days)": item.shelf_life_days,
        "storage": item.storage_condition,
        "effective on": item.effective_on,
        "obsolete on": item.obsolete_on,
    }


def _document(doc: Document | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "version": doc.version,
        "status": doc.status,
        "title": doc.title,
        "type": doc.doc_type,
        "effective on": doc.effective_on,
        "obsolete on": doc.obsolete_on,
    }


async def _side_by_side(
    session: AsyncSession, change: ChangeRequest, seq: int, action: ProposedAction
) -> RevisionSideBySide:
    """Old next to new: before the change takes effect, the effective record and the proposal;
    after, the record it replaced and the record it made effective."""
    if action.kind is ActionKind.ITEM_REVISION:
        rows = {
            i.revision: i
            for i in await session.scalars(select(Item).where(Item.part_number == action.target))
        }
        new = rows.get(action.new_revision or "")
        if change.effective_at is not None and new is not None:
            old = max(
                (i for i in rows.values() if i.id != new.id and i.obsolete_on is not None),
                key=lambda i: i.obsolete_on or i.id,
                default=None,
            )  # type: ignore[arg-type, return-value]
        else:
            old = next((i for i in rows.values() if i.status == "effective"), None)
        after = _item(new) or _without_dates(
            {**(_item(old) or {}), "revision": action.new_revision, "status": "proposed"}
            | {k.replace("_", " "): v for k, v in action.changes.items()}
        )
        return RevisionSideBySide(
            action=action.describe(), record=f"part {action.target}", before=_item(old), after=after
        )
    if action.kind is ActionKind.DOCUMENT_VERSION:
        docs = {
            d.version: d
            for d in await session.scalars(select(Document).where(Document.number == action.target))
        }
        new_doc = docs.get(action.new_revision or "")
        if change.effective_at is not None and new_doc is not None:
            old_doc = max(
                (d for d in docs.values() if d.id != new_doc.id and d.obsolete_on is not None),
                key=lambda d: d.obsolete_on or d.id,
                default=None,
            )  # type: ignore[arg-type, return-value]
        else:
            old_doc = next((d for d in docs.values() if d.status == "effective"), None)
        after_doc = _document(new_doc) or _without_dates(
            {
                **(_document(old_doc) or {}),
                "version": action.new_revision,
                "status": "proposed",
                **action.changes,
            }
        )
        return RevisionSideBySide(
            action=action.describe(),
            record=f"document {action.target}",
            before=_document(old_doc),
            after=after_doc,
        )
    if change.effective_at is not None:  # what the audit trail recorded when it took effect
        applied = await session.scalar(
            select(AuditEntry).where(AuditEntry.idempotency_key == f"{change.number}:apply:{seq}")
        )
        return RevisionSideBySide(
            action=action.describe(),
            record=_record_name(action),
            before=_readable_keys(applied.before) if applied else None,
            after=_readable_keys(applied.after) if applied else None,
        )
    supplier = await session.scalar(select(Supplier).where(Supplier.code == action.target))
    if action.kind is ActionKind.ASL_STATUS:
        entry = None
        if supplier is not None:
            entry = await session.scalar(
                select(AslEntry).where(
                    AslEntry.supplier_id == supplier.id, AslEntry.part_number == action.part_number
                )
            )
        return RevisionSideBySide(
            action=action.describe(),
            record=_record_name(action),
            before={"status": entry.status, "since": entry.since_on, "note": entry.note}
            if entry
            else None,
            after={"status": action.new_status, "note": action.note},
        )
    return RevisionSideBySide(
        action=action.describe(),
        record=_record_name(action),
        before={"status": supplier.status} if supplier else None,
        after={"status": action.new_status},
    )


def _without_dates(proposed: dict[str, Any]) -> dict[str, Any]:
    """A proposal has no effective or obsolete date yet: it gets one when the change takes effect."""
    return {k: v for k, v in proposed.items() if k not in ("effective on", "obsolete on")}


def _record_name(action: ProposedAction) -> str:
    if action.kind is ActionKind.ASL_STATUS:
        return f"ASL {action.target} × {action.part_number}"
    return f"supplier {action.target}"


def _readable_keys(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k.replace("_on", "").replace("_", " "): v for k, v in values.items()}
