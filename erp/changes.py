"""Change control on the ERP: check a request against master data, compute its impact, and
apply its actions atomically (each master-data change audited with before and after)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.audit import AuditRecord, append_audit
from erp.master_data import (
    IN_STOCK_LOT_STATUSES,
    OPEN_PO_STATUSES,
    OPEN_WO_STATUSES,
    AslEntry,
    BomLine,
    Document,
    DocumentItem,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    RoutingStep,
    Supplier,
    WorkOrder,
)
from schemas.change_control import ActionKind, ChangeContent, ImpactLine, ImpactList, ProposedAction
from schemas.wording import said


async def problems_in(session: AsyncSession, content: ChangeContent) -> list[str]:
    """What in the request does not match the ERP (unknown parts, documents, suppliers): each a
    `Said` (erp does not import api), so the refusal's `%(problems)s` reads translated."""
    problems: list[str] = []
    parts = set(
        await session.scalars(
            select(Item.part_number).where(Item.part_number.in_(content.part_numbers()))
        )
    )
    for part in content.part_numbers():
        if part not in parts:
            problems.append(said("unknown part number %(part)s", part=part))
    docs = set(
        await session.scalars(
            select(Document.number).where(Document.number.in_(content.document_numbers()))
        )
    )
    for number in content.document_numbers():
        if number not in docs:
            problems.append(said("unknown document %(document)s", document=number))
    codes = set(
        await session.scalars(
            select(Supplier.code).where(Supplier.code.in_(content.supplier_codes()))
        )
    )
    for code in content.supplier_codes():
        if code not in codes:
            problems.append(said("unknown supplier %(supplier)s", supplier=code))
    for action in content.actions:
        problems.extend(await _action_problems(session, action))
    return problems


async def _action_problems(session: AsyncSession, action: ProposedAction) -> list[str]:
    if action.kind is ActionKind.SUPPLIER_STATUS:
        status = await session.scalar(select(Supplier.status).where(Supplier.code == action.target))
        if status == action.new_status:
            return [
                said(
                    "supplier %(supplier)s is already %(status)s; the action would change nothing",
                    supplier=action.target,
                    status=status,
                )
            ]
    if action.kind is ActionKind.ASL_STATUS:
        status = await session.scalar(
            select(AslEntry.status)
            .join(Supplier, Supplier.id == AslEntry.supplier_id)
            .where(Supplier.code == action.target, AslEntry.part_number == action.part_number)
        )
        if status == action.new_status:
            return [
                said(
                    "supplier %(supplier)s is already %(status)s for %(part)s; "
                    "the action would change nothing",
                    supplier=action.target,
                    status=status,
                    part=action.part_number,
                )
            ]
    if action.kind is ActionKind.ITEM_REVISION:
        existing = await session.scalar(
            select(Item.status).where(
                Item.part_number == action.target, Item.revision == action.new_revision
            )
        )
        if existing in ("effective", "obsolete"):
            return [
                said(
                    "part %(part)s revision %(revision)s is already %(status)s",
                    part=action.target,
                    revision=action.new_revision,
                    status=existing,
                )
            ]
    if action.kind is ActionKind.DOCUMENT_VERSION:
        existing = await session.scalar(
            select(Document.status).where(
                Document.number == action.target, Document.version == action.new_revision
            )
        )
        if existing in ("effective", "obsolete"):
            return [
                said(
                    "document %(document)s version %(version)s is already %(status)s",
                    document=action.target,
                    version=action.new_revision,
                    status=existing,
                )
            ]
    return []


async def compute_impact(session: AsyncSession, content: ChangeContent) -> ImpactList:
    """Open POs, lots in stock, work orders, documents and where-used of what the change touches."""
    parts = content.part_numbers()
    suppliers = content.supplier_codes()
    lines: list[ImpactLine] = []
    po_rows = await session.execute(
        select(
            PurchaseOrder.number,
            PurchaseOrder.status,
            Supplier.code,
            PurchaseOrderLine.part_number,
            PurchaseOrderLine.quantity,
            PurchaseOrderLine.received_quantity,
        )
        .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
        .where(PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        .where((PurchaseOrderLine.part_number.in_(parts)) | (Supplier.code.in_(suppliers)))
        .order_by(PurchaseOrder.number)
    )
    for number, status, code, part, qty, received in po_rows.all():
        lines.append(
            ImpactLine(
                category="open_po",
                reference=number,
                detail=f"{part} from {code}: {_qty(qty)} ordered, {_qty(received)} received ({status})",
            )
        )
    lot_rows = await session.execute(
        select(
            Lot.lot_number,
            Lot.part_number,
            Item.revision,
            Lot.status,
            Lot.quantity,
            Lot.uom,
            Lot.expires_on,
        )
        .join(Item, Item.id == Lot.item_id)
        .where(Lot.status.in_(IN_STOCK_LOT_STATUSES), Lot.part_number.in_(parts))
        .order_by(Lot.part_number, Lot.lot_number)
    )
    for lot, part, rev, status, qty, uom, expires in lot_rows.all():
        lines.append(
            ImpactLine(
                category="lot_in_stock",
                reference=lot,
                detail=f"{part} rev {rev}: {_qty(qty)} {uom} {status}"
                + (f", expires {expires}" if expires else ""),
            )
        )
    used_in = await _where_used(session, parts)
    wo_rows = await session.execute(
        select(WorkOrder.number, WorkOrder.part_number, WorkOrder.status, WorkOrder.quantity)
        .where(
            WorkOrder.status.in_(OPEN_WO_STATUSES),
            WorkOrder.part_number.in_(set(parts) | set(used_in)),
        )
        .order_by(WorkOrder.number)
    )
    for number, part, status, qty in wo_rows.all():
        lines.append(
            ImpactLine(
                category="work_order", reference=number, detail=f"{_qty(qty)} × {part} ({status})"
            )
        )
    for parent, components in sorted(used_in.items()):
        lines.append(
            ImpactLine(
                category="where_used",
                reference=parent,
                detail=f"uses {', '.join(sorted(components))}",
            )
        )
    doc_rows = await session.execute(
        select(
            Document.number,
            Document.version,
            Document.title,
            Document.doc_type,
            DocumentItem.part_number,
        )
        .join(DocumentItem, DocumentItem.document_number == Document.number)
        .where(Document.status == "effective", DocumentItem.part_number.in_(parts))
        .order_by(Document.number)
    )
    for number, version, title, doc_type, part in doc_rows.all():
        lines.append(
            ImpactLine(
                category="document",
                reference=f"{number} {version}",
                detail=f"{doc_type} '{title}' references {part}",
            )
        )
    asl_rows = await session.execute(
        select(Supplier.code, AslEntry.part_number, AslEntry.status)
        .join(Supplier, Supplier.id == AslEntry.supplier_id)
        .where((AslEntry.part_number.in_(parts)) | (Supplier.code.in_(suppliers)))
        .order_by(Supplier.code, AslEntry.part_number)
    )
    for code, part, status in asl_rows.all():
        lines.append(ImpactLine(category="asl", reference=f"{code} × {part}", detail=status))
    counts: dict[str, int] = {}
    for line in lines:
        counts[line.category] = counts.get(line.category, 0) + 1
    return ImpactList(lines=lines, counts=counts)


async def _where_used(session: AsyncSession, parts: list[str]) -> dict[str, set[str]]:
    rows = await session.execute(
        select(Item.part_number, BomLine.component_part_number)
        .join(BomLine, BomLine.item_id == Item.id)
        .where(Item.status == "effective", BomLine.component_part_number.in_(parts))
    )
    used: dict[str, set[str]] = {}
    for parent, component in rows.all():
        used.setdefault(parent, set()).add(component)
    return used


def _qty(value: Decimal) -> str:
    """20000.0000 → '20000', 1.5500 → '1.55'."""
    return format(value.normalize(), "f")


class ApplyRefused(Exception):
    """The master data no longer allows an action; nothing was changed. Its argument is a `Said`
    (the English text that keeps its template, so the refusal is translated)."""


async def apply_actions(
    session: AsyncSession,
    *,
    change_id: str,
    content: ChangeContent,
    today: date,
    where: dict[str, Any],
) -> list[str]:
    """Apply every action in the caller's transaction; raise ApplyRefused to roll all back."""
    applied = []
    for seq, action in enumerate(content.actions, start=1):
        before, after, entity_type, entity_id = await _APPLY[action.kind](
            session, action, change_id, today
        )
        await append_audit(
            session,
            AuditRecord(
                actor="system",
                action=f"master_data.{action.kind.value}",
                entity_type=entity_type,
                entity_id=entity_id,
                reason=f"change {change_id}: {action.describe()}",
                before=before,
                after=after,
                idempotency_key=f"{change_id}:apply:{seq}",
                **where,
            ),
        )
        applied.append(action.describe())
    return applied


async def _apply_item(
    session: AsyncSession, a: ProposedAction, change_id: str, today: date
) -> tuple[Any, Any, str, str]:
    current = await session.scalar(
        select(Item)
        .where(Item.part_number == a.target, Item.status == "effective")
        .with_for_update()
    )
    new = await session.scalar(
        select(Item)
        .where(Item.part_number == a.target, Item.revision == a.new_revision)
        .with_for_update()
    )
    if new is not None and new.status != "draft":
        raise ApplyRefused(
            said(
                "part %(part)s revision %(revision)s is already %(status)s",
                part=a.target,
                revision=a.new_revision,
                status=new.status,
            )
        )
    if current is None and new is None:
        raise ApplyRefused(said("part %(part)s has no effective revision to revise", part=a.target))
    before = _item_state(current) if current else None
    if current is not None:
        current.status, current.obsolete_on = "obsolete", today
        await session.flush()
    if new is None:
        assert current is not None
        new = Item(
            part_number=a.target,
            revision=a.new_revision or "",
            description=current.description,
            device_class=current.device_class,
            gtin=current.gtin,
            shelf_life_days=current.shelf_life_days,
            storage_condition=current.storage_condition,
            lot_controlled=current.lot_controlled,
            serial_controlled=current.serial_controlled,
        )
        session.add(new)
        await session.flush()
        await _copy_structure(session, current.id, new.id)
    for key, value in a.changes.items():
        if key in ("description", "storage_condition", "gtin"):
            setattr(new, key, value)
        elif key == "shelf_life_days" and value.isdigit():
            new.shelf_life_days = int(value)
    new.status, new.effective_on, new.change_id = "effective", today, change_id
    await session.flush()
    return before, _item_state(new), "item", f"{a.target}"


def _item_state(item: Item) -> dict[str, Any]:
    return {
        "revision": item.revision,
        "status": item.status,
        "description": item.description,
        "storage_condition": item.storage_condition,
        "shelf_life_days": item.shelf_life_days,
        "gtin": item.gtin,
    }


async def _copy_structure(session: AsyncSession, from_id: int, to_id: int) -> None:
    for line in await session.scalars(select(BomLine).where(BomLine.item_id == from_id)):
        session.add(
            BomLine(
                item_id=to_id,
                component_part_number=line.component_part_number,
                quantity=line.quantity,
                uom=line.uom,
            )
        )
    for step in await session.scalars(select(RoutingStep).where(RoutingStep.item_id == from_id)):
        session.add(
            RoutingStep(
                item_id=to_id, seq=step.seq, operation=step.operation, work_center=step.work_center
            )
        )


async def _apply_document(
    session: AsyncSession, a: ProposedAction, change_id: str, today: date
) -> tuple[Any, Any, str, str]:
    current = await session.scalar(
        select(Document)
        .where(Document.number == a.target, Document.status == "effective")
        .with_for_update()
    )
    new = await session.scalar(
        select(Document)
        .where(Document.number == a.target, Document.version == a.new_revision)
        .with_for_update()
    )
    if new is not None and new.status != "draft":
        raise ApplyRefused(
            said(
                "document %(document)s version %(version)s is already %(status)s",
                document=a.target,
                version=a.new_revision,
                status=new.status,
            )
        )
    if current is None and new is None:
        raise ApplyRefused(
            said("document %(document)s has no effective version to revise", document=a.target)
        )
    before = (
        {"version": current.version, "status": current.status, "title": current.title}
        if current
        else None
    )
    if current is not None:
        current.status, current.obsolete_on = "obsolete", today
        await session.flush()
    if new is None:
        assert current is not None
        new = Document(
            number=a.target,
            version=a.new_revision or "",
            title=a.changes.get("title", current.title),
            doc_type=current.doc_type,
        )
        session.add(new)
    new.status, new.effective_on, new.change_id = "effective", today, change_id
    await session.flush()
    return (
        before,
        {"version": new.version, "status": new.status, "title": new.title},
        "document",
        a.target,
    )


async def _apply_asl(
    session: AsyncSession, a: ProposedAction, change_id: str, today: date
) -> tuple[Any, Any, str, str]:
    supplier = await session.scalar(select(Supplier).where(Supplier.code == a.target))
    if supplier is None:
        raise ApplyRefused(said("supplier %(supplier)s no longer exists", supplier=a.target))
    entry = await session.scalar(
        select(AslEntry)
        .where(AslEntry.supplier_id == supplier.id, AslEntry.part_number == a.part_number)
        .with_for_update()
    )
    before = {"status": entry.status, "since_on": entry.since_on.isoformat()} if entry else None
    if entry is None:
        entry = AslEntry(
            supplier_id=supplier.id, part_number=a.part_number or "", status=a.new_status or ""
        )
        session.add(entry)
    entry.status, entry.since_on, entry.change_id, entry.note = (
        a.new_status or "",
        today,
        change_id,
        a.note,
    )
    await session.flush()
    return (
        before,
        {"status": entry.status, "since_on": today.isoformat()},
        "asl_entry",
        f"{a.target}×{a.part_number}",
    )


async def _apply_supplier(
    session: AsyncSession, a: ProposedAction, change_id: str, today: date
) -> tuple[Any, Any, str, str]:
    supplier = await session.scalar(
        select(Supplier).where(Supplier.code == a.target).with_for_update()
    )
    if supplier is None:
        raise ApplyRefused(said("supplier %(supplier)s no longer exists", supplier=a.target))
    before = {"status": supplier.status}
    supplier.status = a.new_status or supplier.status
    await session.flush()
    return before, {"status": supplier.status}, "supplier", a.target


_APPLY = {
    ActionKind.ITEM_REVISION: _apply_item,
    ActionKind.DOCUMENT_VERSION: _apply_document,
    ActionKind.ASL_STATUS: _apply_asl,
    ActionKind.SUPPLIER_STATUS: _apply_supplier,
}
