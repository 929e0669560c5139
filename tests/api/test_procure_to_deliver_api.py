"""A customer order through the REST API, as the MES/ERP integration and the people would drive
it on the real stack: the order started by a system, the supplier's events sent by the system,
every human step decided by the right person, then the trace both ways."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote

from sqlalchemy import select

from erp.master_data import Lot
from erp.models import Task
from erp.seed_master_data import gtin14
from erp.supply import SerialNumber
from tests.helpers import eventually

PASSWORD = "lotline-demo"
SUPPLIER_GTIN = gtin14("0", "4012345", "73001")  # the supplier's own article number


async def open_task(stack, workflow_id: str) -> Task:
    async def probe():
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.workflow_id == workflow_id, Task.status == "open")
            )

    return await eventually(probe, timeout=60, what=f"task {workflow_id}")


async def decide(stack, who: str, workflow_id: str, outcome: str, *, sign=False, **fields):
    task = await open_task(stack, workflow_id)
    body = {"outcome": outcome, "fields": fields} | ({"password": PASSWORD} if sign else {})
    response = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json=body, headers=await stack.token(who)
    )
    assert response.status_code == 200, (workflow_id, response.text)


async def event(stack, process_id: str, name: str, key: str, **data):
    """Send an event as the MES; wait until the process is at the step that accepts it."""

    last: list[str] = []

    async def attempt():
        response = await stack.http.post(
            f"/api/v1/processes/{process_id}/events/{name}",
            json=data,
            headers=stack.mes | {"Idempotency-Key": key},
        )
        if response.status_code in (404, 409):  # not started, or not at that step yet
            last[:] = [response.text]
            return None
        return response

    response = await eventually(attempt, timeout=60, what=f"{name} for {process_id}: {last}")
    assert response.status_code == 200, (name, response.text)
    return response.json()


async def test_customer_order_to_delivery_and_trace_both_ways(stack):
    due = (date.today() + timedelta(days=45)).isoformat()
    body = {
        "customer_code": "CUS-0001",
        "part_number": "IP-3000",
        "quantity": "35",
        "due_on": due,
        "customer_reference": "PO 4500123987",
    }
    started = await stack.http.post(
        "/api/v1/processes/procure-to-deliver",
        json=body,
        headers=stack.mes | {"Idempotency-Key": "erp-so-88121"},
    )
    assert started.status_code == 201, started.text
    order = started.json()["id"]
    again = await stack.http.post(
        "/api/v1/processes/procure-to-deliver",
        json=body,
        headers=stack.mes | {"Idempotency-Key": "erp-so-88121"},
    )
    assert again.status_code == 200 and again.json()["id"] == order

    purchase = f"{order}.purchase-1"
    # 1,550 EUR: one buyer approves (the requester, the MES, never could)
    await decide(stack, "judy", f"{purchase}.approval", "approve", sign=True)
    await event(
        stack,
        purchase,
        "supplier-confirmed",
        "sup-conf-1",
        promised_on=(date.today() + timedelta(days=10)).isoformat(),
        supplier_reference="SO-7781",
    )
    await event(
        stack,
        purchase,
        "asn",
        "sup-asn-1",
        asn_reference="ASN-7781-1",
        expected_on=(date.today() + timedelta(days=2)).isoformat(),
    )
    made = date.today() - timedelta(days=12)
    label = f"(01){SUPPLIER_GTIN}(10)TEM-{made:%y%m%d}-9(11){made:%y%m%d}"
    receipt = await event(
        stack,
        purchase,
        "goods-received",
        "dock-4-scan-1",
        part_number="MT-0730",
        quantity="5",
        gs1=label,
    )
    bought_lot = receipt["data"]["lot_number"]
    repeat = await event(
        stack,
        purchase,
        "goods-received",
        "dock-4-scan-1",
        part_number="MT-0730",
        quantity="5",
        gs1=label,
    )
    assert repeat["repeated"] is True and repeat["data"]["lot_number"] == bought_lot
    await decide(stack, "heidi", f"{purchase}.inspect-1", "pass", sample_size="5", defects="0")
    await decide(stack, "bob", f"{purchase}.release-1", "release", sign=True)

    work_order = f"{order}.work-order"
    await decide(stack, "ivan", f"{work_order}.production-1", "done", produced_quantity="30")
    await decide(
        stack, "heidi", f"{work_order}.final-inspection", "pass", sample_size="30", defects="0"
    )
    await decide(stack, "bob", f"{work_order}.dhr-review", "reviewed", sign=True)
    await decide(stack, "carol", f"{work_order}.qa-release", "release", sign=True)

    shipment = f"{order}.shipment"
    await decide(stack, "grace", f"{shipment}.pick-1", "shipped", carrier="DHL", tracking="JD01")
    await event(
        stack,
        shipment,
        "delivered",
        "pod-88121",
        delivered_on=date.today().isoformat(),
        received_by="Central Pharmacy, St. Aurelia",
    )

    async def delivered():
        response = await stack.http.get(f"/api/v1/processes/{order}", headers=stack.mes)
        detail = response.json()
        return detail if detail["status"] == "completed" else None

    detail = await eventually(delivered, timeout=60, what="the order delivered")
    assert detail["current_step"] == "delivered" and detail["open_tasks"] == []
    steps = {row["workflow_id"] for row in detail["timeline"]}
    assert {order, purchase, work_order, shipment} <= steps  # one timeline across the children
    finished = await stack.http.get(f"/api/v1/processes/{order}", headers=stack.mes)
    assert finished.status_code == 200
    late = await stack.http.post(
        f"/api/v1/processes/{shipment}/events/delivered",
        json={"delivered_on": date.today().isoformat()},
        headers=stack.mes | {"Idempotency-Key": "pod-late"},
    )
    assert late.status_code == 409 and "no more events" in late.json()["detail"]

    # the supplier's lot, forward, reaches the consignee
    forward = await stack.http.get(
        f"/api/v1/lots/{bought_lot}/trace", params={"direction": "forward"}, headers=stack.mes
    )
    assert forward.status_code == 200, forward.text
    tree = forward.json()
    assert {s["consignee_code"] for s in tree["shipments"]} == {"CUS-0001"}
    assert any(lot["part_number"] == "IP-3000" for lot in tree["lots"])

    # a shipped pump's UDI, backward, reaches the supplier's lot of its mechanism
    async with stack.sessions() as session:
        serial = await session.scalar(
            select(SerialNumber)
            .join(Lot, Lot.id == SerialNumber.lot_id)
            .where(SerialNumber.shipment_id.is_not(None), Lot.origin == "production")
            .order_by(SerialNumber.id)
        )
    assert serial is not None
    backward = await stack.http.get(
        f"/api/v1/lots/{quote(serial.udi, safe='')}/trace",
        params={"direction": "backward"},
        headers=stack.mes,
    )
    assert backward.status_code == 200, backward.text
    tree = backward.json()
    assert tree["serial"] == serial.serial
    mechanism = [lot for lot in tree["lots"] if lot["lot_number"] == bought_lot]
    assert mechanism and mechanism[0]["supplier_code"] == "SUP-0007"
    assert mechanism[0]["supplier_lot"] == f"TEM-{made:%y%m%d}-9"
