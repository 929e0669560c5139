"""The purchase process on the time-skipping server, with real activities on a real database
and the demo master data: approval by amount, supplier check, the order issued, the supplier's
events, receipts making lots in QUARANTINE, late delivery, incoming inspection and QA release."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from erp.audit import verify_chain
from erp.lots import set_lot_status
from erp.master_data import Lot, PurchaseOrder, PurchaseOrderLine, Supplier
from erp.models import AuditEntry, Outbox, Process, Task
from erp.quality import Nonconformance
from erp.seed import seed_demo
from erp.supply import Inspection, LotStatusChange, Receipt, SupplierScorecard
from schemas.human_task import DecisionRequest, SignatureIntent, SignatureMeaning
from schemas.supply import EventResult, ProcessEvent, PurchaseLine, PurchaseRequest
from tests.helpers import eventually
from worker import build_worker
from workflows.human_task import HumanTaskWorkflow
from workflows.purchase import PurchaseWorkflow

SIGNS = {
    "approve": SignatureMeaning.APPROVED,
    "reject": SignatureMeaning.REJECTED,
    "release": SignatureMeaning.RELEASED,
}
LOT_NUMBER = re.compile(r"^R\d{4}-\d{5}$")  # the receipt rule of migration 0003: R{YY}{MM}-{SEQ:05}


def purchase(
    *,
    supplier: str = "SUP-0001",
    part: str = "TB-0150",
    quantity: str = "1000",
    price: str = "0.42",
    due_in_days: int = 14,
    due_on: date | None = None,
    requester: str = "alice",
) -> PurchaseRequest:
    return PurchaseRequest(
        requester=requester,
        supplier_code=supplier,
        lines=[
            PurchaseLine(part_number=part, quantity=Decimal(quantity), unit_price=Decimal(price))
        ],
        due_on=due_on or date.today() + timedelta(days=due_in_days),
        buyer_note="Replenishment for WO-2026-0032",
    )


async def start(env, task_queue: str, pid: str, request: PurchaseRequest) -> WorkflowHandle:
    return await env.client.start_workflow(
        PurchaseWorkflow.run,
        request.model_copy(update={"process_id": pid}),
        id=pid,
        task_queue=task_queue,
    )


async def task_id_of(client, workflow_id: str) -> int:
    async def probe():
        try:
            state = await client.get_workflow_handle(workflow_id).query(HumanTaskWorkflow.state)
        except RPCError:
            return None
        return state.task_id

    return await eventually(probe, what=f"task {workflow_id}")


async def decide(client, workflow_id: str, who: str, outcome: str, groups=(), **fields: str):
    task_id = await task_id_of(client, workflow_id)
    signature = (
        SignatureIntent(meaning=SIGNS[outcome], signer=who, printed_name=who.title())
        if outcome in SIGNS
        else None
    )
    request = DecisionRequest(
        task_id=task_id,
        decider=who,
        decider_name=who.title(),
        outcome=outcome,
        qualifying_groups=list(groups),
        fields=fields,
        signature=signature,
    )
    return await client.get_workflow_handle(workflow_id).execute_update(
        HumanTaskWorkflow.decide, request
    )


async def send(
    handle: WorkflowHandle, event: str, event_id: str, sent_by: str = "grace", **data
) -> EventResult:
    return await handle.execute_update(  # as the API sends it
        "event",
        ProcessEvent(event=event, event_id=event_id, sent_by=sent_by, data=data),
        result_type=EventResult,
    )


async def refused(handle: WorkflowHandle, event: str, event_id: str, **data) -> tuple[str, str]:
    """(kind, message) of a refused event."""
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await send(handle, event, event_id, **data)
    cause = failed.value.cause
    return getattr(cause, "type", ""), getattr(cause, "message", str(cause))


async def approve_small(client, pid: str) -> None:
    """A purchase up to 5,000 EUR: one buyer approves."""
    await decide(client, f"{pid}.approval", "frank", "approve", ["buyer"])


async def order_of(sessions, pid: str) -> PurchaseOrder | None:
    async with sessions() as session:
        return await session.scalar(
            select(PurchaseOrder)
            .where(PurchaseOrder.process_id == pid)
            .execution_options(populate_existing=True)
        )


async def po_status(sessions, pid: str, status: str) -> PurchaseOrder | None:
    order = await order_of(sessions, pid)
    return order if order is not None and order.status == status else None


async def issued(sessions, pid: str) -> PurchaseOrder:
    return await eventually(lambda: po_status(sessions, pid, "issued"), what=f"{pid} issued")


async def lot(sessions, lot_number: str) -> Lot:
    async with sessions() as session:
        found = await session.scalar(
            select(Lot)
            .where(Lot.lot_number == lot_number)
            .execution_options(populate_existing=True)
        )
    assert found is not None
    return found


async def lot_in(sessions, lot_number: str, status: str) -> Lot | None:
    found = await lot(sessions, lot_number)
    return found if found.status == status else None


async def process_at(sessions, pid: str, step: str) -> Process | None:
    async with sessions() as session:
        process = await session.get(Process, pid, populate_existing=True)
    return process if process is not None and process.current_step == step else None


async def task_row(sessions, workflow_id: str) -> Task | None:
    async with sessions() as session:
        return await session.scalar(
            select(Task)
            .where(Task.workflow_id == workflow_id)
            .execution_options(populate_existing=True)
        )


async def audit_rows(sessions, action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


async def scorecard(sessions, code: str) -> SupplierScorecard | None:
    async with sessions() as session:
        return await session.scalar(
            select(SupplierScorecard)
            .join(Supplier, Supplier.id == SupplierScorecard.supplier_id)
            .where(Supplier.code == code)
            .execution_options(populate_existing=True)
        )


def expiry(days: int = 900) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize(
    ("quantity", "groups", "approvers"),
    [
        ("10000", ["buyer"], [("frank", "buyer")]),  # 4,200 EUR: level 1
        (
            "50000",
            ["buyer", "purchasing-manager"],
            [("frank", "buyer"), ("judy", "purchasing-manager")],
        ),
        (
            "200000",  # 84,000 EUR: every level
            ["buyer", "purchasing-manager", "finance"],
            [("frank", "buyer"), ("judy", "purchasing-manager"), ("ken", "finance")],
        ),
    ],
)
async def test_approval_follows_the_doa_matrix_then_the_order_is_issued(
    time_skipping_env, sessions, task_queue, quantity, groups, approvers
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = f"po-doa-{quantity}"
    async with build_worker(env.client, task_queue, sessions):
        await start(env, task_queue, pid, purchase(quantity=quantity))
        await task_id_of(env.client, f"{pid}.approval")
        task = await task_row(sessions, f"{pid}.approval")
        assert task is not None
        assert task.stage_count == len(groups) and task.candidate_groups == groups[:1]
        assert task.rule == ("sequential" if len(groups) > 1 else "any")
        assert task.spec["context"]["Approvers in turn"] == " → ".join(groups)
        for who, group in approvers:
            await decide(env.client, f"{pid}.approval", who, "approve", [group])
        order = await issued(sessions, pid)
        process = await eventually(
            lambda: process_at(sessions, pid, "awaiting-delivery"), what="awaiting delivery"
        )
    assert order.number.startswith("PO-") and order.approved_at is not None
    assert order.amount == Decimal(quantity) * Decimal("0.42")
    approved = await audit_rows(sessions, "purchase.approved")
    assert approved[0].after["approvers"] == [who for who, _ in approvers]
    async with sessions() as session:
        outbox = await session.scalar(select(Outbox).where(Outbox.recipient == "supplier:SUP-0001"))
    assert outbox is not None and outbox.subject == f"Purchase order {order.number}"
    assert outbox.payload["lines"][0]["part_number"] == "TB-0150"
    assert outbox.payload["due_on"] == order.due_on.isoformat()
    assert process.kind == "purchase" and process.business_key == order.number


async def test_the_requester_may_not_approve_and_a_rejection_ends_the_purchase(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-reject"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(requester="frank"))
        with pytest.raises(WorkflowUpdateFailedError) as own:
            await decide(env.client, f"{pid}.approval", "frank", "approve", ["buyer"])
        assert "initiator of a request may not decide it" in str(own.value.cause)
        kind, message = await refused(handle, "goods-received", "early", part_number="TB-0150")
        assert kind == "Invalid"  # the data is checked first: no quantity, no supplier lot
        kind, message = await refused(
            handle,
            "goods-received",
            "early",
            part_number="TB-0150",
            quantity="10",
            supplier_lot="NK-1",
        )
        assert kind == "Conflict" and "has not been issued" in message
        await decide(
            env.client,
            f"{pid}.approval",
            "judy",
            "reject",
            ["buyer"],
            reason="Use the open blanket order PO-0101 instead.",
        )
        result = await handle.result()
    assert result.status == "rejected"
    order = await order_of(sessions, pid)
    assert order is not None and order.status == "rejected" and order.closed_at is not None
    async with sessions() as session:
        process = await session.get_one(Process, pid)
    assert process.status == "completed" and process.outcome == "rejected"
    rejected = await audit_rows(sessions, "purchase.rejected")
    assert rejected[0].reason == "Use the open blanket order PO-0101 instead."
    assert rejected[0].actor == "judy"


async def test_a_part_without_an_effective_revision_is_rejected_with_the_reason(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-no-revision"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(part="XX-9999"))
        result = await handle.result()
    assert result.status == "rejected" and result.number.startswith("PO-")
    order = await order_of(sessions, pid)
    assert order is not None and order.status == "rejected"
    rejected = await audit_rows(sessions, "purchase.rejected")
    assert rejected[0].reason == "XX-9999 has no effective revision, so it cannot be ordered"
    async with sessions() as session:
        process = await session.get_one(Process, pid)
    assert process.outcome == "rejected" and process.business_key == order.number


# ---------------------------------------------------------------- supplier check


async def test_a_disqualified_supplier_is_refused_then_the_buyer_changes_the_supplier(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-disqualified"
    async with build_worker(env.client, task_queue, sessions):
        await start(
            env, task_queue, pid, purchase(supplier="SUP-0005", part="LC-0110", price="0.18")
        )
        await approve_small(env.client, pid)
        await task_id_of(env.client, f"{pid}.supplier-1")
        task = await task_row(sessions, f"{pid}.supplier-1")
        assert task is not None and task.candidate_groups == ["buyer"]
        assert task.spec["context"]["Supplier check failed"] == (
            "supplier SUP-0005 is disqualified"
        )
        await decide(
            env.client,
            f"{pid}.supplier-1",
            "frank",
            "change_supplier",
            ["buyer"],
            supplier_code="SUP-0002",
            note="Valdoro is approved for LC-0110",
        )
        order = await issued(sessions, pid)
    checks = await audit_rows(sessions, "purchase.supplier_checked")
    assert [(c.outcome, c.reason) for c in checks] == [
        ("refused", "supplier SUP-0005 is disqualified"),
        ("ok", ""),
    ]
    changed = await audit_rows(sessions, "purchase.supplier_changed")
    assert changed[0].before == {"supplier_code": "SUP-0005"}
    assert changed[0].after == {"supplier_code": "SUP-0002"}
    async with sessions() as session:
        supplier = await session.get_one(Supplier, order.supplier_id)
        outbox = await session.scalar(select(Outbox).where(Outbox.recipient.like("supplier:%")))
    assert supplier.code == "SUP-0002" and outbox is not None
    assert outbox.recipient == "supplier:SUP-0002"


async def test_an_expired_certificate_is_refused_and_the_buyer_may_cancel(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-expired-cert"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(
            env, task_queue, pid, purchase(supplier="SUP-0003", part="DC-0330", price="0.35")
        )
        await approve_small(env.client, pid)
        await task_id_of(env.client, f"{pid}.supplier-1")
        task = await task_row(sessions, f"{pid}.supplier-1")
        assert task is not None
        assert (
            task.title.startswith("Supplier refused for PO-")
            and "supplier SUP-0003 has no valid quality certificate on" in task.title
        )
        await decide(env.client, f"{pid}.supplier-1", "frank", "cancel", ["buyer"])
        result = await handle.result()
    assert result.status == "cancelled"
    order = await order_of(sessions, pid)
    assert order is not None and order.status == "cancelled" and order.issued_at is None
    async with sessions() as session:
        process = await session.get_one(Process, pid)
        sent = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.recipient.like("supplier:%"))
        )
    assert process.status == "cancelled" and sent == 0


# ---------------------------------------------------------------- receiving and inspection


async def test_partial_receipts_inspection_release_and_hold(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-receive"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(quantity="1000"))
        await approve_small(env.client, pid)
        order = await issued(sessions, pid)
        promised = date.today() + timedelta(days=10)
        confirmed = await send(
            handle,
            "supplier-confirmed",
            "conf-1",
            "frank",
            promised_on=promised.isoformat(),
            supplier_reference="AB-7781",
        )
        assert confirmed.message == f"{order.number} confirmed by the supplier for {promised}"
        asn = await send(
            handle, "asn", "asn-1", asn_reference="ASN-5521", expected_on=promised.isoformat()
        )
        assert "ASN-5521" in asn.message
        first = await send(
            handle,
            "goods-received",
            "gr-1",
            part_number="TB-0150",
            quantity="400",
            supplier_lot="NK251120-1",
            manufactured_on=(date.today() - timedelta(days=5)).isoformat(),
        )
        second = await send(
            handle,
            "goods-received",
            "gr-2",
            part_number="TB-0150",
            quantity="600",
            supplier_lot="NK251120-2",
            expires_on=expiry(),
        )
        one, two = first.data["lot_number"], second.data["lot_number"]
        assert LOT_NUMBER.match(one) and LOT_NUMBER.match(two) and one != two
        for number in (one, two):
            assert (await lot(sessions, number)).status == "QUARANTINE"
        assert (await po_status(sessions, pid, "received")) is not None
        # inspections of both receipts are open side by side
        await task_id_of(env.client, f"{pid}.inspect-1")
        await task_id_of(env.client, f"{pid}.inspect-2")
        inspect_1 = await task_row(sessions, f"{pid}.inspect-1")
        assert inspect_1 is not None and inspect_1.candidate_groups == ["qc"]
        assert inspect_1.spec["context"]["Sample size"] == "50"  # lot of 400: H, n=50, Ac 1
        assert inspect_1.spec["context"]["Accept number"] == "1"
        # 2 defective > accept number 1: a fail whatever was chosen
        await decide(
            env.client,
            f"{pid}.inspect-1",
            "heidi",
            "pass",
            ["qc"],
            sample_size="50",
            defects="2",
            measurements="OD 4.1 mm ± 0.05 on 50 of 50",
        )
        await decide(
            env.client,
            f"{pid}.inspect-2",
            "heidi",
            "pass",
            ["qc"],
            sample_size="80",
            defects="0",
            measurements="OD within tolerance",
        )
        with pytest.raises(WorkflowUpdateFailedError) as own:
            await decide(env.client, f"{pid}.release-2", "heidi", "release", ["qa"])
        assert "took part in this work" in str(own.value.cause)
        await decide(env.client, f"{pid}.release-2", "carol", "release", ["qa"])
        result = await handle.result()
        # the failed lot is contained by the nonconformance the purchase opened (it did not
        # wait for it): po-receive.nc-1, reported by the inspector
        held = await eventually(lambda: lot_in(sessions, one, "ON_HOLD"), what="lot held by NC")
        async with sessions() as session:
            nc = await session.scalar(
                select(Nonconformance).where(Nonconformance.process_id == f"{pid}.nc-1")
            )
            nc_process = await session.get(Process, f"{pid}.nc-1")
    assert result.status == "received"
    assert result.lots == [one, two] and result.released_lots == [two] and result.held_lots == [one]
    released = await lot(sessions, two)
    assert nc is not None and nc_process is not None and nc_process.kind == "nonconformance"
    assert (nc.source, nc.reported_by, nc.origin_process_id) == ("incoming", "heidi", pid)
    assert nc.description.endswith(
        "failed: 2 defective in a sample of 50: more than the accept number 1"
        " (recorded as a fail although 'pass' was chosen)"
    )
    assert held.hold_reason == f"{nc.number} Lot {one} (TB-0150) failed incoming inspection"
    assert held.status_changed_by == "heidi"
    assert released.status == "RELEASED" and released.expires_on == date.fromisoformat(expiry())
    assert held.supplier_lot == "NK251120-1" and held.uom == "m"
    assert held.expires_on == date.today() - timedelta(days=5) + timedelta(days=1825)
    order = await order_of(sessions, pid)
    assert order is not None and order.status == "closed"
    assert order.promised_on == promised and order.supplier_reference == "AB-7781"
    assert order.asn_reference == "ASN-5521"
    async with sessions() as session:
        receipts = list(await session.scalars(select(Receipt).order_by(Receipt.id)))
        inspections = list(await session.scalars(select(Inspection).order_by(Inspection.id)))
        line = await session.scalar(
            select(PurchaseOrderLine).where(PurchaseOrderLine.purchase_order_id == order.id)
        )
        process = await session.get_one(Process, pid)
        history = list(
            await session.scalars(
                select(LotStatusChange.to_status)
                .where(LotStatusChange.lot_id == released.id)
                .order_by(LotStatusChange.id)
            )
        )
        chain = await verify_chain(session)
    assert [r.quantity for r in receipts] == [Decimal(400), Decimal(600)]
    assert all(r.on_time and r.asn_reference == "ASN-5521" for r in receipts)
    assert [(i.kind, i.outcome, i.defects, i.accept_number) for i in inspections] == [
        ("incoming", "fail", 2, 1),
        ("incoming", "pass", 0, 2),
    ]
    assert inspections[0].results["chosen_outcome"] == "pass"
    assert line is not None and line.received_quantity == Decimal(1000)
    assert process.status == "completed" and process.outcome == "received"
    assert history == ["QUARANTINE", "RELEASED"]
    card = await scorecard(sessions, "SUP-0001")
    assert card is not None
    assert (card.receipts, card.on_time_receipts, card.inspections, card.accepted_inspections) == (
        2,
        2,
        2,
        1,
    )
    assert chain.ok


async def test_qa_may_refuse_release_and_a_refusal_by_the_lot_machine_goes_to_a_person(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-hold"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(quantity="1000"))
        await approve_small(env.client, pid)
        await issued(sessions, pid)
        goods = {"part_number": "TB-0150", "quantity": "500", "expires_on": expiry()}
        one = (await send(handle, "goods-received", "gr-1", supplier_lot="A", **goods)).data
        two = (await send(handle, "goods-received", "gr-2", supplier_lot="B", **goods)).data
        await decide(env.client, f"{pid}.inspect-1", "heidi", "pass", ["qc"], defects="0")
        await decide(env.client, f"{pid}.inspect-2", "heidi", "pass", ["qc"], defects="1")
        await decide(
            env.client,
            f"{pid}.release-1",
            "bob",
            "hold",
            ["qa"],
            reason="Certificate of analysis missing",
        )
        await task_id_of(env.client, f"{pid}.release-2")
        async with sessions() as session, session.begin():  # meanwhile lot two expired in stock
            expired = await session.scalar(select(Lot).where(Lot.lot_number == two["lot_number"]))
            assert expired is not None
            await set_lot_status(
                session,
                expired,
                "EXPIRED",
                reason="expired in stock",
                actor="system",
                process_id=None,
            )
        await decide(env.client, f"{pid}.release-2", "carol", "release", ["qa"])
        await task_id_of(env.client, f"{pid}.lot-problem-2")
        problem = await task_row(sessions, f"{pid}.lot-problem-2")
        assert problem is not None and problem.candidate_groups == ["qa-manager"]
        assert problem.spec["context"]["Refused"] == (
            f"lot {two['lot_number']} cannot go from EXPIRED to RELEASED"
        )
        await decide(
            env.client,
            f"{pid}.lot-problem-2",
            "carol",
            "acknowledged",
            ["qa-manager"],
            action="Lot to be scrapped; replacement ordered",
        )
        result = await handle.result()
    assert result.released_lots == []
    assert result.held_lots == [one["lot_number"], two["lot_number"]]
    held = await lot(sessions, one["lot_number"])
    assert held.status == "ON_HOLD"
    assert held.hold_reason == "QA refused release: Certificate of analysis missing"
    assert (await lot(sessions, two["lot_number"])).status == "EXPIRED"
    async with sessions() as session:
        inspections = list(await session.scalars(select(Inspection).order_by(Inspection.id)))
    # left blank, the sample size is the plan's: a lot of 500 → code letter H, 50 pieces
    assert [(i.sample_size, i.defects, i.outcome) for i in inspections] == [
        (50, 0, "pass"),
        (50, 1, "pass"),
    ]


async def test_events_are_checked_and_a_repeated_event_changes_nothing(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-events"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(quantity="1000"))
        await approve_small(env.client, pid)
        await issued(sessions, pid)
        goods = {"part_number": "TB-0150", "supplier_lot": "NK-77", "expires_on": expiry()}
        assert await refused(handle, "delivered", "x-1", delivered_on="2026-01-01") == (
            "Invalid",
            "a purchase accepts the events supplier-confirmed, asn, goods-received; not 'delivered'",
        )
        kind, message = await refused(
            handle, "goods-received", "x-2", **(goods | {"part_number": "LC-0110", "quantity": "5"})
        )
        assert kind == "Invalid" and "LC-0110 is not on purchase order" in message
        kind, message = await refused(
            handle,
            "goods-received",
            "x-3",
            **(goods | {"quantity": "5", "expires_on": "2020-01-01"}),
        )
        assert (kind, message) == ("Invalid", "the expiry date 2020-01-01 is in the past")
        first = await send(handle, "goods-received", "gr-1", **(goods | {"quantity": "700"}))
        kind, message = await refused(
            handle, "goods-received", "x-4", **(goods | {"quantity": "301"})
        )
        assert kind == "Conflict"
        assert message.startswith("only 300 m of TB-0150 is still open on PO-")
        again = await send(handle, "goods-received", "gr-1", **(goods | {"quantity": "700"}))
        assert again.repeated and again.data == first.data and not first.repeated
        async with sessions() as session:
            receipts = await session.scalar(select(func.count()).select_from(Receipt))
            lots = await session.scalar(
                select(func.count()).select_from(Lot).where(Lot.origin == "receipt")
            )
        assert (receipts, lots) == (1, 1)
        card = await scorecard(sessions, "SUP-0001")
        assert card is not None and card.receipts == 1
        status = await handle.query(PurchaseWorkflow.status)
        assert status.status == "partially_received" and status.lots == [first.data["lot_number"]]


# ---------------------------------------------------------------- late delivery


async def test_late_delivery_escalates_at_the_deadline_and_closes_when_the_rest_arrives(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-late"
    today = (await env.get_current_time()).astimezone(UTC).date()
    due, promised = today + timedelta(days=3), today + timedelta(days=6)

    async def sleep_until_after(day: date) -> None:
        """Past the end of that day (UTC), the deadline's moment, by an hour."""
        end = datetime.combine(day + timedelta(days=1), time(1), UTC)
        await env.sleep(end - await env.get_current_time())

    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(quantity="1000", due_on=due))
        await approve_small(env.client, pid)
        order = await issued(sessions, pid)
        await send(handle, "supplier-confirmed", "conf", "frank", promised_on=promised.isoformat())
        await sleep_until_after(due)  # the confirmation moved the deadline to the promised day
        assert await task_row(sessions, f"{pid}.late-1") is None
        await send(
            handle,
            "goods-received",
            "gr-1",
            part_number="TB-0150",
            quantity="250",
            supplier_lot="NK-1",
            expires_on=expiry(),
        )
        await sleep_until_after(promised)
        await task_id_of(env.client, f"{pid}.late-1")
        late = await task_row(sessions, f"{pid}.late-1")
        assert late is not None and late.candidate_groups == ["buyer"] and late.kind == "perform"
        assert late.title == f"Late delivery: {order.number} due {promised}, 250 of 1000 m received"
        await env.sleep(timedelta(days=1))  # the task's SLA

        async def escalated():
            task = await task_row(sessions, f"{pid}.late-1")
            return task if task is not None and task.level == 2 else None

        late = await eventually(escalated, what="late delivery escalated")
        assert late.candidate_groups == ["buyer", "purchasing-manager"]
        await send(
            handle,
            "goods-received",
            "gr-2",
            part_number="TB-0150",
            quantity="750",
            supplier_lot="NK-2",
            expires_on=expiry(),
        )

        async def closed():
            task = await task_row(sessions, f"{pid}.late-1")
            return task if task is not None and task.status == "cancelled" else None

        await eventually(closed, what="late-delivery task closed")
        status = await handle.query(PurchaseWorkflow.status)
    cancelled = await audit_rows(sessions, "task.cancelled")
    assert cancelled[-1].reason == f"everything ordered on {order.number} has been received"
    assert status.status == "received" and len(status.lots) == 2
    async with sessions() as session:
        receipts = list(await session.scalars(select(Receipt).order_by(Receipt.id)))
    # both arrived after the due date: the first by the promised date, the second after it
    assert [r.on_time for r in receipts] == [True, False]
    card = await scorecard(sessions, "SUP-0001")
    assert card is not None and (card.receipts, card.on_time_receipts) == (2, 1)


# ---------------------------------------------------------------- cancellation


async def test_cancellation_is_recorded_and_leaves_no_task_open(dev_env, sessions, task_queue):
    # cancellation is tried on the real server (see test_change_control)
    env = dev_env
    await seed_demo(sessions)
    pid = f"po-cancel-{task_queue}"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, purchase(quantity="1000"))
        await approve_small(env.client, pid)
        await issued(sessions, pid)
        received = await send(
            handle,
            "goods-received",
            "gr-1",
            part_number="TB-0150",
            quantity="100",
            supplier_lot="NK-1",
            expires_on=expiry(),
        )
        await task_id_of(env.client, f"{pid}.inspect-1")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()

        async def recorded():
            async with sessions() as session:
                process = await session.get(Process, pid, populate_existing=True)
                open_tasks = await session.scalar(
                    select(func.count())
                    .select_from(Task)
                    .where(Task.process_id == pid, Task.status == "open")
                )
            done = process is not None and process.status == "cancelled" and open_tasks == 0
            return process if done else None

        process = await eventually(recorded, what="cancellation recorded")
    order = await order_of(sessions, pid)
    assert order is not None and order.status == "cancelled" and order.closed_at is not None
    assert process.outcome == "cancelled"
    # the lot received before the cancellation stays in quarantine
    assert (await lot(sessions, received.data["lot_number"])).status == "QUARANTINE"


async def test_cancellation_at_any_moment_leaves_nothing_open(dev_env, sessions, task_queue):
    env = dev_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        for n, delay in enumerate((0.0, 0.05, 0.2)):
            handle = await start(env, task_queue, f"po-race-{n}-{task_queue}", purchase())
            await asyncio.sleep(delay)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        async def all_closed():
            async with sessions() as session:
                open_tasks = await session.scalar(
                    select(func.count()).select_from(Task).where(Task.status == "open")
                )
                statuses = list(
                    await session.scalars(
                        select(PurchaseOrder.status).where(PurchaseOrder.process_id.is_not(None))
                    )
                )
            return open_tasks == 0 and all(s == "cancelled" for s in statuses)

        await eventually(all_closed, what="no open task, every registered purchase cancelled")
