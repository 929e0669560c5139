"""Lot and supplier pages: finding a lot by its number or label, a lot with its status history,
movements, genealogy both ways and where it went; suppliers with scorecard, certificates and
approved-supplier-list entries. They only read the ERP; erp/trace.py answers the genealogy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import DbSession
from api.errors import Message, not_found
from erp import trace
from erp.gs1 import Gs1Error
from erp.master_data import (
    AslEntry,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    Supplier,
    SupplierCertificate,
    WorkOrder,
)
from erp.models import Process
from erp.supply import (
    Inspection,
    InventoryMovement,
    LotStatusChange,
    Receipt,
    SerialNumber,
    Shipment,
    SupplierScorecard,
)
from schemas.supply import TraceResult
from ui import reason_text
from ui.pages import User, lot_url, render

router = APIRouter(include_in_schema=False)

SERIALS_SHOWN = 50
LOTS_SHOWN = 100
LOT_STATUS_ORDER = (
    "QUARANTINE",
    "RELEASED",
    "ON_HOLD",
    "REJECTED",
    "CONSUMED",
    "SHIPPED",
    "RECALLED",
    "EXPIRED",
)


# ---------------------------------------------------------------- reads other pages share


async def first_serials(
    session: AsyncSession, query: Select[SerialNumber]
) -> tuple[list[SerialNumber], int]:
    """The first serials of a query (by number) and how many it has in all."""
    count = await session.scalar(select(func.count()).select_from(query.subquery()))
    shown = await session.scalars(query.order_by(SerialNumber.serial).limit(SERIALS_SHOWN))
    return list(shown), int(count or 0)


async def inspections_of(session: AsyncSession, lot_ids: list[int]) -> list[tuple[Inspection, str]]:
    """The inspections of these lots, each with its lot number, oldest first."""
    if not lot_ids:
        return []
    rows = await session.execute(
        select(Inspection, Lot.lot_number)
        .join(Lot, Lot.id == Inspection.lot_id)
        .where(Inspection.lot_id.in_(lot_ids))
        .order_by(Inspection.id)
    )
    return [(i, n) for i, n in rows.all()]


# ---------------------------------------------------------------- the lots


@router.get("/lots", response_class=HTMLResponse)
async def lots(
    request: Request,
    user: User,
    session: DbSession,
    q: str = "",
    part: str = "",
    status: str = "",
) -> Response:
    q = q.strip()[:200]
    error = ""
    if q:
        try:
            lot, serial = await trace.resolve_lot_reference(session, q)
        except (trace.LotNotFound, trace.AmbiguousLotReference, Gs1Error) as err:
            error = err.message  # keeps its template: the page shows it in the reader's language
        else:
            target = lot_url(lot.lot_number) + (f"?serial={quote(serial)}" if serial else "")
            return RedirectResponse(target, status_code=303)
    return render(
        request,
        "supply_lots.html",
        lots=await _newest_lots(session, part=part.strip().upper()[:40], status=status[:20]),
        q=q,
        part=part,
        status=status,
        error=error,
        statuses=LOT_STATUS_ORDER,
    )


async def _newest_lots(session: AsyncSession, *, part: str, status: str) -> list[Lot]:
    query = select(Lot)
    if part:
        query = query.where(Lot.part_number == part)
    if status:
        query = query.where(Lot.status == status)
    newest = query.order_by(Lot.created_at.desc(), Lot.id.desc()).limit(LOTS_SHOWN)
    return list(await session.scalars(newest))


@dataclass
class LotView:
    lot: Lot
    item: Item
    supplier: Supplier | None
    receipt: Receipt | None
    purchase_order: PurchaseOrder | None
    work_order: WorkOrder | None
    history: list[LotStatusChange]
    movements: list[InventoryMovement]
    inspections: list[tuple[Inspection, str]]
    forward: TraceResult
    backward: TraceResult
    serials: list[SerialNumber]
    serial_count: int
    processes: dict[str, str] = field(default_factory=dict)  # process id → kind
    shipment_pages: dict[str, str] = field(default_factory=dict)  # shipment number → process id


async def lot_view(session: AsyncSession, lot: Lot, *, serial: str = "") -> LotView:
    item = await session.get_one(Item, lot.item_id)
    movements = await _movements(session, lot)
    forward = await trace.trace_lot(session, lot.lot_number, "forward")
    serials, count = await _serials_marking(session, lot, serial)
    return LotView(
        lot=lot,
        item=item,
        supplier=await session.get(Supplier, lot.supplier_id) if lot.supplier_id else None,
        receipt=await session.scalar(select(Receipt).where(Receipt.lot_id == lot.id)),
        purchase_order=await _purchase_order_of(session, lot),
        work_order=await session.get(WorkOrder, lot.work_order_id) if lot.work_order_id else None,
        history=await _history(session, lot),
        movements=movements,
        inspections=await inspections_of(session, [lot.id]),
        forward=forward,
        backward=await trace.trace_lot(session, lot.lot_number, "backward"),
        serials=serials,
        serial_count=count,
        processes=await _kinds_of(session, [m.process_id for m in movements if m.process_id]),
        shipment_pages=await _shipment_pages(session, [s.shipment for s in forward.shipments]),
    )


async def _movements(session: AsyncSession, lot: Lot) -> list[InventoryMovement]:
    query = select(InventoryMovement).where(InventoryMovement.lot_id == lot.id)
    return list(await session.scalars(query.order_by(InventoryMovement.id)))


async def _history(session: AsyncSession, lot: Lot) -> list[LotStatusChange]:
    query = select(LotStatusChange).where(LotStatusChange.lot_id == lot.id)
    return list(await session.scalars(query.order_by(LotStatusChange.id)))


async def _serials_marking(
    session: AsyncSession, lot: Lot, serial: str
) -> tuple[list[SerialNumber], int]:
    """The lot's first serials, plus the one a label was scanned for when it is further down."""
    of_lot = select(SerialNumber).where(SerialNumber.lot_id == lot.id)
    serials, count = await first_serials(session, of_lot)
    if serial and serial not in {s.serial for s in serials}:
        found = await session.scalar(of_lot.where(SerialNumber.serial == serial))
        serials += [found] if found else []
    return serials, count


async def _purchase_order_of(session: AsyncSession, lot: Lot) -> PurchaseOrder | None:
    if not lot.purchase_order_line_id:
        return None
    return await session.scalar(
        select(PurchaseOrder)
        .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .where(PurchaseOrderLine.id == lot.purchase_order_line_id)
    )


async def _kinds_of(session: AsyncSession, process_ids: list[str]) -> dict[str, str]:
    if not process_ids:
        return {}
    rows = await session.execute(
        select(Process.id, Process.kind).where(Process.id.in_(set(process_ids)))
    )
    return {pid: kind for pid, kind in rows.all()}


async def _shipment_pages(session: AsyncSession, numbers: list[str]) -> dict[str, str]:
    if not numbers:
        return {}
    rows = await session.execute(
        select(Shipment.number, Shipment.process_id).where(
            Shipment.number.in_(set(numbers)), Shipment.process_id.is_not(None)
        )
    )
    return {number: str(pid) for number, pid in rows.all()}


@router.get("/lots/{lot_number}", response_class=HTMLResponse)
async def lot_page(
    lot_number: str, request: Request, user: User, session: DbSession, serial: str = ""
) -> Response:
    lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number[:60]))
    if lot is None:
        raise not_found(Message("Lot %(lot_number)s", lot_number=lot_number[:60]))
    view = await lot_view(session, lot, serial=serial[:40])
    changed_by = [h.process_id for h in view.history] + [lot.status_process_id]
    return render(
        request,
        "lot.html",
        v=view,
        serial=serial[:40],
        lot_reasons=await reason_text.lot_reasons(session, lot.lot_number, changed_by),
    )


# ---------------------------------------------------------------- suppliers


@dataclass
class SupplierRow:
    supplier: Supplier
    scorecard: SupplierScorecard | None
    certificates: list[SupplierCertificate]

    @property
    def certificate_expired(self) -> bool:
        today = datetime.now(UTC).date()
        return bool(self.certificates) and all(c.expires_on < today for c in self.certificates)


async def _supplier_rows(session: AsyncSession, code: str | None = None) -> list[SupplierRow]:
    query = (
        select(Supplier, SupplierScorecard)
        .outerjoin(SupplierScorecard, SupplierScorecard.supplier_id == Supplier.id)
        .order_by(Supplier.code)
    )
    if code is not None:
        query = query.where(Supplier.code == code)
    found = (await session.execute(query)).all()
    certificates = await _certificates(session, [s.id for s, _ in found])
    return [SupplierRow(s, card, certificates.get(s.id, [])) for s, card in found]


async def _certificates(
    session: AsyncSession, supplier_ids: list[int]
) -> dict[int, list[SupplierCertificate]]:
    rows = await session.scalars(
        select(SupplierCertificate)
        .where(SupplierCertificate.supplier_id.in_(supplier_ids))
        .order_by(SupplierCertificate.expires_on)
    )
    by_supplier: dict[int, list[SupplierCertificate]] = {}
    for certificate in rows:
        by_supplier.setdefault(certificate.supplier_id, []).append(certificate)
    return by_supplier


@router.get("/suppliers", response_class=HTMLResponse)
async def suppliers(request: Request, user: User, session: DbSession) -> Response:
    return render(
        request,
        "supply_suppliers.html",
        rows=await _supplier_rows(session),
        today=datetime.now(UTC).date(),
    )


@router.get("/suppliers/{code}", response_class=HTMLResponse)
async def supplier_page(code: str, request: Request, user: User, session: DbSession) -> Response:
    rows = await _supplier_rows(session, code[:20])
    if not rows:
        raise not_found(Message("Supplier %(id)s", id=code[:20]))
    supplier = rows[0].supplier
    return render(
        request,
        "supplier.html",
        row=rows[0],
        asl=await _asl(session, supplier),
        receipts=await _recent_receipts(session, supplier),
        lots=await _recent_lots(session, supplier),
        today=datetime.now(UTC).date(),
    )


async def _asl(session: AsyncSession, supplier: Supplier) -> list[AslEntry]:
    query = select(AslEntry).where(AslEntry.supplier_id == supplier.id)
    return list(await session.scalars(query.order_by(AslEntry.part_number)))


async def _recent_receipts(session: AsyncSession, supplier: Supplier) -> list[Any]:
    """The supplier's last 20 receipts, each as (receipt, lot, purchase order)."""
    rows = await session.execute(
        select(Receipt, Lot, PurchaseOrder)
        .join(Lot, Lot.id == Receipt.lot_id)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(PurchaseOrder.supplier_id == supplier.id)
        .order_by(Receipt.received_at.desc(), Receipt.id.desc())
        .limit(20)
    )
    return list(rows.all())


async def _recent_lots(session: AsyncSession, supplier: Supplier) -> list[Lot]:
    query = select(Lot).where(Lot.supplier_id == supplier.id)
    newest = query.order_by(Lot.created_at.desc(), Lot.id.desc()).limit(20)
    return list(await session.scalars(newest))
