"""A customer order on the time-skipping server with its real children (Purchase, WorkOrder,
Shipment), real activities and the demo catalogue: stock checked, the short component bought,
received, inspected and released, the pumps made with serials and released, shipped, delivered."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from erp.audit import verify_chain
from erp.master_data import Lot
from erp.models import AuditEntry, Process, Task
from erp.queries import process_timeline
from erp.seed import seed_demo
from erp.supply import CustomerOrder, GenealogyEdge, SerialNumber, ShipmentLine
from erp.trace import trace_lot
from schemas.human_task import SignatureMeaning
from schemas.supply import EventResult, ProcessEvent, ProcureToDeliverRequest
from tests.helpers import decide_task, eventually
from worker import build_worker
from workflows.procure_to_deliver import ProcureToDeliverWorkflow

PID = "co-test-0001"


def order(quantity: str = "35", part: str = "IP-3000") -> ProcureToDeliverRequest:
    return ProcureToDeliverRequest(
        process_id=PID,
        requester="frank",
        customer_code="CUS-0001",
        part_number=part,
        quantity=Decimal(quantity),
        due_on=date.today() + timedelta(days=45),
        customer_reference="PO 4500123987",
    )


async def send_event(client, process_id: str, event: str, event_id: str, **data) -> EventResult:
    """Send an external event, waiting out the moment before the process accepts it."""
    handle: WorkflowHandle = client.get_workflow_handle(process_id)

    async def attempt() -> EventResult | None:
        try:
            return await handle.execute_update(
                "event",
                ProcessEvent(event=event, event_id=event_id, sent_by="mes", data=data),
                result_type=EventResult,
            )
        except WorkflowUpdateFailedError as err:
            if getattr(err.cause, "type", "") in ("NotReady", "Conflict"):
                return None  # e.g. the PO is not issued yet
            raise
        except Exception:  # the child is not started yet
            return None

    return await eventually(attempt, what=f"{event} accepted by {process_id}")


async def test_customer_order_buys_makes_ships_and_delivers(
    sessions, time_skipping_env, task_queue
):
    await seed_demo(sessions)
    client = time_skipping_env.client
    async with build_worker(client, task_queue, sessions):
        handle = await client.start_workflow(
            ProcureToDeliverWorkflow.run, order(), id=PID, task_queue=task_queue
        )
        purchase = f"{PID}.purchase-1"
        # 5 pumps in stock, 30 to make: 5 mechanisms short, bought from SUP-0007 for 1,550 EUR
        await decide_task(
            client,
            f"{purchase}.approval",
            "judy",
            "approve",
            groups=["buyer"],
            sign=SignatureMeaning.APPROVED,
        )
        received = await send_event(
            client,
            purchase,
            "goods-received",
            "asn-77-1",
            part_number="MT-0730",
            quantity="5",
            supplier_lot="TEM-260101-9",
            manufactured_on=(date.today() - timedelta(days=10)).isoformat(),
        )
        supplier_lot = received.data["lot_number"]
        await decide_task(
            client,
            f"{purchase}.inspect-1",
            "heidi",
            "pass",
            groups=["qc"],
            sample_size="5",
            defects="0",
        )
        await decide_task(
            client,
            f"{purchase}.release-1",
            "bob",
            "release",
            groups=["qa"],
            sign=SignatureMeaning.RELEASED,
        )
        work_order = f"{PID}.work-order"
        await decide_task(
            client,
            f"{work_order}.production-1",
            "ivan",
            "done",
            groups=["production"],
            produced_quantity="30",
        )
        await decide_task(
            client,
            f"{work_order}.final-inspection",
            "heidi",
            "pass",
            groups=["qc"],
            sample_size="30",
            defects="0",
        )
        await decide_task(
            client,
            f"{work_order}.dhr-review",
            "bob",
            "reviewed",
            groups=["qa"],
            sign=SignatureMeaning.REVIEWED,
        )
        await decide_task(
            client,
            f"{work_order}.qa-release",
            "carol",
            "release",
            groups=["qa"],
            sign=SignatureMeaning.RELEASED,
        )
        shipment = f"{PID}.shipment"
        await decide_task(
            client,
            f"{shipment}.pick-1",
            "grace",
            "shipped",
            groups=["warehouse"],
            carrier="DHL",
            tracking="JD0146000012345",
        )
        await send_event(
            client,
            shipment,
            "delivered",
            "pod-1",
            delivered_on=date.today().isoformat(),
            received_by="Central Pharmacy",
        )
        result = await handle.result()

    assert result.status == "delivered" and result.number.startswith("CO-")
    assert result.purchases == [purchase] and result.work_order == work_order
    assert result.shipment == shipment
    async with sessions() as session:
        customer_order = await session.scalar(
            select(CustomerOrder).where(CustomerOrder.process_id == PID)
        )
        process = await session.get(Process, PID)
        children = {
            p.id: p.status
            for p in await session.scalars(select(Process).where(Process.id.like(f"{PID}.%")))
            if p.kind != "human-task"
        }
        timeline = await process_timeline(session, PID)
        open_tasks = await session.scalar(
            select(func.count()).select_from(Task).where(Task.status == "open")
        )
        finished = await session.scalar(
            select(Lot).where(Lot.part_number == "IP-3000", Lot.origin == "production")
        )
        assert finished is not None
        serials = await session.scalar(
            select(func.count()).select_from(SerialNumber).where(SerialNumber.lot_id == finished.id)
        )
        parents = set(
            await session.scalars(
                select(Lot.part_number)
                .join(GenealogyEdge, GenealogyEdge.parent_lot_id == Lot.id)
                .where(GenealogyEdge.child_lot_id == finished.id)
            )
        )
        shipped = list(await session.scalars(select(ShipmentLine)))
        forward = await trace_lot(session, supplier_lot, "forward")
        chain = await verify_chain(session)
        planned = list(
            await session.scalars(
                select(AuditEntry.reason)
                .where(AuditEntry.action == "customer_order.planned")
                .order_by(AuditEntry.id)
            )
        )

    assert customer_order is not None and customer_order.status == "delivered"
    assert process is not None and process.status == "completed"
    assert children == {purchase: "completed", work_order: "completed", shipment: "completed"}
    assert open_tasks == 0 and chain.ok
    # one timeline across the order, its children and their tasks
    workflows = {row.workflow_id for row in timeline}
    assert {PID, purchase, work_order, shipment} <= workflows
    assert any(w and w.startswith(f"{work_order}.") for w in workflows)
    assert planned[0].startswith("5 in stock, make 30; buy SUP-0007: 5 MT-0730")
    assert planned[-1].startswith("35 in stock, make 0")
    assert finished.status == "SHIPPED" and serials == 30  # released, then all of it shipped
    assert parents == {"PB-0710", "HS-0720", "MT-0730"}
    assert sum(line.quantity for line in shipped) == 35  # the 5 in stock and the 30 made
    # the bought mechanism lot traced forward reaches the pumps and the consignee
    assert finished.lot_number in {lot.lot_number for lot in forward.lots}
    assert {s.consignee_code for s in forward.shipments} == {"CUS-0001"}


async def test_an_order_nobody_can_source_is_cancelled_by_the_buyer(
    sessions, time_skipping_env, task_queue
):
    await seed_demo(sessions)
    client = time_skipping_env.client
    async with build_worker(client, task_queue, sessions):
        # 20,000 infusion sets: drip chambers and spikes have only a conditional supplier
        handle = await client.start_workflow(
            ProcureToDeliverWorkflow.run,
            order("20000", "IS-2000"),
            id=PID,
            task_queue=task_queue,
        )
        await decide_task(
            client,
            f"{PID}.replan-1",
            "frank",
            "cancel",
            groups=["buyer"],
            reason="Customer accepts a partial delivery from the next build instead",
        )
        result = await handle.result()
    assert result.status == "cancelled" and result.purchases == []
    async with sessions() as session:
        task = await session.scalar(select(Task).where(Task.workflow_id == f"{PID}.replan-1"))
        process = await session.get(Process, PID)
    assert task is not None and "SP-0440" in task.description and "DC-0330" in task.description
    assert process is not None and process.status == "cancelled"


async def test_cancelling_the_order_cancels_its_children(sessions, time_skipping_env, task_queue):
    await seed_demo(sessions)
    client = time_skipping_env.client
    async with build_worker(client, task_queue, sessions):
        handle = await client.start_workflow(
            ProcureToDeliverWorkflow.run, order(), id=PID, task_queue=task_queue
        )

        async def approval_open():
            async with sessions() as session:
                return await session.scalar(
                    select(Task).where(
                        Task.workflow_id == f"{PID}.purchase-1.approval", Task.status == "open"
                    )
                )

        await eventually(approval_open, what="the purchase's approval task")
        await handle.cancel()

        async def all_closed():
            async with sessions() as session:
                rows = list(await session.scalars(select(Process).where(Process.id.like("co-%"))))
                return rows if all(p.status == "cancelled" for p in rows) else None

        closed = await eventually(all_closed, what="the order and its purchase cancelled")
    assert {p.id for p in closed} >= {PID, f"{PID}.purchase-1"}
    async with sessions() as session:
        customer_order = await session.scalar(
            select(CustomerOrder).where(CustomerOrder.process_id == PID)
        )
        task = await session.scalar(
            select(Task).where(Task.workflow_id == f"{PID}.purchase-1.approval")
        )
    assert customer_order is not None and customer_order.status == "cancelled"
    assert task is not None and task.status == "cancelled"
