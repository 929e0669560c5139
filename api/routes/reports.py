"""Printed reports, each as PDF or CSV (`?format=pdf|csv`): the audit trail of a record, a process
or a period with the chain's verification; the signed record manifestation (Part 11 §11.50); the
device history record of a finished lot; the lot genealogy; the CAPA report; the recall report.

Every report states when it was produced (UTC), by whom and the SHA-256 of its content (its CSV
form after the header lines; the `X-Content-SHA256` header repeats it), and producing one writes
the audit row `report.produced` with that hash. Who may read a report is who may read its
record: the audit trail needs `audit:read`, lots `lots:read`, processes `processes:read`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import lot_service, quality_service, recall_service
from api.deps import AppSettings, CurrentPrincipal, DbSession
from api.errors import ApiError, Message, not_found
from api.security import Principal
from erp.audit import AuditRecord, append_audit
from erp.db import database_now
from erp.models import Process
from erp.report_audit import AuditSelection, TooManyRows, audit_trail_report
from erp.report_capa import capa_report
from erp.report_dhr import NotAFinishedLot, device_history_report
from erp.report_genealogy import genealogy_report
from erp.report_recall import recall_report
from erp.report_signatures import NoSignatures, signed_record_report
from erp.reports import FORMATS, Producer, Report, render
from ui.i18n import gettext_for

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/pdf": {}, "text/csv": {}}}
}
Format = Annotated[str, Query(max_length=10, description="pdf (default) or csv")]
LotReference = Annotated[
    str, Path(min_length=1, max_length=200, description="a lot number, or a GS1/UDI string")
]
Key = Annotated[str, Path(min_length=1, max_length=200, description="process id or number")]


def check_format(fmt: str) -> str:
    chosen = fmt.strip().lower()
    if chosen not in FORMATS:
        raise ApiError(422, "format is pdf or csv, not '%(format)s'", format=fmt[:10])
    return chosen


async def deliver(
    session: AsyncSession, principal: Principal, report: Report, fmt: str
) -> Response:
    """Render the report, record `report.produced` (what, format, hash) in its own audited
    transaction, and answer the file (for the API and the pages alike)."""
    produced_at = await database_now(session)
    producer = Producer(username=principal.username, full_name=principal.full_name, at=produced_at)
    file = render(report, producer, fmt, gettext_for(principal.locale))
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action="report.produced",
            entity_type="report",
            entity_id=f"{report.kind}:{report.subject}"[:300],
            source="ui" if principal.via == "session" else "api",
            after={
                "report": report.kind,
                "subject": report.subject,
                "format": fmt,
                "content_sha256": file.content_sha256,
                "produced_at": produced_at.isoformat(),
            },
        ),
    )
    await session.commit()
    disposition = "inline" if fmt == "pdf" else "attachment"
    return Response(
        file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{file.filename}"',
            "X-Content-SHA256": file.content_sha256,
        },
    )


# ---------------------------------------------------------------- the reports


def _utc(moment: datetime | None, what: str) -> datetime | None:
    """The moment in UTC (UTC when it names no offset); 422 when UTC cannot hold it."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422, "%(what)s is out of range: %(moment)s", what=what, moment=moment.isoformat()
        ) from None


def audit_selection(
    *,
    entity_type: str | None,
    entity_id: str | None,
    process_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> AuditSelection:
    """The rows asked for, or 422 when nothing or an empty period is named."""
    selection = AuditSelection(
        entity_type=(entity_type or "").strip() or None,
        entity_id=(entity_id or "").strip() or None,
        process_id=(process_id or "").strip() or None,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    if not any(vars(selection).values()):
        raise ApiError(
            422,
            "name a record (entity_type and entity_id), a process (process_id) or a period "
            "(since and/or until, ISO 8601 UTC)",
        )
    if selection.since and selection.until and selection.since >= selection.until:
        raise ApiError(
            422,
            "the period is empty: since (%(since)s) must be before until (%(until)s)",
            since=selection.since.isoformat(),
            until=selection.until.isoformat(),
        )
    return selection


async def build_audit_trail(
    session: AsyncSession, principal: Principal, selection: AuditSelection
) -> Report:
    principal.require("audit:read")
    try:
        return await audit_trail_report(
            session, selection, gettext_for(principal.locale), principal.locale
        )
    except TooManyRows as err:
        raise ApiError(
            422,
            "the selection holds more than %(limit)s audit rows; choose a shorter period or "
            "one record",
            limit=err.limit,
        ) from None


async def build_signatures(session: AsyncSession, principal: Principal, key: str) -> Report:
    principal.require("processes:read")
    process = await session.get(Process, key)
    if process is None:
        raise not_found(Message("Process %(id)s", id=key))
    try:
        return await signed_record_report(
            session, process.id, process.title, gettext_for(principal.locale)
        )
    except NoSignatures as err:
        raise ApiError(
            404, "no electronic signature has been given in %(process)s yet", process=err.process_id
        ) from None


async def build_device_history(session: AsyncSession, principal: Principal, lot: str) -> Report:
    detail = await lot_service.lot_detail(session=session, principal=principal, reference=lot)
    try:
        return await device_history_report(
            session, detail, gettext_for(principal.locale), principal.locale
        )
    except NotAFinishedLot as err:
        raise ApiError(
            422,
            "lot %(lot)s was not produced by a work order here (its origin is %(origin)s); a "
            "device history record is kept for finished lots, and the lot genealogy report "
            "shows where this one came from",
            lot=err.lot_number,
            origin=err.origin,
        ) from None


async def build_genealogy(session: AsyncSession, principal: Principal, lot: str) -> Report:
    backward, forward = [
        await lot_service.lot_trace(
            session=session, principal=principal, reference=lot, direction=direction
        )
        for direction in ("backward", "forward")
    ]
    return genealogy_report(backward, forward, gettext_for(principal.locale))


async def build_capa(session: AsyncSession, principal: Principal, key: str) -> Report:
    detail = await quality_service.capa_detail(session=session, principal=principal, key=key)
    return capa_report(detail, gettext_for(principal.locale))


async def build_recall(
    session: AsyncSession, principal: Principal, key: str, holidays_country: str
) -> Report:
    detail = await recall_service.recall_detail(
        session=session, principal=principal, key=key, holidays_country=holidays_country
    )
    return recall_report(detail, gettext_for(principal.locale))


# ---------------------------------------------------------------- routes


@router.get("/audit-trail", response_class=Response, responses=FILE_RESPONSES)
async def audit_trail(
    principal: CurrentPrincipal,
    session: DbSession,
    entity_type: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: Annotated[str | None, Query(max_length=300)] = None,
    process_id: Annotated[
        str | None, Query(max_length=200, description="a process and its tasks")
    ] = None,
    since: Annotated[datetime | None, Query(description="from, inclusive (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="until, exclusive (UTC)")] = None,
    format: Format = "pdf",
) -> Response:
    """The audit rows of a record, a process or a period (oldest first, at most 5000), with the
    verification of the whole chain and of the e-signatures when it was produced."""
    fmt = check_format(format)
    selection = audit_selection(
        entity_type=entity_type,
        entity_id=entity_id,
        process_id=process_id,
        since=since,
        until=until,
    )
    report = await build_audit_trail(session, principal, selection)
    return await deliver(session, principal, report, fmt)


@router.get("/signatures/{key}", response_class=Response, responses=FILE_RESPONSES)
async def signatures(
    key: Key, principal: CurrentPrincipal, session: DbSession, format: Format = "pdf"
) -> Response:
    """The signed record manifestation of a process (Part 11 §11.50): every signature's printed
    name, date and time, meaning, what was signed and whether it still fits."""
    fmt = check_format(format)
    report = await build_signatures(session, principal, key.strip())
    return await deliver(session, principal, report, fmt)


@router.get("/device-history/{lot}", response_class=Response, responses=FILE_RESPONSES)
async def device_history(
    lot: LotReference, principal: CurrentPrincipal, session: DbSession, format: Format = "pdf"
) -> Response:
    """The device history record of a finished lot; 422 for a lot no work order produced."""
    fmt = check_format(format)
    report = await build_device_history(session, principal, lot)
    return await deliver(session, principal, report, fmt)


@router.get("/genealogy/{lot}", response_class=Response, responses=FILE_RESPONSES)
async def genealogy(
    lot: LotReference, principal: CurrentPrincipal, session: DbSession, format: Format = "pdf"
) -> Response:
    """What a lot was made from and what it went into, up to the consignees."""
    fmt = check_format(format)
    report = await build_genealogy(session, principal, lot)
    return await deliver(session, principal, report, fmt)


@router.get("/capa/{key}", response_class=Response, responses=FILE_RESPONSES)
async def capa(
    key: Key, principal: CurrentPrincipal, session: DbSession, format: Format = "pdf"
) -> Response:
    """The CAPA report: problem, root cause, plan rounds, effectiveness, signatures, timeline."""
    fmt = check_format(format)
    report = await build_capa(session, principal, key)
    return await deliver(session, principal, report, fmt)


@router.get("/recall/{key}", response_class=Response, responses=FILE_RESPONSES)
async def recall(
    key: Key,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
    format: Format = "pdf",
) -> Response:
    """The recall report: scope, strategy, report clock, reconciliation, effectiveness."""
    fmt = check_format(format)
    report = await build_recall(session, principal, key.strip(), settings.holidays_country)
    return await deliver(session, principal, report, fmt)
