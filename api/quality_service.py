"""Nonconformances and CAPAs over REST and in the UI: start them after checking who asks and what
the request names, list them with filters and aging, and read one with its lots, dispositions,
SCARs, plan rounds, effectiveness checks, open tasks and timeline.

The workflows (types "Nonconformance" and "Capa") write the rows read here (erp/quality.py); this
module only reads them, so a page or an API answer shows what the process recorded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, Select, and_, case, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.errors import ApiError, Message, forbidden, joined, unavailable
from api.process_service import not_registered, process_facts, process_id_for, start_once
from api.security import Principal
from erp.gs1 import Gs1Error
from erp.master_data import Item, Lot, Supplier
from erp.models import AppUser, Process
from erp.quality import (
    Capa,
    CapaAction,
    CapaEffectivenessCheck,
    NcLot,
    Nonconformance,
    Scar,
)
from erp.trace import AmbiguousLotReference, LotNotFound, resolve_lot_reference
from schemas.api import (
    AgingBucketOut,
    CapaActionOut,
    CapaDetail,
    CapaLinkOut,
    CapaOut,
    CapaPlanRoundOut,
    EffectivenessCheckOut,
    NcLotOut,
    NonconformanceDetail,
    NonconformanceOut,
    ScarOut,
)
from schemas.quality import CapaRequest, NcSource, NonconformanceRequest, Severity

READ_SCOPE = "processes:read"
START_SCOPE = "processes:start"
CAPA_STARTERS = ("qa", "qa-manager", "quality-director", "admin")
NC_WORKFLOW = "Nonconformance"
CAPA_WORKFLOW = "Capa"
CLOSED_STATUSES = ("closed", "cancelled")
# an action is done once completed (its evidence recorded) or no longer to be done
ACTION_DONE_STATUSES = ("done", "completed", "cancelled", "superseded")
STATUS_FILTERS = ("open", "closed", "all")


@dataclass(frozen=True)
class AgingBucket:
    """How long an open nonconformance has been open: one band of the aging view."""

    key: str  # as the filter names it: ?age=8-30
    label: str
    low: int  # days open, inclusive
    high: int | None  # inclusive; None: no upper end


AGING = (
    AgingBucket("0-7", "0–7 days", 0, 7),
    AgingBucket("8-30", "8–30 days", 8, 30),
    AgingBucket("31-90", "31–90 days", 31, 90),
    AgingBucket("over-90", "> 90 days", 91, None),
)


def aging_bucket(days: int) -> AgingBucket:
    return next(b for b in AGING if days >= b.low and (b.high is None or days <= b.high))


# ---------------------------------------------------------------- starting


async def start_nonconformance(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    body: NonconformanceRequest,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Report a nonconformance; returns (process id, created). Any person may report one; a
    system needs processes:start. Lot references may be lot numbers or GS1/UDI strings (they are
    resolved to lot numbers); the part and the supplier, when not given, are taken from the lots
    when all of them agree. A repeat with the same key or external_id returns the first one."""
    principal.require(START_SCOPE)
    request, problems = await nonconformance_problems(session, body)
    if problems:
        raise ApiError(
            422,
            "the nonconformance report does not match the ERP: %(problems)s",
            problems=joined(problems),
        )
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    process_id = process_id_for("nc", principal, idempotency_key or body.external_id)
    request = request.model_copy(update={"process_id": process_id, "reporter": principal.username})
    created = await start_once(
        client, NC_WORKFLOW, request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


async def nonconformance_problems(
    session: AsyncSession, body: NonconformanceRequest
) -> tuple[NonconformanceRequest, list[str]]:
    """The report with its lots resolved to lot numbers, and what in it the ERP does not know,
    in words a person can act on."""
    problems: list[str] = []
    lots: list[Lot] = []
    for reference in body.lots:
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
        if all(known.id != lot.id for known in lots):
            lots.append(lot)
    part_number = (body.part_number or "").strip() or None
    if part_number is not None:
        found = await session.scalar(select(exists().where(Item.part_number == part_number)))
        if not found:
            problems.append(Message("part %(part)s is not known", part=part_number))
    elif len({lot.part_number for lot in lots}) == 1:
        part_number = lots[0].part_number
    supplier_code = (body.supplier_code or "").strip() or None
    if supplier_code is not None:
        if await session.scalar(select(Supplier.id).where(Supplier.code == supplier_code)) is None:
            problems.append(Message("supplier %(code)s is not known", code=supplier_code))
    else:
        supplier_code = await _common_supplier(session, lots)
    origin = (body.origin_process_id or "").strip() or None
    if origin is not None and await session.get(Process, origin) is None:
        problems.append(
            Message("process %(process)s (origin_process_id) is not known", process=origin)
        )
    request = body.model_copy(
        update={
            "lots": [lot.lot_number for lot in lots],
            "part_number": part_number,
            "supplier_code": supplier_code,
            "origin_process_id": origin,
        }
    )
    return request, problems


async def _common_supplier(session: AsyncSession, lots: list[Lot]) -> str | None:
    """The supplier of every lot given, when they all come from the same one."""
    suppliers = {lot.supplier_id for lot in lots}
    if len(suppliers) != 1 or None in suppliers:
        return None
    return await session.scalar(select(Supplier.code).where(Supplier.id == lots[0].supplier_id))


async def start_capa(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    body: CapaRequest,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Start a CAPA, alone or linked to a nonconformance (named by its process id or NC number);
    returns (process id, created). People in qa, qa-manager, quality-director or admin may; a
    system needs processes:start. The owner must be an active person."""
    principal.require(START_SCOPE)
    if principal.is_person and not principal.groups & set(CAPA_STARTERS):
        raise forbidden(
            "starting a CAPA needs one of the groups %(groups)s; you are in %(yours)s",
            groups=", ".join(CAPA_STARTERS),
            yours=", ".join(sorted(principal.groups)) or Message("no group"),
        )
    request, problems = await capa_problems(session, body)
    if problems:
        raise ApiError(
            422,
            "the CAPA request does not match the ERP: %(problems)s",
            problems=joined(problems),
        )
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    process_id = process_id_for("capa", principal, idempotency_key or body.external_id)
    request = request.model_copy(update={"process_id": process_id, "requester": principal.username})
    created = await start_once(
        client, CAPA_WORKFLOW, request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


async def capa_problems(session: AsyncSession, body: CapaRequest) -> tuple[CapaRequest, list[str]]:
    """The request with its NC named by process id, and what in it the ERP does not know."""
    problems: list[str] = []
    owner = body.owner.strip()
    person = await session.scalar(
        select(AppUser).where(AppUser.username == owner, AppUser.is_active, ~AppUser.is_system)
    )
    if person is None:
        problems.append(
            Message("owner %(owner)r is not an active user; name a person by username", owner=owner)
        )
    nc_process_id = (body.nc_process_id or "").strip() or None
    if nc_process_id is not None:
        found = await _nc_process_id(session, nc_process_id)
        if found is None:
            problems.append(
                Message("nonconformance %(process)s is not known", process=nc_process_id)
            )
        nc_process_id = found
    request = body.model_copy(update={"owner": owner, "nc_process_id": nc_process_id})
    return request, problems


async def _nc_process_id(session: AsyncSession, key: str) -> str | None:
    """The process id of the nonconformance a process id or an NC number names."""
    found = await session.scalar(
        select(Nonconformance.process_id).where(
            or_(Nonconformance.process_id == key, Nonconformance.number == key)
        )
    )
    if found is not None:
        return found
    process = await session.get(Process, key)  # reported a moment ago, not registered yet
    return process.id if process is not None and process.kind == "nonconformance" else None


# ---------------------------------------------------------------- nonconformances


@dataclass(frozen=True)
class NcFilters:
    status: str = "all"  # open | closed | all
    overdue: bool = False
    supplier: str | None = None  # supplier code
    part_number: str | None = None
    source: str | None = None
    severity: str | None = None
    age: str | None = None  # an aging bucket key, open NCs only


def _nc_open() -> Any:
    return and_(Nonconformance.closed_at.is_(None), Nonconformance.status.not_in(CLOSED_STATUSES))


def _utc_date(moment: Any) -> Any:
    """The UTC calendar day of a timestamptz (the pages show times in UTC)."""
    return cast(func.timezone("UTC", moment), Date)


def _utc_today() -> Any:
    return _utc_date(func.now())


def _days_open_sql() -> Any:
    """Days since the report (database date), as an integer."""
    return _utc_today() - _utc_date(Nonconformance.created_at)


def _check_filters(filters: NcFilters) -> None:
    if filters.status not in STATUS_FILTERS:
        raise _not_one_of("status", STATUS_FILTERS, filters.status)
    if filters.source and filters.source not in {s.value for s in NcSource}:
        raise _not_one_of("source", [s.value for s in NcSource], filters.source)
    if filters.severity and filters.severity not in {s.value for s in Severity}:
        raise _not_one_of("severity", [s.value for s in Severity], filters.severity)
    if filters.age and filters.age not in {b.key for b in AGING}:
        raise _not_one_of("age", [b.key for b in AGING], filters.age)


def _not_one_of(name: str, choices: Iterable[str], given: object) -> ApiError:
    return ApiError(
        422,
        "%(name)s is one of %(choices)s, not %(given)r",
        name=name,
        choices=", ".join(choices),
        given=given,
    )


def _nc_query(filters: NcFilters, *, with_status: bool = True) -> Select[Nonconformance, str, str]:
    query = select(Nonconformance, Supplier.code, Supplier.name).outerjoin(
        Supplier, Supplier.id == Nonconformance.supplier_id
    )
    if with_status and filters.status == "open":
        query = query.where(_nc_open())
    elif with_status and filters.status == "closed":
        query = query.where(~_nc_open())
    if filters.overdue:
        query = query.where(_nc_open(), Nonconformance.due_on < _utc_today())
    if filters.supplier:
        query = query.where(Supplier.code == filters.supplier)
    if filters.part_number:
        query = query.where(Nonconformance.part_number == filters.part_number)
    if filters.source:
        query = query.where(Nonconformance.source == filters.source)
    if filters.severity:
        query = query.where(Nonconformance.severity == filters.severity)
    if filters.age and with_status:
        bucket = next(b for b in AGING if b.key == filters.age)
        query = query.where(_nc_open(), _days_open_sql() >= bucket.low)
        if bucket.high is not None:
            query = query.where(_days_open_sql() <= bucket.high)
    return query


async def list_nonconformances(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: NcFilters,
    limit: int,
    offset: int,
) -> tuple[list[NonconformanceOut], int, list[AgingBucketOut]]:
    """Nonconformances, newest first, with the aging of the open ones the filters select
    (whatever the status filter says)."""
    principal.require(READ_SCOPE)
    _check_filters(filters)
    query = _nc_query(filters)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(Nonconformance.created_at.desc(), Nonconformance.id.desc())
        .limit(limit)
        .offset(offset)
    )
    today = await _today(session)
    found = rows.tuples().all()
    counts = await _lot_counts(session, [nc.id for nc, _, _ in found])
    items = [
        nc_out(nc, code, name, today=today, lot_count=counts.get(nc.id, 0))
        for nc, code, name in found
    ]
    return items, int(total or 0), await _aging(session, filters)


async def _aging(session: AsyncSession, filters: NcFilters) -> list[AgingBucketOut]:
    open_ones = _nc_query(filters, with_status=False).where(_nc_open()).subquery()
    days = _utc_today() - _utc_date(open_ones.c.created_at)
    band = case(
        *[(days <= b.high, b.key) if b.high is not None else (days >= b.low, b.key) for b in AGING],
        else_=AGING[-1].key,
    )
    rows = await session.execute(select(band, func.count()).group_by(band))
    counts = {key: int(n) for key, n in rows.tuples()}
    return [AgingBucketOut(key=b.key, label=b.label, count=counts.get(b.key, 0)) for b in AGING]


async def _lot_counts(session: AsyncSession, nc_ids: list[int]) -> dict[int, int]:
    if not nc_ids:
        return {}
    rows = await session.execute(
        select(NcLot.nc_id, func.count()).where(NcLot.nc_id.in_(nc_ids)).group_by(NcLot.nc_id)
    )
    return {nc_id: int(n) for nc_id, n in rows.tuples()}


async def _today(session: AsyncSession) -> date:
    """Today in UTC, by the database's clock."""
    today = await session.scalar(select(_utc_today()))
    assert isinstance(today, date)
    return today


def _days_between(start: datetime, end: datetime | date) -> int:
    end_day = end.astimezone(UTC).date() if isinstance(end, datetime) else end
    return max(0, (end_day - start.astimezone(UTC).date()).days)


def nc_is_open(nc: Nonconformance) -> bool:
    return nc.closed_at is None and nc.status not in CLOSED_STATUSES


def nc_out(
    nc: Nonconformance,
    supplier_code: str | None,
    supplier_name: str | None,
    *,
    today: date,
    lot_count: int,
) -> NonconformanceOut:
    is_open = nc_is_open(nc)
    days = _days_between(nc.created_at, nc.closed_at or today)
    return NonconformanceOut(
        id=nc.process_id,
        number=nc.number,
        title=nc.title,
        source=nc.source,
        severity=nc.severity,
        status=nc.status,
        open=is_open,
        part_number=nc.part_number,
        quantity=nc.quantity,
        supplier_code=supplier_code,
        supplier_name=supplier_name,
        reported_by=nc.reported_by,
        origin_process_id=nc.origin_process_id,
        created_at=nc.created_at,
        due_on=nc.due_on,
        closed_at=nc.closed_at,
        days_open=days,
        aging=aging_bucket(days).key if is_open else None,
        overdue=is_open and nc.due_on is not None and nc.due_on < today,
        lot_count=lot_count,
        capa_process_id=nc.capa_process_id,
        recall_requested=nc.recall_requested,
    )


async def find_nonconformance(session: AsyncSession, key: str) -> Nonconformance | None:
    return await session.scalar(
        select(Nonconformance).where(
            or_(Nonconformance.process_id == key, Nonconformance.number == key)
        )
    )


async def nonconformance_detail(
    *, session: AsyncSession, principal: Principal, key: str
) -> NonconformanceDetail:
    """One NC: its lots with their status and disposition, SCARs, the CAPA it started, what a
    recall needs, open tasks, the timeline and every signature."""
    principal.require(READ_SCOPE)
    key = key.strip()[:200]
    nc = await find_nonconformance(session, key)
    if nc is None:
        raise await not_registered(session, key, "Nonconformance")
    supplier = await session.get(Supplier, nc.supplier_id) if nc.supplier_id else None
    lots = await nc_lots(session, nc)
    process = await session.get(Process, nc.process_id)
    return NonconformanceDetail(
        **nc_out(
            nc,
            supplier.code if supplier else None,
            supplier.name if supplier else None,
            today=await _today(session),
            lot_count=len(lots),
        ).model_dump(),
        description=nc.description,
        evidence=nc.evidence,
        investigation=nc.investigation,
        lots=lots,
        scars=await nc_scars(session, nc),
        capa=await capa_link(session, nc.capa_process_id),
        recall_scope=nc.recall_scope or {},
        process_status=process.status if process else "starting",
        current_step=process.current_step if process else "",
        **await process_facts(session, nc.process_id),
    )


async def nc_lots(session: AsyncSession, nc: Nonconformance) -> list[NcLotOut]:
    rows = await session.execute(
        select(NcLot, Lot, Supplier.code)
        .join(Lot, Lot.id == NcLot.lot_id)
        .outerjoin(Supplier, Supplier.id == Lot.supplier_id)
        .where(NcLot.nc_id == nc.id)
        .order_by(NcLot.role, Lot.lot_number)
    )
    return [
        NcLotOut(
            lot_number=lot.lot_number,
            part_number=lot.part_number,
            role=row.role,
            status=lot.status,
            status_before=row.status_before,
            held=row.held,
            hold_reason=lot.hold_reason,
            quantity=lot.quantity,
            uom=lot.uom,
            supplier_code=code,
            note=row.note,
            disposition=row.disposition,
            justification=row.justification,
            decided_by=row.decided_by,
            applied_at=row.applied_at,
        )
        for row, lot, code in rows.tuples()
    ]


async def nc_scars(session: AsyncSession, nc: Nonconformance) -> list[ScarOut]:
    rows = await session.execute(
        select(Scar, Supplier, Lot.lot_number)
        .join(Supplier, Supplier.id == Scar.supplier_id)
        .outerjoin(Lot, Lot.id == Scar.lot_id)
        .where(Scar.nc_id == nc.id)
        .order_by(Scar.id)
    )
    return [
        ScarOut(
            number=scar.number,
            supplier_code=supplier.code,
            supplier_name=supplier.name,
            lot_number=lot_number,
            description=scar.description,
            status=scar.status,
            due_on=scar.due_on,
            opened_by=scar.opened_by,
            created_at=scar.created_at,
            closed_at=scar.closed_at,
        )
        for scar, supplier, lot_number in rows.tuples()
    ]


async def capa_link(session: AsyncSession, process_id: str | None) -> CapaLinkOut | None:
    """The CAPA an NC started: its record once registered, else its process row."""
    if not process_id:
        return None
    capa = await session.scalar(select(Capa).where(Capa.process_id == process_id))
    if capa is not None:
        return CapaLinkOut(
            id=capa.process_id, number=capa.number, title=capa.title, status=capa.status
        )
    process = await session.get(Process, process_id)
    return CapaLinkOut(
        id=process_id,
        number=process.business_key if process else None,
        title=process.title if process else "",
        status=process.status if process else "starting",
    )


# ---------------------------------------------------------------- CAPAs


@dataclass(frozen=True)
class CapaFilters:
    status: str = "all"  # open | closed | all
    overdue: bool = False  # with an open action past its due date
    owner: str | None = None


def _capa_open() -> Any:
    return and_(Capa.closed_at.is_(None), Capa.status.not_in(CLOSED_STATUSES))


def _action_open() -> Any:
    return and_(CapaAction.completed_at.is_(None), CapaAction.status.not_in(ACTION_DONE_STATUSES))


def _current_round() -> Any:
    """Actions of the CAPA's current plan round (a reopened CAPA's old actions are history)."""
    return CapaAction.plan_round == Capa.plan_round


async def list_capas(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: CapaFilters,
    limit: int,
    offset: int,
) -> tuple[list[CapaOut], int]:
    """CAPAs, newest first, each with its open and overdue actions."""
    principal.require(READ_SCOPE)
    if filters.status not in STATUS_FILTERS:
        raise _not_one_of("status", STATUS_FILTERS, filters.status)
    query = select(Capa)
    if filters.status == "open":
        query = query.where(_capa_open())
    elif filters.status == "closed":
        query = query.where(~_capa_open())
    if filters.owner:
        query = query.where(Capa.owner == filters.owner)
    if filters.overdue:
        late = (
            select(CapaAction.id)
            .where(
                CapaAction.capa_id == Capa.id,
                _current_round(),
                _action_open(),
                CapaAction.due_on < _utc_today(),
            )
            .exists()
        )
        query = query.where(_capa_open(), late)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(
        await session.scalars(
            query.order_by(Capa.created_at.desc(), Capa.id.desc()).limit(limit).offset(offset)
        )
    )
    today = await _today(session)
    counts = await _action_counts(session, rows, today)
    numbers = await _nc_numbers(session, [c.nc_id for c in rows if c.nc_id])
    items = [capa_out(c, today=today, counts=counts.get(c.id, (0, 0)), nc=numbers) for c in rows]
    return items, int(total or 0)


async def _action_counts(
    session: AsyncSession, capas: list[Capa], today: date
) -> dict[int, tuple[int, int]]:
    """(open, overdue) actions of each CAPA's current plan round."""
    if not capas:
        return {}
    overdue = case((CapaAction.due_on < today, 1), else_=0)
    rows = await session.execute(
        select(CapaAction.capa_id, func.count(), func.coalesce(func.sum(overdue), 0))
        .join(Capa, Capa.id == CapaAction.capa_id)
        .where(CapaAction.capa_id.in_([c.id for c in capas]), _current_round(), _action_open())
        .group_by(CapaAction.capa_id)
    )
    return {capa_id: (int(n), int(late)) for capa_id, n, late in rows.tuples()}


async def _nc_numbers(session: AsyncSession, nc_ids: list[int]) -> dict[int, tuple[str, str]]:
    """(process id, number) of each NC id."""
    if not nc_ids:
        return {}
    rows = await session.execute(
        select(Nonconformance.id, Nonconformance.process_id, Nonconformance.number).where(
            Nonconformance.id.in_(nc_ids)
        )
    )
    return {nc_id: (pid, number) for nc_id, pid, number in rows.tuples()}


def capa_is_open(capa: Capa) -> bool:
    return capa.closed_at is None and capa.status not in CLOSED_STATUSES


def capa_out(
    capa: Capa, *, today: date, counts: tuple[int, int], nc: dict[int, tuple[str, str]]
) -> CapaOut:
    nc_process_id, nc_number = nc.get(capa.nc_id or 0, (None, None))
    is_open = capa_is_open(capa)
    return CapaOut(
        id=capa.process_id,
        number=capa.number,
        title=capa.title,
        source=capa.source,
        owner=capa.owner,
        status=capa.status,
        open=is_open,
        nc_process_id=nc_process_id,
        nc_number=nc_number,
        plan_round=capa.plan_round,
        effectiveness_wait_days=capa.effectiveness_wait_days,
        effectiveness_due_on=capa.effectiveness_due_on,
        requested_by=capa.requested_by,
        created_at=capa.created_at,
        closed_at=capa.closed_at,
        days_open=_days_between(capa.created_at, capa.closed_at or today),
        open_actions=counts[0] if is_open else 0,
        overdue_actions=counts[1] if is_open else 0,
    )


async def find_capa(session: AsyncSession, key: str) -> Capa | None:
    return await session.scalar(select(Capa).where(or_(Capa.process_id == key, Capa.number == key)))


async def capa_detail(*, session: AsyncSession, principal: Principal, key: str) -> CapaDetail:
    """One CAPA: problem, root-cause analysis, every plan round with its actions and its
    effectiveness check, open tasks, the timeline and every signature."""
    principal.require(READ_SCOPE)
    key = key.strip()[:200]
    capa = await find_capa(session, key)
    if capa is None:
        raise await not_registered(session, key, "CAPA")
    today = await _today(session)
    actions = list(
        await session.scalars(
            select(CapaAction)
            .where(CapaAction.capa_id == capa.id)
            .order_by(CapaAction.plan_round, CapaAction.seq)
        )
    )
    checks = list(
        await session.scalars(
            select(CapaEffectivenessCheck)
            .where(CapaEffectivenessCheck.capa_id == capa.id)
            .order_by(CapaEffectivenessCheck.plan_round)
        )
    )
    current = [a for a in actions if a.plan_round == capa.plan_round and not action_done(a)]
    counts = (len(current), sum(1 for a in current if a.due_on < today))
    numbers = await _nc_numbers(session, [capa.nc_id] if capa.nc_id else [])
    process = await session.get(Process, capa.process_id)
    return CapaDetail(
        **capa_out(capa, today=today, counts=counts, nc=numbers).model_dump(),
        problem_statement=capa.problem_statement,
        rca_method=capa.rca_method,
        rca_findings=capa.rca_findings,
        rounds=plan_rounds(capa, actions, checks, today=today),
        effectiveness_checks=[_check_out(c) for c in checks],
        process_status=process.status if process else "starting",
        current_step=process.current_step if process else "",
        **await process_facts(session, capa.process_id),
    )


def action_done(action: CapaAction) -> bool:
    return action.completed_at is not None or action.status in ACTION_DONE_STATUSES


def action_out(action: CapaAction, *, today: date, capa: Capa | None = None) -> CapaActionOut:
    done = action_done(action)
    return CapaActionOut(
        plan_round=action.plan_round,
        seq=action.seq,
        kind=action.kind,
        description=action.description,
        owner=action.owner,
        due_on=action.due_on,
        status=action.status,
        done=done,
        overdue=not done and action.due_on < today,
        evidence=action.evidence,
        completed_by=action.completed_by,
        completed_at=action.completed_at,
        change_process_id=action.change_process_id,
        capa_id=capa.process_id if capa else None,
        capa_number=capa.number if capa else None,
        capa_title=capa.title if capa else None,
    )


def _check_out(check: CapaEffectivenessCheck) -> EffectivenessCheckOut:
    return EffectivenessCheckOut.model_validate(check, from_attributes=True)


def plan_rounds(
    capa: Capa,
    actions: list[CapaAction],
    checks: list[CapaEffectivenessCheck],
    *,
    today: date,
) -> list[CapaPlanRoundOut]:
    """Every plan round, oldest first: its actions and its effectiveness check."""
    numbers = sorted({a.plan_round for a in actions} | {c.plan_round for c in checks})
    by_round = {c.plan_round: c for c in checks}
    return [
        CapaPlanRoundOut(
            plan_round=n,
            current=n == capa.plan_round,
            actions=[action_out(a, today=today) for a in actions if a.plan_round == n],
            effectiveness=_check_out(by_round[n]) if n in by_round else None,
        )
        for n in numbers
    ]


async def open_actions(
    *, session: AsyncSession, principal: Principal, owner: str | None = None, overdue: bool = False
) -> list[CapaActionOut]:
    """The action board: every open action of an open CAPA's current plan round, by owner and
    due date."""
    principal.require(READ_SCOPE)
    query = (
        select(CapaAction, Capa)
        .join(Capa, Capa.id == CapaAction.capa_id)
        .where(_capa_open(), _current_round(), _action_open())
    )
    if owner:
        query = query.where(CapaAction.owner == owner)
    if overdue:
        query = query.where(CapaAction.due_on < _utc_today())
    rows = await session.execute(
        query.order_by(CapaAction.owner, CapaAction.due_on, Capa.number, CapaAction.seq)
    )
    today = await _today(session)
    return [action_out(action, today=today, capa=capa) for action, capa in rows.tuples()]
