"""Lot trace over a generated multi-level, many-to-many genealogy, and lot references (lot
numbers, supplier labels, UDIs with serials) resolved to lots.

The genealogy is generated set-based (INSERT … SELECT over generate_series) on top of the demo
master data: raw tubing lots (TB-0150) and connector lots (LC-0110) go into sub-assembly lots
(SA-0100); sub-assembly lots and pouch lots (PK-0550) go into finished infusion-set lots
(IS-2000), which are shipped to several consignees. Every edge has the `issue` movement that made
it, through the database's RELEASED-only trigger; every shipment line its `ship` movement.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.gs1 import Gs1Error
from erp.master_data import Item, Lot
from erp.seed import seed_demo
from erp.supply import SerialNumber
from erp.trace import AmbiguousLotReference, LotNotFound, resolve_lot_reference, trace_lot

CONSIGNEES = ("CUS-0001", "CUS-0002", "CUS-0003", "CUS-0004")


@dataclass(frozen=True)
class Genealogy:
    """The shape generated: lot numbers TR-T<n>, TR-C<n>, TR-P<n>, TR-S<n>, TR-F<n>."""

    tubing: int = 6
    connectors: int = 3
    pouches: int = 4
    subassemblies: int = 10
    finished: int = 20

    def subassembly_parents(self, i: int) -> set[str]:
        return {
            f"TR-T{i % self.tubing + 1}",
            f"TR-T{(i + 1) % self.tubing + 1}",
            f"TR-C{i % self.connectors + 1}",
        }

    def finished_parents(self, j: int) -> set[str]:
        return {
            f"TR-S{j % self.subassemblies + 1}",
            f"TR-S{(j + 3) % self.subassemblies + 1}",
            f"TR-P{j % self.pouches + 1}",
        }

    def consignees(self, j: int) -> set[str]:
        return {CONSIGNEES[j % 4], CONSIGNEES[(j + 1) % 4]}


LOTS_SQL = """
INSERT INTO lot (lot_number, item_id, part_number, supplier_id, supplier_lot, quantity, uom,
                 status, manufactured_on, expires_on, hold_reason, origin)
SELECT format('TR-%s%s', CAST(:prefix AS text), n), i.id, i.part_number, s.id,
       CASE WHEN s.id IS NULL THEN NULL ELSE format('%s-SL%s', CAST(:prefix AS text), n) END,
       :quantity, 'ea', 'RELEASED', current_date - 30, current_date + 700, '', :origin
FROM generate_series(1, :count) AS n
JOIN item i ON i.part_number = :part AND i.status = 'effective'
LEFT JOIN supplier s ON s.code = :supplier
"""

WORK_ORDERS_SQL = """
INSERT INTO work_order (number, item_id, part_number, quantity, status, produced_quantity)
SELECT format('WO-TR-%s%s', CAST(:prefix AS text), n), i.id, i.part_number, 100, 'closed', 100
FROM generate_series(1, :count) AS n
JOIN item i ON i.part_number = :part AND i.status = 'effective'
"""

# Each child lot n takes one unit from each parent named by the three formulas.
EDGES_SQL = """
WITH plan AS (
    SELECT p.id AS parent_id, c.id AS child_id, wo.id AS work_order_id, wo.number AS reference
    FROM generate_series(1, :count) AS n
    CROSS JOIN LATERAL (VALUES
        (format('TR-%s%s', CAST(:p1 AS text), n % :m1 + 1)),
        (format('TR-%s%s', CAST(:p2 AS text), (n + :o2) % :m2 + 1)),
        (format('TR-%s%s', CAST(:p3 AS text), n % :m3 + 1))
    ) AS v(parent_number)
    JOIN lot p ON p.lot_number = v.parent_number
    JOIN lot c ON c.lot_number = format('TR-%s%s', CAST(:child AS text), n)
    JOIN work_order wo ON wo.number = format('WO-TR-%s%s', CAST(:child AS text), n)
), issued AS (
    INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor, idempotency_key)
    SELECT parent_id, 'issue', 1, reference, 'trace-test',
           format('trace:%s:%s', parent_id, child_id)
    FROM plan
    RETURNING id, idempotency_key
)
INSERT INTO genealogy_edge (parent_lot_id, child_lot_id, quantity, work_order_id, movement_id)
SELECT plan.parent_id, plan.child_id, 1, plan.work_order_id, issued.id
FROM plan JOIN issued ON issued.idempotency_key = format('trace:%s:%s', plan.parent_id,
                                                         plan.child_id)
"""

SHIPMENTS_SQL = [
    """
    INSERT INTO shipment (number, customer_id, status, carrier, tracking, delivery_note,
                          shipped_at, delivered_at)
    SELECT format('SH-TR-%s', c.code), c.id, 'shipped', 'DHL', '', '', now() - interval '3 days',
           CASE WHEN c.code IN ('CUS-0001', 'CUS-0002') THEN now() END
    FROM customer c
    """,
    # finished lot n goes to consignees n % 4 and (n + 1) % 4 (codes CUS-0001 … CUS-0004)
    """
    WITH plan AS (
        SELECT l.id AS lot_id, l.part_number, s.id AS shipment_id, s.number, c.id AS consignee_id
        FROM generate_series(1, :count) AS n
        CROSS JOIN LATERAL (VALUES (n % 4 + 1), ((n + 1) % 4 + 1)) AS v(k)
        JOIN lot l ON l.lot_number = format('TR-F%s', n)
        JOIN customer c ON c.code = format('CUS-%s', lpad(v.k::text, 4, '0'))
        JOIN shipment s ON s.customer_id = c.id AND s.number LIKE 'SH-TR-%'
    ), shipped AS (
        INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor, idempotency_key)
        SELECT lot_id, 'ship', 5, number, 'trace-test', format('ship:%s:%s', lot_id, shipment_id)
        FROM plan
        RETURNING id, idempotency_key
    )
    INSERT INTO shipment_line (shipment_id, lot_id, part_number, quantity, consignee_id,
                               movement_id)
    SELECT plan.shipment_id, plan.lot_id, plan.part_number, 5, plan.consignee_id, shipped.id
    FROM plan JOIN shipped ON shipped.idempotency_key = format('ship:%s:%s', plan.lot_id,
                                                               plan.shipment_id)
    """,
]


async def generate_genealogy(session: AsyncSession, shape: Genealogy) -> None:
    """Lots, work orders, edges with their issue movements, shipments with their ship movements."""
    sa = Item(
        part_number="SA-0100",
        revision="A",
        description="Tubing sub-assembly with connector",
        status="effective",
    )
    session.add(sa)
    await session.flush()
    for prefix, part, supplier, count, origin in (
        ("T", "TB-0150", "SUP-0001", shape.tubing, "receipt"),
        ("C", "LC-0110", "SUP-0002", shape.connectors, "receipt"),
        ("P", "PK-0550", "SUP-0004", shape.pouches, "receipt"),
        ("S", "SA-0100", None, shape.subassemblies, "production"),
        ("F", "IS-2000", None, shape.finished, "production"),
    ):
        params = {"prefix": prefix, "part": part, "supplier": supplier, "count": count}
        await session.execute(
            text(LOTS_SQL), params | {"quantity": Decimal(1000), "origin": origin}
        )
        if origin == "production":
            await session.execute(text(WORK_ORDERS_SQL), params)
    edges = text(EDGES_SQL)
    await session.execute(
        edges,
        {"count": shape.subassemblies, "child": "S", "p1": "T", "m1": shape.tubing}
        | {"p2": "T", "o2": 1, "m2": shape.tubing, "p3": "C", "m3": shape.connectors},
    )
    await session.execute(
        edges,
        {"count": shape.finished, "child": "F", "p1": "S", "m1": shape.subassemblies}
        | {"p2": "S", "o2": 3, "m2": shape.subassemblies, "p3": "P", "m3": shape.pouches},
    )
    for statement in SHIPMENTS_SQL:
        await session.execute(text(statement), {"count": shape.finished})


@pytest.fixture
async def genealogy(sessions: async_sessionmaker[AsyncSession]) -> Genealogy:
    await seed_demo(sessions)
    shape = Genealogy()
    async with sessions() as session, session.begin():
        await generate_genealogy(session, shape)
    return shape


async def test_forward_trace_reaches_every_finished_lot_and_consignee(sessions, genealogy):
    shape = genealogy
    root = "TR-T2"
    subassemblies = {
        f"TR-S{i}"
        for i in range(1, shape.subassemblies + 1)
        if root in shape.subassembly_parents(i)
    }
    finished = {
        f"TR-F{j}"
        for j in range(1, shape.finished + 1)
        if shape.finished_parents(j) & subassemblies
    }
    consignees = {
        code
        for j in range(1, shape.finished + 1)
        if f"TR-F{j}" in finished
        for code in shape.consignees(j)
    }
    assert len(finished) > 1 and len(consignees) > 1  # the generated data is many-to-many

    async with sessions() as session:
        trace = await trace_lot(session, root, "forward")

    depth = {lot.lot_number: lot.depth for lot in trace.lots}
    assert depth == {root: 0} | dict.fromkeys(subassemblies, 1) | dict.fromkeys(finished, 2)
    assert {(e.parent, e.child) for e in trace.edges} == {(root, s) for s in subassemblies} | {
        (s, f)
        for j in range(1, shape.finished + 1)
        if (f := f"TR-F{j}") in finished
        for s in shape.finished_parents(j) & subassemblies
    }
    assert all(e.work_order == f"WO-{e.child}" for e in trace.edges)
    assert {(s.lot_number, s.consignee_code) for s in trace.shipments} == {
        (f"TR-F{j}", code)
        for j in range(1, shape.finished + 1)
        if f"TR-F{j}" in finished
        for code in shape.consignees(j)
    }
    assert {s.consignee_code for s in trace.shipments} == consignees
    delivered = {s.consignee_code for s in trace.shipments if s.delivered_at is not None}
    assert delivered == consignees & {"CUS-0001", "CUS-0002"}
    assert all(s.shipped_at is not None and s.consignee_name for s in trace.shipments)
    raw = next(lot for lot in trace.lots if lot.lot_number == root)
    assert (raw.part_number, raw.revision, raw.supplier_code) == ("TB-0150", "C", "SUP-0001")
    assert raw.supplier_lot == "T-SL2"


async def test_backward_trace_reaches_every_supplier_lot(sessions, genealogy):
    shape = genealogy
    j = 7
    subassemblies = {p for p in shape.finished_parents(j) if p.startswith("TR-S")}
    raw = {p for s in subassemblies for p in shape.subassembly_parents(int(s[4:]))}
    pouch = shape.finished_parents(j) - subassemblies

    async with sessions() as session:
        trace = await trace_lot(session, f"TR-F{j}", "backward")

    depth = {lot.lot_number: lot.depth for lot in trace.lots}
    assert depth == (
        {f"TR-F{j}": 0} | dict.fromkeys(subassemblies | pouch, 1) | dict.fromkeys(raw, 2)
    )
    assert len(trace.edges) == 3 + 3 * len(subassemblies)
    assert trace.shipments == []
    suppliers = {lot.lot_number: lot.supplier_code for lot in trace.lots if lot.depth == 2}
    assert set(suppliers.values()) == {"SUP-0001", "SUP-0002"}
    finished = trace.lots[0]
    assert finished.lot_number == f"TR-F{j}" and finished.quantity == Decimal(990)  # 2 × 5 shipped


async def test_a_bad_cycle_ends_the_walk(sessions, genealogy):
    """A data fix that made TR-F7 (made from TR-T2) a parent of TR-T2 must not make the trace loop."""
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                """
                WITH m AS (
                    INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor)
                    SELECT id, 'adjust', 1, 'bad fix', 'trace-test' FROM lot
                    WHERE lot_number = 'TR-F7' RETURNING id, lot_id
                )
                INSERT INTO genealogy_edge (parent_lot_id, child_lot_id, quantity, movement_id)
                SELECT m.lot_id, t.id, 1, m.id FROM m JOIN lot t ON t.lot_number = 'TR-T2'
                """
            )
        )
    async with sessions() as session:
        forward = await trace_lot(session, "TR-T2", "forward")
        backward = await trace_lot(session, "TR-T2", "backward")
    assert ("TR-F7", "TR-T2") in {(e.parent, e.child) for e in forward.edges}
    assert len({lot.lot_number for lot in forward.lots}) == len(forward.lots)
    assert {lot.depth for lot in backward.lots} >= {0, 1, 2, 3}


async def test_a_lot_without_genealogy_traces_to_itself_and_its_shipments(sessions, genealogy):
    async with sessions() as session:
        trace = await trace_lot(session, "TR-F4", "forward")
    assert [lot.lot_number for lot in trace.lots] == ["TR-F4"]
    assert trace.edges == []
    assert {s.consignee_code for s in trace.shipments} == {"CUS-0001", "CUS-0002"}


async def test_unknown_lot_and_bad_direction_are_refused(sessions, genealogy):
    async with sessions() as session:
        with pytest.raises(LotNotFound, match="lot NOPE-1 is not known"):
            await trace_lot(session, "NOPE-1", "forward")
        with pytest.raises(ValueError, match="forward or backward"):
            await trace_lot(session, "TR-T1", "sideways")


async def test_references_resolve_to_lots_and_serials(sessions, genealogy):
    async with sessions() as session:
        pump = await session.scalar(select(SerialNumber).where(SerialNumber.serial == "IP3-000003"))
        assert pump is not None
        pump_lot = await session.get(Lot, pump.lot_id)
        assert pump_lot is not None
        item = await session.get(Item, pump_lot.item_id)
        assert item is not None and item.gtin

        lot, serial = await resolve_lot_reference(session, "TR-T1")
        assert (lot.lot_number, serial) == ("TR-T1", None)
        lot, serial = await resolve_lot_reference(session, f"  {pump.udi} ")
        assert (lot.id, serial) == (pump_lot.id, "IP3-000003")
        raw_udi = f"]d201{item.gtin}10{pump_lot.lot_number}\x1d21IP3-000003"
        lot, serial = await resolve_lot_reference(session, raw_udi)
        assert (lot.id, serial) == (pump_lot.id, "IP3-000003")
        lot, serial = await resolve_lot_reference(session, f"(01){item.gtin}(21)IP3-000005")
        assert (lot.id, serial) == (pump_lot.id, "IP3-000005")
        # a supplier's label: (10) is the supplier's lot, received as our lot TR-C2
        lot, serial = await resolve_lot_reference(session, "(10)C-SL2(17)301231")
        assert (lot.lot_number, serial) == ("TR-C2", None)

        with pytest.raises(LotNotFound, match="lot NOPE is not known"):
            await resolve_lot_reference(session, "NOPE")
        with pytest.raises(LotNotFound, match="serial IP3-000099 is not a serial of lot"):
            await resolve_lot_reference(
                session, f"(01){item.gtin}(10){pump_lot.lot_number}(21)IP3-000099"
            )
        with pytest.raises(LotNotFound, match="serial IP3-000099 of GTIN"):
            await resolve_lot_reference(session, f"(01){item.gtin}(21)IP3-000099")
        with pytest.raises(LotNotFound, match="no lot \\(10\\) or serial"):
            await resolve_lot_reference(session, f"(01){item.gtin}")
        with pytest.raises(LotNotFound, match="not of GTIN 00614141200016"):
            await resolve_lot_reference(session, f"(01)00614141200016(10){pump_lot.lot_number}")
        with pytest.raises(Gs1Error, match="check digit"):
            await resolve_lot_reference(session, "(01)00614141200011(10)TR-T1")


async def test_a_lot_number_that_could_pass_for_a_gtin_is_a_lot(sessions, genealogy):
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE lot SET lot_number = '4006381333931' WHERE lot_number = 'TR-T5'")
        )
    async with sessions() as session:
        lot, serial = await resolve_lot_reference(session, "4006381333931")
        assert (lot.lot_number, serial) == ("4006381333931", None)
        with pytest.raises(LotNotFound, match="names a product \\(GTIN\\) but no lot"):
            await resolve_lot_reference(session, "4006381333948")


async def test_a_supplier_lot_received_twice_is_ambiguous(sessions, genealogy):
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE lot SET supplier_lot = 'NK-SAME' WHERE lot_number IN ('TR-T1', 'TR-T3')")
        )
    async with sessions() as session:
        with pytest.raises(AmbiguousLotReference, match="received as lots TR-T1, TR-T3"):
            await resolve_lot_reference(session, "(10)NK-SAME")
