"""Activities of the purchase process: the requisition and its lines, the approval route, the
supplier check, the order issued through the outbox, the supplier's events, receipts that make
lots in QUARANTINE, incoming inspections, and lot release or hold.

Each write commits its business rows and its audit row in one transaction, keyed by the process
id and the step (or the external event's id), so a retried activity writes nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.records import (
    change_lot_status,
    find_customer_order,
    next_number,
    process_record,
    recorded,
)
from erp.audit import already_recorded
from erp.db import database_now
from erp.lots import move, next_lot_number, note_lot_reason
from erp.master_data import AslEntry, Item, Lot, PurchaseOrder, PurchaseOrderLine, Supplier
from erp.models import Outbox
from erp.purchasing import (
    approver_groups,
    count_inspection,
    count_receipt,
    doa_levels,
    expiry_date,
    is_on_time,
    order_amount,
    sampling_plan,
    unit_of_measure,
)
from erp.supply import PO_NUMBER, Inspection, Receipt
from erp.supply_rules import effective_revision, revision_refusal, supplier_refusal
from schemas.purchase import (
    ApprovalRoute,
    ApprovalRouteInput,
    ChangeSupplierInput,
    ConfirmPurchaseInput,
    InspectionVerdict,
    IssuePurchaseOrderInput,
    OrderedLine,
    ReceivedLot,
    ReceiveGoodsInput,
    RecordAsnInput,
    RecordInspectionInput,
    RegisteredPurchase,
    RegisterPurchaseInput,
    SamplingPlan,
    SetLotStatusInput,
    SetPurchaseStatusInput,
    SupplierChange,
    SupplierCheck,
    SupplierCheckInput,
)
from schemas.shipping import joined_said
from schemas.supply import PurchaseRequest
from workflows.wording import Said, reason_wording, refuse, said, said_again, wording

# a purchase order in one of these statuses has ended: no later step changes it
ENDED = ("rejected", "cancelled", "closed")
LOT_ACTIONS = {"RELEASED": "lot.released", "ON_HOLD": "lot.held"}


@dataclass(frozen=True)
class Refusal:
    number: str
    reason: str


def _conflict(message: str, kind: str = "Conflict") -> ApplicationError:
    return refuse(kind, message, non_retryable=True)  # a `said` keeps its template


async def _audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity_id: str,
    key: str,
    entity_type: str = "purchase_order",
    **fields: Any,
) -> None:
    await audit(
        session,
        actor=actor or "system",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        key=key,
        **fields,
    )


async def _order_of(session: AsyncSession, process_id: str) -> PurchaseOrder | None:
    """The process's purchase order, locked for this transaction."""
    return await process_record(session, PurchaseOrder, process_id, lock=True)


async def _ongoing_order(session: AsyncSession, process_id: str) -> PurchaseOrder:
    """The process's purchase order, locked; a supplier's event for an ended one is refused."""
    order = await _order_of(session, process_id)
    assert order is not None
    if order.status in ENDED:
        raise _conflict(
            said(
                "purchase order %(number)s is %(status)s", number=order.number, status=order.status
            )
        )
    return order


async def _lines(session: AsyncSession, order: PurchaseOrder) -> list[PurchaseOrderLine]:
    return list(
        await session.scalars(
            select(PurchaseOrderLine)
            .where(PurchaseOrderLine.purchase_order_id == order.id)
            .order_by(PurchaseOrderLine.line_no)
        )
    )


async def _supplier_code(session: AsyncSession, supplier_id: int) -> str:
    return (await session.get_one(Supplier, supplier_id)).code


def _receipt_key(process_id: str, event_id: str) -> str:
    """receipt.event_id: unique across processes, within its 200 characters."""
    key = f"{process_id}:{event_id}"
    return key if len(key) <= 200 else hashlib.sha256(key.encode()).hexdigest()


# ---------------------------------------------------------------- registration


async def _registration_refusal(
    session: AsyncSession, request: PurchaseRequest, supplier: Supplier | None
) -> tuple[str, dict[str, Item]]:
    """Why the requisition cannot become an order ('' when it can), and each part's revision."""
    problems: list[str] = (
        []
        if supplier
        else [said("supplier %(supplier)s is not known", supplier=request.supplier_code)]
    )
    parts = [line.part_number for line in request.lines]
    problems += [
        said("%(part)s is on more than one line; order it on one line", part=pn)
        for pn in sorted({pn for pn in parts if parts.count(pn) > 1})
    ]
    items: dict[str, Item] = {}
    for pn in dict.fromkeys(parts):
        item = await effective_revision(session, pn)
        if item is None:
            problems.append(
                said("%(part)s has no effective revision, so it cannot be ordered", part=pn)
            )
        else:
            items[pn] = item
    return joined_said(problems), items


async def _registered(session: AsyncSession, order: PurchaseOrder) -> RegisteredPurchase:
    rows = await session.execute(
        select(PurchaseOrderLine, Item.revision)
        .join(Item, Item.id == PurchaseOrderLine.item_id)
        .where(PurchaseOrderLine.purchase_order_id == order.id)
        .order_by(PurchaseOrderLine.line_no)
    )
    return RegisteredPurchase(
        number=order.number,
        amount=order.amount,
        currency=order.currency,
        supplier_code=await _supplier_code(session, order.supplier_id),
        lines=[
            OrderedLine(
                line_no=line.line_no,
                part_number=line.part_number,
                revision=revision,
                quantity=line.quantity,
                uom=line.uom,
            )
            for line, revision in rows
        ],
    )


# ---------------------------------------------------------------- receipts


async def _new_lot(
    session: AsyncSession, order: PurchaseOrder, line: PurchaseOrderLine, data: ReceiveGoodsInput
) -> Lot:
    goods = data.receipt
    item = await session.get_one(Item, line.item_id)
    received = said("received on %(number)s; awaiting incoming inspection", number=order.number)
    lot = Lot(
        lot_number=await next_lot_number(
            session, origin="receipt", part_number=line.part_number, on=data.received_on
        ),
        item_id=line.item_id,
        part_number=line.part_number,
        supplier_id=order.supplier_id,
        supplier_lot=goods.supplier_lot,
        quantity=goods.quantity,
        received_quantity=goods.quantity,
        uom=line.uom,
        status="QUARANTINE",
        manufactured_on=goods.manufactured_on,
        expires_on=expiry_date(
            expires_on=goods.expires_on,
            manufactured_on=goods.manufactured_on,
            received_on=data.received_on,
            shelf_life_days=item.shelf_life_days,
        ),
        origin="receipt",
        purchase_order_line_id=line.id,
        status_reason=received,
        status_changed_by=data.sent_by,
        status_process_id=data.process_id,
    )
    note_lot_reason(session, lot.lot_number, received)
    session.add(lot)
    await session.flush()
    return lot


async def _plan(session: AsyncSession, lot: Lot) -> SamplingPlan:
    asl_status = await session.scalar(
        select(AslEntry.status).where(
            AslEntry.supplier_id == lot.supplier_id, AslEntry.part_number == lot.part_number
        )
    )
    quantity = lot.received_quantity if lot.received_quantity is not None else lot.quantity
    return sampling_plan(quantity, hundred_percent=asl_status == "conditional")


async def _received_lot(
    session: AsyncSession, lot: Lot, receipt: Receipt, order: PurchaseOrder
) -> ReceivedLot:
    return ReceivedLot(
        lot_number=lot.lot_number,
        part_number=lot.part_number,
        quantity=receipt.quantity,
        uom=lot.uom,
        supplier_code=await _supplier_code(session, order.supplier_id),
        supplier_lot=lot.supplier_lot or "",
        expires_on=lot.expires_on,
        on_time=receipt.on_time,
        po_status=order.status,
        plan=await _plan(session, lot),
    )


async def _earlier_receipt(session: AsyncSession, receipt_key: str) -> ReceivedLot | None:
    receipt = await session.scalar(select(Receipt).where(Receipt.event_id == receipt_key))
    if receipt is None:
        return None
    lot = await session.get_one(Lot, receipt.lot_id)
    line = await session.get_one(PurchaseOrderLine, receipt.purchase_order_line_id)
    order = await session.get_one(PurchaseOrder, line.purchase_order_id)
    return await _received_lot(session, lot, receipt, order)


def _receiving_line(
    order: PurchaseOrder, lines: list[PurchaseOrderLine], data: ReceiveGoodsInput
) -> PurchaseOrderLine:
    """The line the goods are received against; refuses a part not ordered or too much."""
    goods = data.receipt
    if order.status in ENDED:
        raise _conflict(
            said(
                "purchase order %(number)s is %(status)s; nothing is received",
                number=order.number,
                status=order.status,
            )
        )
    line = next((ln for ln in lines if ln.part_number == goods.part_number), None)
    if line is None:
        raise _conflict(
            said(
                "%(part)s is not on purchase order %(number)s",
                part=goods.part_number,
                number=order.number,
            ),
            "Invalid",
        )
    still_open = line.quantity - line.received_quantity
    if goods.quantity > still_open:
        raise _conflict(
            said(
                "only %(open)s %(uom)s of %(part)s is still open on %(number)s; "
                "%(quantity)s is more than that",
                open=f"{still_open.normalize():f}",
                uom=line.uom,
                part=line.part_number,
                number=order.number,
                quantity=f"{goods.quantity.normalize():f}",
            )
        )
    return line


# ---------------------------------------------------------------- inspection


def verdict(data: RecordInspectionInput) -> InspectionVerdict:
    """The inspection's outcome: a fail whenever the defects exceed the accept number, or fewer
    were inspected than the plan requires, whatever the inspector chose."""
    plan = data.plan
    if data.defects > plan.accept_number:
        reason = said(
            "%(defects)s defective in a sample of %(sample)s: more than the accept number "
            "%(accept)s",
            defects=data.defects,
            sample=data.sample_size,
            accept=plan.accept_number,
        )
        if data.chosen_outcome == "pass":
            reason = said(
                "%(problem)s (recorded as a fail although 'pass' was chosen)", problem=reason
            )
        elif data.reason:  # the inspector's own words first, as typed
            reason = said("%(why)s (%(problem)s)", why=data.reason, problem=reason)
        return _failed(reason)
    if data.chosen_outcome == "fail":
        return InspectionVerdict(outcome="fail", reason=data.reason)
    if data.sample_size < plan.sample_size:
        return _failed(
            said(
                "only %(sample)s inspected where the plan requires %(required)s",
                sample=data.sample_size,
                required=plan.sample_size,
            )
        )
    return InspectionVerdict(outcome="pass")


def _failed(reason: Said) -> InspectionVerdict:
    """A fail for a sample problem of ours: the English, and its wording for the workflow."""
    return InspectionVerdict(outcome="fail", reason=reason, reason_wording=wording(reason))


class PurchaseActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_purchase,
            self.route_purchase_approval,
            self.set_purchase_status,
            self.check_purchase_supplier,
            self.change_purchase_supplier,
            self.issue_purchase_order,
            self.confirm_purchase_order,
            self.record_advance_ship_notice,
            self.receive_goods,
            self.record_incoming_inspection,
            self.set_purchased_lot_status,
        ]

    @activity.defn(name="register_purchase")
    async def register_purchase(self, data: RegisterPurchaseInput) -> RegisteredPurchase:
        """The requisition as a purchase order (status requisition) with its lines, each of the
        part's effective revision. Refuses (non-retryable, type PurchaseRefused, details: the PO
        number) a requisition that cannot be ordered, after recording it as rejected."""
        async with self._sessions() as session, session.begin():
            refusal = await self._earlier_refusal(session, data.process_id)
            if refusal is None:
                order = await _order_of(session, data.process_id)
                if order is not None:
                    return await _registered(session, order)
                registered = await self._register(session, data)
                if isinstance(registered, RegisteredPurchase):
                    return registered
                refusal = registered
        # details: the PO number (what older workflows read), then the reason's wording
        raise ApplicationError(
            refusal.reason,
            refusal.number,
            wording(refusal.reason),
            type="PurchaseRefused",
            non_retryable=True,
        )

    @staticmethod
    async def _earlier_refusal(session: AsyncSession, process_id: str) -> Refusal | None:
        earlier = await recorded(session, f"{process_id}:refused")
        if earlier is None:
            return None
        spoken = (earlier.after or {}).get("reason_wording")
        return Refusal(earlier.entity_id, said_again(spoken, earlier.reason))

    @staticmethod
    async def _register(
        session: AsyncSession, data: RegisterPurchaseInput
    ) -> RegisteredPurchase | Refusal:
        request, pid = data.request, data.process_id
        supplier = await session.scalar(
            select(Supplier).where(Supplier.code == request.supplier_code)
        )
        problem, items = await _registration_refusal(session, request, supplier)
        number = await next_number(session, "PO", PO_NUMBER)
        amount = order_amount(request.lines)
        if supplier is not None:
            customer_order = await find_customer_order(session, request.customer_order)
            order = PurchaseOrder(
                number=number,
                supplier_id=supplier.id,
                status="rejected" if problem else "requisition",
                process_id=pid,
                requested_by=request.requester or None,
                amount=amount,
                currency="EUR",
                due_on=request.due_on,
                customer_order_id=customer_order.id if customer_order else None,
            )
            session.add(order)
            await session.flush()
            if not problem:
                for no, line in enumerate(request.lines, start=1):
                    session.add(
                        PurchaseOrderLine(
                            purchase_order_id=order.id,
                            line_no=no,
                            part_number=line.part_number,
                            item_id=items[line.part_number].id,
                            quantity=line.quantity,
                            unit_price=line.unit_price,
                            uom=await unit_of_measure(session, line.part_number),
                            due_on=request.due_on,
                        )
                    )
        await _audit(
            session,
            actor=request.requester,
            action="purchase.requested",
            entity_id=number,
            key=f"{pid}:requested",
            after=request.model_dump(mode="json") | {"amount": str(amount), "currency": "EUR"},
        )
        if problem:
            await _audit(
                session,
                actor="system",
                action="purchase.rejected",
                entity_id=number,
                key=f"{pid}:refused",
                outcome="refused",
                reason=problem,
                after={"status": "rejected"},
            )
            return Refusal(number, problem)
        return await _registered(session, order)

    @activity.defn(name="route_purchase_approval")
    async def route_purchase_approval(self, data: ApprovalRouteInput) -> ApprovalRoute:
        async with self._sessions() as session:
            return ApprovalRoute(
                groups=await approver_groups(session, data.amount),
                levels=await doa_levels(session),
            )

    @activity.defn(name="set_purchase_status")
    async def set_purchase_status(self, data: SetPurchaseStatusInput) -> None:
        """approved, rejected, closed or cancelled: once each; an ended order stays ended."""
        key = f"{data.process_id}:status:{data.status}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            order = await _order_of(session, data.process_id)
            if order is None or order.status in ENDED:
                return  # cancelled before it was registered, or it ended first
            before = order.status
            order.status = data.status
            now = await database_now(session)
            if data.status == "approved":
                order.approved_at = now
            if data.status in ENDED:
                order.closed_at = now
            await _audit(
                session,
                actor=data.actor,
                action=f"purchase.{data.status}",
                entity_id=order.number,
                key=key,
                reason=said_again(data.reason_wording, data.reason),
                before={"status": before},
                after={"status": data.status}
                | ({"approvers": data.approvers} if data.approvers else {}),
            )

    @activity.defn(name="check_purchase_supplier")
    async def check_purchase_supplier(self, data: SupplierCheckInput) -> SupplierCheck:
        """May the order's supplier deliver every line's part, as of the workflow's date?"""
        key = f"{data.process_id}:supplier-check:{data.attempt}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded(session, key)
            if earlier is not None:
                refused = earlier.outcome == "refused"
                return SupplierCheck(
                    supplier_code=(earlier.after or {}).get("supplier_code", ""),
                    refusal=earlier.reason if refused else "",
                    refusal_wording=(earlier.after or {}).get("reason_wording")
                    if refused
                    else None,
                )
            order = await _order_of(session, data.process_id)
            assert order is not None
            code = await _supplier_code(session, order.supplier_id)
            problems: list[str] = []
            for line in await _lines(session, order):
                for problem in (
                    await supplier_refusal(
                        session, supplier_code=code, part_number=line.part_number, on=data.on
                    ),
                    await revision_refusal(session, line.item_id),
                ):
                    if problem and problem not in problems:
                        problems.append(problem)
            refusal = joined_said(problems)  # each rule's said(…), `a; b` as before
            await _audit(
                session,
                actor="system",
                action="purchase.supplier_checked",
                entity_id=order.number,
                key=key,
                outcome="refused" if refusal else "ok",
                reason=refusal,
                after={"supplier_code": code, "on": data.on.isoformat()},
            )
            return SupplierCheck(
                supplier_code=code,
                refusal=refusal,
                refusal_wording=wording(refusal) if isinstance(refusal, Said) else None,
            )

    @activity.defn(name="change_purchase_supplier")
    async def change_purchase_supplier(self, data: ChangeSupplierInput) -> SupplierChange:
        """Give the order to another supplier; answers why not ('' when changed), with its
        wording (a repeat reads it from the refused row's after["reason_wording"])."""
        key = f"{data.process_id}:supplier-change:{data.attempt}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded(session, key)
            if earlier is not None:
                if earlier.outcome != "refused":
                    return SupplierChange()
                return SupplierChange(
                    problem=earlier.reason or "",
                    problem_wording=(earlier.after or {}).get("reason_wording"),
                )
            order = await _order_of(session, data.process_id)
            assert order is not None
            before = await _supplier_code(session, order.supplier_id)
            supplier = await session.scalar(
                select(Supplier).where(Supplier.code == data.supplier_code)
            )
            problem = (
                ""
                if supplier
                else said("supplier %(supplier)s is not known", supplier=data.supplier_code)
            )
            if supplier is not None:
                order.supplier_id = supplier.id
            await _audit(
                session,
                actor=data.changed_by,
                action="purchase.supplier_changed",
                entity_id=order.number,
                key=key,
                outcome="refused" if problem else "ok",
                reason=problem or data.note,
                before={"supplier_code": before},
                after={"supplier_code": data.supplier_code},
            )
            return SupplierChange(problem=problem, problem_wording=reason_wording(problem))

    @activity.defn(name="issue_purchase_order")
    async def issue_purchase_order(self, data: IssuePurchaseOrderInput) -> None:
        """Status issued, and the order to the supplier through the outbox."""
        key = f"{data.process_id}:issued"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            order = await _order_of(session, data.process_id)
            if order is None or order.status in ENDED:
                return
            before = order.status
            order.status, order.issued_at = "issued", await database_now(session)
            code = await _supplier_code(session, order.supplier_id)
            session.add(await self._order_message(session, order, code))
            await _audit(
                session,
                actor="system",
                action="purchase.issued",
                entity_id=order.number,
                key=key,
                before={"status": before},
                after={"status": "issued", "supplier_code": code, "outbox": f"supplier:{code}"},
            )

    @staticmethod
    async def _order_message(session: AsyncSession, order: PurchaseOrder, code: str) -> Outbox:
        rows = await session.execute(
            select(PurchaseOrderLine, Item.revision)
            .join(Item, Item.id == PurchaseOrderLine.item_id)
            .where(PurchaseOrderLine.purchase_order_id == order.id)
            .order_by(PurchaseOrderLine.line_no)
        )
        lines = [
            {
                "line_no": line.line_no,
                "part_number": line.part_number,
                "revision": revision,
                "quantity": str(line.quantity.normalize()),
                "uom": line.uom,
                "unit_price": str(line.unit_price),
            }
            for line, revision in rows
        ]
        due = order.due_on.isoformat() if order.due_on else "as agreed"
        body = "\n".join(
            [f"Purchase order {order.number}, due {due}, total {order.amount} {order.currency}:"]
            + [
                f"{x['line_no']}. {x['part_number']} rev {x['revision']}: {x['quantity']} "
                f"{x['uom']} at {x['unit_price']} {order.currency}"
                for x in lines
            ]
        )
        return Outbox(
            channel="email",
            recipient=f"supplier:{code}",
            subject=f"Purchase order {order.number}",
            body=body,
            payload={
                "event": "purchase_order.issued",
                "number": order.number,
                "supplier_code": code,
                "due_on": order.due_on.isoformat() if order.due_on else None,
                "amount": str(order.amount),
                "currency": order.currency,
                "lines": lines,
            },
        )

    @activity.defn(name="confirm_purchase_order")
    async def confirm_purchase_order(self, data: ConfirmPurchaseInput) -> None:
        """event supplier-confirmed: the promised date and the supplier's reference."""
        key = f"{data.process_id}:event:{data.event_id}"
        confirmation = data.confirmation
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            order = await _ongoing_order(session, data.process_id)
            before = {
                "status": order.status,
                "promised_on": order.promised_on.isoformat() if order.promised_on else None,
                "supplier_reference": order.supplier_reference,
            }
            order.promised_on = confirmation.promised_on
            order.supplier_reference = confirmation.supplier_reference or order.supplier_reference
            if order.status == "issued":
                order.status = "confirmed"
            await _audit(
                session,
                actor=data.sent_by,
                action="purchase.confirmed",
                entity_id=order.number,
                key=key,
                before=before,
                after={
                    "status": order.status,
                    "promised_on": confirmation.promised_on.isoformat(),
                    "supplier_reference": order.supplier_reference,
                    "event_id": data.event_id,
                },
            )

    @activity.defn(name="record_advance_ship_notice")
    async def record_advance_ship_notice(self, data: RecordAsnInput) -> None:
        """event asn: the supplier shipped; the goods are expected on a date."""
        key = f"{data.process_id}:event:{data.event_id}"
        notice = data.notice
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            order = await _ongoing_order(session, data.process_id)
            before = {"asn_reference": order.asn_reference}
            order.asn_reference = notice.asn_reference
            await _audit(
                session,
                actor=data.sent_by,
                action="purchase.asn",
                entity_id=order.number,
                key=key,
                before=before,
                after=notice.model_dump(mode="json") | {"event_id": data.event_id},
            )

    @activity.defn(name="receive_goods")
    async def receive_goods(self, data: ReceiveGoodsInput) -> ReceivedLot:
        """event goods-received: one lot in QUARANTINE, its receipt and receipt movement, the
        line's received quantity, the order's status and the supplier's scorecard, together."""
        key = f"{data.process_id}:event:{data.event_id}"
        receipt_key = _receipt_key(data.process_id, data.event_id)
        async with self._sessions() as session, session.begin():
            earlier = await _earlier_receipt(session, receipt_key)
            if earlier is not None:
                return earlier
            order = await _order_of(session, data.process_id)
            assert order is not None
            lines = await _lines(session, order)
            line = _receiving_line(order, lines, data)
            lot = await _new_lot(session, order, line, data)
            await move(
                session,
                lot,
                kind="receipt",
                quantity=data.receipt.quantity,
                reference=order.number,
                actor=data.sent_by,
                process_id=data.process_id,
                idempotency_key=f"{key}:receipt",
            )
            receipt = await self._receipt(session, order, line, lot, data, receipt_key)
            line.received_quantity += data.receipt.quantity
            before = order.status
            complete = all(ln.received_quantity >= ln.quantity for ln in lines)
            order.status = "received" if complete else "partially_received"
            await count_receipt(session, supplier_id=order.supplier_id, on_time=receipt.on_time)
            received = await _received_lot(session, lot, receipt, order)
            await _audit(
                session,
                actor=data.sent_by,
                action="purchase.goods_received",
                entity_id=order.number,
                key=key,
                before={"status": before},
                after={
                    "status": order.status,
                    "lot_number": lot.lot_number,
                    "part_number": lot.part_number,
                    "quantity": str(data.receipt.quantity),
                    "supplier_lot": data.receipt.supplier_lot,
                    "expires_on": lot.expires_on.isoformat() if lot.expires_on else None,
                    "on_time": receipt.on_time,
                    "event_id": data.event_id,
                },
            )
            return received

    @staticmethod
    async def _receipt(
        session: AsyncSession,
        order: PurchaseOrder,
        line: PurchaseOrderLine,
        lot: Lot,
        data: ReceiveGoodsInput,
        receipt_key: str,
    ) -> Receipt:
        receipt = Receipt(
            purchase_order_line_id=line.id,
            lot_id=lot.id,
            quantity=data.receipt.quantity,
            received_by=data.sent_by,
            on_time=is_on_time(
                data.received_on, promised_on=order.promised_on, due_on=order.due_on
            ),
            asn_reference=order.asn_reference,
            gs1=data.receipt.gs1,
            process_id=data.process_id,
            event_id=receipt_key,
        )
        session.add(receipt)
        await session.flush()
        return receipt

    @activity.defn(name="record_incoming_inspection")
    async def record_incoming_inspection(self, data: RecordInspectionInput) -> InspectionVerdict:
        """The inspection (kind incoming) with its plan and results, and the scorecard."""
        key = f"{data.process_id}:inspection:{data.lot_number}"
        async with self._sessions() as session, session.begin():
            earlier = await session.scalar(
                select(Inspection).where(Inspection.idempotency_key == key)
            )
            if earlier is not None:
                return InspectionVerdict(
                    outcome=earlier.outcome,
                    reason=earlier.results.get("reason", ""),
                    reason_wording=earlier.results.get("reason_wording"),
                )
            lot = await session.scalar(
                select(Lot).where(Lot.lot_number == data.lot_number).with_for_update()
            )
            assert lot is not None
            found = verdict(data)
            session.add(
                Inspection(
                    lot_id=lot.id,
                    kind="incoming",
                    sample_size=data.sample_size,
                    accept_number=data.plan.accept_number,
                    defects=data.defects,
                    results={
                        "plan": data.plan.model_dump(mode="json"),
                        "measurements": data.measurements,
                        "chosen_outcome": data.chosen_outcome,
                        "inspector_reason": data.reason,
                        "reason": found.reason,
                    }
                    | ({"reason_wording": found.reason_wording} if found.reason_wording else {}),
                    outcome=found.outcome,
                    inspector=data.inspector,
                    process_id=data.process_id,
                    idempotency_key=key,
                )
            )
            if lot.supplier_id is not None:
                await count_inspection(
                    session, supplier_id=lot.supplier_id, accepted=found.outcome == "pass"
                )
            await _audit(
                session,
                actor=data.inspector,
                action="lot.inspected",
                entity_type="lot",
                entity_id=lot.lot_number,
                key=key,
                reason=said_again(found.reason_wording, found.reason),
                after={
                    "kind": "incoming",
                    "outcome": found.outcome,
                    "sample_size": data.sample_size,
                    "defects": data.defects,
                    "accept_number": data.plan.accept_number,
                },
            )
            return found

    @activity.defn(name="set_purchased_lot_status")
    async def set_purchased_lot_status(self, data: SetLotStatusInput) -> None:
        """Release or hold a received lot through the lot status machine; a refusal by the
        machine is non-retryable (type LotRefused) with the database's reason."""
        key = f"{data.process_id}:lot:{data.lot_number}:{data.step}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            lot = await session.scalar(
                select(Lot).where(Lot.lot_number == data.lot_number).with_for_update()
            )
            assert lot is not None
            before = lot.status
            reason = said_again(data.reason_wording, data.reason)
            await change_lot_status(
                session,
                lot,
                data.status,
                reason=reason,
                actor=data.actor,
                process_id=data.process_id,
            )
            await _audit(
                session,
                actor=data.actor,
                action=LOT_ACTIONS.get(data.status, "lot.status_changed"),
                entity_type="lot",
                entity_id=lot.lot_number,
                key=key,
                reason=reason,
                before={"status": before},
                after={"status": data.status},
            )
