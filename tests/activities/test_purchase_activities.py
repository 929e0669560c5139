"""Purchasing rules (DoA route, Z1.4 sampling plan, on time, expiry) and the purchase activities
on real PostgreSQL with the demo catalogue: a retried activity writes nothing twice, and the
database refuses what the workflow should never have asked."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.purchase import PurchaseActivities, verdict
from erp.master_data import Item, Lot, PurchaseOrder, PurchaseOrderLine
from erp.models import AuditEntry, Outbox
from erp.purchasing import (
    approver_groups,
    code_letter,
    doa_route,
    expiry_date,
    is_on_time,
    sampling_plan,
)
from erp.seed import seed_demo
from erp.supply import (
    Customer,
    CustomerOrder,
    DoaThreshold,
    Inspection,
    InventoryMovement,
    Receipt,
    SupplierScorecard,
)
from schemas.purchase import (
    IssuePurchaseOrderInput,
    ReceiveGoodsInput,
    RecordInspectionInput,
    RegisterPurchaseInput,
    SetLotStatusInput,
    SetPurchaseStatusInput,
)
from schemas.supply import GoodsReceipt, PurchaseLine, PurchaseRequest

TODAY = date.today()

# ---------------------------------------------------------------- sampling plan (Z1.4)


@pytest.mark.parametrize(
    ("lot_size", "letter", "sample", "accept", "everything"),
    [
        (1, "A", 1, 0, True),  # A–D point down to E (13, Ac 0): more than the lot, so all
        (8, "A", 8, 0, True),
        (15, "B", 13, 0, False),
        (16, "C", 13, 0, False),
        (50, "D", 13, 0, False),
        (90, "E", 13, 0, False),
        (100, "F", 13, 0, False),  # F points up to E
        (200, "G", 50, 1, False),  # G points down to H
        (281, "H", 50, 1, False),
        (500, "H", 50, 1, False),
        (501, "J", 80, 2, False),
        (3200, "K", 125, 3, False),
        (3201, "L", 200, 5, False),
        (10001, "M", 315, 7, False),
        (35001, "N", 500, 10, False),
        (150001, "P", 800, 14, False),
        (500001, "Q", 1250, 21, False),
    ],
)
def test_sampling_plan_follows_z14_level_ii_aql_1_0(lot_size, letter, sample, accept, everything):
    plan = sampling_plan(Decimal(lot_size))
    assert (plan.code_letter, plan.sample_size, plan.accept_number) == (letter, sample, accept)
    assert plan.reject_number == accept + 1 and plan.hundred_percent is everything
    assert plan.basis.startswith("ANSI/ASQ Z1.4, general inspection level II")


def test_a_conditional_supplier_gets_100_percent_inspection():
    plan = sampling_plan(Decimal(1000), hundred_percent=True)
    assert (plan.sample_size, plan.accept_number, plan.hundred_percent) == (1000, 0, True)
    assert "conditionally" in plan.basis


def test_lot_sizes_round_up_to_whole_pieces():
    assert sampling_plan(Decimal("12.5")).lot_size == 13
    assert code_letter(15) == "B" and code_letter(16) == "C"


# ---------------------------------------------------------------- DoA, dates, verdict

MATRIX = [(Decimal(5000), "buyer"), (Decimal(50000), "purchasing-manager"), (None, "finance")]


@pytest.mark.parametrize(
    ("amount", "groups"),
    [
        ("0", ["buyer"]),
        ("5000", ["buyer"]),
        ("5000.01", ["buyer", "purchasing-manager"]),
        ("50000", ["buyer", "purchasing-manager"]),
        ("50000.01", ["buyer", "purchasing-manager", "finance"]),
    ],
)
def test_doa_route_includes_every_level_up_to_the_one_that_covers_the_amount(amount, groups):
    assert doa_route(MATRIX, Decimal(amount)) == groups


async def test_the_doa_thresholds_are_read_from_the_database(sessions):
    async with sessions() as session:
        assert await approver_groups(session, Decimal(2000)) == ["buyer"]
    async with sessions() as session, session.begin():
        await session.execute(
            update(DoaThreshold).where(DoaThreshold.level == 1).values(up_to_amount=1000)
        )
    async with sessions() as session:
        assert await approver_groups(session, Decimal(2000)) == ["buyer", "purchasing-manager"]


def test_on_time_is_against_the_promised_date_else_the_due_date():
    due, promised = date(2026, 12, 1), date(2026, 12, 5)
    assert is_on_time(date(2026, 12, 1), promised_on=None, due_on=due)
    assert not is_on_time(date(2026, 12, 2), promised_on=None, due_on=due)
    assert is_on_time(date(2026, 12, 5), promised_on=promised, due_on=due)
    assert not is_on_time(date(2026, 12, 6), promised_on=promised, due_on=due)


def test_expiry_from_the_label_else_from_the_shelf_life():
    made, received = date(2026, 1, 1), date(2026, 2, 1)
    label = date(2027, 6, 30)
    assert (
        expiry_date(
            expires_on=label, manufactured_on=made, received_on=received, shelf_life_days=365
        )
        == label
    )
    assert expiry_date(
        expires_on=None, manufactured_on=made, received_on=received, shelf_life_days=365
    ) == date(2027, 1, 1)
    assert expiry_date(
        expires_on=None, manufactured_on=None, received_on=received, shelf_life_days=365
    ) == date(2027, 2, 1)
    assert (
        expiry_date(
            expires_on=None, manufactured_on=made, received_on=received, shelf_life_days=None
        )
        is None
    )


def _inspection(chosen: str, sample: int, defects: int, reason: str = "") -> RecordInspectionInput:
    return RecordInspectionInput(
        process_id="po-x",
        lot_number="R0000-00001",
        inspector="heidi",
        chosen_outcome=chosen,
        sample_size=sample,
        defects=defects,
        reason=reason,
        plan=sampling_plan(Decimal(1000)),  # J: 80 pieces, accept 2
    )


def test_defects_above_the_accept_number_fail_whatever_was_chosen():
    assert verdict(_inspection("pass", 80, 2)).outcome == "pass"
    failed = verdict(_inspection("pass", 80, 3))
    assert failed.outcome == "fail" and failed.reason == (
        "3 defective in a sample of 80: more than the accept number 2 "
        "(recorded as a fail although 'pass' was chosen)"
    )
    assert verdict(_inspection("fail", 80, 0, "burrs on the collar")).reason == (
        "burrs on the collar"
    )
    short = verdict(_inspection("pass", 50, 0))
    assert short.outcome == "fail" and "the plan requires 80" in short.reason


# ---------------------------------------------------------------- activities


def _request(supplier: str, part: str, quantity: str, price: str = "0.42") -> PurchaseRequest:
    return PurchaseRequest(
        requester="alice",
        supplier_code=supplier,
        lines=[
            PurchaseLine(part_number=part, quantity=Decimal(quantity), unit_price=Decimal(price))
        ],
        due_on=TODAY + timedelta(days=14),
    )


async def _issued(activities: PurchaseActivities, pid: str, request: PurchaseRequest) -> str:
    env = ActivityEnvironment()
    data = RegisterPurchaseInput(process_id=pid, run_id="r1", request=request)
    first = await env.run(activities.register_purchase, data)
    again = await env.run(activities.register_purchase, data)  # a retry
    assert first == again
    approved = SetPurchaseStatusInput(process_id=pid, status="approved", actor="frank")
    await env.run(activities.set_purchase_status, approved)
    await env.run(activities.issue_purchase_order, IssuePurchaseOrderInput(process_id=pid))
    await env.run(activities.issue_purchase_order, IssuePurchaseOrderInput(process_id=pid))
    return first.number


def _goods(pid: str, event_id: str, quantity: str, part: str = "TB-0150") -> ReceiveGoodsInput:
    return ReceiveGoodsInput(
        process_id=pid,
        event_id=event_id,
        sent_by="grace",
        receipt=GoodsReceipt(
            part_number=part,
            quantity=Decimal(quantity),
            supplier_lot="S-1",
            manufactured_on=TODAY - timedelta(days=10),
            gs1="",
        ),
        received_on=TODAY,
    )


async def _count(sessions, model) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_registration_takes_the_effective_revision_and_a_retry_writes_once(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    number = await _issued(activities, "po-reg", _request("SUP-0001", "TB-0150", "1000"))
    async with sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
        assert order is not None
        line = await session.scalar(
            select(PurchaseOrderLine).where(PurchaseOrderLine.purchase_order_id == order.id)
        )
        assert line is not None
        item = await session.get_one(Item, line.item_id)
        sent = list(
            await session.scalars(select(Outbox).where(Outbox.recipient.like("supplier:%")))
        )
        issued = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "purchase.issued")
        )
    assert (order.status, order.amount, order.requested_by) == (
        "issued",
        Decimal("420.00"),
        "alice",
    )
    assert (item.revision, item.status, line.uom, line.line_no) == ("C", "effective", "m", 1)
    assert len(sent) == 1 and issued == 1


async def test_a_requisition_that_cannot_be_ordered_is_refused_and_recorded(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    request = _request("SUP-0001", "XX-9999", "5")
    data = RegisterPurchaseInput(process_id="po-bad", run_id="r1", request=request)
    for _ in range(2):  # a retry answers the same
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(activities.register_purchase, data)
        assert refused.value.type == "PurchaseRefused" and refused.value.non_retryable
        assert refused.value.message == "XX-9999 has no effective revision, so it cannot be ordered"
    number = refused.value.details[0]
    async with sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
        assert order is not None
        lines = await session.scalar(
            select(func.count())
            .select_from(PurchaseOrderLine)
            .where(PurchaseOrderLine.purchase_order_id == order.id)
        )
    assert order.status == "rejected" and order.process_id == "po-bad" and lines == 0


async def test_a_receipt_retried_makes_one_lot_and_too_much_is_refused(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    env = ActivityEnvironment()
    await _issued(activities, "po-rcv", _request("SUP-0001", "TB-0150", "1000"))
    before = await _count(sessions, InventoryMovement)
    first = await env.run(activities.receive_goods, _goods("po-rcv", "gr-1", "400"))
    again = await env.run(activities.receive_goods, _goods("po-rcv", "gr-1", "400"))
    assert first == again and first.po_status == "partially_received" and first.on_time
    assert (first.plan.code_letter, first.plan.sample_size) == ("H", 50)
    assert await _count(sessions, Receipt) == 1
    assert await _count(sessions, InventoryMovement) == before + 1
    with pytest.raises(ApplicationError) as too_much:
        await env.run(activities.receive_goods, _goods("po-rcv", "gr-2", "601"))
    assert too_much.value.type == "Conflict"
    assert too_much.value.message.startswith("only 600 m of TB-0150 is still open on PO-")
    with pytest.raises(ApplicationError) as other:
        await env.run(activities.receive_goods, _goods("po-rcv", "gr-3", "5", "LC-0110"))
    assert other.value.type == "Invalid"
    async with sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == first.lot_number))
        card = await session.get(SupplierScorecard, lot.supplier_id if lot else 0)
    assert lot is not None and lot.status == "QUARANTINE" and lot.origin == "receipt"
    assert lot.expires_on == TODAY - timedelta(days=10) + timedelta(days=1825)
    assert card is not None and (card.receipts, card.on_time_receipts) == (1, 1)


async def test_a_conditional_supplier_lot_is_inspected_whole_and_counted_once(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    env = ActivityEnvironment()
    # SUP-0003 is approved only conditionally for DC-0330 (its certificate expired)
    await _issued(activities, "po-cond", _request("SUP-0003", "DC-0330", "300", "0.35"))
    received = await env.run(activities.receive_goods, _goods("po-cond", "gr-1", "300", "DC-0330"))
    assert received.plan.hundred_percent and received.plan.sample_size == 300
    inspection = RecordInspectionInput(
        process_id="po-cond",
        lot_number=received.lot_number,
        inspector="heidi",
        chosen_outcome="pass",
        sample_size=300,
        defects=1,
        plan=received.plan,
    )
    first = await env.run(activities.record_incoming_inspection, inspection)
    again = await env.run(activities.record_incoming_inspection, inspection)
    assert first == again and first.outcome == "fail"  # 100 %: no defective accepted
    async with sessions() as session:
        rows = list(await session.scalars(select(Inspection)))
        lot = await session.scalar(select(Lot).where(Lot.lot_number == received.lot_number))
        card = await session.get(SupplierScorecard, lot.supplier_id if lot else 0)
    assert (
        len(rows) == 1
        and rows[0].kind == "incoming"
        and rows[0].results["plan"]["sample_size"] == 300
    )
    assert card is not None and (card.inspections, card.accepted_inspections) == (1, 0)


async def test_the_lot_machine_refusal_is_non_retryable_with_its_reason(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    env = ActivityEnvironment()
    await _issued(activities, "po-lot", _request("SUP-0001", "TB-0150", "100"))
    received = await env.run(activities.receive_goods, _goods("po-lot", "gr-1", "100"))
    rejected = SetLotStatusInput(
        process_id="po-lot",
        lot_number=received.lot_number,
        status="CONSUMED",  # QUARANTINE → CONSUMED is no transition of the machine
        reason="test",
        actor="carol",
        step="release",
    )
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.set_purchased_lot_status, rejected)
    assert refused.value.type == "LotRefused" and refused.value.non_retryable
    assert refused.value.message == (
        f"lot {received.lot_number} cannot go from QUARANTINE to CONSUMED"
    )
    released = rejected.model_copy(update={"status": "RELEASED", "reason": "released by QA"})
    await env.run(activities.set_purchased_lot_status, released)
    await env.run(activities.set_purchased_lot_status, released)  # a retry
    async with sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == received.lot_number))
        audits = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "lot.released")
        )
    assert lot is not None and lot.status == "RELEASED" and audits == 1


async def test_an_unknown_supplier_is_refused_without_an_order_row(sessions):
    await seed_demo(sessions)
    activities = PurchaseActivities(sessions)
    data = RegisterPurchaseInput(
        process_id="po-nobody", run_id="r1", request=_request("SUP-9999", "TB-0150", "10")
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.register_purchase, data)
    assert refused.value.message == "supplier SUP-9999 is not known"
    async with sessions() as session:
        order = await session.scalar(
            select(PurchaseOrder).where(PurchaseOrder.process_id == "po-nobody")
        )
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == refused.value.details[0])
                .order_by(AuditEntry.id)
            )
        )
    assert order is None and actions == ["purchase.requested", "purchase.rejected"]


async def test_a_purchase_for_a_customer_order_is_linked_to_it(sessions):
    await seed_demo(sessions)
    async with sessions() as session, session.begin():
        customer = await session.scalar(select(Customer).where(Customer.code == "CUS-0001"))
        assert customer is not None
        session.add(
            CustomerOrder(
                number="CO-2026-0001",
                process_id="co-1",
                customer_id=customer.id,
                part_number="IS-2000",
                quantity=Decimal(100),
            )
        )
    request = _request("SUP-0001", "TB-0150", "10").model_copy(update={"customer_order": "co-1"})
    data = RegisterPurchaseInput(process_id="co-1.purchase-1", run_id="r1", request=request)
    await ActivityEnvironment().run(PurchaseActivities(sessions).register_purchase, data)
    async with sessions() as session:
        order = await session.scalar(
            select(PurchaseOrder).where(PurchaseOrder.process_id == "co-1.purchase-1")
        )
        linked = await session.scalar(
            select(CustomerOrder).where(CustomerOrder.number == "CO-2026-0001")
        )
    assert order is not None and linked is not None and order.customer_order_id == linked.id
