"""Recalls over REST and in the UI: start one (or a drill) after checking who asks and which lots
it names, start one from a nonconformance that asked for it, list them, and read one with its
frozen scope, consignee board, report clock, effectiveness, drill times, tasks and timeline.

The workflows (types "Recall" and "RecallNotice") write the rows read here (erp/recall.py); this
module only reads them. Consignee events are checked here and delivered to the consignee's notice
workflow by api/supply_service.send_event."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.errors import ApiError, Message, forbidden, joined, not_found, unavailable
from api.process_service import not_registered, process_facts, process_id_for, start_once
from api.security import Principal
from api.validation_problems import problems_of
from api.workflow_updates import refusal_message, update_when_ready
from erp.business_calendar import is_working_day
from erp.gs1 import Gs1Error
from erp.master_data import Lot
from erp.models import Process
from erp.quality import Nonconformance
from erp.recall import (
    EFFECTIVENESS_TARGETS,
    Recall,
    RecallConsignee,
    RecallLot,
    RecallResponse,
    RecallReturn,
    RecallScope,
)
from erp.supply import Customer
from erp.trace import AmbiguousLotReference, LotNotFound, resolve_lot_reference
from schemas.api import (
    RecallClockOut,
    RecallConsigneeOut,
    RecallDetail,
    RecallDrillTimesOut,
    RecallEffectivenessOut,
    RecallLotOut,
    RecallOut,
    RecallResponseOut,
    RecallReturnOut,
    RecallScopeOut,
    RecallScopeVersionOut,
)
from schemas.recall import (
    RECALL_EVENT_GROUPS,
    RECALL_EVENTS,
    ConsigneeResponse,
    RecallRequest,
    RecallReturnReceived,
    RecallSource,
    notice_process_id,
)
from schemas.recall_activities import WidenScopeRequest, WidenScopeResult

READ_SCOPE = "processes:read"
START_SCOPE = "processes:start"
RECALL_KIND = "recall"
NOTICE_KIND = "recall-notice"
RECALL_WORKFLOW = "Recall"
# who may start a recall; a drill also QA (rehearsing harms nobody)
RECALL_STARTERS = ("qa-manager", "quality-director", "ra", "admin")
DRILL_STARTERS = (*RECALL_STARTERS, "qa")
# who may widen a running recall's scope
SCOPE_WIDENERS = ("qa-manager", "ra")
CLOSED_STATUSES = ("closed", "cancelled", "terminated")
STATUS_FILTERS = ("open", "closed", "all")
DRILL_FILTERS = ("", "yes", "no")


def may_start_recall(principal: Principal, *, drill: bool = False) -> bool:
    return bool(principal.groups & set(DRILL_STARTERS if drill else RECALL_STARTERS))


def may_widen_scope(principal: Principal) -> bool:
    return bool(principal.groups & set(SCOPE_WIDENERS))


# ---------------------------------------------------------------- starting


def _require_starter(principal: Principal, drill: bool) -> None:
    principal.require(START_SCOPE)
    if principal.is_person and not may_start_recall(principal, drill=drill):
        groups = DRILL_STARTERS if drill else RECALL_STARTERS
        raise forbidden(
            "starting %(what)s needs one of the groups %(groups)s; you are in %(yours)s",
            what=Message("a recall drill" if drill else "a recall"),
            groups=", ".join(groups),
            yours=", ".join(sorted(principal.groups)) or Message("no group"),
        )


async def resolved_lots(session: AsyncSession, references: list[str]) -> list[str]:
    """The lot numbers that lot numbers or GS1/UDI strings name, each once; 422 naming every
    reference the ERP does not know."""
    problems: list[str] = []
    numbers: list[str] = []
    for reference in references:
        if not reference.strip():
            continue
        try:
            lot, _ = await resolve_lot_reference(session, reference)
        except (LotNotFound, AmbiguousLotReference, Gs1Error) as err:
            named = reference.strip() in err.message
            problems.append(
                err.message
                if named
                else Message("lot %(lot)r: %(problem)s", lot=reference.strip(), problem=err.message)
            )
            continue
        if lot.lot_number not in numbers:
            numbers.append(lot.lot_number)
    if problems:
        raise ApiError(
            422,
            "the recall names lots the ERP does not know: %(problems)s",
            problems=joined(problems),
        )
    if not numbers:
        raise ApiError(422, "suspect_lots: name at least one lot (lot number or GS1 string)")
    return numbers


async def start_recall(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    body: RecallRequest,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Start a recall (or a drill); returns (process id, created). qa-manager, quality-director,
    ra or admin may (a drill also qa); a system needs processes:start. A repeat with the same
    key or external_id returns the first one."""
    _require_starter(principal, body.drill)
    lots = await resolved_lots(session, body.suspect_lots)
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    source = body.source
    if not principal.is_person and source == RecallSource.UI:
        source = RecallSource.EXTERNAL
    process_id = process_id_for("rcl", principal, idempotency_key or body.external_id)
    request = body.model_copy(
        update={
            "process_id": process_id,
            "requester": principal.username,
            "suspect_lots": lots,
            "source": source,
        }
    )
    created = await start_once(
        client, RECALL_WORKFLOW, request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


async def start_recall_from_nc(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    nc_key: str,
    task_queue: str,
) -> tuple[str, bool]:
    """Start the recall a nonconformance asked for (its recall scope names the suspect lots and
    the reason); the process id is `<nc id>.recall`, so asking twice starts one recall."""
    _require_starter(principal, drill=False)
    key = nc_key.strip()[:200]
    nc = await session.scalar(
        select(Nonconformance).where(
            or_(Nonconformance.process_id == key, Nonconformance.number == key)
        )
    )
    if nc is None:
        raise not_found(Message("Nonconformance %(id)s", id=key))
    scope: dict[str, Any] = nc.recall_scope or {}
    suspects = [str(n) for n in scope.get("suspect_lots") or []]
    if not nc.recall_requested or not suspects:
        raise ApiError(
            409,
            "%(number)s did not ask for a recall (its recall decision escalates one when the "
            "affected product reached customers); start a recall with its lots instead",
            number=nc.number,
        )
    lots = await resolved_lots(session, suspects)
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    reason = str(scope.get("reason") or "").strip()
    if len(reason) < 5:
        reason = f"{nc.number}: {nc.title}"
    request = RecallRequest(
        process_id=f"{nc.process_id}.recall",
        requester=principal.username,
        suspect_lots=lots,
        reason=reason[:5000],
        source=RecallSource.NONCONFORMANCE,
        source_reference=nc.number,
    )
    created = await start_once(
        client, RECALL_WORKFLOW, request, process_id=request.process_id, task_queue=task_queue
    )
    return request.process_id, created


async def widen_scope(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    key: str,
    lot_references: list[str],
    reason: str,
) -> WidenScopeResult:
    """Send the update `widen-scope` to a running recall (qa-manager or ra): more suspect lots
    (numbers or GS1 strings) and why. The recall freezes a new scope version and answers what
    it added; its refusal comes back as 409 (422 when the request is not valid)."""
    if not principal.is_person or not may_widen_scope(principal):
        raise forbidden(
            "widening a recall's scope needs one of the groups %(groups)s",
            groups=", ".join(SCOPE_WIDENERS),
        )
    recall = await find_recall(session, key.strip()[:200])
    if recall is None:
        raise await not_registered(session, key.strip()[:200], "Recall")
    if len(reason.strip()) < 5:
        raise ApiError(422, "reason: say why the scope is widened (at least 5 characters)")
    lots = await resolved_lots(session, lot_references)
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    request = WidenScopeRequest(
        lot_numbers=lots,
        reason=reason.strip(),
        requested_by=principal.username,
        groups=sorted(principal.groups),
    )
    try:
        answer = await update_when_ready(
            client.get_workflow_handle(recall.process_id),
            "widen-scope",
            request,
            result_type=WidenScopeResult,
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            status = 422 if cause.type == "Invalid" else 403 if cause.type == "Forbidden" else 409
            raise ApiError(status, refusal_message(cause)) from None
        raise ApiError(409, "the recall refused to widen its scope") from None
    except RPCError:
        raise ApiError(
            409, "recall %(number)s is not running; its scope is final", number=recall.number
        ) from None
    assert isinstance(answer, WidenScopeResult)
    return answer


# ---------------------------------------------------------------- events


async def recall_event(
    *,
    sessions: async_sessionmaker[AsyncSession],
    process_id: str,
    status: str,
    event: str,
    data: dict[str, Any],
    principal: Principal,
) -> tuple[str, dict[str, Any]]:
    """A consignee's event for a recall: (the consignee's notice workflow id, the data checked
    by its model), after the checks on event, sender, recall and consignee."""
    if event not in RECALL_EVENTS:
        raise ApiError(
            404,
            "a recall accepts the events %(events)s, not '%(event)s'",
            events=", ".join(RECALL_EVENTS),
            event=event,
        )
    groups = RECALL_EVENT_GROUPS.get(event, ())
    if principal.is_person and not principal.groups & set(groups):
        raise forbidden(
            "the event '%(event)s' may be sent by a system with events:send or by a person in "
            "one of the groups %(groups)s",
            event=event,
            groups=", ".join(groups),
        )
    if status != "running":
        raise ApiError(
            409,
            "recall %(id)s is %(status)s; it accepts no more events",
            id=process_id,
            status=status,
        )
    fields = {k: v for k, v in data.items() if k != "event_id"}
    event_model = ConsigneeResponse if event == "consignee-response" else RecallReturnReceived
    try:
        model: ConsigneeResponse | RecallReturnReceived = event_model.model_validate(fields)
    except ValidationError as err:
        problems = problems_of(err, "data")  # translatable parts (api/validation_problems.py)
        raise ApiError(
            422, "the '%(event)s' data is not valid: %(problems)s", event=event, problems=problems
        ) from None
    codes = await _consignee_codes(sessions, process_id)
    if not codes:
        raise ApiError(
            409,
            "recall %(id)s has no consignees yet (its scope is being frozen); "
            "send the event again in a moment",
            headers={"Retry-After": "5"},
            id=process_id,
        )
    if model.consignee_code not in codes:
        raise ApiError(
            404,
            "consignee %(code)s is not a consignee of recall %(id)s; its consignees are %(codes)s",
            code=model.consignee_code,
            id=process_id,
            codes=", ".join(codes),
        )
    return notice_process_id(process_id, model.consignee_code), model.model_dump(mode="json")


async def _consignee_codes(
    sessions: async_sessionmaker[AsyncSession], process_id: str
) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Customer.code)
            .join(RecallConsignee, RecallConsignee.customer_id == Customer.id)
            .join(Recall, Recall.id == RecallConsignee.recall_id)
            .where(Recall.process_id == process_id)
            .order_by(Customer.code)
        )
        return list(rows)


# ---------------------------------------------------------------- reading


def recall_is_open(recall: Recall) -> bool:
    return recall.closed_at is None and recall.status not in CLOSED_STATUSES


async def find_recall(session: AsyncSession, key: str) -> Recall | None:
    return await session.scalar(
        select(Recall).where(or_(Recall.process_id == key, Recall.number == key))
    )


def _open_sql() -> Any:
    return and_(Recall.closed_at.is_(None), Recall.status.not_in(CLOSED_STATUSES))


async def list_recalls(
    *,
    session: AsyncSession,
    principal: Principal,
    status: str = "all",
    drill: str = "",
    classification: str = "",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RecallOut], int]:
    """Recalls, newest first. status: open, closed or all; drill: yes, no or '' (both);
    classification: I, II, III or ''."""
    principal.require(READ_SCOPE)
    if status not in STATUS_FILTERS:
        raise ApiError(
            422,
            "%(name)s is one of %(choices)s, not %(given)r",
            name="status",
            choices=", ".join(STATUS_FILTERS),
            given=status,
        )
    if drill not in DRILL_FILTERS:
        raise ApiError(422, "drill is yes or no, not %(given)r", given=drill)
    if classification and classification not in ("I", "II", "III"):
        raise ApiError(422, "classification is I, II or III, not %(given)r", given=classification)
    query = select(Recall)
    if status == "open":
        query = query.where(_open_sql())
    elif status == "closed":
        query = query.where(~_open_sql())
    if drill:
        query = query.where(Recall.drill.is_(drill == "yes"))
    if classification:
        query = query.where(Recall.classification == classification)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    recalls = list(
        await session.scalars(
            query.order_by(Recall.initiated_at.desc(), Recall.id.desc()).limit(limit).offset(offset)
        )
    )
    counts = await _consignee_counts(session, [r.id for r in recalls])
    return [recall_out(r, counts.get(r.id, 0)) for r in recalls], int(total or 0)


async def _consignee_counts(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(RecallConsignee.recall_id, func.count())
        .where(RecallConsignee.recall_id.in_(ids))
        .group_by(RecallConsignee.recall_id)
    )
    return {recall_id: int(n) for recall_id, n in rows.tuples()}


def recall_out(recall: Recall, consignees: int) -> RecallOut:
    return RecallOut(
        id=recall.process_id,
        number=recall.number,
        drill=recall.drill,
        status=recall.status,
        open=recall_is_open(recall),
        reason=recall.reason,
        source=recall.source,
        source_reference=recall.source_reference,
        requested_by=recall.requested_by,
        classification=recall.classification,
        depth=recall.depth,
        public_warning=recall.public_warning,
        effectiveness_level=recall.effectiveness_level,
        scope_version=recall.scope_version,
        consignees=consignees,
        initiated_at=recall.initiated_at,
        report_due_on=recall.report_due_on,
        report_submitted_at=recall.report_submitted_at,
        closed_at=recall.closed_at,
    )


async def recall_detail(
    *, session: AsyncSession, principal: Principal, key: str, holidays_country: str
) -> RecallDetail:
    """One recall: its frozen scope (version, hash, lots, every version with its difference),
    the consignee board, the report clock, effectiveness against the level's target, drill
    times, open tasks (its own and its notices'), the timeline and signatures."""
    principal.require(READ_SCOPE)
    key = key.strip()[:200]
    recall = await find_recall(session, key)
    if recall is None:
        raise await not_registered(session, key, "Recall")
    today = await _today(session)
    board = await consignee_board(session, recall, today=today)
    process = await session.get(Process, recall.process_id)
    return RecallDetail(
        **recall_out(recall, len(board)).model_dump(),
        health_hazard=recall.health_hazard,
        scope=await recall_scope(session, recall),
        consignee_board=board,
        clock=recall_clock(recall, today, holidays_country),
        effectiveness=effectiveness(recall, board),
        drill_times=drill_times(recall),
        strategy_approved_at=recall.strategy_approved_at,
        terminated_at=recall.terminated_at,
        process_status=process.status if process else "starting",
        current_step=process.current_step if process else "",
        **await process_facts(session, recall.process_id),
    )


async def _today(session: AsyncSession) -> date:
    now = await session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now.astimezone(UTC).date()


async def scope_versions(session: AsyncSession, recall: Recall) -> list[RecallScopeVersionOut]:
    """Every frozen version of the scope, oldest first, with what it added."""
    rows = await session.scalars(
        select(RecallScope).where(RecallScope.recall_id == recall.id).order_by(RecallScope.version)
    )
    return [
        RecallScopeVersionOut(
            version=s.version,
            hash=s.snapshot_hash,
            reason=s.reason,
            created_by=s.created_by,
            created_at=s.created_at,
            difference=s.difference or {},
            lots=len((s.snapshot or {}).get("lots") or []),
            consignees=len((s.snapshot or {}).get("consignees") or []),
        )
        for s in rows
    ]


async def recall_scope(session: AsyncSession, recall: Recall) -> RecallScopeOut:
    rows = await session.execute(
        select(RecallLot, Lot)
        .join(Lot, Lot.id == RecallLot.lot_id)
        .where(RecallLot.recall_id == recall.id)
        .order_by(RecallLot.role.desc(), Lot.part_number, Lot.lot_number)
    )
    lots = [
        RecallLotOut(
            lot_number=lot.lot_number,
            part_number=lot.part_number,
            role=row.role,
            scope_version=row.scope_version,
            status=lot.status,
            status_before=row.status_before,
            held=row.held,
            quantity=lot.quantity,
            uom=lot.uom,
            note=row.note,
        )
        for row, lot in rows.tuples()
    ]
    versions = await scope_versions(session, recall)
    current = next((v for v in versions if v.version == recall.scope_version), None)
    return RecallScopeOut(
        version=recall.scope_version,
        hash=recall.scope_hash,
        frozen_at=current.created_at if current else None,
        lots=lots,
        versions=versions,
    )


async def consignee_board(
    session: AsyncSession, recall: Recall, *, today: date
) -> list[RecallConsigneeOut]:
    """Each consignee: its notice, answers, silence, reminders, quantities and reconciliation."""
    rows = (
        (
            await session.execute(
                select(RecallConsignee, Customer)
                .join(Customer, Customer.id == RecallConsignee.customer_id)
                .where(RecallConsignee.recall_id == recall.id)
                .order_by(Customer.code)
            )
        )
        .tuples()
        .all()
    )
    ids = [row.id for row, _ in rows]
    responses: dict[int, list[RecallResponseOut]] = {i: [] for i in ids}
    returns: dict[int, list[RecallReturnOut]] = {i: [] for i in ids}
    if ids:
        for response in await session.scalars(
            select(RecallResponse)
            .where(RecallResponse.recall_consignee_id.in_(ids))
            .order_by(RecallResponse.id)
        ):
            responses[response.recall_consignee_id].append(
                RecallResponseOut.model_validate(response, from_attributes=True)
            )
        for received, lot_number in (
            await session.execute(
                select(RecallReturn, Lot.lot_number)
                .outerjoin(Lot, Lot.id == RecallReturn.lot_id)
                .where(RecallReturn.recall_consignee_id.in_(ids))
                .order_by(RecallReturn.id)
            )
        ).tuples():
            returns[received.recall_consignee_id].append(
                RecallReturnOut(
                    lot_number=lot_number,
                    quantity=received.quantity,
                    received_by=received.received_by,
                    received_at=received.received_at,
                )
            )
    return [
        _consignee_out(row, customer, today, responses[row.id], returns[row.id])
        for row, customer in rows
    ]


def _consignee_out(
    row: RecallConsignee,
    customer: Customer,
    today: date,
    responses: list[RecallResponseOut],
    returns: list[RecallReturnOut],
) -> RecallConsigneeOut:
    answered = row.acknowledged_at is not None or bool(responses)
    silent = None
    if row.notified_at is not None and not answered:
        silent = max(0, (today - row.notified_at.astimezone(UTC).date()).days)
    return RecallConsigneeOut(
        code=customer.code,
        name=customer.name,
        scope_version=row.scope_version,
        shipped_quantity=row.shipped_quantity,
        shipped=list(row.shipped or []),
        status=row.status,
        notice_process_id=row.notice_process_id,
        notified_at=row.notified_at,
        acknowledged_at=row.acknowledged_at,
        answered=answered,
        silent_days=silent,
        quantity_on_hand=row.quantity_on_hand,
        quantity_returned=row.quantity_returned,
        quantity_corrected=row.quantity_corrected,
        quantity_received_back=row.quantity_received_back,
        reminders=row.reminders,
        escalated_at=row.escalated_at,
        reconciled_at=row.reconciled_at,
        reconciled=row.reconciled_at is not None,
        checked=row.checked,
        check_result=row.check_result,
        responses=responses,
        returns=returns,
    )


def working_days_between(start: date, end: date, country: str) -> int:
    """Working days after `start` up to and including `end` (negative when `end` is earlier),
    by the business calendar."""
    low, high = sorted((start, end))
    days = sum(
        1
        for n in range(1, (high - low).days + 1)
        if is_working_day(low + timedelta(days=n), country)
    )
    return days if end >= start else -days


def recall_clock(recall: Recall, today: date, country: str) -> RecallClockOut:
    submitted = recall.report_submitted_at is not None
    left = None
    if recall.report_due_on is not None and not submitted:
        left = working_days_between(today, recall.report_due_on, country)
    return RecallClockOut(
        initiated_at=recall.initiated_at,
        report_due_on=recall.report_due_on,
        working_days_left=left,
        overdue=left is not None
        and recall.report_due_on is not None
        and today > recall.report_due_on,
        submitted=submitted,
        report_submitted_at=recall.report_submitted_at,
        report_number=recall.report_number,
    )


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def effectiveness(recall: Recall, board: list[RecallConsigneeOut]) -> RecallEffectivenessOut:
    """Responded and reconciled shares of the consignees, against the level's target."""
    level = recall.effectiveness_level
    target = EFFECTIVENESS_TARGETS.get(level) if level else None
    responded = sum(1 for c in board if c.answered)
    reconciled = sum(1 for c in board if c.reconciled)
    responded_percent = _percent(responded, len(board))
    met = target is not None and (target == 0 or (bool(board) and responded_percent >= target))
    return RecallEffectivenessOut(
        level=level,
        target_percent=target,
        consignees=len(board),
        responded=responded,
        responded_percent=responded_percent,
        reconciled=reconciled,
        reconciled_percent=_percent(reconciled, len(board)),
        met=met,
        waived_by=recall.effectiveness_waived_by,
    )


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 3)


def drill_times(recall: Recall) -> RecallDrillTimesOut:
    return RecallDrillTimesOut(
        time_to_scope=_seconds(recall.initiated_at, recall.scoped_at),
        time_to_hold=_seconds(recall.initiated_at, recall.held_at),
        time_to_notify=_seconds(recall.initiated_at, recall.notified_at),
    )


async def recall_scope_versions(
    *, session: AsyncSession, principal: Principal, key: str
) -> list[RecallScopeVersionOut]:
    principal.require(READ_SCOPE)
    recall = await find_recall(session, key.strip()[:200])
    if recall is None:
        raise await not_registered(session, key.strip()[:200], "Recall")
    return await scope_versions(session, recall)


def total_shipped(board: list[RecallConsigneeOut]) -> Decimal:
    return sum((c.shipped_quantity for c in board), Decimal(0))
