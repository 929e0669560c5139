"""Lots, suppliers and customers as the API and the pages read them: lot lists and facts, the
trace, supplier scorecards, certificates and ASL entries."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ApiError, Message, not_found
from api.security import Principal
from erp.gs1 import Gs1Error
from erp.master_data import (
    LOT_STATUSES,
    AslEntry,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    Supplier,
    SupplierCertificate,
    WorkOrder,
)
from erp.supply import (
    Customer,
    Inspection,
    InventoryMovement,
    LotStatusChange,
    Receipt,
    SerialNumber,
    SupplierScorecard,
)
from erp.trace import AmbiguousLotReference, LotNotFound, resolve_lot_reference, trace_lot
from schemas.api import (
    AslEntryOut,
    CertificateOut,
    CustomerOut,
    InspectionOut,
    LotDetail,
    LotOut,
    LotStatusChangeOut,
    MovementOut,
    ReceiptOut,
    SupplierDetail,
    SupplierOut,
    SupplierScorecardOut,
)
from schemas.supply import TraceResult

READ_SCOPE = "lots:read"


async def find_lot(session: AsyncSession, reference: str) -> tuple[Lot, str | None]:
    """A lot by number or GS1/UDI string, as API errors: 422 unreadable, 404 unknown."""
    try:
        return await resolve_lot_reference(session, reference)
    except Gs1Error as err:
        raise ApiError(422, err.message) from None
    except AmbiguousLotReference as err:
        raise ApiError(422, err.message) from None
    except LotNotFound as err:
        raise ApiError(404, err.message) from None


def _lot_query() -> Select[Lot, Item, str | None]:
    return (
        select(Lot, Item, Supplier.code)
        .join(Item, Item.id == Lot.item_id)
        .outerjoin(Supplier, Supplier.id == Lot.supplier_id)
    )


def _lot_out(lot: Lot, item: Item, supplier_code: str | None) -> LotOut:
    return LotOut(
        lot_number=lot.lot_number,
        part_number=lot.part_number,
        revision=item.revision,
        description=item.description,
        status=lot.status,
        quantity=lot.quantity,
        uom=lot.uom,
        supplier_code=supplier_code,
        supplier_lot=lot.supplier_lot,
        manufactured_on=lot.manufactured_on,
        expires_on=lot.expires_on,
        hold_reason=lot.hold_reason,
        origin=lot.origin,
        created_at=lot.created_at,
    )


async def list_lots(
    *,
    session: AsyncSession,
    principal: Principal,
    part_number: str | None,
    status: str | None,
    supplier: str | None,
    limit: int,
    offset: int,
) -> tuple[list[LotOut], int]:
    principal.require(READ_SCOPE)
    query = _lot_query()
    if part_number:
        query = query.where(Lot.part_number == part_number)
    if status:
        if status.upper() not in LOT_STATUSES:
            raise ApiError(
                422,
                "%(name)s is one of %(choices)s, not %(given)r",
                name="status",
                choices=", ".join(LOT_STATUSES),
                given=status,
            )
        query = query.where(Lot.status == status.upper())
    if supplier:
        query = query.where(Supplier.code == supplier)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(Lot.created_at.desc(), Lot.id.desc()).limit(limit).offset(offset)
    )
    return [_lot_out(*row) for row in rows.tuples()], int(total or 0)


async def lot_detail(*, session: AsyncSession, principal: Principal, reference: str) -> LotDetail:
    """A lot's facts: status history, movements, receipt, inspections, serials."""
    principal.require(READ_SCOPE)
    lot, serial = await find_lot(session, reference)
    row = (await session.execute(_lot_query().where(Lot.id == lot.id))).tuples().one()
    history = await session.scalars(
        select(LotStatusChange)
        .where(LotStatusChange.lot_id == lot.id)
        .order_by(LotStatusChange.changed_at, LotStatusChange.id)
    )
    movements = await session.scalars(
        select(InventoryMovement)
        .where(InventoryMovement.lot_id == lot.id)
        .order_by(InventoryMovement.created_at, InventoryMovement.id)
    )
    inspections = await session.scalars(
        select(Inspection).where(Inspection.lot_id == lot.id).order_by(Inspection.id)
    )
    serials = await session.scalar(
        select(func.count()).select_from(SerialNumber).where(SerialNumber.lot_id == lot.id)
    )
    work_order = (
        await session.scalar(select(WorkOrder.number).where(WorkOrder.id == lot.work_order_id))
        if lot.work_order_id
        else None
    )
    receipt = await _receipt(session, lot)
    return LotDetail(
        **_lot_out(*row).model_dump(),
        serial=serial,
        purchase_order=receipt.purchase_order if receipt else await _purchase_order(session, lot),
        work_order=work_order,
        status_history=[
            LotStatusChangeOut.model_validate(h, from_attributes=True) for h in history
        ],
        movements=[MovementOut.model_validate(m, from_attributes=True) for m in movements],
        receipt=receipt,
        inspections=[InspectionOut.model_validate(i, from_attributes=True) for i in inspections],
        serials=int(serials or 0),
    )


async def _receipt(session: AsyncSession, lot: Lot) -> ReceiptOut | None:
    found = (
        await session.execute(
            select(Receipt, PurchaseOrderLine.line_no, PurchaseOrder.number)
            .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(Receipt.lot_id == lot.id)
        )
    ).first()
    if found is None:
        return None
    receipt, line_no, number = found
    return ReceiptOut(
        purchase_order=number,
        line_no=line_no,
        quantity=receipt.quantity,
        received_by=receipt.received_by,
        received_at=receipt.received_at,
        on_time=receipt.on_time,
        asn_reference=receipt.asn_reference,
        gs1=receipt.gs1,
        process_id=receipt.process_id,
    )


async def _purchase_order(session: AsyncSession, lot: Lot) -> str | None:
    if lot.purchase_order_line_id is None:
        return None
    return await session.scalar(
        select(PurchaseOrder.number)
        .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .where(PurchaseOrderLine.id == lot.purchase_order_line_id)
    )


async def lot_trace(
    *, session: AsyncSession, principal: Principal, reference: str, direction: str
) -> TraceResult:
    """The trace of the lot a lot number or GS1/UDI string names; a serial is kept in the answer."""
    principal.require(READ_SCOPE)
    if direction not in ("forward", "backward"):
        raise ApiError(422, "direction is forward or backward, not %(given)r", given=direction)
    lot, serial = await find_lot(session, reference)
    trace = await trace_lot(session, lot.lot_number, direction)
    return trace.model_copy(update={"serial": serial})


# ---------------------------------------------------------------- suppliers and customers


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _supplier_out(supplier: Supplier, card: SupplierScorecard | None) -> SupplierOut:
    return SupplierOut(
        code=supplier.code,
        name=supplier.name,
        country=supplier.country,
        status=supplier.status,
        on_time_pct=_pct(card.on_time_receipts, card.receipts) if card else None,
        acceptance_pct=_pct(card.accepted_inspections, card.inspections) if card else None,
    )


async def list_suppliers(*, session: AsyncSession, principal: Principal) -> list[SupplierOut]:
    principal.require(READ_SCOPE)
    rows = await session.execute(
        select(Supplier, SupplierScorecard)
        .outerjoin(SupplierScorecard, SupplierScorecard.supplier_id == Supplier.id)
        .order_by(Supplier.code)
    )
    return [_supplier_out(s, card) for s, card in rows.tuples()]


async def supplier_detail(
    *, session: AsyncSession, principal: Principal, code: str
) -> SupplierDetail:
    """Scorecard (on-time and acceptance rates), certificates (expired or not), ASL entries."""
    principal.require(READ_SCOPE)
    supplier = await session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None:
        raise not_found(Message("Supplier %(id)s", id=code))
    card = await session.get(SupplierScorecard, supplier.id)
    today = await session.scalar(select(func.current_date()))
    certificates = await session.scalars(
        select(SupplierCertificate)
        .where(SupplierCertificate.supplier_id == supplier.id)
        .order_by(SupplierCertificate.expires_on.desc())
    )
    asl = await session.scalars(
        select(AslEntry).where(AslEntry.supplier_id == supplier.id).order_by(AslEntry.part_number)
    )
    receipts, on_time = (card.receipts, card.on_time_receipts) if card else (0, 0)
    inspections, accepted = (card.inspections, card.accepted_inspections) if card else (0, 0)
    return SupplierDetail(
        **_supplier_out(supplier, card).model_dump(),
        scorecard=SupplierScorecardOut(
            receipts=receipts,
            on_time_receipts=on_time,
            on_time_pct=_pct(on_time, receipts),
            inspections=inspections,
            accepted_inspections=accepted,
            acceptance_pct=_pct(accepted, inspections),
            scars=card.scars if card else 0,
            updated_at=card.updated_at if card else None,
        ),
        certificates=[
            CertificateOut(
                kind=c.kind,
                number=c.number,
                expires_on=c.expires_on,
                expired=today is not None and c.expires_on < today,
            )
            for c in certificates
        ],
        asl=[AslEntryOut.model_validate(a, from_attributes=True) for a in asl],
    )


async def list_customers(*, session: AsyncSession, principal: Principal) -> list[CustomerOut]:
    principal.require(READ_SCOPE)
    rows = await session.scalars(select(Customer).order_by(Customer.code))
    return [CustomerOut.model_validate(c, from_attributes=True) for c in rows]
