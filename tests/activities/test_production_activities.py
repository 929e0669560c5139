"""Work order and shipment activities on real PostgreSQL with the demo catalogue: retries write
nothing twice, serials stay unique per part when work orders run at once, FEFO skips what the
database would refuse."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from temporalio.testing import ActivityEnvironment

from activities.production import WorkOrderActivities
from activities.shipping import ShipmentActivities
from erp.master_data import Item, Lot
from erp.production import format_udi
from erp.seed import seed_demo
from erp.supply import GenealogyEdge, InventoryMovement, SerialNumber
from schemas.production import (
    AllocateMaterialsInput,
    RecordProductionInput,
    RegisterWorkOrderInput,
)
from schemas.shipping import PickShipmentInput, RegisterShipmentInput, ShipGoodsInput
from schemas.supply import ShipmentLineRequest, ShipmentRequest, WorkOrderRequest

TODAY = date.today()


async def registered_work_order(
    activities: WorkOrderActivities, pid: str, part: str, quantity: str
) -> str:
    env = ActivityEnvironment()
    data = RegisterWorkOrderInput(
        process_id=pid,
        run_id="r1",
        request=WorkOrderRequest(
            process_id=pid,
            requester="alice",
            part_number=part,
            quantity=Decimal(quantity),
            due_on=TODAY + timedelta(days=10),
        ),
    )
    first = await env.run(activities.register_work_order, data)
    again = await env.run(activities.register_work_order, data)  # a retry
    assert first == again and first.number.startswith("WO-") and not first.refusal
    return first.number


async def produce(activities: WorkOrderActivities, pid: str, produced: str, attempt: int = 1):  # type: ignore[no-untyped-def]
    env = ActivityEnvironment()
    allocation = await env.run(
        activities.allocate_materials, AllocateMaterialsInput(process_id=pid, attempt=attempt)
    )
    assert not allocation.shortages
    return await env.run(
        activities.record_production,
        RecordProductionInput(
            process_id=pid,
            attempt=attempt,
            produced_quantity=Decimal(produced),
            produced_by="ivan",
            allocation=allocation.picks,
        ),
    )


async def test_a_retried_production_record_writes_nothing_twice(sessions):
    await seed_demo(sessions)
    activities = WorkOrderActivities(sessions)
    await registered_work_order(activities, "wo-retry", "IP-3000", "2")
    first = await produce(activities, "wo-retry", "2")
    again = await produce(activities, "wo-retry", "2")  # the same attempt, retried
    assert first == again and first.serial_count == 2
    async with sessions() as session:
        lots = await session.scalar(
            select(func.count()).select_from(Lot).where(Lot.origin == "production")
        )
        edges = await session.scalar(select(func.count()).select_from(GenealogyEdge))
        serials = await session.scalar(
            select(func.count())
            .select_from(SerialNumber)
            .join(Lot, Lot.id == SerialNumber.lot_id)
            .where(Lot.lot_number == first.lot_number)
        )
        boards = await session.scalar(select(Lot.quantity).where(Lot.part_number == "PB-0710"))
    assert (lots, edges, serials, boards) == (1, 3, 2, 38)


async def test_work_orders_at_once_never_share_a_serial(sessions):
    await seed_demo(sessions)
    activities = WorkOrderActivities(sessions)
    pids = [f"wo-par-{n}" for n in range(4)]
    for pid in pids:
        await registered_work_order(activities, pid, "IP-3000", "3")
    records = await asyncio.gather(*(produce(activities, pid, "3") for pid in pids))
    async with sessions() as session:
        serials = list(
            await session.scalars(
                select(SerialNumber.serial)
                .join(Lot, Lot.id == SerialNumber.lot_id)
                .where(Lot.part_number == "IP-3000")
            )
        )
        item = await session.scalar(
            select(Item).where(Item.part_number == "IP-3000", Item.status == "effective")
        )
        lot = await session.scalar(select(Lot).where(Lot.lot_number == records[0].lot_number))
        udi = await session.scalar(
            select(SerialNumber.udi).where(SerialNumber.serial == records[0].serial_first)
        )
    assert len(serials) == len(set(serials)) == 5 + 12
    assert sorted(serials)[-1] == "IP3-000017"
    assert item is not None and item.gtin is not None and lot is not None
    assert udi == format_udi(
        gtin=item.gtin, lot_number=lot.lot_number, serial=records[0].serial_first, expires_on=None
    )


async def test_fefo_passes_over_what_the_database_would_refuse(sessions):
    await seed_demo(sessions)
    activities = WorkOrderActivities(sessions)
    async with sessions() as session, session.begin():
        housing = await session.scalar(select(Item).where(Item.part_number == "HS-0720"))
        assert housing is not None
        session.add_all(
            [
                Lot(  # expires first, but yesterday
                    lot_number="HS-EXPIRED",
                    item_id=housing.id,
                    part_number="HS-0720",
                    quantity=Decimal(50),
                    status="RELEASED",
                    expires_on=TODAY - timedelta(days=1),
                ),
                Lot(  # expires next: taken first
                    lot_number="HS-SOON",
                    item_id=housing.id,
                    part_number="HS-0720",
                    quantity=Decimal(1),
                    status="RELEASED",
                    expires_on=TODAY + timedelta(days=30),
                ),
                Lot(
                    lot_number="HS-HELD",
                    item_id=housing.id,
                    part_number="HS-0720",
                    quantity=Decimal(50),
                    status="ON_HOLD",
                    expires_on=TODAY + timedelta(days=10),
                ),
            ]
        )
    await registered_work_order(activities, "wo-fefo", "IP-3000", "2")
    allocation = await ActivityEnvironment().run(
        activities.allocate_materials, AllocateMaterialsInput(process_id="wo-fefo", attempt=1)
    )
    housings = [(p.lot_number, p.quantity) for p in allocation.picks if p.part_number == "HS-0720"]
    assert housings[0] == ("HS-SOON", Decimal(1))
    assert housings[1][0].startswith("L") and housings[1][1] == 1  # then the demo's lot


async def test_a_retried_shipment_ships_once_with_the_lowest_serials(sessions):
    await seed_demo(sessions)
    activities = ShipmentActivities(sessions)
    env = ActivityEnvironment()
    lines = [ShipmentLineRequest(part_number="IP-3000", quantity=Decimal(2))]
    request = ShipmentRequest(process_id="sh-retry", customer_code="CUS-0004", lines=lines)
    registered = await env.run(
        activities.register_shipment,
        RegisterShipmentInput(process_id="sh-retry", run_id="r1", request=request),
    )
    assert registered.customer_code == "CUS-0004" and registered.min_shelf_life_days == 365
    async with sessions() as session, session.begin():  # an earlier shipment took serial 1
        await session.execute(
            update(SerialNumber).where(SerialNumber.serial == "IP3-000001").values(status="shipped")
        )
    picking = await env.run(
        activities.pick_shipment, PickShipmentInput(process_id="sh-retry", attempt=1, lines=lines)
    )
    data = ShipGoodsInput(
        process_id="sh-retry",
        attempt=1,
        lines=lines,
        picks=picking.picks,
        shipped_by="grace",
        expected_transit_days=4,
    )
    first = await env.run(activities.ship_goods, data)
    again = await env.run(activities.ship_goods, data)
    assert first == again and not first.problem
    assert first.lines[0].serials == ["IP3-000002", "IP3-000003"]
    assert first.expected_delivery_on == TODAY + timedelta(days=4)
    async with sessions() as session:
        shipped = await session.scalar(
            select(func.count())
            .select_from(InventoryMovement)
            .where(InventoryMovement.kind == "ship")
        )
        pumps = await session.scalar(select(Lot.quantity).where(Lot.part_number == "IP-3000"))
    assert (shipped, pumps) == (1, 3)


async def test_an_unknown_customer_or_a_part_split_in_halves_is_refused(sessions):
    await seed_demo(sessions)
    activities = ShipmentActivities(sessions)
    env = ActivityEnvironment()

    async def refusal(pid: str, customer: str, part: str, quantity: str) -> str:
        request = ShipmentRequest(
            process_id=pid,
            customer_code=customer,
            lines=[ShipmentLineRequest(part_number=part, quantity=Decimal(quantity))],
        )
        result = await env.run(
            activities.register_shipment,
            RegisterShipmentInput(process_id=pid, run_id="r1", request=request),
        )
        return result.refusal

    assert await refusal("sh-1", "CUS-9999", "IS-2000", "5") == "customer CUS-9999 is not known"
    assert await refusal("sh-2", "CUS-0001", "XX-1", "5") == "part XX-1 is not known"
    assert await refusal("sh-3", "CUS-0001", "IP-3000", "1.5") == (
        "IP-3000 is serialised: ship a whole number of units, not 1.5"
    )
