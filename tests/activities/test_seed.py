"""The demo seed on a real database: users and a believable master-data set, loaded once."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.audit import verify_chain
from erp.master_data import (
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
    SupplierCertificate,
    WorkOrder,
)
from erp.models import AppUser, AuditEntry
from erp.seed import seed_demo
from erp.supply import Customer, SerialNumber

TABLES = {
    "items": Item,
    "bom_lines": BomLine,
    "routing_steps": RoutingStep,
    "documents": Document,
    "document_items": DocumentItem,
    "suppliers": Supplier,
    "supplier_certificates": SupplierCertificate,
    "asl_entries": AslEntry,
    "purchase_orders": PurchaseOrder,
    "purchase_order_lines": PurchaseOrderLine,
    "lots": Lot,
    "work_orders": WorkOrder,
    "customers": Customer,
    "serial_numbers": SerialNumber,
}

EXPECTED = {
    "items": 17,
    "bom_lines": 17,
    "routing_steps": 6,
    "documents": 25,
    "document_items": 20,
    "suppliers": 8,
    "supplier_certificates": 9,
    "asl_entries": 13,
    "purchase_orders": 5,
    "purchase_order_lines": 8,
    "lots": 16,
    "work_orders": 2,
    "customers": 4,
    "serial_numbers": 5,
}


def gtin_is_valid(gtin: str) -> bool:
    """GS1 mod-10: weights 1, 3, 1 ... from the right including the check digit; sum % 10 == 0."""
    if not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        return False
    return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(reversed(gtin))) % 10 == 0


def test_gtin_check_is_the_gs1_one():
    assert gtin_is_valid("00614141000036") and gtin_is_valid("4006381333931")
    assert not gtin_is_valid("00614141000037")


async def _counts(session: AsyncSession) -> dict[str, int]:
    counts = {}
    for name, model in {**TABLES, "users": AppUser, "audit": AuditEntry}.items():
        counts[name] = await session.scalar(select(func.count()).select_from(model)) or 0
    return counts


async def test_seed_demo_loads_master_data_once(sessions):
    assert await seed_demo(sessions) is True
    today = date.today()
    async with sessions() as session:
        counts = await _counts(session)
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "demo.master_data_seeded")
        )
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        items = list(await session.scalars(select(Item)))
        documents = list(await session.scalars(select(Document)))
        asl_statuses = set(await session.scalars(select(AslEntry.status)))
        suppliers = {s.code: s for s in await session.scalars(select(Supplier))}
        certificates = list(await session.scalars(select(SupplierCertificate)))
        lots = list(await session.scalars(select(Lot)))
        bom_parts = set(await session.scalars(select(BomLine.component_part_number)))
        linked_parts = set(await session.scalars(select(DocumentItem.part_number)))
        po_statuses = set(await session.scalars(select(PurchaseOrder.status)))
        wo_statuses = set(await session.scalars(select(WorkOrder.status)))
        chain = await verify_chain(session)

    assert {name: counts[name] for name in TABLES} == EXPECTED
    assert actions == ["demo.seeded", "demo.master_data_seeded"] and chain.ok
    assert audit is not None and audit.after == EXPECTED

    # at most one effective revision per part number and per document number
    for rows, key in ((items, "part_number"), (documents, "number")):
        effective = [getattr(r, key) for r in rows if r.status == "effective"]
        assert len(effective) == len(set(effective))
        assert set(effective) == {getattr(r, key) for r in rows}  # every one has one
    assert {i.status for i in items} == {"draft", "effective", "obsolete"}
    assert {d.doc_type for d in documents} == {"sop", "specification", "drawing", "label", "ifu"}

    finished = [i for i in items if i.part_number == "IS-2000" and i.status == "effective"]
    assert len(finished) == 1 and finished[0].device_class == "II"
    assert finished[0].shelf_life_days == 1095 and not finished[0].serial_controlled
    gtins = [i.gtin for i in items if i.gtin]
    assert gtins and all(len(g) == 14 and gtin_is_valid(g) for g in gtins)

    assert asl_statuses == {"approved", "conditional", "disqualified"}
    assert [s.status for s in suppliers.values()].count("disqualified") == 1
    expired = [c for c in certificates if c.expires_on < today]
    expiring = [c for c in certificates if today <= c.expires_on < today + timedelta(days=60)]
    assert len(expired) == 1 and len(expiring) == 1
    assert expired[0].supplier_id != expiring[0].supplier_id
    assert all(c.kind for c in certificates)

    assert bom_parts <= {i.part_number for i in items} and bom_parts <= linked_parts
    assert po_statuses == {"issued", "confirmed", "partially_received"}
    assert wo_statuses == {"planned", "released"}
    assert {lot.status for lot in lots} == {"QUARANTINE", "RELEASED", "ON_HOLD"}
    assert all(lot.hold_reason for lot in lots if lot.status == "ON_HOLD")
    shelf_lives = {i.part_number: i.shelf_life_days for i in items}
    assert all(
        lot.expires_on and lot.expires_on > today for lot in lots if shelf_lives[lot.part_number]
    )
    pumps = [i for i in items if i.part_number == "IP-3000"]
    assert pumps and all(i.serial_controlled and i.gtin for i in pumps)
    assert {lot.part_number for lot in lots} == {i.part_number for i in items}

    assert await seed_demo(sessions) is False
    async with sessions() as session:
        assert await _counts(session) == counts
