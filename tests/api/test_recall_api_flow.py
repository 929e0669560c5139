"""A recall on the real stack over REST: a component lot used in three finished lots shipped to
three consignees (a fourth consignee got other product). The scope is exactly those, the stock
still in house is held at once, a notice goes to each consignee, their answers reconcile, and the
recall report is produced."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from erp.lots import move
from erp.master_data import Item, Lot
from erp.models import Outbox, Process
from erp.recall import RecallConsignee
from erp.supply import Customer, GenealogyEdge, Shipment, ShipmentLine
from tests.api.test_procure_to_deliver_api import decide, open_task
from tests.helpers import eventually

SHIPPED = {"CUS-0001": ("F-1", 40), "CUS-0002": ("F-2", 25), "CUS-0003": ("F-3", 10)}


async def _lot(session, number: str, part: str, quantity: int) -> Lot:
    item = await session.scalar(
        select(Item).where(Item.part_number == part, Item.status == "effective")
    )
    assert item is not None
    lot = Lot(
        lot_number=number,
        item_id=item.id,
        part_number=part,
        quantity=Decimal(quantity),
        uom="ea" if part == "IS-2000" else "m",
        status="RELEASED",
        expires_on=date.today() + timedelta(days=900),
    )
    session.add(lot)
    await session.flush()
    return lot


async def build_distribution(sessions) -> None:
    """Tubing lot T-1 went into F-1, F-2 and F-3; each was shipped to one consignee (F-3 keeps
    5 in house); U-1, made from other tubing, went to the fourth consignee."""
    async with sessions() as session, session.begin():
        tubing = await _lot(session, "T-1", "TB-0150", 300)
        other = await _lot(session, "T-2", "TB-0150", 100)
        customers = {c.code: c for c in await session.scalars(select(Customer))}
        made = [("F-1", 40, tubing), ("F-2", 25, tubing), ("F-3", 15, tubing), ("U-1", 30, other)]
        finished = {}
        for number, quantity, parent in made:
            lot = await _lot(session, number, "IS-2000", quantity)
            issue = await move(
                session,
                parent,
                kind="issue",
                quantity=Decimal(quantity) * Decimal("1.55"),
                reference="WO-TEST",
                actor="ivan",
                process_id=None,
            )
            session.add(
                GenealogyEdge(
                    parent_lot_id=parent.id,
                    child_lot_id=lot.id,
                    quantity=issue.quantity,
                    movement_id=issue.id,
                )
            )
            finished[number] = lot
        for n, (code, (number, quantity)) in enumerate(
            [*SHIPPED.items(), ("CUS-0004", ("U-1", 30))], start=1
        ):
            shipment = Shipment(
                number=f"SH-TEST-{n}", customer_id=customers[code].id, status="delivered"
            )
            session.add(shipment)
            await session.flush()
            shipped = await move(
                session,
                finished[number],
                kind="ship",
                quantity=Decimal(quantity),
                reference=shipment.number,
                actor="grace",
                process_id=None,
            )
            session.add(
                ShipmentLine(
                    shipment_id=shipment.id,
                    lot_id=finished[number].id,
                    part_number="IS-2000",
                    quantity=Decimal(quantity),
                    consignee_id=customers[code].id,
                    movement_id=shipped.id,
                )
            )


async def test_recall_from_scope_to_reconciled_answers_and_report(stack):
    await build_distribution(stack.sessions)
    carol = await stack.token("carol")
    started = await stack.http.post(
        "/api/v1/processes/recall",
        json={
            "suspect_lots": ["T-1"],
            "reason": "Tubing lot T-1 kinks under pressure",
            "source": "ui",
        },
        headers=carol | {"Idempotency-Key": "rcl-t1"},
    )
    assert started.status_code == 201, started.text
    recall = started.json()["id"]

    async def scoped():
        response = await stack.http.get(f"/api/v1/recalls/{recall}", headers=carol)
        detail = response.json() if response.status_code == 200 else None
        return detail if detail and detail.get("scope") and detail["scope"].get("hash") else None

    detail = await eventually(scoped, timeout=60, what="the scope frozen")

    async def held():
        async with stack.sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == "F-3"))
            return lot if lot is not None and lot.status == "ON_HOLD" else None

    await eventually(held, timeout=60, what="the stock in house held")
    async with stack.sessions() as session:
        in_scope = set(
            await session.scalars(
                select(Customer.code).join(
                    RecallConsignee, RecallConsignee.customer_id == Customer.id
                )
            )
        )
        f3 = await session.scalar(select(Lot).where(Lot.lot_number == "F-3"))
        u1 = await session.scalar(select(Lot).where(Lot.lot_number == "U-1"))
    assert in_scope == set(SHIPPED)  # exactly the consignees of T-1's product, not CUS-0004
    assert f3 is not None and f3.status == "ON_HOLD" and "RCL-" in f3.hold_reason  # 5 in house
    assert u1 is not None and u1.status == "SHIPPED"
    assert len(detail["scope"]["hash"]) == 64

    await decide(
        stack, "erin", f"{recall}.health-hazard", "evaluated", hazard="Flow stops; delayed therapy"
    )
    await decide(
        stack,
        "erin",
        f"{recall}.classification-1",
        "classified",
        classification="II",
        depth="retail",
        public_warning="no",
        effectiveness_level="A",
    )
    await decide(stack, "dave", f"{recall}.strategy-1", "approve", sign=True)

    async def notified():
        async with stack.sessions() as session:
            notices = await session.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.recipient.like("%@%"))
            )
            return notices if notices and notices >= 3 else None

    await eventually(notified, timeout=60, what="a notice to each consignee")
    # an answer that cannot be true, refused by the consignee's notice (schemas/recall_notice.py)
    # through the recall: in English by default, in Chinese when the caller asks for it
    impossible = {"consignee_code": "CUS-0003", "quantity_on_hand": "2", "quantity_returned": "9"}
    events = f"/api/v1/processes/{recall}/events/consignee-response"
    english = (
        "returned 9 + corrected 0 + on hand 2 = 11 is more than the 10 shipped to this consignee"
    )
    for language, expected in (
        ("en", english),
        ("zh", "已退回 9 + 已纠正 0 + 现有库存 2 = 11，超过了发给该收货方的 10"),
    ):
        answer = await stack.http.post(
            events,
            json=impossible,
            headers=stack.mes
            | {"Idempotency-Key": f"too-many-{language}", "Accept-Language": language},
        )
        assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text
    for code, (lot_number, quantity) in SHIPPED.items():
        response = await stack.http.post(
            f"/api/v1/processes/{recall}/events/consignee-response",
            json={
                "consignee_code": code,
                "acknowledged": True,
                "quantity_on_hand": "0",
                "quantity_returned": str(quantity),
            },
            headers=stack.mes | {"Idempotency-Key": f"ack-{code}"},
        )
        assert response.status_code == 200, response.text
        received = await stack.http.post(
            f"/api/v1/processes/{recall}/events/return-received",
            json={"consignee_code": code, "lot_number": lot_number, "quantity": str(quantity)},
            headers=stack.mes | {"Idempotency-Key": f"back-{code}"},
        )
        assert received.status_code == 200, received.text

    async def reconciled():
        async with stack.sessions() as session:
            rows = list(await session.scalars(select(RecallConsignee)))
            return rows if rows and all(r.reconciled_at is not None for r in rows) else None

    rows = await eventually(reconciled, timeout=60, what="every consignee reconciled")
    assert len(rows) == 3  # (before widening)
    # widened: the other tubing lot reaches the fourth consignee; a new version, the difference
    erin = await stack.token("erin")
    widened = await stack.http.post(
        f"/api/v1/recalls/{recall}/widen-scope",
        json={"lots": ["T-2"], "reason": "Same extrusion run as T-1"},
        headers=erin,
    )
    assert widened.status_code == 200, widened.text
    assert widened.json()["version"] == 2 and widened.json()["consignees_added"] == ["CUS-0004"]
    refused = await stack.http.post(
        f"/api/v1/recalls/{recall}/widen-scope",
        json={"lots": ["T-2"], "reason": "again"},
        headers=await stack.token("frank"),
    )
    assert refused.status_code == 403
    versions = await stack.http.get(f"/api/v1/recalls/{recall}/scope-versions", headers=carol)
    assert [v["version"] for v in versions.json()["items"]] == [1, 2]
    report = await stack.http.get(f"/api/v1/recalls/{recall}/report.pdf", headers=carol)
    assert report.status_code == 200 and report.content.startswith(b"%PDF")
    assert report.headers["content-type"].startswith("application/pdf")
    # the regulatory report task runs beside it all
    task = await open_task(stack, f"{recall}.report-806")
    assert "due" in task.title
    async with stack.sessions() as session:
        process = await session.get(Process, recall)
    assert process is not None and process.kind == "recall"
