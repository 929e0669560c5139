"""The operations dashboard's figures, each computed in one SQL query over the ERP tables.

Read-only: nothing here writes. Every figure's source and definition is in docs/dashboard.md.
The data model has no site (plant, warehouse) column, so the filters are a date range and a
process kind; `DashboardFilters` says which figure each one narrows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, cast, exists, func, literal, or_, select
from sqlalchemy import Date as SqlDate
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Lot, PurchaseOrder, PurchaseOrderLine, Supplier
from erp.models import Process, Task
from erp.quality import Capa, Nonconformance
from erp.recall import EFFECTIVENESS_TARGETS, Recall, RecallConsignee, RecallResponse
from erp.supply import Inspection, LotStatusChange, Receipt
from schemas.dashboard import (
    DEFAULT_WEEKS,
    DUE_SOON_HOURS,
    MAX_RANGE_DAYS,
    PROCESS_KINDS,
    SLOWEST_STEPS,
    AgeBucket,
    CountRow,
    CycleTime,
    Dashboard,
    DashboardFilters,
    LotOnHold,
    RecallEffectiveness,
    SlaRow,
    SupplierScore,
    WeeklyCycleTime,
)

# open CAPAs by days since they were opened: (key, low, high); CAPAs live for months (an
# effectiveness check waits 90 days), so the buckets are wider than the NC list's
CAPA_AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-90", 31, 90),
    ("91-180", 91, 180),
    ("over-180", 181, None),
)
CAPA_CLOSED_STATUSES = ("closed", "cancelled")
LOTS_ON_HOLD_LIMIT = 100
# a step's name carries its round: ccb-r2, pick-3, production-1 are the steps ccb, pick, production
STEP_ROUND = "-r?[0-9]+$"
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# the dates a filter may name: beyond them the range's arithmetic would leave the calendar
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


class FilterRefused(ValueError):
    """A filter the dashboard cannot use. `message` is English with %(name)s placeholders (the
    UI translates it), `values` fill them."""

    def __init__(self, message: str, **values: Any) -> None:
        self.message = message
        self.values = values
        super().__init__(message % values if values else message)


def parse_filters(
    *, date_from: str | None, date_to: str | None, process: str | None, today: date
) -> DashboardFilters:
    """The filters as given in a query string; empty means the default (the last 12 weeks up to
    today, every process kind). Raises FilterRefused saying what to send instead."""
    end = _parse_date("to", date_to) or today
    start = _parse_date("from", date_from) or end - timedelta(weeks=DEFAULT_WEEKS) + timedelta(1)
    if start > end:
        raise FilterRefused(
            "the date range starts (%(start)s) after it ends (%(end)s); swap from and to",
            start=start.isoformat(),
            end=end.isoformat(),
        )
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise FilterRefused(
            "the date range is longer than %(days)s days; choose a shorter range",
            days=MAX_RANGE_DAYS,
        )
    kind = (process or "").strip() or None
    if kind is not None and kind not in PROCESS_KINDS:
        raise FilterRefused(
            "process is one of %(kinds)s, not %(given)s",
            kinds=", ".join(PROCESS_KINDS),
            given=repr(kind[:40]),
        )
    return DashboardFilters(date_from=start, date_to=end, process_kind=kind)


def _parse_date(name: str, value: str | None) -> date | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        if not ISO_DATE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise FilterRefused(
            "%(name)s must be a date written YYYY-MM-DD (e.g. 2026-03-31), not %(given)s",
            name=name,
            given=repr(text[:40]),
        ) from None
    if not EARLIEST <= day <= LATEST:
        raise FilterRefused(
            "%(name)s must lie between %(earliest)s and %(latest)s, not %(given)s",
            name=name,
            earliest=EARLIEST.isoformat(),
            latest=LATEST.isoformat(),
            given=text,
        )
    return day


async def dashboard(session: AsyncSession, *, filters: DashboardFilters) -> Dashboard:
    """Every figure of the dashboard for these filters, as of the database's time now."""
    start = datetime.combine(filters.date_from, time(), UTC)
    end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
    kind = filters.process_kind
    now = await session.scalar(select(func.now()))
    assert now is not None
    step_times = await step_cycle_times(session, start=start, end=end, kind=kind)
    held, held_count = await lots_on_hold(session)
    return Dashboard(
        filters=filters,
        generated_at=now,
        open_tasks=await open_tasks_by_sla(session, kind=kind),
        step_cycle_times=step_times,
        process_cycle_times=await process_cycle_times(session, start=start, end=end, kind=kind),
        slowest_steps=slowest(step_times),
        task_trend=await task_trend(session, start=start, end=end, kind=kind),
        process_trend=await process_trend(session, start=start, end=end, kind=kind),
        capa_aging=await capa_aging(session),
        nc_by_source=await nc_by_source(session, start=start, end=end),
        nc_by_supplier=await nc_by_supplier(session, start=start, end=end),
        supplier_scorecards=await supplier_scorecards(session, start=start, end=end),
        recalls=await recall_effectiveness(session, start=start, end=end),
        lots_on_hold=held,
        lots_on_hold_count=held_count,
    )


# ---------------------------------------------------------------- tasks and processes


async def open_tasks_by_sla(session: AsyncSession, *, kind: str | None) -> list[SlaRow]:
    """Open tasks now, per process kind, in exactly one SLA state: escalated (level > 1) first,
    then overdue (past due), due soon (due within 24 h), else on time (also: no due time)."""
    state = case(
        (Task.level > 1, "escalated"),
        (Task.due_at < func.now(), "overdue"),
        (Task.due_at < func.now() + timedelta(hours=DUE_SOON_HOURS), "due_soon"),
        else_="on_time",
    ).label("state")
    query = select(Task.process_kind, state, func.count()).where(Task.status == "open")
    if kind:
        query = query.where(Task.process_kind == kind)
    rows = await session.execute(query.group_by(Task.process_kind, state))
    by_kind: dict[str, dict[str, int]] = {}
    for process_kind, sla_state, count in rows:
        by_kind.setdefault(process_kind, {})[sla_state] = count
    return [
        SlaRow(
            process_kind=process_kind,
            on_time=counts.get("on_time", 0),
            due_soon=counts.get("due_soon", 0),
            overdue=counts.get("overdue", 0),
            escalated=counts.get("escalated", 0),
            total=sum(counts.values()),
        )
        for process_kind, counts in sorted(by_kind.items())
    ]


def _hours(start: Any, end: Any) -> ColumnElement[Any]:
    return func.extract("epoch", end - start) / 3600.0


def _percentiles(hours: ColumnElement[float]) -> tuple[Any, Any]:
    return (
        func.percentile_cont(0.5).within_group(hours),
        func.percentile_cont(0.9).within_group(hours),
    )


def _week(column: Any) -> ColumnElement[date]:
    """The Monday (UTC) of the ISO week a timestamp falls in."""
    return cast(func.date_trunc("week", func.timezone("UTC", column)), SqlDate)


def _completed_tasks(
    query: Select[Any], *, start: datetime, end: datetime, kind: str | None
) -> Select[Any]:
    query = query.where(Task.status == "completed", Task.closed_at >= start, Task.closed_at < end)
    return query.where(Task.process_kind == kind) if kind else query


def _completed_processes(
    query: Select[Any], *, start: datetime, end: datetime, kind: str | None
) -> Select[Any]:
    query = query.where(
        Process.status == "completed", Process.closed_at >= start, Process.closed_at < end
    )
    return query.where(Process.kind == kind) if kind else query


async def step_cycle_times(
    session: AsyncSession, *, start: datetime, end: datetime, kind: str | None
) -> list[CycleTime]:
    """Per process kind and step: tasks completed in the range, hours from opened to closed."""
    step = func.regexp_replace(Task.step, STEP_ROUND, "").label("step")
    median, p90 = _percentiles(_hours(Task.created_at, Task.closed_at))
    query = _completed_tasks(
        select(Task.process_kind, step, func.count(), median, p90), start=start, end=end, kind=kind
    ).group_by(Task.process_kind, step)
    rows = await session.execute(query.order_by(Task.process_kind, step))
    return [
        CycleTime(process_kind=k, step=s, count=n, median_hours=_round(m), p90_hours=_round(p))
        for k, s, n, m, p in rows
    ]


async def process_cycle_times(
    session: AsyncSession, *, start: datetime, end: datetime, kind: str | None
) -> list[CycleTime]:
    """Per process kind: processes completed in the range, hours from start to close."""
    median, p90 = _percentiles(_hours(Process.started_at, Process.closed_at))
    query = _completed_processes(
        select(Process.kind, func.count(), median, p90), start=start, end=end, kind=kind
    ).group_by(Process.kind)
    rows = await session.execute(query.order_by(Process.kind))
    return [
        CycleTime(process_kind=k, count=n, median_hours=_round(m), p90_hours=_round(p))
        for k, n, m, p in rows
    ]


def slowest(steps: Sequence[CycleTime]) -> list[CycleTime]:
    """The steps that take longest: by median, then by 90th percentile."""
    ranked = sorted(steps, key=lambda s: (-s.median_hours, -s.p90_hours, s.process_kind))
    return ranked[:SLOWEST_STEPS]


async def task_trend(
    session: AsyncSession, *, start: datetime, end: datetime, kind: str | None
) -> list[WeeklyCycleTime]:
    """Per week of closing: the cycle time of every task completed in the range."""
    week = _week(Task.closed_at).label("week")
    median, p90 = _percentiles(_hours(Task.created_at, Task.closed_at))
    query = _completed_tasks(
        select(week, func.count(), median, p90), start=start, end=end, kind=kind
    ).group_by(week)
    rows = await session.execute(query.order_by(week))
    return [
        WeeklyCycleTime(week=w, count=n, median_hours=_round(m), p90_hours=_round(p))
        for w, n, m, p in rows
    ]


async def process_trend(
    session: AsyncSession, *, start: datetime, end: datetime, kind: str | None
) -> list[WeeklyCycleTime]:
    """Per week of closing and process kind: the cycle time of completed processes."""
    week = _week(Process.closed_at).label("week")
    median, p90 = _percentiles(_hours(Process.started_at, Process.closed_at))
    query = _completed_processes(
        select(week, Process.kind, func.count(), median, p90), start=start, end=end, kind=kind
    ).group_by(week, Process.kind)
    rows = await session.execute(query.order_by(week, Process.kind))
    return [
        WeeklyCycleTime(
            week=w, process_kind=k, count=n, median_hours=_round(m), p90_hours=_round(p)
        )
        for w, k, n, m, p in rows
    ]


def _round(value: float | Decimal | None) -> float:
    return round(float(value or 0), 2)


# ---------------------------------------------------------------- quality


async def capa_aging(session: AsyncSession) -> list[AgeBucket]:
    """Open CAPAs now (not closed or cancelled) by whole days since they were opened."""
    days = func.floor(func.extract("epoch", func.now() - Capa.created_at) / 86400)
    bucket = case(
        *[(days <= high, key) for key, _, high in CAPA_AGE_BUCKETS if high is not None],
        else_=CAPA_AGE_BUCKETS[-1][0],
    ).label("bucket")
    rows = await session.execute(
        select(bucket, func.count())
        .where(Capa.closed_at.is_(None), Capa.status.not_in(CAPA_CLOSED_STATUSES))
        .group_by(bucket)
    )
    counts: dict[str, int] = {key: n for key, n in rows.tuples()}
    return [
        AgeBucket(key=key, low_days=low, high_days=high, count=counts.get(key, 0))
        for key, low, high in CAPA_AGE_BUCKETS
    ]


async def nc_by_source(session: AsyncSession, *, start: datetime, end: datetime) -> list[CountRow]:
    """Nonconformances reported in the range, per source, most first."""
    count = func.count().label("n")
    rows = await session.execute(
        select(Nonconformance.source, count)
        .where(Nonconformance.created_at >= start, Nonconformance.created_at < end)
        .group_by(Nonconformance.source)
        .order_by(count.desc(), Nonconformance.source)
    )
    return [CountRow(key=source, label=source, count=n) for source, n in rows]


async def nc_by_supplier(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[CountRow]:
    """Nonconformances reported in the range that name a supplier, per supplier, most first."""
    count = func.count().label("n")
    rows = await session.execute(
        select(Supplier.code, Supplier.name, count)
        .join(Nonconformance, Nonconformance.supplier_id == Supplier.id)
        .where(Nonconformance.created_at >= start, Nonconformance.created_at < end)
        .group_by(Supplier.code, Supplier.name)
        .order_by(count.desc(), Supplier.code)
    )
    return [CountRow(key=code, label=name, count=n) for code, name, n in rows]


# ---------------------------------------------------------------- suppliers


async def supplier_scorecards(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[SupplierScore]:
    """Per supplier with a receipt, an incoming inspection or an NC in the range: receipts on
    time (as recorded at receipt against the PO's promised date, else its due date), incoming
    inspections passed, and NCs naming it."""
    receipts = (
        select(
            PurchaseOrder.supplier_id.label("supplier_id"),
            func.count().label("receipts"),
            func.count().filter(Receipt.on_time).label("on_time"),
        )
        .select_from(Receipt)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(Receipt.received_at >= start, Receipt.received_at < end)
        .group_by(PurchaseOrder.supplier_id)
        .subquery()
    )
    inspections = (
        select(
            Lot.supplier_id.label("supplier_id"),
            func.count().label("inspections"),
            func.count().filter(Inspection.outcome == "pass").label("accepted"),
        )
        .select_from(Inspection)
        .join(Lot, Lot.id == Inspection.lot_id)
        .where(
            Inspection.kind == "incoming",
            Lot.supplier_id.is_not(None),
            Inspection.inspected_at >= start,
            Inspection.inspected_at < end,
        )
        .group_by(Lot.supplier_id)
        .subquery()
    )
    ncs = (
        select(Nonconformance.supplier_id.label("supplier_id"), func.count().label("ncs"))
        .where(
            Nonconformance.supplier_id.is_not(None),
            Nonconformance.created_at >= start,
            Nonconformance.created_at < end,
        )
        .group_by(Nonconformance.supplier_id)
        .subquery()
    )
    zero = literal(0)
    query = (
        select(
            Supplier.code,
            Supplier.name,
            func.coalesce(receipts.c.receipts, zero),
            func.coalesce(receipts.c.on_time, zero),
            func.coalesce(inspections.c.inspections, zero),
            func.coalesce(inspections.c.accepted, zero),
            func.coalesce(ncs.c.ncs, zero),
        )
        .outerjoin(receipts, receipts.c.supplier_id == Supplier.id)
        .outerjoin(inspections, inspections.c.supplier_id == Supplier.id)
        .outerjoin(ncs, ncs.c.supplier_id == Supplier.id)
        .where(
            or_(
                receipts.c.supplier_id.is_not(None),
                inspections.c.supplier_id.is_not(None),
                ncs.c.supplier_id.is_not(None),
            )
        )
        .order_by(Supplier.code)
    )
    return [
        SupplierScore(
            supplier_code=code,
            supplier_name=name,
            receipts=n_receipts,
            on_time_receipts=on_time,
            on_time_percent=_share(on_time, n_receipts),
            inspections=n_inspections,
            accepted_inspections=accepted,
            acceptance_percent=_share(accepted, n_inspections),
            nonconformances=n_ncs,
        )
        for code, name, n_receipts, on_time, n_inspections, accepted, n_ncs in await session.execute(
            query
        )
    ]


def _share(part: int | Decimal, whole: int | Decimal) -> float | None:
    return round(100 * float(part) / float(whole), 1) if whole else None


# ---------------------------------------------------------------- recalls and lots


async def recall_effectiveness(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[RecallEffectiveness]:
    """Per recall open at some moment in the range (initiated before its end, not closed before
    its start): consignees notified and responded against the level's target, units back."""
    answered = or_(
        RecallConsignee.acknowledged_at.is_not(None),
        exists().where(RecallResponse.recall_consignee_id == RecallConsignee.id),
    )
    zero = literal(Decimal(0))
    query = (
        select(
            Recall,
            func.count(RecallConsignee.id),
            func.count(RecallConsignee.notified_at),
            func.count(RecallConsignee.id).filter(answered),
            func.coalesce(func.sum(RecallConsignee.shipped_quantity), zero),
            func.coalesce(
                func.sum(RecallConsignee.quantity_returned + RecallConsignee.quantity_corrected),
                zero,
            ),
            func.coalesce(func.sum(RecallConsignee.quantity_received_back), zero),
        )
        .outerjoin(RecallConsignee, RecallConsignee.recall_id == Recall.id)
        .where(
            Recall.initiated_at < end,
            or_(Recall.closed_at.is_(None), Recall.closed_at >= start),
        )
        .group_by(Recall.id)
        .order_by(Recall.initiated_at.desc(), Recall.id.desc())
    )
    result = []
    for recall, consignees, notified, responded, shipped, recovered, back in await session.execute(
        query
    ):
        target = EFFECTIVENESS_TARGETS.get(recall.effectiveness_level or "")
        responded_percent = _share(responded, consignees) or 0.0
        result.append(
            RecallEffectiveness(
                number=recall.number,
                process_id=recall.process_id,
                drill=recall.drill,
                status=recall.status,
                classification=recall.classification,
                level=recall.effectiveness_level,
                target_percent=target,
                consignees=consignees,
                notified=notified,
                responded=responded,
                responded_percent=responded_percent,
                target_met=target is not None
                and (target == 0 or (consignees > 0 and responded_percent >= target)),
                units_shipped=shipped,
                units_recovered=recovered,
                units_received_back=back,
                recovered_percent=_share(recovered, shipped) or 0.0,
            )
        )
    return result


async def lots_on_hold(session: AsyncSession) -> tuple[list[LotOnHold], int]:
    """Lots ON_HOLD now, the longest held first (at most 100), and how many there are."""
    held_since = (
        select(func.max(LotStatusChange.changed_at))
        .where(LotStatusChange.lot_id == Lot.id, LotStatusChange.to_status == "ON_HOLD")
        .scalar_subquery()
        .label("held_since")
    )
    on_hold = Lot.status == "ON_HOLD"
    count = await session.scalar(select(func.count()).where(on_hold)) or 0
    rows = await session.execute(
        select(Lot, Supplier.code, held_since)
        .outerjoin(Supplier, Supplier.id == Lot.supplier_id)
        .where(on_hold)
        .order_by(held_since.asc().nulls_last(), Lot.lot_number)
        .limit(LOTS_ON_HOLD_LIMIT)
    )
    lots = [
        LotOnHold(
            lot_number=lot.lot_number,
            part_number=lot.part_number,
            quantity=lot.quantity,
            uom=lot.uom,
            supplier_code=code,
            hold_reason=lot.hold_reason or lot.status_reason,
            held_since=since,
        )
        for lot, code, since in rows
    ]
    return lots, count
