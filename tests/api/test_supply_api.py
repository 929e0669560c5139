"""Procure-to-deliver over REST, as external systems and people call it: starting each process,
external events with their refusals, the lot trace by lot number, GS1 string and serial UDI, and
the lots, suppliers and customers read endpoints."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from sqlalchemy import select, text

from erp.master_data import Item, Lot
from erp.models import AuditEntry, Process
from erp.supply import SerialNumber, SupplierScorecard
from erp.users import create_api_key
from tests.activities.test_trace import Genealogy, generate_genealogy
from tests.helpers import eventually

DUE = (date.today() + timedelta(days=30)).isoformat()
PURCHASE = {
    "supplier_code": "SUP-0001",
    "lines": [{"part_number": "TB-0150", "quantity": "2000", "unit_price": "0.42"}],
    "due_on": DUE,
}
WORK_ORDER = {"part_number": "IS-2000", "quantity": "500", "due_on": DUE}
SHIPMENT = {"customer_code": "CUS-0003", "lines": [{"part_number": "IS-2000", "quantity": "100"}]}
CUSTOMER_ORDER = {
    "customer_code": "CUS-0001",
    "part_number": "IS-2000",
    "quantity": "200",
    "due_on": DUE,
}
STARTS = {
    "purchase": ("po-", PURCHASE),
    "work-order": ("wo-", WORK_ORDER),
    "shipment": ("sh-", SHIPMENT),
    "procure-to-deliver": ("co-", CUSTOMER_ORDER),
}


async def key_with(stack, name: str, scopes: str) -> dict[str, str]:
    async with stack.sessions() as session, session.begin():
        return {"X-API-Key": await create_api_key(session, name, "mes", scopes)}


async def refusals(stack, process_id: str) -> list[AuditEntry]:
    async with stack.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_id == process_id, AuditEntry.action == "event.refused")
            .order_by(AuditEntry.id)
        )
        return list(rows)


# ---------------------------------------------------------------- starting


@pytest.mark.parametrize("kind", list(STARTS))
async def test_a_system_starts_each_kind_once_per_key(stack, kind):
    prefix, body = STARTS[kind]
    headers = stack.mes | {"Idempotency-Key": f"erp-{kind}-1"}
    first = await stack.http.post(f"/api/v1/processes/{kind}", json=body, headers=headers)
    assert first.status_code == 201, first.text
    started = first.json()
    assert started["id"].startswith(prefix)
    assert first.headers["location"] == f"/api/v1/processes/{started['id']}"
    assert started["status"] in ("starting", "running", "completed", "failed")
    again = await stack.http.post(f"/api/v1/processes/{kind}", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == started["id"]
    by_external_id = await stack.http.post(
        f"/api/v1/processes/{kind}", json=body | {"external_id": "ext-77"}, headers=stack.mes
    )
    assert by_external_id.status_code == 201
    repeat = await stack.http.post(
        f"/api/v1/processes/{kind}", json=body | {"external_id": "ext-77"}, headers=stack.mes
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == by_external_id.json()["id"]
    assert by_external_id.json()["id"] != started["id"]


async def test_a_customer_order_answers_with_its_number(stack):
    frank = await stack.token("frank")
    started = await stack.http.post(
        "/api/v1/processes/procure-to-deliver", json=CUSTOMER_ORDER, headers=frank
    )
    assert started.status_code == 201, started.text
    order = started.json()
    assert order["number"].startswith("CO-") and order["kind"] == "procure-to-deliver"
    assert order["initiator"] == "frank" and order["status"] == "running"


@pytest.mark.parametrize(
    ("kind", "change", "says"),
    [
        ("purchase", {"supplier_code": "SUP-9999"}, "supplier SUP-9999 is not known"),
        (
            "purchase",
            {"lines": [{"part_number": "ZZ-0001", "quantity": "1", "unit_price": "1"}]},
            "part ZZ-0001 is not known",
        ),
        (
            "purchase",
            {"lines": [{"part_number": "DRAFT-1", "quantity": "1", "unit_price": "1"}]},
            "part DRAFT-1 has no effective revision",
        ),
        ("purchase", {"due_on": "2020-01-01"}, "due_on 2020-01-01 is in the past"),
        ("work-order", {"part_number": "TB-0150"}, "TB-0150 revision C has no bill of materials"),
        ("work-order", {"part_number": "DRAFT-1"}, "part DRAFT-1 has no effective revision"),
        ("shipment", {"customer_code": "CUS-9999"}, "customer CUS-9999 is not known"),
        (
            "shipment",
            {"lines": [{"part_number": "ZZ-0001", "quantity": "1"}]},
            "part ZZ-0001 is not known",
        ),
        ("procure-to-deliver", {"customer_code": "CUS-9999"}, "customer CUS-9999 is not known"),
        ("procure-to-deliver", {"due_on": "2020-01-01"}, "is in the past"),
    ],
)
async def test_a_start_naming_what_the_erp_lacks_is_refused(stack, kind, change, says):
    async with stack.sessions() as session, session.begin():
        session.add(Item(part_number="DRAFT-1", revision="A", description="draft", status="draft"))
    response = await stack.http.post(
        f"/api/v1/processes/{kind}", json=STARTS[kind][1] | change, headers=stack.mes
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert response.json()["detail"].startswith(f"the {kind} request does not match the ERP")


async def test_a_malformed_start_says_which_field(stack):
    response = await stack.http.post(
        "/api/v1/processes/purchase", json=PURCHASE | {"lines": []}, headers=stack.mes
    )
    assert response.status_code == 422 and "lines" in response.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "user", "groups"),
    [
        ("purchase", "grace", "buyer, purchasing-manager, production, admin"),
        ("work-order", "frank", "production, admin"),
        ("shipment", "heidi", "warehouse, buyer, admin"),
        ("procure-to-deliver", "ivan", "buyer, purchasing-manager, admin"),
    ],
)
async def test_only_the_right_people_start_each_kind(stack, kind, user, groups):
    response = await stack.http.post(
        f"/api/v1/processes/{kind}", json=STARTS[kind][1], headers=await stack.token(user)
    )
    assert response.status_code == 403, response.text
    assert f"starting a {kind} needs one of the groups {groups}" in response.json()["detail"]


async def test_starting_needs_credentials_and_the_scope(stack):
    nobody = await stack.http.post("/api/v1/processes/purchase", json=PURCHASE)
    assert nobody.status_code == 401
    reader = await key_with(stack, "reader", "lots:read")
    response = await stack.http.post("/api/v1/processes/purchase", json=PURCHASE, headers=reader)
    assert response.status_code == 403 and "processes:start" in response.json()["detail"]


# ---------------------------------------------------------------- events


async def running(stack, process_id: str, kind: str, status: str = "running") -> str:
    """A process row as its workflow registers it (the event checks read it before sending)."""
    async with stack.sessions() as session, session.begin():
        session.add(
            Process(
                id=process_id,
                run_id="r1",
                kind=kind,
                title=f"{kind} {process_id}",
                business_key=process_id.upper(),
                initiator="mes",
                status=status,
                current_step="waiting",
            )
        )
    return process_id


RECEIPT = {"part_number": "TB-0150", "quantity": "1000", "supplier_lot": "NK-1"}
LABEL = "(01)09506000134352(11)260101(17)301231(10)NK-2611-77"
LABEL_RAW = "0109506000134352112601011730123110NK-2611-77"  # as a GS1-128 scanner sends it


async def test_events_are_refused_with_reasons_and_audited(stack):
    purchase = await running(stack, "po-events-1", "purchase")
    work_order = await running(stack, "wo-events-1", "work-order")
    grace, heidi = await stack.token("grace"), await stack.token("heidi")
    url = f"/api/v1/processes/{purchase}/events"

    unknown = await stack.http.post(f"{url}/delivered", json={}, headers=stack.mes)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == (
        "a purchase accepts the events supplier-confirmed, asn, goods-received, not 'delivered'"
    )
    none = await stack.http.post(
        f"/api/v1/processes/{work_order}/events/asn", json={}, headers=stack.mes
    )
    assert none.status_code == 404 and "a work-order accepts no events" in none.json()["detail"]
    missing = await stack.http.post(
        "/api/v1/processes/po-nowhere/events/asn", json={}, headers=stack.mes
    )
    assert missing.status_code == 404 and "po-nowhere was not found" in missing.json()["detail"]

    bad = await stack.http.post(
        f"{url}/goods-received",
        json={"part_number": "TB-0150", "quantity": "-5"},
        headers=grace,
    )
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert "quantity: Input should be greater than 0" in detail
    assert "supplier_lot: Field required" in detail

    unreadable = await stack.http.post(
        f"{url}/goods-received",
        json=RECEIPT | {"gs1": "(01)00614141200011(10)NK-1"},
        headers=grace,
    )
    assert unreadable.status_code == 422
    assert "gs1: (01) GTIN '00614141200011'" in unreadable.json()["detail"]
    assert "check digit" in unreadable.json()["detail"]
    contradicting = await stack.http.post(
        f"{url}/goods-received", json=RECEIPT | {"gs1": LABEL}, headers=grace
    )
    assert contradicting.status_code == 422
    assert contradicting.json()["detail"].startswith(
        "supplier_lot 'NK-1' contradicts the label's (10) lot 'NK-2611-77'"
    )
    impossible = await stack.http.post(
        f"{url}/goods-received",
        json={"part_number": "TB-0150", "quantity": "1", "gs1": "(17)290230(10)A"},
        headers=grace,
    )
    assert impossible.status_code == 422
    assert "(17) expiry date '290230' is not a real date" in impossible.json()["detail"]

    wrong_sender = await stack.http.post(f"{url}/goods-received", json=RECEIPT, headers=heidi)
    assert wrong_sender.status_code == 403
    assert "one of the groups warehouse" in wrong_sender.json()["detail"]
    buyer_receiving = await stack.http.post(
        f"{url}/goods-received", json=RECEIPT, headers=await stack.token("frank")
    )
    assert buyer_receiving.status_code == 403
    no_scope = await stack.http.post(
        f"{url}/asn",
        json={"asn_reference": "A1", "expected_on": DUE},
        headers=await key_with(stack, "carrier", "processes:read"),
    )
    assert no_scope.status_code == 403 and "events:send" in no_scope.json()["detail"]

    audited = await refusals(stack, purchase)
    assert [a.after["event"] for a in audited if a.after] == [
        "delivered",
        "goods-received",
        "goods-received",
        "goods-received",
        "goods-received",
        "goods-received",
        "goods-received",
        "asn",
    ]
    assert {a.actor for a in audited} == {"mes", "grace", "heidi", "frank"}
    assert all(a.outcome == "refused" and a.reason for a in audited)


async def test_an_ended_process_accepts_no_more_events(stack):
    done = await running(stack, "po-done-1", "purchase", status="completed")
    response = await stack.http.post(
        f"/api/v1/processes/{done}/events/supplier-confirmed",
        json={"promised_on": DUE},
        headers=stack.mes | {"Idempotency-Key": "conf-1"},
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "process po-done-1 is completed; it accepts no more events"
    # a row that says running while the workflow is gone: Temporal has the last word
    gone = await running(stack, "sh-gone-1", "shipment")
    response = await stack.http.post(
        f"/api/v1/processes/{gone}/events/delivered",
        json={"delivered_on": date.today().isoformat()},
        headers=await stack.token("grace"),
    )
    assert response.status_code == 409 and "accepts no more events" in response.json()["detail"]
    assert [a.after["event_id"] for a in await refusals(stack, done) if a.after] == ["conf-1"]


# ---------------------------------------------------------------- lots and trace


async def pump_with_genealogy(stack) -> tuple[SerialNumber, Lot, Item]:
    """The demo's serialised pump lot, made (say) from one lot of each sub-assembly."""
    async with stack.sessions() as session, session.begin():
        await session.execute(
            text(
                """
                WITH pump AS (SELECT id FROM lot WHERE part_number = 'IP-3000'),
                plan AS (
                    SELECT l.id AS parent_id, pump.id AS child_id FROM lot l, pump
                    WHERE l.part_number IN ('PB-0710', 'HS-0720', 'MT-0730')
                ), issued AS (
                    INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor,
                                                    idempotency_key)
                    SELECT parent_id, 'issue', 5, 'WO-PUMP', 'test', format('p:%s', parent_id)
                    FROM plan RETURNING id, lot_id
                )
                INSERT INTO genealogy_edge (parent_lot_id, child_lot_id, quantity, movement_id)
                SELECT plan.parent_id, plan.child_id, 5, issued.id
                FROM plan JOIN issued ON issued.lot_id = plan.parent_id
                """
            )
        )
        serial = await session.scalar(
            select(SerialNumber).where(SerialNumber.serial == "IP3-000002")
        )
        assert serial is not None
        lot = await session.get(Lot, serial.lot_id)
        assert lot is not None
        item = await session.get(Item, lot.item_id)
        assert item is not None
        return serial, lot, item


async def test_trace_by_lot_number_gs1_string_and_serial_udi(stack):
    async with stack.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
    serial, pump, pump_item = await pump_with_genealogy(stack)
    mes = stack.mes

    forward = await stack.http.get("/api/v1/lots/TR-T2/trace?direction=forward", headers=mes)
    assert forward.status_code == 200, forward.text
    body = forward.json()
    assert body["root"] == "TR-T2" and body["direction"] == "forward" and body["serial"] is None
    assert {lot["lot_number"][:4] for lot in body["lots"]} == {"TR-T", "TR-S", "TR-F"}
    assert {s["consignee_code"] for s in body["shipments"]} == {
        "CUS-0001",
        "CUS-0002",
        "CUS-0003",
        "CUS-0004",
    }
    backward = await stack.http.get(
        "/api/v1/lots/TR-F7/trace", params={"direction": "backward"}, headers=mes
    )
    assert {lot["supplier_code"] for lot in backward.json()["lots"] if lot["depth"] == 2} == {
        "SUP-0001",
        "SUP-0002",
    }
    # the supplier's label (its own GTIN) on our connector lot TR-C2, whose supplier lot is C-SL2
    label = quote("(01)09506000134352(10)C-SL2", safe="")
    by_label = await stack.http.get(f"/api/v1/lots/{label}/trace", headers=mes)
    assert by_label.status_code == 200, by_label.text
    assert by_label.json()["root"] == "TR-C2"

    udi = quote(serial.udi, safe="")
    shipped_serial = await stack.http.get(
        f"/api/v1/lots/{udi}/trace?direction=backward", headers=mes
    )
    assert shipped_serial.status_code == 200, shipped_serial.text
    pump_trace = shipped_serial.json()
    assert pump_trace["root"] == pump.lot_number and pump_trace["serial"] == "IP3-000002"
    assert {(lot["part_number"], lot["supplier_code"]) for lot in pump_trace["lots"]} == {
        ("IP-3000", None),
        ("PB-0710", "SUP-0007"),
        ("HS-0720", "SUP-0008"),
        ("MT-0730", "SUP-0007"),
    }
    raw = quote(f"]d201{pump_item.gtin}10{pump.lot_number}\x1d21IP3-000002", safe="")
    scanned = await stack.http.get(f"/api/v1/lots/{raw}/trace?direction=backward", headers=mes)
    assert scanned.json() == pump_trace


async def test_trace_refusals(stack):
    mes = stack.mes
    unknown = await stack.http.get("/api/v1/lots/NOPE-1/trace", headers=mes)
    assert unknown.status_code == 404 and "lot NOPE-1 is not known" in unknown.json()["detail"]
    bad_label = quote("(01)00614141200011(10)X", safe="")
    unreadable = await stack.http.get(f"/api/v1/lots/{bad_label}/trace", headers=mes)
    assert unreadable.status_code == 422 and "check digit" in unreadable.json()["detail"]
    sideways = await stack.http.get("/api/v1/lots/NOPE-1/trace?direction=sideways", headers=mes)
    assert sideways.status_code == 422 and "forward or backward" in sideways.json()["detail"]
    no_scope = await key_with(stack, "starter", "processes:start")
    refused = await stack.http.get("/api/v1/lots/NOPE-1/trace", headers=no_scope)
    assert refused.status_code == 403 and "lots:read" in refused.json()["detail"]
    assert (await stack.http.get("/api/v1/lots/NOPE-1/trace")).status_code == 401


async def test_lots_list_and_detail(stack):
    mes = stack.mes
    released = await stack.http.get(
        "/api/v1/lots",
        params={"part_number": "TB-0150", "status": "released", "supplier": "SUP-0001"},
        headers=mes,
    )
    assert released.status_code == 200, released.text
    page = released.json()
    assert page["count"] == 1 and page["items"][0]["status"] == "RELEASED"
    lot = page["items"][0]
    assert (lot["part_number"], lot["revision"], lot["supplier_code"]) == (
        "TB-0150",
        "C",
        "SUP-0001",
    )
    everything = await stack.http.get("/api/v1/lots?limit=3&offset=3", headers=mes)
    assert everything.json()["count"] == 16 and len(everything.json()["items"]) == 3
    bad_status = await stack.http.get("/api/v1/lots?status=LOST", headers=mes)
    assert bad_status.status_code == 422 and "QUARANTINE" in bad_status.json()["detail"]

    serial, pump, _ = await pump_with_genealogy(stack)
    detail = await stack.http.get(f"/api/v1/lots/{lot['lot_number']}", headers=mes)
    assert detail.status_code == 200, detail.text
    facts = detail.json()
    assert [h["to_status"] for h in facts["status_history"]] == ["RELEASED"]
    assert facts["movements"] == [] and facts["receipt"] is None and facts["serials"] == 0
    by_udi = await stack.http.get(f"/api/v1/lots/{quote(serial.udi, safe='')}", headers=mes)
    pump_facts = by_udi.json()
    assert pump_facts["lot_number"] == pump.lot_number and pump_facts["serial"] == "IP3-000002"
    assert pump_facts["serials"] == 5
    component = await stack.http.get("/api/v1/lots", params={"part_number": "PB-0710"}, headers=mes)
    pb = component.json()["items"][0]
    pb_facts = (await stack.http.get(f"/api/v1/lots/{pb['lot_number']}", headers=mes)).json()
    assert [(m["kind"], Decimal(m["quantity"])) for m in pb_facts["movements"]] == [
        ("issue", Decimal(5))
    ]
    assert Decimal(pb_facts["quantity"]) == Decimal(35)
    assert (await stack.http.get("/api/v1/lots/NOPE-1", headers=mes)).status_code == 404


async def test_suppliers_and_customers(stack):
    mes = stack.mes
    async with stack.sessions() as session, session.begin():
        supplier_id = await session.scalar(text("SELECT id FROM supplier WHERE code = 'SUP-0001'"))
        session.add(
            SupplierScorecard(
                supplier_id=supplier_id,
                receipts=8,
                on_time_receipts=7,
                inspections=3,
                accepted_inspections=2,
            )
        )
    suppliers = (await stack.http.get("/api/v1/suppliers", headers=mes)).json()
    assert suppliers["count"] == 8
    first = suppliers["items"][0]
    assert first["code"] == "SUP-0001"
    assert (first["on_time_pct"], first["acceptance_pct"]) == (87.5, 66.7)
    assert suppliers["items"][1]["on_time_pct"] is None  # no receipt yet

    card = (await stack.http.get("/api/v1/suppliers/SUP-0001", headers=mes)).json()
    assert card["scorecard"]["receipts"] == 8 and card["scorecard"]["on_time_pct"] == 87.5
    assert "TB-0150" in {entry["part_number"] for entry in card["asl"]}
    expired = (await stack.http.get("/api/v1/suppliers/SUP-0003", headers=mes)).json()
    assert any(c["expired"] for c in expired["certificates"])
    assert not any(c["expired"] for c in card["certificates"])
    disqualified = (await stack.http.get("/api/v1/suppliers/SUP-0005", headers=mes)).json()
    assert disqualified["status"] == "disqualified" and disqualified["scorecard"]["scars"] == 0
    missing = await stack.http.get("/api/v1/suppliers/SUP-9999", headers=mes)
    assert missing.status_code == 404 and "Supplier SUP-9999" in missing.json()["detail"]

    customers = (await stack.http.get("/api/v1/customers", headers=mes)).json()
    assert [c["code"] for c in customers["items"]] == [
        "CUS-0001",
        "CUS-0002",
        "CUS-0003",
        "CUS-0004",
    ]
    assert customers["items"][1]["min_shelf_life_days"] == 540
    frank = await stack.token("frank")
    assert (await stack.http.get("/api/v1/customers", headers=frank)).status_code == 200
    blind = await key_with(stack, "blind", "processes:start")
    assert (await stack.http.get("/api/v1/suppliers", headers=blind)).status_code == 403


# ---------------------------------------------------------------- events on a real purchase


async def test_goods_received_with_a_gs1_label_makes_one_quarantine_lot(stack):
    """On the real Purchase workflow: refusals by the workflow come back with their status and
    words; a receipt by GS1 label makes a QUARANTINE lot from the label; a repeat changes
    nothing."""
    from erp.supply import Receipt
    from tests.api.test_procure_to_deliver_api import decide

    started = await stack.http.post(
        "/api/v1/processes/purchase", json=PURCHASE, headers=stack.mes | {"Idempotency-Key": "r1"}
    )
    assert started.status_code == 201, started.text
    purchase = started.json()["id"]
    url = f"/api/v1/processes/{purchase}/events"
    grace = await stack.token("grace")

    early = await stack.http.post(f"{url}/goods-received", json=RECEIPT, headers=grace)
    assert early.status_code == 409, early.text
    assert "has not been issued to the supplier yet" in early.json()["detail"]
    # the workflow's refusal, translated from its template for a caller who asks for Chinese
    zh = grace | {"Accept-Language": "zh-CN"}
    early = await stack.http.post(f"{url}/goods-received", json=RECEIPT, headers=zh)
    assert early.status_code == 409 and "尚未发给供应商" in early.json()["detail"], early.text

    await decide(stack, "frank", f"{purchase}.approval", "approve", sign=True)

    async def confirmed():
        response = await stack.http.post(
            f"{url}/supplier-confirmed",
            json={"promised_on": DUE, "supplier_reference": "SO-1"},
            headers=stack.mes | {"Idempotency-Key": "confirm-1"},
        )
        return response if response.status_code == 200 else None

    confirmation = (await eventually(confirmed, timeout=60, what="the PO issued")).json()
    assert confirmation["repeated"] is False and confirmation["event"] == "supplier-confirmed"

    not_ordered = await stack.http.post(
        f"{url}/goods-received", json=RECEIPT | {"part_number": "LC-0110"}, headers=grace
    )
    assert not_ordered.status_code == 422
    assert "LC-0110 is not on purchase order PO-" in not_ordered.json()["detail"]
    too_much = await stack.http.post(
        f"{url}/goods-received", json=RECEIPT | {"quantity": "2500"}, headers=grace
    )
    assert too_much.status_code == 409 and "still open" in too_much.json()["detail"]

    scan = {"part_number": "TB-0150", "quantity": "1200", "gs1": f"]C1{LABEL_RAW}"}
    received = await stack.http.post(
        f"{url}/goods-received", json=scan, headers=grace | {"Idempotency-Key": "dock-1-scan-7"}
    )
    assert received.status_code == 200, received.text
    answer = received.json()
    lot_number = answer["data"]["lot_number"]
    assert answer["repeated"] is False and answer["event_id"] == "dock-1-scan-7"
    again = await stack.http.post(
        f"{url}/goods-received", json=scan, headers=grace | {"Idempotency-Key": "dock-1-scan-7"}
    )
    assert again.status_code == 200, again.text
    assert again.json()["repeated"] is True and again.json()["data"]["lot_number"] == lot_number

    async with stack.sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        assert lot is not None
        assert (lot.status, lot.quantity, lot.supplier_lot) == (
            "QUARANTINE",
            Decimal(1200),
            "NK-2611-77",
        )
        assert (lot.manufactured_on, lot.expires_on) == (date(2026, 1, 1), date(2030, 12, 31))
        receipts = list(
            await session.scalars(select(Receipt).where(Receipt.process_id == purchase))
        )
    assert len(receipts) == 1 and receipts[0].gs1 == f"]C1{LABEL_RAW}"
    uom = answer["message_values"]["uom"]  # the order line's unit
    assert answer["message"] == (
        f"1200 {uom} of TB-0150 received as lot {lot_number}, in QUARANTINE until incoming "
        "inspection and QA release"
    ), answer["message"]
    assert answer["message_template"].startswith("%(quantity)s %(uom)s of %(part)s received")
    # the answer in the caller's language when asked (a repeat answers the first result)
    asked = await stack.http.post(
        f"{url}/goods-received",
        json=scan,
        headers=grace | {"Idempotency-Key": "dock-1-scan-7", "Accept-Language": "zh-CN,zh"},
    )
    assert asked.status_code == 200 and asked.json()["repeated"] is True, asked.text
    assert asked.json()["message"] == (
        f"已收货 TB-0150 1200 {uom}，批次号 {lot_number}；在进货检验和质量放行之前处于隔离"
        "（QUARANTINE）状态"
    ), asked.text
    async with stack.sessions() as session:
        row = await session.get(Process, purchase)
    assert row is not None and row.title.endswith(": TB-0150 from SUP-0001"), row
    assert row.title_wording == {
        "template": "%(number)s: %(parts)s from %(supplier)s",
        "values": {"number": row.business_key, "parts": "TB-0150", "supplier": "SUP-0001"},
    }

    facts = (await stack.http.get(f"/api/v1/lots/{lot_number}", headers=stack.mes)).json()
    assert [h["to_status"] for h in facts["status_history"]] == ["QUARANTINE"]
    assert facts["receipt"]["purchase_order"].startswith("PO-")
    assert facts["receipt"]["received_by"] == "grace"
    by_label = await stack.http.get(f"/api/v1/lots/{quote(LABEL, safe='')}", headers=stack.mes)
    assert by_label.json()["lot_number"] == lot_number  # the supplier's label finds our lot

    by_grace = [a.reason for a in await refusals(stack, purchase) if a.actor == "grace"]
    # the audit trail keeps the English text, whatever language the caller asked for
    first_words = [reason.split(" ")[0] for reason in by_grace]
    assert first_words == ["purchase", "purchase", "LC-0110", "only"]
