"""Nonconformance activities on real PostgreSQL with the demo catalogue: containment in one
transaction (what can be held is held, what cannot says why), the database refusing held lots,
extension by genealogy, each disposition's effect on lots and stock (retries write nothing twice),
the SCAR, an NC's hold lifted only by its own disposition, and the recall scope.

The helpers here (demo lots, lots made from others, shipments) serve the workflow tests too."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.nonconformance import NonconformanceActivities
from api.workflow_updates import refusal_message
from erp.lots import LotRefused, move, set_lot_status
from erp.master_data import Item, Lot, Supplier
from erp.models import AuditEntry, Outbox
from erp.quality import NcLot as NcLotRow
from erp.quality import Nonconformance, Scar
from erp.seed import seed_demo
from erp.supply import (
    Customer,
    GenealogyEdge,
    Inspection,
    InventoryMovement,
    SerialNumber,
    Shipment,
    ShipmentLine,
    SupplierScorecard,
)
from schemas.nonconformance import (
    ApplyDispositionInput,
    ContainLotsInput,
    DispositionAction,
    NcInput,
    RegisterNcInput,
)
from schemas.quality import NcSource, NonconformanceRequest, Severity
from ui.i18n import translate_message

# ---------------------------------------------------------------- helpers (also for workflows)


async def demo_lot(sessions: async_sessionmaker[AsyncSession], n: int) -> Lot:
    """The n-th lot of the demo seed (erp/seed_master_data.LOTS): 1 TB-0150 RELEASED SUP-0001,
    2 TB-0150 QUARANTINE, 3 LC-0110, 5 DC-0330 ON_HOLD, 7 PK-0550, 10 IS-2000 RELEASED (in
    house), 13 PB-0710 SUP-0007, 16 IP-3000 with serials IP3-000001…5."""
    async with sessions() as session:
        found = await session.scalar(
            select(Lot)
            .where(Lot.lot_number.like(f"%-{n:04d}"), Lot.origin == "stock")
            .execution_options(populate_existing=True)
        )
    assert found is not None
    return found


async def lot_named(sessions: async_sessionmaker[AsyncSession], number: str) -> Lot:
    async with sessions() as session:
        found = await session.scalar(
            select(Lot).where(Lot.lot_number == number).execution_options(populate_existing=True)
        )
    assert found is not None
    return found


async def new_lot(
    sessions: async_sessionmaker[AsyncSession],
    number: str,
    part: str = "IS-2000",
    quantity: str = "100",
    *,
    status: str = "RELEASED",
    supplier: str | None = None,
    origin: str = "production",
) -> None:
    """A lot of the part's effective revision."""
    async with sessions() as session, session.begin():
        item = await session.scalar(
            select(Item).where(Item.part_number == part, Item.status == "effective")
        )
        assert item is not None
        supplier_id = None
        if supplier:
            supplier_id = await session.scalar(select(Supplier.id).where(Supplier.code == supplier))
        session.add(
            Lot(
                lot_number=number,
                item_id=item.id,
                part_number=part,
                supplier_id=supplier_id,
                quantity=Decimal(quantity),
                uom="ea",
                status=status,
                origin=origin,
            )
        )


async def made_from(
    sessions: async_sessionmaker[AsyncSession], child: str, parents: dict[str, str]
) -> None:
    """`child` made from so much of each parent: the issue movements (through the database's
    checks) and the genealogy edges."""
    async with sessions() as session, session.begin():
        child_lot = await session.scalar(select(Lot).where(Lot.lot_number == child))
        assert child_lot is not None
        for number, quantity in parents.items():
            parent = await session.scalar(select(Lot).where(Lot.lot_number == number))
            assert parent is not None
            issued = await move(
                session,
                parent,
                kind="issue",
                quantity=Decimal(quantity),
                reference=f"WO-{child}",
                actor="ivan",
                process_id=None,
            )
            session.add(
                GenealogyEdge(
                    parent_lot_id=parent.id,
                    child_lot_id=child_lot.id,
                    quantity=Decimal(quantity),
                    movement_id=issued.id,
                )
            )


async def shipped(
    sessions: async_sessionmaker[AsyncSession],
    lot_number: str,
    customer: str,
    quantity: str,
    shipment: str,
    serials: int = 0,
) -> None:
    """A shipment of so much of a lot to a customer (the ship movement, the line, and the
    lowest in-stock serials marked shipped)."""
    async with sessions() as session, session.begin():
        lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        consignee = await session.scalar(select(Customer).where(Customer.code == customer))
        assert lot is not None and consignee is not None
        record = Shipment(number=shipment, customer_id=consignee.id, status="shipped")
        session.add(record)
        await session.flush()
        movement = await move(
            session,
            lot,
            kind="ship",
            quantity=Decimal(quantity),
            reference=shipment,
            actor="grace",
            process_id=None,
        )
        session.add(
            ShipmentLine(
                shipment_id=record.id,
                lot_id=lot.id,
                part_number=lot.part_number,
                quantity=Decimal(quantity),
                consignee_id=consignee.id,
                movement_id=movement.id,
            )
        )
        record.shipped_at = func.now()
        in_stock = await session.scalars(
            select(SerialNumber)
            .where(SerialNumber.lot_id == lot.id, SerialNumber.status == "in_stock")
            .order_by(SerialNumber.serial)
            .limit(serials)
        )
        for serial in in_stock:
            serial.status, serial.shipment_id = "shipped", record.id


def nc_request(lots: list[str], **fields: object) -> NonconformanceRequest:
    values: dict[str, object] = {
        "reporter": "heidi",
        "source": NcSource.FINAL,
        "severity": Severity.MAJOR,
        "title": "Luer bond leaks under pressure",
        "description": "2 of 5 sets leak at the luer bond at 20 kPa",
        "lots": lots,
    }
    return NonconformanceRequest.model_validate(values | fields)


async def ship_refusal(sessions: async_sessionmaker[AsyncSession], lot_number: str) -> str:
    """The database's refusal to ship one unit of the lot."""
    async with sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        assert lot is not None
        with pytest.raises(LotRefused) as refused:
            await move(
                session,
                lot,
                kind="ship",
                quantity=Decimal(1),
                reference="SH-TEST",
                actor="grace",
                process_id=None,
            )
        await session.rollback()
    return refused.value.message


# ---------------------------------------------------------------- the activities

ENV = ActivityEnvironment()


async def registered(
    activities: NonconformanceActivities, pid: str, request: NonconformanceRequest
) -> str:
    data = RegisterNcInput(process_id=pid, run_id="r1", request=request)
    first = await ENV.run(activities.register_nonconformance, data)
    again = await ENV.run(activities.register_nonconformance, data)  # a retry
    assert first == again and first.number.startswith("NC-")
    return first.number


async def contained(
    activities: NonconformanceActivities, pid: str, lots: list[str], step: str = "contain"
):  # type: ignore[no-untyped-def]
    data = ContainLotsInput(
        process_id=pid,
        step=step,
        lot_numbers=lots,
        role="affected" if step == "contain" else "extended",
        actor="heidi",
    )
    first = await ENV.run(activities.contain_lots, data)
    assert await ENV.run(activities.contain_lots, data) == first  # a retry
    return first


async def applied(
    activities: NonconformanceActivities,
    pid: str,
    lot: str,
    action: DispositionAction,
    actor: str = "carol",
):  # type: ignore[no-untyped-def]
    data = ApplyDispositionInput(process_id=pid, lot_number=lot, action=action, actor=actor)
    first = await ENV.run(activities.apply_disposition, data)
    assert await ENV.run(activities.apply_disposition, data) == first  # a retry
    return first


async def test_containment_holds_what_it_can_at_once_and_says_why_not(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    released, quarantined, on_hold = [await demo_lot(sessions, n) for n in (1, 2, 5)]
    await new_lot(sessions, "F-SHIPPED", quantity="10")
    await shipped(sessions, "F-SHIPPED", "CUS-0001", "10", "SH-T1")
    lots = [released.lot_number, quarantined.lot_number, on_hold.lot_number, "F-SHIPPED"]
    number = await registered(activities, "nc-1", nc_request(lots, source=NcSource.INCOMING))
    result = await contained(activities, "nc-1", lots)

    state = {lot.lot_number: (lot.status_before, lot.status, lot.held) for lot in result.lots}
    assert state == {
        released.lot_number: ("RELEASED", "ON_HOLD", True),
        quarantined.lot_number: ("QUARANTINE", "ON_HOLD", True),
        on_hold.lot_number: ("ON_HOLD", "ON_HOLD", True),
        "F-SHIPPED": ("SHIPPED", "SHIPPED", False),
    }
    assert result.lots[3].note.startswith("SHIPPED: no longer in house")
    reason = f"{number} Luer bond leaks under pressure"
    assert (await lot_named(sessions, released.lot_number)).hold_reason == reason
    held_before = await lot_named(sessions, on_hold.lot_number)
    assert held_before.hold_reason == (
        "Incoming inspection: flash on the filter seat in 3 of 80 samples; awaiting MRB "
        f"disposition; {reason}"
    )
    # from the commit on, the database refuses to ship or issue a held lot, naming the NC
    assert await ship_refusal(sessions, released.lot_number) == (
        f"lot {released.lot_number} is ON_HOLD ({reason}): it cannot be shipped"
    )
    async with sessions() as session:
        nc = await session.scalar(select(Nonconformance).where(Nonconformance.number == number))
        rows = list(await session.scalars(select(NcLotRow).order_by(NcLotRow.id)))
        audited = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id.in_([*lots, number]))
                .order_by(AuditEntry.id)
            )
        )
    assert nc is not None and nc.status == "containment" and nc.part_number is None
    assert nc.supplier_id is None  # the lots came from different suppliers (or none)
    assert [(r.role, r.status_before, r.held) for r in rows] == [
        ("affected", "RELEASED", True),
        ("affected", "QUARANTINE", True),
        ("affected", "ON_HOLD", True),
        ("affected", "SHIPPED", False),
    ]
    assert audited == [
        "nonconformance.reported",
        *["lot.held"] * 3,
        "lot.not_held",
        "nonconformance.contained",
    ]


async def test_an_nc_names_the_lots_supplier_and_part_and_refuses_unknown_lots(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    one, two = await demo_lot(sessions, 1), await demo_lot(sessions, 2)  # both SUP-0001 tubing
    number = await registered(activities, "nc-2", nc_request([one.lot_number, two.lot_number]))
    async with sessions() as session:
        nc = await session.scalar(select(Nonconformance).where(Nonconformance.number == number))
        supplier = await session.scalar(select(Supplier).where(Supplier.code == "SUP-0001"))
    assert nc is not None and supplier is not None
    assert (nc.supplier_id, nc.part_number, nc.reported_by) == (supplier.id, "TB-0150", "heidi")
    assert nc.due_on is not None and (nc.due_on - nc.created_at.date()).days == 30

    data = RegisterNcInput(
        process_id="nc-3",
        run_id="r1",
        request=nc_request([one.lot_number, "NO-SUCH-1", "NO-SUCH-2"], supplier_code="SUP-9"),
    )
    with pytest.raises(ApplicationError) as refused:
        await ENV.run(activities.register_nonconformance, data)
    assert refused.value.type == "NcRefused" and refused.value.non_retryable
    assert refused.value.message == (
        "lot(s) not known: NO-SUCH-1, NO-SUCH-2; supplier SUP-9 is not known"
    )
    assert translate_message("zh_Hans", refusal_message(refused.value)) == (
        "系统中没有以下批次：NO-SUCH-1, NO-SUCH-2；系统中没有供应商 SUP-9"
    )
    async with sessions() as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "nonconformance.refused")
        )
    assert audit is not None and audit.reason == refused.value.message


async def test_extension_finds_lots_made_from_the_same_component_lots(sessions):
    """F-A is made from tubing lot 1 and pouch lot 7; F-B from pouch lot 7, F-C from tubing
    lot 1 (then F-C2 from F-C), F-D from connector lot 3 only: F-B, F-C and F-C2 are offered."""
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    tubing, connectors, pouches = [await demo_lot(sessions, n) for n in (1, 3, 7)]
    for number in ("F-A", "F-B", "F-C", "F-C2", "F-D"):
        await new_lot(sessions, number)
    await made_from(sessions, "F-A", {tubing.lot_number: "150", pouches.lot_number: "100"})
    await made_from(sessions, "F-B", {pouches.lot_number: "100"})
    await made_from(sessions, "F-C", {tubing.lot_number: "150"})
    await made_from(sessions, "F-C2", {"F-C": "10"})
    await made_from(sessions, "F-D", {connectors.lot_number: "100"})
    await registered(activities, "nc-4", nc_request(["F-A"]))
    await contained(activities, "nc-4", ["F-A"])

    found = await ENV.run(activities.find_extension_lots, NcInput(process_id="nc-4"))
    assert [lot.lot_number for lot in found.lots] == ["F-B", "F-C", "F-C2"]
    assert sorted(found.component_lots) == sorted([tubing.lot_number, pouches.lot_number])
    extended = await contained(activities, "nc-4", ["F-B", "F-C", "F-C2"], step="extend")
    assert [(lot.role, lot.held) for lot in extended.lots] == [("extended", True)] * 3
    again = await ENV.run(activities.find_extension_lots, NcInput(process_id="nc-4"))
    assert again.lots == []  # every lot found is in the NC now


async def test_each_disposition_moves_the_lot_and_its_stock_once(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    tubing, quarantined = await demo_lot(sessions, 1), await demo_lot(sessions, 2)
    for number in ("F-SCRAP", "F-USE", "F-REWORK"):
        await new_lot(sessions, number, quantity="40")
    await new_lot(sessions, "F-FAILED", quantity="40", status="QUARANTINE")
    lots = [tubing.lot_number, quarantined.lot_number, "F-SCRAP", "F-USE", "F-REWORK"]
    number = await registered(activities, "nc-5", nc_request([*lots, "F-FAILED"]))
    await contained(activities, "nc-5", [*lots, "F-FAILED"])
    async with sessions() as session, session.begin():
        failed = await session.scalar(select(Lot).where(Lot.lot_number == "F-FAILED"))
        assert failed is not None
        session.add(
            Inspection(
                lot_id=failed.id,
                kind="final",
                outcome="fail",
                inspector="heidi",
                idempotency_key="test:final:F-FAILED",
            )
        )

    scrap = await applied(activities, "nc-5", "F-SCRAP", DispositionAction.SCRAP)
    assert (scrap.status, scrap.moved) == ("REJECTED", Decimal(40))
    returned = await applied(
        activities, "nc-5", tubing.lot_number, DispositionAction.RETURN_TO_SUPPLIER
    )
    assert returned.status == "REJECTED" and returned.moved == Decimal(6000)
    assert returned.scar_number is not None and returned.scar_number.startswith("SCAR-")
    # use as is: RELEASED, unless it was in QUARANTINE and never inspected (its own
    # inspection is still to come); one inspected and failed is released by the concession
    use = await applied(activities, "nc-5", "F-USE", DispositionAction.USE_AS_IS)
    back = await applied(activities, "nc-5", quarantined.lot_number, DispositionAction.USE_AS_IS)
    concession = await applied(activities, "nc-5", "F-FAILED", DispositionAction.USE_AS_IS)
    assert (use.status, back.status, concession.status) == ("RELEASED", "QUARANTINE", "RELEASED")
    rework = await applied(activities, "nc-5", "F-REWORK", DispositionAction.REWORK)
    assert (rework.status, rework.note) == ("QUARANTINE", f"rework under {number}")
    release = await applied(
        activities, "nc-5", "F-REWORK", DispositionAction.RELEASE_AFTER_REWORK, "bob"
    )
    assert release.status == "RELEASED"

    async with sessions() as session:
        movements = {
            (m.kind, m.quantity, m.reference)
            for m in await session.scalars(
                select(InventoryMovement).where(InventoryMovement.kind.in_(("scrap", "return")))
            )
        }
        scar = await session.scalar(select(Scar))
        card = await session.scalar(
            select(SupplierScorecard)
            .join(Supplier, Supplier.id == SupplierScorecard.supplier_id)
            .where(Supplier.code == "SUP-0001")
        )
        outbox = await session.scalar(select(Outbox).where(Outbox.recipient == "supplier:SUP-0001"))
        applied_rows = await session.scalar(
            select(func.count()).select_from(NcLotRow).where(NcLotRow.applied_at.is_not(None))
        )
    assert movements == {("scrap", Decimal(40), number), ("return", Decimal(6000), number)}
    assert scar is not None and scar.number == returned.scar_number
    assert scar.description == "2 of 5 sets leak at the luer bond at 20 kPa"
    assert scar.status == "open" and scar.opened_by == "carol"
    assert card is not None and card.scars == 1
    assert outbox is not None and outbox.payload["scar"] == scar.number
    assert outbox.payload["returned_quantity"] == "6000.0000"
    assert applied_rows == 6
    for number_, status in (
        (tubing.lot_number, "REJECTED"),
        ("F-SCRAP", "REJECTED"),
        ("F-USE", "RELEASED"),
        (quarantined.lot_number, "QUARANTINE"),
    ):
        assert (await lot_named(sessions, number_)).status == status
    assert (await lot_named(sessions, "F-SCRAP")).quantity == 0


async def test_a_lot_made_in_house_cannot_be_returned(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    await new_lot(sessions, "F-HOUSE")
    await registered(activities, "nc-6", nc_request(["F-HOUSE"]))
    await contained(activities, "nc-6", ["F-HOUSE"])
    data = ApplyDispositionInput(
        process_id="nc-6",
        lot_number="F-HOUSE",
        action=DispositionAction.RETURN_TO_SUPPLIER,
        actor="carol",
    )
    with pytest.raises(ApplicationError) as refused:
        await ENV.run(activities.apply_disposition, data)
    assert refused.value.message == (
        "lot F-HOUSE was made in house: it has no supplier to return it to"
    )
    assert (await lot_named(sessions, "F-HOUSE")).status == "ON_HOLD"


async def test_an_nc_hold_is_lifted_only_by_that_ncs_disposition(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    await new_lot(sessions, "F-TWICE")
    first = await registered(activities, "nc-7", nc_request(["F-TWICE"]))
    await contained(activities, "nc-7", ["F-TWICE"])
    # another process (a QA release, a script) cannot lift the NC's hold
    async with sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == "F-TWICE"))
        assert lot is not None
        with pytest.raises(LotRefused) as refused:
            await set_lot_status(
                session, lot, "RELEASED", reason="released", actor="bob", process_id="po-x"
            )
        await session.rollback()
    assert refused.value.message == (
        f"lot F-TWICE is held by {first}: only its disposition releases it"
    )
    # a second NC holds it too: the first one's use as is leaves it held, saying by which NC
    second = await registered(activities, "nc-8", nc_request(["F-TWICE"], title="Seal creased"))
    await contained(activities, "nc-8", ["F-TWICE"])
    use = await applied(activities, "nc-7", "F-TWICE", DispositionAction.USE_AS_IS)
    assert (use.status, use.note) == (
        "ON_HOLD",
        f"use as is under {first}, but still held by {second}",
    )
    assert (await applied(activities, "nc-8", "F-TWICE", DispositionAction.USE_AS_IS)).status == (
        "RELEASED"
    )


async def test_the_recall_scope_follows_the_genealogy_to_consignees_and_serials(sessions):
    await seed_demo(sessions)
    activities = NonconformanceActivities(sessions)
    boards, pumps = await demo_lot(sessions, 13), await demo_lot(sessions, 16)
    await made_from(sessions, pumps.lot_number, {boards.lot_number: "5"})
    await shipped(sessions, pumps.lot_number, "CUS-0001", "2", "SH-P1", serials=2)
    await shipped(sessions, pumps.lot_number, "CUS-0004", "1", "SH-P2", serials=1)
    await registered(activities, "nc-9", nc_request([boards.lot_number]))
    await contained(activities, "nc-9", [boards.lot_number])

    scope = await ENV.run(activities.compute_recall_scope, NcInput(process_id="nc-9"))
    assert scope.suspect_lots == [boards.lot_number]
    assert {lot.lot_number for lot in scope.lots} == {boards.lot_number, pumps.lot_number}
    assert [(s.shipment, s.consignee_code, s.quantity, s.serials) for s in scope.shipments] == [
        ("SH-P1", "CUS-0001", Decimal(2), ["IP3-000001", "IP3-000002"]),
        ("SH-P2", "CUS-0004", Decimal(1), ["IP3-000003"]),
    ]
    assert [(c.code, c.quantity) for c in scope.consignees] == [
        ("CUS-0001", Decimal(2)),
        ("CUS-0004", Decimal(1)),
    ]
    assert scope.shipped_quantity == Decimal(3) and scope.serial_count == 3
