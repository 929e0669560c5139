"""What a nonconformance contains besides the lots reported, and what it reached in the field.

- `extension_candidates`: every lot made from the same component lots as the affected lots. The
  search goes one level back (the affected lots' component lots, i.e. their genealogy parents),
  then forward from those components (and from the affected lots themselves, for a purchased lot
  that has no parents) to every descendant, at any depth. The affected lots, the components the
  search started from and the lots already in the NC are left out.
- `forward_scope`: every lot reached forward from the NC's lots (themselves included), with the
  shipment lines of all of them, their consignees and the serials shipped: the data a recall
  starts from.

Both walk forward with one recursive CTE over `genealogy_edge`, set-based from all the roots at
once, returning lot ids only; the lots' details are read afterwards by primary key (as
erp/trace.py does: joined inside the recursion the planner hashes whole tables). UNION, not UNION
ALL, keeps each lot once and ends a cycle. The extension looks the components up first (one index
scan), then walks from them and the affected lots.

The recursive step reaches the edges through a LATERAL subquery with OFFSET 0, which keeps it a
nested loop over the index: the planner cannot estimate a recursive CTE's rows, and from a few
roots at once it chose a Hash Join over a Seq Scan of every edge at each step.
EXPLAIN (ANALYZE) on the genealogy generator of tests/activities/test_trace.py scaled to 72,000
edges (400 tubing and 100 connector lots → 4,000 sub-assemblies → 20,000 finished lots): the
component lookup is an Index Only Scan on `ix_genealogy_edge_child` (0.03 ms); the walk from a
sub-assembly's three components and itself (663 lots) a Nested Loop with a Bitmap Index Scan on
`uq_genealogy_edge_parent_child` (parent_lot_id = w.lot_id) per lot reached, 0.9 ms (the plain
join: Hash Join over all 72,000 edges, 16.5 ms); reading the 663 lots' details ~10 ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import BindParameter, Integer, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Lot, Supplier
from schemas.nonconformance import LotSummary, ScopeConsignee, ScopeLot, ScopeShipment

_COMPONENTS = text(
    """
SELECT DISTINCT parent_lot_id FROM genealogy_edge WHERE child_lot_id = ANY(:affected)
"""
).bindparams(bindparam("affected", type_=ARRAY(Integer)))

_FORWARD = text(
    """
WITH RECURSIVE walk(lot_id) AS (
    SELECT unnest(CAST(:roots AS integer[]))
    UNION
    SELECT c.child_lot_id FROM walk w
    CROSS JOIN LATERAL (
        SELECT e.child_lot_id FROM genealogy_edge e WHERE e.parent_lot_id = w.lot_id OFFSET 0
    ) c
)
SELECT lot_id FROM walk
"""
).bindparams(bindparam("roots", type_=ARRAY(Integer)))

_SHIPPED = text(
    """
SELECT s.id AS shipment_id, s.number AS shipment, l.id AS lot_id, l.lot_number, sl.part_number,
       sl.quantity, c.code AS consignee_code, c.name AS consignee_name, s.shipped_at,
       s.delivered_at
FROM shipment_line sl
JOIN shipment s ON s.id = sl.shipment_id
JOIN customer c ON c.id = sl.consignee_id
JOIN lot l ON l.id = sl.lot_id
WHERE sl.lot_id = ANY(:lot_ids)
ORDER BY c.code, s.number, l.lot_number, sl.id
"""
).bindparams(bindparam("lot_ids", type_=ARRAY(Integer)))

_SERIALS = text(
    """
SELECT shipment_id, lot_id, serial FROM serial_number
WHERE lot_id = ANY(:lot_ids) AND shipment_id IS NOT NULL
ORDER BY serial
"""
).bindparams(bindparam("lot_ids", type_=ARRAY(Integer)))


def _ids(name: str, ids: Iterable[int]) -> BindParameter[Any]:
    values: Any = list(ids)
    return bindparam(name, values, type_=ARRAY(Integer))


async def lot_summaries(session: AsyncSession, lot_ids: Iterable[int]) -> list[LotSummary]:
    """The lots by id, as people see them, in lot number order."""
    rows = await session.execute(
        select(Lot, Supplier.code)
        .outerjoin(Supplier, Supplier.id == Lot.supplier_id)
        .where(Lot.id == any_(_ids("ids", lot_ids)))
        .order_by(Lot.lot_number)
    )
    return [summary(lot, code) for lot, code in rows]


def summary(lot: Lot, supplier_code: str | None) -> LotSummary:
    return LotSummary(
        lot_number=lot.lot_number,
        part_number=lot.part_number,
        quantity=lot.quantity,
        uom=lot.uom,
        status=lot.status,
        supplier_code=supplier_code,
        origin=lot.origin,
    )


async def extension_candidates(
    session: AsyncSession, affected: list[int], known: list[int]
) -> tuple[list[LotSummary], list[LotSummary]]:
    """(the lots made from the same component lots as `affected`, leaving out `known` — the
    NC's lots —, the component lots the search started from)."""
    components = list(await session.scalars(_COMPONENTS, {"affected": affected}))
    reached = await session.scalars(_FORWARD, {"roots": [*components, *affected]})
    left_out = {*components, *affected, *known}
    candidates = [lot_id for lot_id in reached if lot_id not in left_out]
    return await lot_summaries(session, candidates), await lot_summaries(session, components)


async def forward_scope(
    session: AsyncSession, roots: list[int]
) -> tuple[list[ScopeLot], list[ScopeShipment], list[ScopeConsignee]]:
    """Every lot reached forward from `roots` (themselves included), every shipment line of
    those lots with the serials it carried, and each consignee with the quantity it received."""
    reached = [r.lot_id for r in await session.execute(_FORWARD, {"roots": roots})]
    lots = [
        ScopeLot(
            lot_number=s.lot_number, part_number=s.part_number, status=s.status, quantity=s.quantity
        )
        for s in await lot_summaries(session, reached)
    ]
    serials: dict[tuple[int, int], list[str]] = {}
    for row in await session.execute(_SERIALS, {"lot_ids": reached}):
        serials.setdefault((row.shipment_id, row.lot_id), []).append(row.serial)
    shipments = [
        ScopeShipment(
            shipment=r.shipment,
            lot_number=r.lot_number,
            part_number=r.part_number,
            quantity=r.quantity,
            consignee_code=r.consignee_code,
            consignee_name=r.consignee_name,
            shipped_at=r.shipped_at,
            delivered_at=r.delivered_at,
            serials=serials.get((r.shipment_id, r.lot_id), []),
        )
        for r in await session.execute(_SHIPPED, {"lot_ids": reached})
    ]
    return lots, shipments, _consignees(shipments)


def _consignees(shipments: list[ScopeShipment]) -> list[ScopeConsignee]:
    found: dict[str, ScopeConsignee] = {}
    for s in shipments:
        consignee = found.setdefault(
            s.consignee_code,
            ScopeConsignee(
                code=s.consignee_code, name=s.consignee_name, quantity=Decimal(0), shipments=[]
            ),
        )
        consignee.quantity += s.quantity
        if s.shipment not in consignee.shipments:
            consignee.shipments.append(s.shipment)
    return list(found.values())
