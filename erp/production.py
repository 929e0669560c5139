"""Production and shipping helpers: issue plans over the lots people were given, serial numbers
with their UDI, and the device history record of a work order.

Lot status and quantity rules are not checked here: every issue and shipment goes through
erp.lots.move, whose database trigger refuses a lot that is not RELEASED, expired, of a
non-effective revision (issue) or short (see erp/supply.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import Numeric, Select, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from erp.lots import Pick
from erp.master_data import Item, Lot, RoutingStep, WorkOrder
from erp.supply import GenealogyEdge, Inspection, InventoryMovement, SerialNumber
from schemas.production import (
    ComponentUse,
    DeviceHistoryRecord,
    InspectionSummary,
    LotPick,
)

QUANTUM = Decimal("0.0001")  # the scale of every quantity column (Numeric(14, 4))
SERIAL_WIDTH = 6
SERIAL_MAX_LENGTH = 20  # serial_number.serial, and GS1 AI (21) allows 20 characters
_TRAILING_DIGITS = re.compile(r"(\d+)$")


async def database_today(session: AsyncSession) -> date:
    """Today by the database's clock: the one the lot triggers judge expiry by."""
    today = await session.scalar(text("SELECT current_date"))
    assert isinstance(today, date)
    return today


def required_quantity(quantity: Decimal, per_unit: Decimal) -> Decimal:
    """Component needed for `quantity` units at `per_unit` each, rounded up to the stored scale."""
    return (quantity * per_unit).quantize(QUANTUM, rounding=ROUND_CEILING)


async def plan_issue(
    session: AsyncSession,
    *,
    quantity: Decimal,
    given: Sequence[LotPick],
    more: Select[Lot],
) -> tuple[list[Pick], Decimal]:
    """The lots to take `quantity` from now: first the lots people were given (they hold them in
    hand, so the genealogy must name them) in the order given, up to what was given of each; then,
    for anything beyond, first expiry first out over `more` (the given lots' remaining stock
    included). One pick per lot. Returns the picks and what is still short.

    A given lot is taken even when it was held, consumed or shipped since: the movement's trigger
    then refuses it with the reason, which is what the person has to hear."""
    taken: dict[int, Pick] = {}
    remaining = quantity
    for handed in given:
        if remaining <= 0:
            break
        take = min(handed.quantity, remaining)
        taken[handed.lot_id] = Pick(handed.lot_id, handed.lot_number, take, handed.expires_on)
        remaining -= take
    if remaining > 0:
        for lot in await session.scalars(more):
            already = taken[lot.id].quantity if lot.id in taken else Decimal(0)
            take = min(lot.quantity - already, remaining)
            if take <= 0:
                continue
            taken[lot.id] = Pick(lot.id, lot.lot_number, already + take, lot.expires_on)
            remaining -= take
            if remaining <= 0:
                break
    return list(taken.values()), max(remaining, Decimal(0))


# ---------------------------------------------------------------- serial numbers and UDI


def format_udi(*, gtin: str, lot_number: str, serial: str | None, expires_on: date | None) -> str:
    """The UDI in GS1 human-readable form: (01)GTIN (17)YYMMDD when it expires (10)LOT
    (21)SERIAL when serialised."""
    if len(gtin) != 14 or not gtin.isdigit():
        raise ValueError(f"a UDI needs a 14-digit GTIN, not {gtin!r}")
    udi = f"(01){gtin}"
    if expires_on is not None:
        udi += f"(17){expires_on:%y%m%d}"
    udi += f"(10){lot_number}"
    if serial is not None:
        udi += f"(21){serial}"
    return udi


def default_serial_prefix(part_number: str) -> str:
    """The prefix of a part's first serials, e.g. IP3000- for IP-3000."""
    return part_number.replace("-", "")[: SERIAL_MAX_LENGTH - SERIAL_WIDTH - 1] + "-"


async def _serial_series(session: AsyncSession, part_number: str) -> tuple[str, int, int]:
    """(prefix, width, last number used) of the part's serial series."""
    last = await session.scalar(
        select(SerialNumber.serial)
        .join(Lot, Lot.id == SerialNumber.lot_id)
        .where(Lot.part_number == part_number, SerialNumber.serial.regexp_match(r"[0-9]+$"))
        .order_by(
            cast(func.substring(SerialNumber.serial, r"([0-9]+)$"), Numeric).desc(),
        )
        .limit(1)
    )
    if last is None:
        return default_serial_prefix(part_number), SERIAL_WIDTH, 0
    digits = _TRAILING_DIGITS.search(last)
    assert digits is not None
    return last[: digits.start()], len(digits.group(1)), int(digits.group(1))


async def add_serials(
    session: AsyncSession, *, lot: Lot, gtin: str, count: int
) -> tuple[str, str] | None:
    """Give `count` new serial numbers of the lot's part, continuing the part's series, each with
    its UDI; one INSERT for all of them. Returns (first, last), or None for no serials."""
    if count <= 0:
        return None
    # one writer per part at a time, so two work orders never hand out the same serial
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"serial:{lot.part_number}"}
    )
    prefix, width, last = await _serial_series(session, lot.part_number)
    first_no, last_no = last + 1, last + count
    width = max(width, len(str(last_no)))
    if len(prefix) + width > SERIAL_MAX_LENGTH:
        raise ValueError(
            f"serials of {lot.part_number} would exceed {SERIAL_MAX_LENGTH} characters"
        )
    udi_head = format_udi(
        gtin=gtin, lot_number=lot.lot_number, serial="", expires_on=lot.expires_on
    )
    await session.execute(
        text(
            "INSERT INTO serial_number (lot_id, serial, udi, status) "
            "SELECT :lot_id, made.serial, :udi_head || made.serial, 'in_stock' "
            "FROM (SELECT :prefix || lpad(n::text, :width, '0') AS serial "
            "      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n) AS made"
        ),
        {
            "lot_id": lot.id,
            "udi_head": udi_head,
            "prefix": prefix,
            "width": width,
            "first": first_no,
            "last": last_no,
        },
    )
    return f"{prefix}{first_no:0{width}d}", f"{prefix}{last_no:0{width}d}"


async def ship_serials(
    session: AsyncSession, *, lot: Lot, shipment_id: int, count: int
) -> list[str]:
    """Mark the lot's `count` lowest in-stock serials shipped with the shipment; their serials."""
    rows = await session.execute(
        text(
            "UPDATE serial_number SET status = 'shipped', shipment_id = :shipment_id "
            "WHERE id IN (SELECT id FROM serial_number WHERE lot_id = :lot_id "
            "             AND status = 'in_stock' ORDER BY serial LIMIT :count FOR UPDATE) "
            "RETURNING serial"
        ),
        {"shipment_id": shipment_id, "lot_id": lot.id, "count": count},
    )
    return sorted(row[0] for row in rows)


# ---------------------------------------------------------------- device history record


async def device_history(session: AsyncSession, work_order: WorkOrder) -> DeviceHistoryRecord:
    """The device history record of a work order's finished lot, from what the ERP holds."""
    item = await session.get_one(Item, work_order.item_id)
    lot = await session.scalar(
        select(Lot).where(Lot.work_order_id == work_order.id, Lot.origin == "production")
    )
    if lot is None:
        raise ValueError(f"work order {work_order.number} has produced no lot yet")
    parent = Lot.__table__.alias("parent")
    components = [
        ComponentUse(
            part_number=row.part_number,
            lot_number=row.lot_number,
            quantity=row.quantity,
            uom=row.uom,
            supplier_lot=row.supplier_lot,
            expires_on=row.expires_on,
        )
        for row in await session.execute(
            select(
                parent.c.part_number,
                parent.c.lot_number,
                GenealogyEdge.quantity,
                parent.c.uom,
                parent.c.supplier_lot,
                parent.c.expires_on,
            )
            .join(parent, parent.c.id == GenealogyEdge.parent_lot_id)
            .where(GenealogyEdge.child_lot_id == lot.id)
            .order_by(parent.c.part_number, GenealogyEdge.id)
        )
    ]
    inspections = [
        InspectionSummary(
            kind=i.kind,
            outcome=i.outcome,
            inspector=i.inspector,
            sample_size=i.sample_size,
            defects=i.defects,
            note=str(i.results.get("results") or i.results.get("reason") or ""),
        )
        for i in await session.scalars(
            select(Inspection).where(Inspection.lot_id == lot.id).order_by(Inspection.id)
        )
    ]
    routing = [
        f"{r.seq} {r.operation} ({r.work_center})"
        for r in await session.scalars(
            select(RoutingStep).where(RoutingStep.item_id == item.id).order_by(RoutingStep.seq)
        )
    ]
    scrapped = await session.scalar(
        select(func.coalesce(func.sum(InventoryMovement.quantity), 0)).where(
            InventoryMovement.lot_id == lot.id, InventoryMovement.kind == "scrap"
        )
    )
    scrap = Decimal(scrapped or 0)
    made = lot.received_quantity if lot.received_quantity is not None else lot.quantity
    serials = (
        await session.execute(
            select(
                func.count(SerialNumber.id),
                func.min(SerialNumber.serial),
                func.max(SerialNumber.serial),
            ).where(SerialNumber.lot_id == lot.id)
        )
    ).one()
    return DeviceHistoryRecord(
        work_order=work_order.number,
        part_number=item.part_number,
        revision=item.revision,
        lot_number=lot.lot_number,
        quantity=made - scrap,  # good units: the lot was made with its scrap, then scrapped
        scrap_quantity=scrap,
        manufactured_on=lot.manufactured_on,
        expires_on=lot.expires_on,
        components=components,
        inspections=inspections,
        routing=routing,
        serial_count=int(serials[0]),
        serial_first=serials[1],
        serial_last=serials[2],
    )
