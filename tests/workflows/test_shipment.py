"""Shipments on the time-skipping server, with real activities on the demo catalogue."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from erp.audit import verify_chain
from erp.lots import set_lot_status
from erp.master_data import Item, Lot
from erp.models import AuditEntry, Outbox, Process, Task
from erp.seed import seed_demo
from erp.supply import Customer, InventoryMovement, SerialNumber, Shipment, ShipmentLine
from schemas.human_task import TaskSpec
from schemas.supply import (
    EventResult,
    ProcessEvent,
    ShipmentLineRequest,
    ShipmentRequest,
    ShipmentResult,
)
from tests.helpers import decide_task, eventually, task_by_workflow
from ui import i18n
from worker import build_worker
from workflows.shipment import ShipmentWorkflow

TODAY = date.today()


async def add_finished_lot(
    sessions: async_sessionmaker[AsyncSession], number: str, quantity: str, expires_in: int
) -> None:
    async with sessions() as session, session.begin():
        item = await session.scalar(
            select(Item).where(Item.part_number == "IS-2000", Item.status == "effective")
        )
        assert item is not None
        session.add(
            Lot(
                lot_number=number,
                item_id=item.id,
                part_number="IS-2000",
                quantity=Decimal(quantity),
                status="RELEASED",
                origin="production",
                manufactured_on=TODAY - timedelta(days=1095 - expires_in),
                expires_on=TODAY + timedelta(days=expires_in),
            )
        )


async def released_infusion_sets(sessions: async_sessionmaker[AsyncSession]) -> list[Lot]:
    """The demo's released IS-2000 lots, first expiry first."""
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Lot)
                .where(Lot.part_number == "IS-2000", Lot.status == "RELEASED")
                .order_by(Lot.expires_on)
            )
        )


async def start(  # type: ignore[no-untyped-def]
    env, task_queue: str, pid: str, *lines: tuple[str, str], customer: str = "CUS-0001"
) -> WorkflowHandle[Any, ShipmentResult]:
    return await env.client.start_workflow(
        ShipmentWorkflow.run,
        ShipmentRequest(
            process_id=pid,
            requester="frank",
            customer_code=customer,
            lines=[ShipmentLineRequest(part_number=p, quantity=Decimal(q)) for p, q in lines],
            expected_transit_days=3,
        ),
        id=pid,
        task_queue=task_queue,
    )


async def ship(client, pid: str, step: str = "pick-1") -> None:  # type: ignore[no-untyped-def]
    await decide_task(
        client,
        f"{pid}.{step}",
        "grace",
        "shipped",
        groups=["warehouse"],
        carrier="DHL Freight",
        tracking="JD0146000099",
    )


def delivered(event_id: str, on: date = TODAY, **data: str) -> ProcessEvent:
    return ProcessEvent(
        event="delivered",
        event_id=event_id,
        sent_by="carrier-gateway",
        data={"delivered_on": on.isoformat(), "received_by": "Ward 3 stores", **data},
    )


async def send(handle: WorkflowHandle[Any, Any], event: ProcessEvent) -> EventResult:
    result: EventResult = await handle.execute_update(
        "event", event, id=str(uuid.uuid4()), result_type=EventResult
    )
    return result


async def refused(handle: WorkflowHandle[Any, Any], event: ProcessEvent) -> tuple[str, str]:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await send(handle, event)
    cause = err.value.cause
    return getattr(cause, "type", ""), str(cause)


async def shipment_status(sessions: async_sessionmaker[AsyncSession], pid: str) -> str | None:
    async with sessions() as session:
        return await session.scalar(select(Shipment.status).where(Shipment.process_id == pid))


async def test_fefo_with_the_customers_shelf_life_then_delivered_by_event(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    # expires in 300 days: CUS-0001 accepts only lots with 365 days left, so it is skipped
    await add_finished_lot(sessions, "F-SHORT-LIFE", "1000", expires_in=300)
    lots = [
        lot for lot in await released_infusion_sets(sessions) if lot.lot_number != "F-SHORT-LIFE"
    ]
    oldest, newest = lots  # the demo's revision B lot (625 days left) and revision C lot
    pid = "sh-happy"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, ("IS-2000", "1500"), ("IP-3000", "2"))
        pick = await eventually(lambda: task_by_workflow(sessions, f"{pid}.pick-1"), what="pick")
        picks = [v for k, v in pick.spec["context"].items() if k.startswith("Pick ")]
        assert picks[0].startswith(f"1200 ea of lot {oldest.lot_number}")
        assert picks[1].startswith(f"300 ea of lot {newest.lot_number}")
        assert not any("F-SHORT-LIFE" in p for p in picks)
        assert pick.candidate_groups == ["warehouse"]
        # the consignee cannot have received what has not left
        kind, message = await refused(handle, delivered("too-early"))
        assert kind == "Conflict" and "has not been shipped yet" in message
        kind, message = await refused(
            handle, ProcessEvent(event="asn", event_id="x", sent_by="carrier-gateway", data={})
        )
        assert kind == "Invalid" and "accepts the event delivered" in message
        await ship(env.client, pid)
        await eventually(lambda: _is(shipment_status(sessions, pid), "shipped"), what="shipped")
        # the ERP row commits before the workflow has heard the activity's answer: wait for the
        # workflow too, or the event below meets "not shipped yet" (a Conflict) instead
        await eventually(lambda: _shipped_for_the_workflow(handle), what="workflow shipped")
        kind, message = await refused(
            handle, delivered("bad", received_by="x", on=TODAY + timedelta(days=9))
        )
        assert kind == "Invalid" and "in the future" in message
        first = await send(handle, delivered("carrier-evt-1", note="2 cartons"))
        assert not first.repeated and "recorded" in first.message
        again = await send(handle, delivered("carrier-evt-1", note="2 cartons"))
        assert again.repeated and again.message == first.message
        result = await handle.result()

    assert result.status == "delivered" and result.number.startswith("SH-")
    assert result.delivered_on == TODAY
    assert result.expected_delivery_on == TODAY + timedelta(days=3)
    async with sessions() as session:
        shipment = await session.scalar(select(Shipment).where(Shipment.process_id == pid))
        assert shipment is not None
        assert shipment.status == "delivered" and shipment.carrier == "DHL Freight"
        assert shipment.delivery_note == "received by Ward 3 stores; 2 cartons"
        customer = await session.scalar(select(Customer).where(Customer.code == "CUS-0001"))
        assert customer is not None
        lines = {
            lot_number: (quantity, consignee)
            for lot_number, quantity, consignee in await session.execute(
                select(Lot.lot_number, ShipmentLine.quantity, ShipmentLine.consignee_id)
                .join(Lot, Lot.id == ShipmentLine.lot_id)
                .where(ShipmentLine.shipment_id == shipment.id)
            )
        }
        pumps = await session.scalar(select(Lot).where(Lot.part_number == "IP-3000"))
        assert pumps is not None
        assert lines == {
            oldest.lot_number: (Decimal(1200), customer.id),
            newest.lot_number: (Decimal(300), customer.id),
            pumps.lot_number: (Decimal(2), customer.id),
        }
        assert (await session.get_one(Lot, oldest.id)).status == "SHIPPED"
        assert (await session.get_one(Lot, newest.id)).quantity == 4500
        short_life = await session.scalar(select(Lot).where(Lot.lot_number == "F-SHORT-LIFE"))
        assert short_life is not None and short_life.quantity == 1000
        shipped_serials = list(
            await session.scalars(
                select(SerialNumber.serial)
                .where(SerialNumber.shipment_id == shipment.id, SerialNumber.status == "shipped")
                .order_by(SerialNumber.serial)
            )
        )
        assert shipped_serials == ["IP3-000001", "IP3-000002"]  # lowest in stock first
        movements = await session.scalar(
            select(func.count())
            .select_from(InventoryMovement)
            .where(InventoryMovement.kind == "ship", InventoryMovement.reference == result.number)
        )
        assert movements == 3
        notice = await session.scalar(select(Outbox).where(Outbox.recipient == "customer:CUS-0001"))
        assert notice is not None and result.number in notice.subject
        assert {line["lot_number"] for line in notice.payload["lines"]} == set(lines)
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == result.number)
                .order_by(AuditEntry.id)
            )
        )
        # the repeated event changed nothing: one delivery
        assert actions == [
            "shipment.planned",
            "shipment.picked",
            "shipment.shipped",
            "shipment.delivered",
        ]
        process = await session.get(Process, pid)
        assert process is not None
        assert (process.kind, process.status, process.outcome) == (
            "shipment",
            "completed",
            "delivered",
        )
        assert (await verify_chain(session)).ok


async def test_a_lot_held_after_picking_is_refused_with_the_reason(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    oldest, newest = await released_infusion_sets(sessions)
    pid = "sh-held"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, ("IS-2000", "100"))
        pick = await eventually(lambda: task_by_workflow(sessions, f"{pid}.pick-1"), what="pick")
        assert any(oldest.lot_number in v for v in pick.spec["context"].values())
        async with sessions() as session, session.begin():  # a complaint holds the picked lot
            lot = await session.get_one(Lot, oldest.id)
            await set_lot_status(
                session,
                lot,
                "ON_HOLD",
                reason="complaint CMP-2026-031: cracked spikes",
                actor="carol",
                process_id=None,
            )
        await ship(env.client, pid)
        told = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.ship-refused-1"), what="refusal task"
        )
        reason = f"lot {oldest.lot_number} is ON_HOLD (complaint CMP-2026-031: cracked spikes): it cannot be shipped"
        assert told.spec["context"]["Refused"] == reason
        assert reason in told.title and told.candidate_groups == ["warehouse"]
        # the quoted refusal keeps its wording: a zh_Hans person reads it in Chinese
        spec = TaskSpec.model_validate(told.spec)
        in_chinese = f"批次 {oldest.lot_number} 的状态为“已冻结”（complaint CMP-2026-031: cracked spikes）：不能发货"
        assert spec.title_values is not None and isinstance(spec.title_values["why"], dict)
        number = spec.title_values["number"]
        assert i18n.task_text("zh_Hans", spec) == f"发货 {number} 被拒：{in_chinese}"
        assert i18n.context_text("zh_Hans", spec, "Refused") == in_chinese
        assert i18n.task_text("en", spec) == told.title
        assert await shipment_status(sessions, pid) == "planned"  # nothing left
        await decide_task(
            env.client, f"{pid}.ship-refused-1", "grace", "pick_again", groups=["warehouse"]
        )
        again = await eventually(lambda: task_by_workflow(sessions, f"{pid}.pick-2"), what="pick 2")
        assert again.spec["context"]["Refused"] == reason
        shown = [v for k, v in again.spec["context"].items() if k.startswith("Pick ")]
        assert shown == [f"100 ea of lot {newest.lot_number}, expires {newest.expires_on}"]
        await ship(env.client, pid, "pick-2")
        await eventually(lambda: _is(shipment_status(sessions, pid), "shipped"), what="shipped")
        await send(handle, delivered("evt-held"))
        result = await handle.result()

    assert result.status == "delivered" and result.lots == [newest.lot_number]
    async with sessions() as session:
        held = await session.get_one(Lot, oldest.id)
        assert held.status == "ON_HOLD" and held.quantity == 1200
        refusal = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "shipment.ship_refused")
        )
        assert refusal is not None
        assert (
            refusal.outcome == "refused" and refusal.reason == reason and refusal.actor == "grace"
        )
        lots = set(
            await session.scalars(
                select(Lot.lot_number).join(ShipmentLine, ShipmentLine.lot_id == Lot.id)
            )
        )
        assert lots == {newest.lot_number}


async def test_no_confirmation_opens_a_task_at_the_expected_date_and_escalates(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "sh-silent"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, ("IS-2000", "10"), customer="CUS-0003")
        await ship(env.client, pid)
        await eventually(lambda: _is(shipment_status(sessions, pid), "shipped"), what="shipped")
        await env.sleep(timedelta(days=3))  # expected in 3 days: not overdue on its day
        assert await task_by_workflow(sessions, f"{pid}.delivery-overdue") is None
        await env.sleep(timedelta(days=1, hours=1))
        task = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.delivery-overdue"), what="overdue task"
        )
        assert (
            task.title
            == f"Delivery of {(await handle.query(ShipmentWorkflow.status)).number} not confirmed"
        )
        assert task.candidate_groups == ["warehouse"] and task.level == 1
        await env.sleep(timedelta(days=2, hours=1))

        async def escalated() -> Task | None:
            found = await task_by_workflow(sessions, f"{pid}.delivery-overdue")
            return found if found is not None and found.level == 2 else None

        task = await eventually(escalated, what="escalation")
        assert task.candidate_groups == ["warehouse", "purchasing-manager"]
        await decide_task(
            env.client,
            f"{pid}.delivery-overdue",
            "judy",
            "confirmed",
            groups=["purchasing-manager"],
            delivered_on=(TODAY + timedelta(days=4)).isoformat(),
            note="carrier POD received by phone",
        )
        kind, message = await refused(handle, delivered("late-evt"))
        assert kind == "Conflict" and "already recorded" in message
        result = await handle.result()

    assert result.status == "delivered" and result.delivered_on == TODAY + timedelta(days=4)
    async with sessions() as session:
        shipment = await session.scalar(select(Shipment).where(Shipment.process_id == pid))
        assert shipment is not None and shipment.status == "delivered"
        assert shipment.delivery_note == "carrier POD received by phone"
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "shipment.delivered")
        )
        assert entry is not None and entry.actor == "judy"


async def test_the_event_closes_the_overdue_task(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "sh-event-late"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, ("IS-2000", "10"), customer="CUS-0003")
        await ship(env.client, pid)
        await eventually(lambda: _is(shipment_status(sessions, pid), "shipped"), what="shipped")
        await env.sleep(timedelta(days=4, hours=1))
        await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.delivery-overdue"), what="overdue task"
        )
        await send(handle, delivered("evt-late", on=TODAY + timedelta(days=4)))
        result = await handle.result()

    assert result.status == "delivered"
    task = await task_by_workflow(sessions, f"{pid}.delivery-overdue")
    assert task is not None and task.status == "cancelled"
    async with sessions() as session:
        why = await session.scalar(
            select(AuditEntry.reason).where(
                AuditEntry.action == "task.cancelled", AuditEntry.entity_id == str(task.id)
            )
        )
    assert why is not None and why.startswith("the consignee confirmed delivery of SH-")


async def test_short_stock_waits_for_the_warehouse(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "sh-short"
    async with build_worker(env.client, task_queue, sessions):
        # CUS-0002 wants 540 days left: the demo's released lots (1200 + 4800) qualify, the
        # held and quarantined ones do not ship
        handle = await start(env, task_queue, pid, ("IS-2000", "6500"), customer="CUS-0002")
        task = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.stock-short-1"), what="short task"
        )
        assert "IS-2000 needs 6500 ea, 6000 available" in task.title
        await add_finished_lot(sessions, "F-FRESH", "500", expires_in=1090)
        await decide_task(
            env.client, f"{pid}.stock-short-1", "grace", "retry", groups=["warehouse"]
        )
        pick = await eventually(lambda: task_by_workflow(sessions, f"{pid}.pick-1"), what="pick")
        shown = [v for k, v in pick.spec["context"].items() if k.startswith("Pick ")]
        assert shown[-1].startswith("500 ea of lot F-FRESH")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    assert await shipment_status(sessions, pid) == "cancelled"
    async with sessions() as session:
        process = await session.get(Process, pid)
        assert process is not None and process.status == "cancelled"
        pick_task = await session.scalar(select(Task).where(Task.workflow_id == f"{pid}.pick-1"))
        assert pick_task is not None and pick_task.status == "cancelled"


async def _is(value: Any, expected: str) -> bool:
    return (await value) == expected


async def _shipped_for_the_workflow(handle: WorkflowHandle[Any, Any]) -> bool:
    state = await handle.query("status", result_type=ShipmentResult)
    return state.status in ("shipped", "in-transit")  # in transit once the notice is out
