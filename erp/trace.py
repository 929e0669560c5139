"""Lot trace: forward (what a lot went into, down to the consignees it was shipped to) and
backward (what a lot was made from, up to the suppliers' lots), over the genealogy edges.

One recursive CTE per direction walks `genealogy_edge` (forward parent → child, backward child →
parent). It collects edges, not paths, with UNION: an edge is kept once however many paths reach
it, so a many-to-many genealogy costs what it has edges, and a cycle (which production cannot
make, but a bad data fix could) ends the walk instead of looping.

EXPLAIN (ANALYZE) on 300,000 generated edges (PostgreSQL 18; 107,000 lots: 90,000 finished lots
each made from two of 10,000 sub-assembly lots and one of 2,000 pouch lots, each sub-assembly
from two of 4,000 tubing lots and one of 1,000 connector lots; 180,000 shipment lines):
- forward from a tubing lot (95 edges, 96 lots, 180 shipment lines): the recursive term is a
  Nested Loop over the work table with an Index Scan on `uq_genealogy_edge_parent_child`
  (parent_lot_id = w.child_lot_id), 0.5 ms; from a connector lot (190 edges) 0.5 ms.
- backward from a finished lot (9 edges): Index Scan on `ix_genealogy_edge_child`
  (child_lot_id = w.parent_lot_id), 0.1 ms.
- the lots (by `pk_lot` with = ANY, item and supplier memoized) ~1 ms, the shipment lines (by
  `ix_shipment_line_lot_id`) ~1 ms; `trace_lot` as a whole 3-12 ms.
- forward from a hub lot (bench/trace.py, 50,000 lots and 150,000 edges: a resin lot reaching
  6,368 lots over 11,101 edges): with a plain join in the recursive term the planner, which
  guesses ten times the previous step's rows for the work table, chose a Merge Join over a full
  Index Scan of `uq_genealogy_edge_parent_child` at every step (124,000 index rows read per
  step, 343 ms); the LATERAL subquery with OFFSET 0 keeps it the nested loop above.
The CTE returns ids and quantities only. Joined to lot and work_order inside the same
statement, the planner (which guesses ~40,000 rows for any recursive CTE) hashed the whole lot,
work_order and genealogy_edge tables: 175 ms for the same 95 edges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, Integer, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from erp.gs1 import looks_like_gs1, parse_label
from erp.master_data import Item, Lot, Supplier, WorkOrder
from erp.supply import SerialNumber
from schemas.supply import TraceEdge, TraceLot, TraceResult, TraceShipment
from workflows.wording import said

DIRECTIONS = ("forward", "backward")

# The recursive step for each direction: from the lots reached (`walk.{to}`) to the next. The
# query returns ids only: joined here to lot and work_order, the planner (which cannot estimate
# a recursive CTE's rows) chose hash joins over whole tables; looked up by id afterwards, every
# step is an index scan. The LATERAL subquery with OFFSET 0 keeps each step a nested loop over
# the index (as erp/containment.py does): with the plain join, once the work table is estimated
# large enough (a hub lot), the planner merge-joined it with a full scan of the edge index at
# every step.
_EDGES = """
WITH RECURSIVE walk(edge_id, parent_lot_id, child_lot_id, quantity, work_order_id) AS (
    SELECT e.id, e.parent_lot_id, e.child_lot_id, e.quantity, e.work_order_id
    FROM genealogy_edge e WHERE e.{frm} = :root
    UNION
    SELECT e.id, e.parent_lot_id, e.child_lot_id, e.quantity, e.work_order_id
    FROM walk w CROSS JOIN LATERAL (
        SELECT * FROM genealogy_edge e WHERE e.{frm} = w.{to} OFFSET 0
    ) e
)
SELECT parent_lot_id, child_lot_id, quantity, work_order_id FROM walk ORDER BY edge_id
"""
EDGE_QUERIES = {
    "forward": text(_EDGES.format(frm="parent_lot_id", to="child_lot_id")),
    "backward": text(_EDGES.format(frm="child_lot_id", to="parent_lot_id")),
}

_SHIPMENTS = text(
    """
SELECT s.number AS shipment, l.lot_number, sl.quantity, c.code AS consignee_code,
       c.name AS consignee_name, s.shipped_at, s.delivered_at
FROM shipment_line sl
JOIN shipment s ON s.id = sl.shipment_id
JOIN customer c ON c.id = sl.consignee_id
JOIN lot l ON l.id = sl.lot_id
WHERE sl.lot_id = ANY(:lot_ids)
ORDER BY s.number, l.lot_number, sl.id
"""
).bindparams(bindparam("lot_ids"))


class LotNotFound(LookupError):
    """No lot (or serial) matches the reference given; the message says what was looked for (a
    `workflows.wording.Said`: the English text that keeps its template, so pages translate it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AmbiguousLotReference(ValueError):
    """The reference matches more than one lot; the message lists them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def trace_lot(session: AsyncSession, lot_number: str, direction: str) -> TraceResult:
    """Every lot reached from `lot_number` in `direction`, the edges between them, and (forward)
    the shipment lines of every lot reached, with their consignees."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction is forward or backward, not {direction!r}")
    root = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
    if root is None:
        raise LotNotFound(said("lot %(lot)s is not known", lot=lot_number))
    rows = (await session.execute(EDGE_QUERIES[direction], {"root": root.id})).all()
    depths = _depths(root.id, [(r.parent_lot_id, r.child_lot_id) for r in rows], direction)
    lots, numbers = await _lots(session, depths)
    work_orders = await _work_order_numbers(session, {r.work_order_id for r in rows})
    shipments: list[TraceShipment] = []
    if direction == "forward":
        found = await session.execute(_SHIPMENTS, {"lot_ids": list(depths)})
        shipments = [TraceShipment.model_validate(r, from_attributes=True) for r in found]
    return TraceResult(
        root=root.lot_number,
        direction=direction,
        lots=lots,
        edges=[
            TraceEdge(
                parent=numbers[r.parent_lot_id],
                child=numbers[r.child_lot_id],
                quantity=r.quantity,
                work_order=work_orders.get(r.work_order_id),
            )
            for r in rows
        ],
        shipments=shipments,
    )


def _depths(root_id: int, edges: list[tuple[int, int]], direction: str) -> dict[int, int]:
    """Each lot's distance from the root (shortest, breadth first); the root is 0."""
    following: dict[int, list[int]] = {}
    for parent, child in edges:
        start, end = (parent, child) if direction == "forward" else (child, parent)
        following.setdefault(start, []).append(end)
    depths = {root_id: 0}
    queue = deque([root_id])
    while queue:
        lot_id = queue.popleft()
        for nxt in following.get(lot_id, ()):
            if nxt not in depths:
                depths[nxt] = depths[lot_id] + 1
                queue.append(nxt)
    return depths


async def _lots(
    session: AsyncSession, depths: dict[int, int]
) -> tuple[list[TraceLot], dict[int, str]]:
    """The lots reached, nearest first, and their lot numbers by id."""
    # columns, not ORM objects: a hub lot's trace reaches 100,000 lots or more, and building
    # (and identity-mapping) a full Lot for each cost most of the trace (the trace benchmark)
    rows = await session.execute(
        select(
            Lot.id,
            Lot.lot_number,
            Lot.part_number,
            Lot.status,
            Lot.quantity,
            Lot.supplier_lot,
            Lot.expires_on,
            Item.revision,
            Supplier.code,
        )
        .join(Item, Item.id == Lot.item_id)
        .outerjoin(Supplier, Supplier.id == Lot.supplier_id)
        .where(Lot.id == any_(_ids(depths)))
    )
    numbers: dict[int, str] = {}
    lots: list[TraceLot] = []
    for lot_id, number, part, status, quantity, supplier_lot, expires, revision, supplier in rows:
        numbers[lot_id] = number
        lots.append(
            TraceLot(
                lot_number=number,
                part_number=part,
                revision=revision,
                status=status,
                quantity=quantity,
                supplier_code=supplier,
                supplier_lot=supplier_lot,
                expires_on=expires,
                depth=depths[lot_id],
            )
        )
    return sorted(lots, key=lambda t: (t.depth, t.part_number, t.lot_number)), numbers


def _ids(ids: Iterable[int]) -> BindParameter[Any]:
    """One array parameter, however many lots a trace reaches (an IN list has a limit)."""
    values: Any = list(ids)
    return bindparam("ids", values, type_=ARRAY(Integer))


async def _work_order_numbers(session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(
        select(WorkOrder.id, WorkOrder.number).where(WorkOrder.id == any_(_ids(wanted)))
    )
    return {wo_id: number for wo_id, number in rows}


async def resolve_lot_reference(session: AsyncSession, reference: str) -> tuple[Lot, str | None]:
    """The lot a person or system means: a lot number, or a GS1/UDI string whose (10) is our lot
    number or a supplier's lot, and/or whose (21) is a serial (which resolves to its lot and is
    returned too). Raises Gs1Error for an unreadable GS1 string, LotNotFound, or
    AmbiguousLotReference when a supplier's lot or a serial was received in several lots."""
    value = reference.strip()
    if not value:
        raise LotNotFound(said("no lot number given"))
    lot = await session.scalar(select(Lot).where(Lot.lot_number == value))
    if lot is not None:  # a lot number first, even one that could pass for a GTIN
        return lot, None
    if not looks_like_gs1(value):
        raise LotNotFound(
            said("lot %(lot)s is not known; check the lot number or scan its label", lot=value)
        )
    label = parse_label(value)
    if label.lot is None and label.serial is None:
        raise LotNotFound(
            said(
                "the GS1 string names a product (GTIN) but no lot (10) or serial (21); "
                "scan the label that carries the lot or serial number"
            )
        )
    if label.lot is not None:
        lot = await _lot_of_label(session, label.lot, label.gtin)
        if label.serial is not None:
            await _serial_of(session, label.serial, lot)
        return lot, label.serial
    assert label.serial is not None
    return await _lot_of_serial(session, label.serial, label.gtin), label.serial


async def _lot_of_label(session: AsyncSession, lot_text: str, gtin: str | None) -> Lot:
    """Our lot number first (our UDIs carry it), else the supplier's lot on a supplier label."""
    ours = await session.scalar(select(Lot).where(Lot.lot_number == lot_text))
    if ours is not None:
        if gtin is not None:
            item = await session.get(Item, ours.item_id)
            if item is not None and item.gtin and item.gtin != gtin:
                raise LotNotFound(
                    said(
                        "lot %(lot)s is a lot of %(part)s (GTIN %(gtin)s), "
                        "not of GTIN %(scanned)s; check the label",
                        lot=lot_text,
                        part=item.part_number,
                        gtin=item.gtin,
                        scanned=gtin,
                    )
                )
        return ours
    theirs = list(
        await session.scalars(
            select(Lot).where(Lot.supplier_lot == lot_text).order_by(Lot.lot_number)
        )
    )
    if not theirs:
        raise LotNotFound(
            said(
                "no lot %(lot)s is known, neither as our lot number nor as a supplier's lot",
                lot=lot_text,
            )
        )
    if len(theirs) > 1:
        raise AmbiguousLotReference(
            said(
                "supplier lot %(lot)s was received as lots %(lots)s; "
                "trace one of them by its lot number",
                lot=lot_text,
                lots=", ".join(lot.lot_number for lot in theirs),
            )
        )
    return theirs[0]


async def _serial_of(session: AsyncSession, serial: str, lot: Lot) -> SerialNumber:
    row = await session.scalar(
        select(SerialNumber).where(SerialNumber.lot_id == lot.id, SerialNumber.serial == serial)
    )
    if row is None:
        raise LotNotFound(
            said(
                "serial %(serial)s is not a serial of lot %(lot)s",
                serial=serial,
                lot=lot.lot_number,
            )
        )
    return row


async def _lot_of_serial(session: AsyncSession, serial: str, gtin: str | None) -> Lot:
    query = (
        select(Lot)
        .join(SerialNumber, SerialNumber.lot_id == Lot.id)
        .where(SerialNumber.serial == serial)
    )
    if gtin is not None:
        query = query.join(Item, Item.id == Lot.item_id).where(Item.gtin == gtin)
    lots = list(await session.scalars(query.order_by(Lot.lot_number)))
    if not lots:
        if gtin:
            raise LotNotFound(
                said("serial %(serial)s of GTIN %(gtin)s is not known", serial=serial, gtin=gtin)
            )
        raise LotNotFound(said("serial %(serial)s is not known", serial=serial))
    if len(lots) > 1:
        raise AmbiguousLotReference(
            said(
                "serial %(serial)s exists in lots %(lots)s; give the lot (10) with the serial",
                serial=serial,
                lots=", ".join(lot.lot_number for lot in lots),
            )
        )
    return lots[0]
