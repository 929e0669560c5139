"""Activities of a work order: register it, allocate materials (FEFO), record production (issue,
finished lot, genealogy, serials with UDI), final inspection, device history record, release or
hold of the finished lot.

Each write is one transaction with its audit row, keyed by the workflow id and step, so a retried
activity writes nothing twice; a retry of a write that committed answers what it answered then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import audit
from activities.records import (
    change_lot_status,
    find_customer_order,
    lot_picks,
    next_number,
    process_record,
    recorded,
    recorded_answer,
    required_process_record,
    write_moving_lots,
)
from erp.db import database_now
from erp.lots import (
    LotRefused,
    available_lots,
    move,
    next_lot_number,
    note_lot_reason,
    pick_fefo,
    set_lot_status,
)
from erp.master_data import BomLine, Item, Lot, WorkOrder
from erp.production import (
    add_serials,
    database_today,
    device_history,
    plan_issue,
    required_quantity,
)
from erp.supply import WO_NUMBER, CustomerOrder, GenealogyEdge, Inspection
from erp.supply_rules import effective_revision, revision_refusal
from schemas.production import (
    AllocateMaterialsInput,
    Allocation,
    CancelWorkOrderInput,
    DeviceHistoryInput,
    DeviceHistoryRecord,
    FinishLotInput,
    LotPick,
    ProductionRecord,
    RecordInspectionInput,
    RecordProductionInput,
    RegisterWorkOrderInput,
    RegisterWorkOrderResult,
    Shortage,
    quantity_text,
)
from schemas.shipping import shortages_said
from workflows.wording import refuse, said, said_again, wording


async def _work_order(session: AsyncSession, process_id: str, *, lock: bool = False) -> WorkOrder:
    return await required_process_record(
        session, WorkOrder, process_id, said("work order"), lock=lock
    )


async def _finished_lot(session: AsyncSession, work_order: WorkOrder, lot_number: str) -> Lot:
    lot = await session.scalar(
        select(Lot)
        .where(Lot.lot_number == lot_number, Lot.work_order_id == work_order.id)
        .with_for_update()
    )
    if lot is None:
        raise refuse(
            None,
            said(
                "lot %(lot)s was not made by %(work_order)s",
                lot=lot_number,
                work_order=work_order.number,
            ),
            non_retryable=True,
        )
    return lot


class WorkOrderActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_work_order,
            self.allocate_materials,
            self.record_production,
            self.record_final_inspection,
            self.summarize_device_history,
            self.release_finished_lot,
            self.hold_nonconforming_lot,
            self.cancel_work_order,
        ]

    @activity.defn(name="register_work_order")
    async def register_work_order(self, data: RegisterWorkOrderInput) -> RegisterWorkOrderResult:
        """The work order row for the part's effective revision, or the reason there is none."""
        request = data.request
        key = f"{data.process_id}:work-order-registered"
        async with self._sessions() as session, session.begin():
            existing = await process_record(session, WorkOrder, data.process_id)
            if existing is not None:
                made = await session.get_one(Item, existing.item_id)
                return _registered(existing.number, made)
            earlier = await recorded(session, key)
            if earlier is not None:  # refused before a retry: the same answer
                return RegisterWorkOrderResult(
                    number=earlier.entity_id,
                    refusal=earlier.reason,
                    refusal_wording=(earlier.after or {}).get("reason_wording"),
                    part_number=request.part_number,
                )
            number = await next_number(session, "WO", WO_NUMBER)
            item = await effective_revision(session, request.part_number)
            customer_order = await find_customer_order(session, request.customer_order)
            refusal = await _registration_refusal(session, data, item, customer_order)
            if refusal:
                await audit(
                    session,
                    actor=request.requester or "system",
                    action="work_order.refused",
                    entity_type="work_order",
                    entity_id=number,
                    outcome="refused",
                    reason=refusal,
                    after=request.model_dump(mode="json"),
                    key=key,
                )
                return RegisterWorkOrderResult(
                    number=number,
                    refusal=refusal,
                    refusal_wording=wording(refusal),
                    part_number=request.part_number,
                )
            assert item is not None
            work_order = WorkOrder(
                number=number,
                item_id=item.id,
                part_number=item.part_number,
                quantity=request.quantity,
                status="planned",
                process_id=data.process_id,
                requested_by=request.requester or None,
                due_on=request.due_on,
                customer_order_id=customer_order.id if customer_order else None,
            )
            session.add(work_order)
            await audit(
                session,
                actor=request.requester or "system",
                action="work_order.planned",
                entity_type="work_order",
                entity_id=number,
                after={
                    "part_number": item.part_number,
                    "revision": item.revision,
                    "quantity": request.quantity,
                    "due_on": request.due_on,
                    "customer_order": customer_order.number if customer_order else None,
                    "status": "planned",
                },
                key=key,
            )
            return _registered(number, item)

    @activity.defn(name="allocate_materials")
    async def allocate_materials(self, data: AllocateMaterialsInput) -> Allocation:
        """First-expiry-first-out picks of every BOM line, and what is short. A work order whose
        materials are all there is released."""
        key = f"{data.process_id}:allocate:{data.attempt}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, Allocation, "allocation")
            if earlier is not None:
                return earlier
            work_order = await _work_order(session, data.process_id, lock=True)
            today = await database_today(session)
            allocation = Allocation()
            for line in await _bom(session, work_order.item_id):
                need = required_quantity(work_order.quantity, line.quantity)
                picks, short = await pick_fefo(
                    session, available_lots(line.component_part_number, on=today), need
                )
                allocation.picks.extend(lot_picks(line.component_part_number, line.uom, picks))
                if short > 0:
                    allocation.shortages.append(
                        Shortage(
                            part_number=line.component_part_number,
                            required=need,
                            available=need - short,
                            uom=line.uom,
                        )
                    )
            before = {"status": work_order.status}
            if not allocation.shortages and work_order.status == "planned":
                work_order.status = "released"
                work_order.released_at = await database_now(session)
            await audit(
                session,
                actor="system",
                action=(
                    "work_order.materials_short" if allocation.shortages else "work_order.allocated"
                ),
                entity_type="work_order",
                entity_id=work_order.number,
                reason=shortages_said(allocation.shortages),
                before=before,
                after={
                    "status": work_order.status,
                    "allocation": allocation.model_dump(mode="json"),
                },
                key=key,
            )
            return allocation

    @activity.defn(name="record_production")
    async def record_production(self, data: RecordProductionInput) -> ProductionRecord:
        """One transaction: issue the components (the lots production was given first), make the
        finished lot in QUARANTINE with its output, scrap, genealogy edges and serials. A lot the
        database refuses (held, consumed, expired since allocation) rolls all of it back and comes
        back as a LotRefused error, audited."""
        key = f"{data.process_id}:production:{data.attempt}"
        return await write_moving_lots(
            self._sessions,
            key,
            lambda session: self._record_production(session, data, key),
            lambda session, refusal, refused_key: self._audit_refusal(
                session, data, refusal, refused_key
            ),
        )

    async def _record_production(
        self, session: AsyncSession, data: RecordProductionInput, key: str
    ) -> ProductionRecord:
        earlier = await recorded_answer(session, key, ProductionRecord, "record")
        if earlier is not None:
            return earlier
        work_order = await _work_order(session, data.process_id, lock=True)
        item = await session.get_one(Item, work_order.item_id)
        made = data.produced_quantity + data.scrap_quantity
        problem = _quantity_problem(data, item)
        today = await database_today(session)
        to_issue: list[LotPick] = []
        shortages: list[Shortage] = []
        if not problem:
            for line in await _bom(session, item.id):
                part = line.component_part_number
                need = required_quantity(made, line.quantity)
                picks, short = await plan_issue(
                    session,
                    quantity=need,
                    given=[p for p in data.allocation if p.part_number == part],
                    more=available_lots(part, on=today),
                )
                to_issue.extend(lot_picks(part, line.uom, picks))
                if short > 0:
                    shortages.append(
                        Shortage(
                            part_number=part, required=need, available=need - short, uom=line.uom
                        )
                    )
            if shortages:
                problem = said(
                    "materials short: %(shortages)s", shortages=shortages_said(shortages)
                )
        if problem:
            record = ProductionRecord(problem=problem, problem_wording=wording(problem))
            await self._audit_production(
                session, work_order, data, key, record, refused=True, problem=problem
            )
            return record
        # components first: a refused lot stops everything before a lot number is spent
        issued: list[tuple[LotPick, int]] = []
        for pick in to_issue:
            lot = await session.get_one(Lot, pick.lot_id)
            movement = await move(
                session,
                lot,
                kind="issue",
                quantity=pick.quantity,
                reference=work_order.number,
                actor=data.produced_by,
                process_id=data.process_id,
                idempotency_key=f"{key}:issue:{pick.lot_id}",
            )
            issued.append((pick, movement.id))
        made_in = said(
            "made in %(number)s; awaiting final inspection and release", number=work_order.number
        )
        finished = Lot(
            lot_number=await next_lot_number(
                session, origin="production", part_number=item.part_number, on=today
            ),
            item_id=item.id,
            part_number=item.part_number,
            quantity=made,
            received_quantity=made,
            status="QUARANTINE",
            manufactured_on=today,
            expires_on=today + timedelta(days=item.shelf_life_days)
            if item.shelf_life_days
            else None,
            origin="production",
            work_order_id=work_order.id,
            status_reason=made_in,
            status_changed_by=data.produced_by,
            status_process_id=data.process_id,
        )
        note_lot_reason(session, finished.lot_number, made_in)
        session.add(finished)
        await session.flush()
        await move(
            session,
            finished,
            kind="output",
            quantity=made,
            reference=work_order.number,
            actor=data.produced_by,
            process_id=data.process_id,
            idempotency_key=f"{key}:output",
        )
        if data.scrap_quantity > 0:
            await move(
                session,
                finished,
                kind="scrap",
                quantity=data.scrap_quantity,
                reference=work_order.number,
                actor=data.produced_by,
                process_id=data.process_id,
                idempotency_key=f"{key}:scrap",
            )
        session.add_all(
            GenealogyEdge(
                parent_lot_id=pick.lot_id,
                child_lot_id=finished.id,
                quantity=pick.quantity,
                work_order_id=work_order.id,
                movement_id=movement_id,
            )
            for pick, movement_id in issued
        )
        serials = None
        if item.serial_controlled:
            assert item.gtin is not None  # registration refuses a serialised part without GTIN
            serials = await add_serials(
                session, lot=finished, gtin=item.gtin, count=int(data.produced_quantity)
            )
        work_order.produced_quantity += data.produced_quantity
        work_order.status = "in_progress"
        record = ProductionRecord(
            lot_number=finished.lot_number,
            quantity=data.produced_quantity,
            scrap_quantity=data.scrap_quantity,
            issued=[pick for pick, _ in issued],
            serial_count=int(data.produced_quantity) if serials else 0,
            serial_first=serials[0] if serials else None,
            serial_last=serials[1] if serials else None,
        )
        await self._audit_production(session, work_order, data, key, record, refused=False)
        return record

    async def _audit_production(
        self,
        session: AsyncSession,
        work_order: WorkOrder,
        data: RecordProductionInput,
        key: str,
        record: ProductionRecord,
        *,
        refused: bool,
        problem: str = "",
    ) -> None:
        await audit(
            session,
            actor=data.produced_by,
            action="work_order.production_refused" if refused else "work_order.produced",
            entity_type="work_order",
            entity_id=work_order.number,
            outcome="refused" if refused else "ok",
            reason=problem or record.problem or data.notes,
            after={"record": record.model_dump(mode="json"), "notes": data.notes},
            key=key,
        )

    async def _audit_refusal(
        self,
        session: AsyncSession,
        data: RecordProductionInput,
        refusal: LotRefused,
        refused_key: str,
    ) -> None:
        work_order = await _work_order(session, data.process_id)
        await audit(
            session,
            actor=data.produced_by,
            action="work_order.issue_refused",
            entity_type="work_order",
            entity_id=work_order.number,
            outcome="refused",
            reason=refusal.message,
            after={
                "sqlstate": refusal.sqlstate,
                "produced_quantity": data.produced_quantity,
                "scrap_quantity": data.scrap_quantity,
            },
            key=refused_key,
        )

    @activity.defn(name="record_final_inspection")
    async def record_final_inspection(self, data: RecordInspectionInput) -> None:
        key = f"{data.process_id}:inspection:final"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            work_order = await _work_order(session, data.process_id)
            lot = await _finished_lot(session, work_order, data.lot_number)
            results = {"results": data.results, "reason": data.reason}
            session.add(
                Inspection(
                    lot_id=lot.id,
                    kind="final",
                    sample_size=data.sample_size,
                    defects=data.defects,
                    results={k: v for k, v in results.items() if v},
                    outcome=data.outcome,
                    inspector=data.inspector,
                    process_id=data.process_id,
                    idempotency_key=key,
                )
            )
            await audit(
                session,
                actor=data.inspector,
                action="lot.inspected",
                entity_type="lot",
                entity_id=lot.lot_number,
                outcome="ok",
                reason=data.reason,
                after={
                    "kind": "final",
                    "outcome": data.outcome,
                    "sample_size": data.sample_size,
                    "defects": data.defects,
                    "work_order": work_order.number,
                },
                key=key,
            )

    @activity.defn(name="summarize_device_history")
    async def summarize_device_history(self, data: DeviceHistoryInput) -> DeviceHistoryRecord:
        async with self._sessions() as session:
            work_order = await _work_order(session, data.process_id)
            return await device_history(session, work_order)

    @activity.defn(name="release_finished_lot")
    async def release_finished_lot(self, data: FinishLotInput) -> None:
        """QA release: the finished lot QUARANTINE → RELEASED, the work order completed. A lot that
        is no longer in QUARANTINE (held by a nonconformance meanwhile) is not released."""
        key = f"{data.process_id}:lot-released"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            work_order = await _work_order(session, data.process_id, lock=True)
            lot = await _finished_lot(session, work_order, data.lot_number)
            if lot.status != "QUARANTINE":
                raise refuse(
                    "LotRefused",
                    said(
                        "lot %(lot)s is %(status)s (%(reason)s): it cannot be released",
                        lot=lot.lot_number,
                        status=lot.status,
                        reason=lot.hold_reason,
                    )
                    if lot.hold_reason
                    else said(
                        "lot %(lot)s is %(status)s: it cannot be released",
                        lot=lot.lot_number,
                        status=lot.status,
                    ),
                    non_retryable=True,
                )
            await change_lot_status(
                session,
                lot,
                "RELEASED",
                reason=said_again(data.reason_wording, data.reason),
                actor=data.decided_by,
                process_id=data.process_id,
            )
            await self._complete(session, work_order, data, key, "lot.released", lot)

    @activity.defn(name="hold_nonconforming_lot")
    async def hold_nonconforming_lot(self, data: FinishLotInput) -> None:
        """The finished lot failed a check: the work order completed, and the lot ON_HOLD with
        the reason — unless a nonconformance was raised for it (`data.nonconformance`): then the
        NC holds the lot and this only completes the work order."""
        key = f"{data.process_id}:lot-held"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            work_order = await _work_order(session, data.process_id, lock=True)
            lot = await _finished_lot(session, work_order, data.lot_number)
            if data.nonconformance is not None:
                action = "lot.nonconformance_raised"
            else:
                action = "lot.held"
                if lot.status != "ON_HOLD":
                    await change_lot_status(
                        session,
                        lot,
                        "ON_HOLD",
                        reason=said_again(data.reason_wording, data.reason),
                        actor=data.decided_by,
                        process_id=data.process_id,
                    )
            await self._complete(session, work_order, data, key, action, lot)

    async def _complete(
        self,
        session: AsyncSession,
        work_order: WorkOrder,
        data: FinishLotInput,
        key: str,
        action: str,
        lot: Lot,
    ) -> None:
        before = {"work_order_status": work_order.status}
        work_order.status = "completed"
        work_order.closed_at = await database_now(session)
        await audit(
            session,
            actor=data.decided_by,
            action=action,
            entity_type="lot",
            entity_id=lot.lot_number,
            reason=said_again(data.reason_wording, data.reason),
            before=before,
            after={
                "status": lot.status,
                "work_order": work_order.number,
                "work_order_status": "completed",
                "decided_at_step": data.source,
            }
            | ({"nonconformance": data.nonconformance} if data.nonconformance else {}),
            key=key,
        )

    @activity.defn(name="cancel_work_order")
    async def cancel_work_order(self, data: CancelWorkOrderInput) -> None:
        """Cancel the work order; a finished lot not yet released is held (nobody released it)."""
        key = f"{data.process_id}:work-order-cancelled"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            work_order = await process_record(session, WorkOrder, data.process_id, lock=True)
            if work_order is None or work_order.status in ("completed", "cancelled"):
                return
            why = said_again(data.reason_wording, data.reason)
            before = {"status": work_order.status}
            work_order.status = "cancelled"
            work_order.closed_at = await database_now(session)
            held = []
            for lot in await session.scalars(
                select(Lot)
                .where(Lot.work_order_id == work_order.id, Lot.status == "QUARANTINE")
                .with_for_update()
            ):
                await set_lot_status(
                    session,
                    lot,
                    "ON_HOLD",
                    reason=said(
                        "%(number)s cancelled before release: %(why)s",
                        number=work_order.number,
                        why=why,
                    ),
                    actor="system",
                    process_id=data.process_id,
                )
                held.append(lot.lot_number)
            await audit(
                session,
                actor="system",
                action="work_order.cancelled",
                entity_type="work_order",
                entity_id=work_order.number,
                reason=why,
                before=before,
                after={"status": "cancelled", "held_lots": held},
                key=key,
            )


def _registered(number: str, item: Item) -> RegisterWorkOrderResult:
    return RegisterWorkOrderResult(
        number=number,
        part_number=item.part_number,
        revision=item.revision,
        description=item.description,
        serial_controlled=item.serial_controlled,
    )


async def _bom(session: AsyncSession, item_id: int) -> list[BomLine]:
    return list(
        await session.scalars(
            select(BomLine).where(BomLine.item_id == item_id).order_by(BomLine.id)
        )
    )


async def _registration_refusal(
    session: AsyncSession,
    data: RegisterWorkOrderInput,
    item: Item | None,
    customer_order: CustomerOrder | None,
) -> str:
    request = data.request
    if item is None:
        return said(
            "%(part)s has no effective revision: nothing can be made of it",
            part=request.part_number,
        )
    problem = await revision_refusal(session, item.id)
    if problem:
        return problem
    if not await _bom(session, item.id):
        return said(
            "%(part)s revision %(revision)s has no bill of materials",
            part=item.part_number,
            revision=item.revision,
        )
    if item.serial_controlled:
        if not item.gtin:
            return said(
                "%(part)s is serialised but has no GTIN: its UDI cannot be made",
                part=item.part_number,
            )
        if request.quantity != request.quantity.to_integral_value():
            return said(
                "%(part)s is serialised: make a whole number of units, not %(quantity)s",
                part=item.part_number,
                quantity=quantity_text(request.quantity),
            )
    if request.customer_order and customer_order is None:
        return said("customer order %(order)s is not known", order=request.customer_order)
    return ""


def _quantity_problem(data: RecordProductionInput, item: Item) -> str:
    if data.produced_quantity <= 0:
        return said("the produced quantity must be more than 0")
    if data.scrap_quantity < 0:
        return said("the scrap quantity cannot be negative")
    whole = data.produced_quantity == data.produced_quantity.to_integral_value()
    if item.serial_controlled and not whole:
        return said(
            "%(part)s is serialised: the produced quantity must be whole, not %(quantity)s",
            part=item.part_number,
            quantity=quantity_text(data.produced_quantity),
        )
    return ""
