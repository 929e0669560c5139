"""The procure-to-deliver pages over HTTP, on the real stack with the demo catalogue plus a small
supply story written straight into the ERP (a purchase with a receipt, its lot released and issued
into a work order's finished lot, part of which was shipped): the lists, the purchase, work-order,
shipment and customer-order pages, the lot page with its history and genealogy both ways, the
supplier page with its scorecard, the start forms, who sees which event form, and CSRF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import quote

from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Match

from erp.audit import AuditRecord, append_audit
from erp.lots import move, set_lot_status
from erp.master_data import Item, Lot, PurchaseOrder, PurchaseOrderLine, Supplier, WorkOrder
from erp.models import Process, Task
from erp.seed import DEMO_PASSWORD
from erp.seed_master_data import GS1_EXAMPLE_COMPANY_PREFIX, gtin14
from erp.supply import (
    Customer,
    CustomerOrder,
    GenealogyEdge,
    Inspection,
    Receipt,
    SerialNumber,
    Shipment,
    ShipmentLine,
    SupplierScorecard,
)
from tests.helpers import eventually
from tests.ui.conftest import Site, hidden_value, text_of
from tests.ui.test_pages import assert_secure_headers
from ui import lot_views, supply_views
from ui import routes as ui_routes

TODAY = date.today()
PO_ID, WO_ID, SH_ID, CO_ID = "po-ui-0001", "wo-ui-0001", "sh-ui-0001", "co-ui-0001"
IS_2000_GTIN = gtin14("0", GS1_EXAMPLE_COMPANY_PREFIX, "20001")


@dataclass
class Story:
    component: str  # the received lot
    finished: str  # the lot made from it


def section(html: str, heading_id: str) -> str:
    """The HTML of the card whose heading has this id."""
    found = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, re.S)
    assert found, f"no section {heading_id}"
    return found.group(0)


def clean(response) -> str:
    """The page's text, after checking it came with the security headers and nothing inline."""
    assert response.status_code == 200, text_of(response.text)
    assert_secure_headers(response)
    assert "style=" not in response.text, "inline style (the CSP blocks it)"
    assert "<script>" not in response.text, "inline script (the CSP blocks it)"
    return text_of(response.text)


async def _one(session: AsyncSession, model, **where):  # type: ignore[no-untyped-def]
    found = await session.scalar(select(model).filter_by(**where))
    assert found is not None, (model, where)
    return found


def _process(pid: str, kind: str, key: str, title: str, step: str, status: str = "running"):  # type: ignore[no-untyped-def]
    return Process(
        id=pid,
        run_id="run-ui",
        kind=kind,
        title=title,
        business_key=key,
        initiator="frank",
        status=status,
        current_step=step,
    )


async def write_story(sessions: async_sessionmaker[AsyncSession]) -> Story:
    """A purchase of tubing, received (QUARANTINE → RELEASED), issued into a work order's finished
    lot, 40 of which were shipped to CUS-0001; a customer order above a purchase of its own."""
    async with sessions() as session, session.begin():
        supplier = await _one(session, Supplier, code="SUP-0001")
        tubing = await _one(session, Item, part_number="TB-0150", status="effective")
        infusion_set = await _one(session, Item, part_number="IS-2000", status="effective")
        customer = await _one(session, Customer, code="CUS-0001")
        order = CustomerOrder(
            number="CO-2026-9001",
            process_id=CO_ID,
            customer_id=customer.id,
            part_number="IS-2000",
            quantity=Decimal(40),
            due_on=TODAY + timedelta(days=30),
            status="in_progress",
            requested_by="judy",
            external_reference="HOSP-PO-5521",
        )
        session.add(order)
        await session.flush()
        po = PurchaseOrder(
            number="PO-2026-9001",
            supplier_id=supplier.id,
            status="partially_received",
            process_id=PO_ID,
            requested_by="frank",
            amount=Decimal("1800.00"),
            due_on=TODAY + timedelta(days=10),
            promised_on=TODAY + timedelta(days=12),
            supplier_reference="NK-AB-778",
            asn_reference="ASN-77",
            customer_order_id=order.id,
        )
        session.add(po)
        await session.flush()
        line = PurchaseOrderLine(
            purchase_order_id=po.id,
            part_number="TB-0150",
            item_id=tubing.id,
            quantity=Decimal(1000),
            received_quantity=Decimal(400),
            unit_price=Decimal("1.80"),
            uom="m",
        )
        session.add(line)
        await session.flush()
        component = Lot(
            lot_number="R2611-UI01",
            item_id=tubing.id,
            part_number="TB-0150",
            supplier_id=supplier.id,
            supplier_lot="NK-4411",
            quantity=Decimal(400),
            uom="m",
            status="QUARANTINE",
            manufactured_on=TODAY - timedelta(days=10),
            expires_on=TODAY + timedelta(days=1000),
            origin="receipt",
            purchase_order_line_id=line.id,
            received_quantity=Decimal(400),
            status_reason="received on PO-2026-9001",
            status_changed_by="grace",
            status_process_id=PO_ID,
        )
        session.add(component)
        await session.flush()
        session.add(
            Receipt(
                purchase_order_line_id=line.id,
                lot_id=component.id,
                quantity=Decimal(400),
                received_by="grace",
                on_time=True,
                asn_reference="ASN-77",
                gs1="(01)09506000134352(10)NK-4411",
                process_id=PO_ID,
                event_id="ui-test-receipt-1",
            )
        )
        await move(
            session,
            component,
            kind="receipt",
            quantity=Decimal(400),
            reference="PO-2026-9001",
            actor="grace",
            process_id=PO_ID,
        )
        session.add(
            Inspection(
                lot_id=component.id,
                kind="incoming",
                sample_size=32,
                accept_number=1,
                defects=0,
                outcome="pass",
                inspector="heidi",
                process_id=PO_ID,
                idempotency_key="ui-test-inspection-1",
            )
        )
        await set_lot_status(
            session,
            component,
            "RELEASED",
            reason="QA release after incoming inspection",
            actor="bob",
            process_id=PO_ID,
        )
        wo = WorkOrder(
            number="WO-2026-9001",
            item_id=infusion_set.id,
            part_number="IS-2000",
            quantity=Decimal(100),
            status="completed",
            process_id=WO_ID,
            requested_by="alice",
            produced_quantity=Decimal(100),
            due_on=TODAY + timedelta(days=20),
        )
        session.add(wo)
        await session.flush()
        finished = Lot(
            lot_number="P2611-UI02",
            item_id=infusion_set.id,
            part_number="IS-2000",
            quantity=Decimal(100),
            status="QUARANTINE",
            manufactured_on=TODAY,
            expires_on=TODAY + timedelta(days=1095),
            origin="production",
            work_order_id=wo.id,
            received_quantity=Decimal(100),
        )
        session.add(finished)
        await session.flush()
        issue = await move(
            session,
            component,
            kind="issue",
            quantity=Decimal(155),
            reference="WO-2026-9001",
            actor="ivan",
            process_id=WO_ID,
        )
        session.add(
            GenealogyEdge(
                parent_lot_id=component.id,
                child_lot_id=finished.id,
                quantity=Decimal(155),
                work_order_id=wo.id,
                movement_id=issue.id,
            )
        )
        session.add_all(
            SerialNumber(
                lot_id=finished.id,
                serial=f"UI-{n:04d}",
                udi=f"(01){IS_2000_GTIN}(17){finished.expires_on:%y%m%d}(10)P2611-UI02(21)UI-{n:04d}",
            )
            for n in range(1, 61)
        )
        await set_lot_status(
            session, finished, "RELEASED", reason="QA release", actor="carol", process_id=WO_ID
        )
        shipment = Shipment(
            number="SH-2026-9001",
            process_id=SH_ID,
            customer_id=customer.id,
            status="shipped",
            carrier="DHL",
            tracking="JD0146000011",
            requested_by="grace",
            expected_delivery_on=TODAY + timedelta(days=3),
            shipped_at=datetime.now(UTC),
        )
        session.add(shipment)
        await session.flush()
        ship = await move(
            session,
            finished,
            kind="ship",
            quantity=Decimal(40),
            reference="SH-2026-9001",
            actor="grace",
            process_id=SH_ID,
        )
        session.add(
            ShipmentLine(
                shipment_id=shipment.id,
                lot_id=finished.id,
                part_number="IS-2000",
                quantity=Decimal(40),
                consignee_id=customer.id,
                movement_id=ship.id,
            )
        )
        session.add(
            SupplierScorecard(
                supplier_id=supplier.id,
                receipts=4,
                on_time_receipts=3,
                inspections=2,
                accepted_inspections=1,
                scars=1,
            )
        )
        session.add_all(
            [
                _process(PO_ID, "purchase", "PO-2026-9001", "Tubing from Nordkamm", "receiving"),
                _process(WO_ID, "work-order", "WO-2026-9001", "100 × IS-2000", "done", "completed"),
                _process(SH_ID, "shipment", "SH-2026-9001", "IS-2000 to St. Aurelia", "delivery"),
                _process(CO_ID, "procure-to-deliver", "CO-2026-9001", "40 × IS-2000", "buying"),
                _process(
                    f"{CO_ID}.purchase-1", "purchase", "PO-2026-9002", "Luer locks", "approval"
                ),
            ]
        )
        session.add(
            Task(
                workflow_id=f"{PO_ID}.inspect-1",
                run_id="run-ui",
                process_id=PO_ID,
                process_kind="purchase",
                step="inspect-1",
                kind="inspect",
                title="Incoming inspection of lot R2611-UI01",
                business_key="PO-2026-9001",
                candidate_groups=["qc"],
                rule="any",
                spec={},
                due_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        await append_audit(
            session,
            AuditRecord(
                actor="frank",
                action="purchase.requested",
                entity_type="purchase_order",
                entity_id="PO-2026-9001",
                source="api",
                reason="1000 m TB-0150 from SUP-0001",
                workflow_id=PO_ID,
            ),
        )
        await append_audit(
            session,
            AuditRecord(
                actor="judy",
                action="customer_order.received",
                entity_type="customer_order",
                entity_id="CO-2026-9001",
                source="api",
                reason="40 × IS-2000 for CUS-0001",
                workflow_id=CO_ID,
            ),
        )
    return Story(component="R2611-UI01", finished="P2611-UI02")


# ---------------------------------------------------------------- tests


async def test_supply_pages_need_a_login(site: Site):
    page = await site.browser()
    for path in (
        "/supply",
        "/purchases/new",
        f"/purchases/{PO_ID}",
        "/lots",
        "/lots/L2611-0001",
        "/suppliers/SUP-0001",
    ):
        response = await page.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={quote(path, safe='')}", path
    posted = await page.post(f"/purchases/{PO_ID}/events/goods-received", {"quantity": "1"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")


async def test_supply_lists_link_every_process_to_its_page(site: Site):
    await write_story(site.sessions)
    frank = await site.as_user("frank")
    home = await frank.get("/")
    assert 'href="/supply"' in home.text and ">Supply</a>" in home.text
    assert 'href="/lots"' in home.text

    shown = clean(await frank.get("/supply"))
    html = (await frank.get("/supply")).text
    for heading in ("Purchases", "Work orders", "Shipments", "Customer orders"):
        assert heading in shown
    assert f'href="/purchases/{PO_ID}">PO-2026-9001</a>' in html
    assert f'href="/work-orders/{WO_ID}">WO-2026-9001</a>' in html
    assert f'href="/shipments/{SH_ID}">SH-2026-9001</a>' in html
    assert f'href="/orders/{CO_ID}">CO-2026-9001</a>' in html
    assert "receiving" in shown and "completed" in shown
    for path in ("purchases", "shipments", "orders"):  # what a buyer may start
        assert f'href="/{path}/new"' in html
    assert 'href="/work-orders/new"' not in html  # production's
    alice = await site.as_user("alice")
    as_production = (await alice.get("/supply")).text
    assert 'href="/work-orders/new"' in as_production
    assert 'href="/shipments/new"' not in as_production

    only = await frank.get("/supply", params={"kind": "work-order"})
    assert "WO-2026-9001" in text_of(only.text) and "PO-2026-9001" not in text_of(only.text)
    running = await frank.get("/supply", params={"status": "completed"})
    assert "WO-2026-9001" in text_of(running.text) and "PO-2026-9001" not in text_of(running.text)


def page_routes() -> list[APIRoute]:
    """The pages' routes in the order a request tries them: ui/routes.py includes the supply and
    lot routers before its own routes."""
    routers = (supply_views.router, lot_views.router, ui_routes.router)
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


def first_route(method: str, path: str) -> APIRoute | None:
    """The page route a request reaches (the first that matches fully, as Starlette picks)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return next((r for r in page_routes() if r.matches(scope)[0] == Match.FULL), None)


async def test_supply_pages_live_at_the_root_and_collide_with_nothing(site: Site):
    served = [(m, r.path) for r in page_routes() for m in sorted(r.methods or ())]
    assert len(served) == len(set(served)), "two page routes serve the same method and path"
    outside = ("/ui/", "/api/", "/static", "/docs", "/openapi.json", "/healthz", "/readyz")
    assert not [p for _, p in served if p.startswith(outside) or p == "/metrics"]
    for method, path in served:  # no route with parameters shadows a fixed path
        if "{" not in path:
            reached = first_route(method, path)
            assert reached is not None and reached.path == path, (method, path)
    for method, path, endpoint in (
        ("GET", "/supply", "supply"),
        ("GET", "/purchases/new", "new_purchase"),
        ("POST", "/orders/new", "start_order"),
        ("GET", "/purchases/po-1", "purchase_page"),
        ("GET", "/work-orders/co-1.work-order", "work_order_page"),
        ("GET", "/shipments/sh-1/progress", "progress"),
        ("POST", "/shipments/sh-1/events/delivered", "shipment_event"),
        ("GET", "/orders/co-1", "order_page"),
        ("GET", "/lots/new", "lot_page"),  # a lot number like any other (404 when unknown)
        ("GET", "/suppliers/SUP-0001", "supplier_page"),
        ("GET", "/processes/new", "new_process"),
        ("GET", "/changes/new", "new_change"),
    ):
        reached = first_route(method, path)
        assert reached is not None and reached.endpoint.__name__ == endpoint, (method, path)
    alice = await site.as_user("alice")  # and the app answers so
    assert "New approval request" in text_of((await alice.get("/processes/new")).text)
    assert 'name="change_type"' in (await alice.get("/changes/new")).text
    assert (
        (await alice.get("/api/v1/lots/NO-SUCH-LOT"))
        .headers["content-type"]
        .startswith("application/json")
    )


async def test_generic_process_pages_and_task_page_lead_to_the_supply_pages(site: Site):
    await write_story(site.sessions)
    frank = await site.as_user("frank")
    listing = clean(await frank.get("/processes"))
    html = (await frank.get("/processes")).text
    assert "Tubing from Nordkamm" in listing
    for href in (
        f"/purchases/{PO_ID}",
        f"/work-orders/{WO_ID}",
        f"/shipments/{SH_ID}",
        f"/orders/{CO_ID}",
        f"/purchases/{CO_ID}.purchase-1",
    ):
        assert f'href="{href}"' in html, href
    assert f'href="/processes/{PO_ID}"' not in html

    for pid, own, label in (
        (PO_ID, f"/purchases/{PO_ID}", "Open the purchase page"),
        (WO_ID, f"/work-orders/{WO_ID}", "Open the work order page"),
        (SH_ID, f"/shipments/{SH_ID}", "Open the shipment page"),
        (CO_ID, f"/orders/{CO_ID}", "Open the customer order page"),
    ):
        generic = await frank.get(f"/processes/{pid}")
        assert f'<a href="{own}">{label}</a>' in generic.text, pid
    approval = await site.start_approval()
    await site.open_task(approval)
    plain = await frank.get(f"/processes/{approval}")
    assert "general view" not in text_of(plain.text)  # an approval has no page of its own

    async with site.sessions() as session:
        inspection = await session.scalar(select(Task).where(Task.process_id == PO_ID))
    assert inspection is not None
    heidi = await site.as_user("heidi")
    task_page = (await heidi.get(f"/tasks/{inspection.id}")).text
    crumbs = re.search(r'<p class="crumbs">.*?</p>', task_page, re.S)
    assert crumbs and f'<a href="/purchases/{PO_ID}">PO-2026-9001</a>' in crumbs.group(0)
    assert f'Purchase · <a href="/purchases/{PO_ID}">PO-2026-9001</a>' in task_page


def progress_parts(html: str) -> dict[str, str]:
    """The parts of a page its script refreshes, by id."""
    found = re.findall(r'<(\w+)[^>]*\bid="(progress-[\w-]+)"[^>]*\bdata-progress-part\b', html)
    return {part_id: tag for tag, part_id in found}


async def test_running_pages_refresh_their_tasks_and_timeline_from_the_progress_part(site: Site):
    await write_story(site.sessions)
    grace = await site.as_user("grace")
    page = (await grace.get(f"/purchases/{PO_ID}")).text
    tasks = section(page, "tasks-h")
    assert f'data-progress-url="/purchases/{PO_ID}/progress"' in tasks  # the process runs
    assert 'data-progress-every="5"' in tasks
    done = (await grace.get(f"/work-orders/{WO_ID}")).text  # completed: nothing to wait for
    assert "data-progress-url" not in done
    for path in (f"/shipments/{SH_ID}", f"/orders/{CO_ID}"):
        assert f'data-progress-url="{path}/progress"' in (await grace.get(path)).text

    response = await grace.get(f"/purchases/{PO_ID}/progress")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert_secure_headers(response)
    part = response.text
    assert "<html" not in part and "<main" not in part  # the parts, not a page
    assert (
        progress_parts(part)
        == progress_parts(page)
        == {
            "progress-badges": "span",
            "progress-task-count": "span",
            "progress-tasks": "section",
            "progress-timeline": "section",
        }
    )
    assert section(part, "tasks-h") == tasks  # made by the same macro as on the page
    assert "Incoming inspection of lot R2611-UI01" in text_of(section(part, "tasks-h"))

    # a task opened and a step recorded after the page was shown: the part has them
    async with site.sessions() as session, session.begin():
        session.add(
            Task(
                workflow_id=f"{PO_ID}.release-1",
                run_id="run-ui",
                process_id=PO_ID,
                process_kind="purchase",
                step="release-1",
                kind="approve",
                title="QA release of lot R2611-UI01",
                business_key="PO-2026-9001",
                candidate_groups=["qa"],
                rule="any",
                spec={},
                due_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        process = await session.get(Process, PO_ID)
        assert process is not None
        process.current_step = "qa-release"
        await append_audit(
            session,
            AuditRecord(
                actor="system",
                action="process.step",
                entity_type="process",
                entity_id=PO_ID,
                source="worker",
                after={"status": "running", "step": "qa-release"},
                workflow_id=PO_ID,
            ),
        )
    later = (await grace.get(f"/purchases/{PO_ID}/progress")).text
    assert re.search(r'href="/tasks/\d+">QA release of lot R2611-UI01', section(later, "tasks-h"))
    assert "step: qa release" in text_of(section(later, "timeline-h"))
    assert "step: qa-release" in text_of(later.split('id="progress-task-count"')[0])
    assert re.search(r'id="progress-task-count" data-progress-part>2<', later)

    async with site.sessions() as session, session.begin():
        process = await session.get(Process, PO_ID)
        assert process is not None
        process.status = "completed"
    ended = (await grace.get(f"/purchases/{PO_ID}/progress")).text
    assert "data-progress-url" not in ended  # the page stops asking

    assert (await grace.get("/purchases/po-nothing/progress")).status_code == 404
    stranger = await site.browser()
    asked = await stranger.get(f"/purchases/{PO_ID}/progress")
    assert asked.status_code == 303 and asked.headers["location"].startswith("/login?next=")


async def test_purchase_page_shows_the_order_its_receipts_tasks_and_timeline(site: Site):
    story = await write_story(site.sessions)
    grace = await site.as_user("grace")
    response = await grace.get(f"/purchases/{PO_ID}")
    shown = clean(response)
    html = response.text
    assert "PO-2026-9001" in shown and "Purchase from Nordkamm Polymertechnik GmbH" in shown
    header = text_of(section(html, "po-h"))
    assert "1,800.00 EUR" in header
    assert f"Due {(TODAY + timedelta(days=10)).isoformat()}" in header
    assert f"Promised {(TODAY + timedelta(days=12)).isoformat()}" in header
    assert "ASN-77" in header and "partially received" in header
    assert 'href="/suppliers/SUP-0001"' in html
    assert f'href="/orders/{CO_ID}">CO-2026-9001</a>' in html  # bought for a customer order

    lines = text_of(section(html, "lines-h"))
    assert "TB-0150" in lines and "1,000 m" in lines and "400" in lines and "600" in lines
    receipts = section(html, "receipts-h")
    assert f'href="/lots/{story.component}"' in receipts
    assert "NK-4411" in text_of(receipts) and "on time" in text_of(receipts)
    assert "pass" in text_of(receipts) and "heidi" in text_of(receipts)  # the inspection

    tasks = section(html, "tasks-h")
    task_id = re.search(r'href="/tasks/(\d+)">Incoming inspection of lot R2611-UI01', tasks)
    assert task_id, tasks
    timeline = text_of(section(html, "timeline-h"))
    assert "purchase requested" in timeline and "1000 m TB-0150 from SUP-0001" in timeline

    # grace receives goods: the receipt form, with the label field, and its own event id
    receipt = section(html, "goods-received-h")
    assert f'action="/purchases/{PO_ID}/events/goods-received"' in receipt
    assert "scan or paste the label" in text_of(receipt)
    for name in ("part_number", "quantity", "gs1", "supplier_lot", "manufactured_on", "expires_on"):
        assert f'name="{name}"' in receipt, name
    assert hidden_value(receipt, "event_id")
    assert hidden_value(receipt, "csrf_token") == grace.csrf
    assert 'id="sc-promised"' not in html  # confirmations are the buyer's
    assert "Keyed in by buyer or purchasing-manager" in text_of(
        section(html, "supplier-confirmed-h")
    )

    frank = await site.as_user("frank")
    as_buyer = (await frank.get(f"/purchases/{PO_ID}")).text
    assert 'name="promised_on"' in as_buyer and 'name="asn_reference"' in as_buyer
    assert 'name="supplier_lot"' not in as_buyer
    assert "Keyed in by warehouse" in text_of(section(as_buyer, "goods-received-h"))


async def test_lot_page_history_movements_genealogy_and_where_it_went(site: Site):
    story = await write_story(site.sessions)
    bob = await site.as_user("bob")
    response = await bob.get(f"/lots/{story.component}")
    shown = clean(response)
    html = response.text
    assert f"Lot {story.component}" in shown and "RELEASED" in shown
    facts = text_of(section(html, "lot-h"))
    assert "245 m" in facts and "of 400 received" in facts  # 400 received, 155 issued
    assert "SUP-0001 · Nordkamm Polymertechnik GmbH" in facts and "NK-4411" in facts
    origin = section(html, "origin-h")
    assert f'href="/purchases/{PO_ID}">PO-2026-9001</a>' in origin
    assert "(01)09506000134352(10)NK-4411" in text_of(origin)

    history = text_of(section(html, "history-h"))
    assert re.search(r"created .*QUARANTINE .*grace .*received on PO-2026-9001", history), history
    assert re.search(r"QUARANTINE .*RELEASED .*bob .*QA release after incoming", history), history
    movements = section(html, "movements-h")
    assert "+400" in text_of(movements) and "−155" in text_of(movements)
    assert f'href="/work-orders/{WO_ID}">WO-2026-9001</a>' in movements

    forward = section(html, "forward-h")
    assert f'href="/lots/{story.finished}"' in forward and "IS-2000" in text_of(forward)
    assert "Nothing" in text_of(section(html, "backward-h"))  # received, not made
    where = text_of(section(html, "shipments-h"))
    assert "SH-2026-9001" in where and "CUS-0001 · St. Aurelia Hospital" in where
    assert f'href="/shipments/{SH_ID}">SH-2026-9001</a>' in section(html, "shipments-h")

    finished = await bob.get(f"/lots/{story.finished}")
    made = finished.text
    backward = section(made, "backward-h")
    assert f'href="/lots/{story.component}"' in backward
    assert "SUP-0001 · NK-4411" in text_of(backward)
    assert f'href="/work-orders/{WO_ID}">WO-2026-9001</a>' in section(made, "origin-h")
    serials = text_of(section(made, "serials-h"))
    assert "UI-0001" in serials and "UI-0050" in serials and "UI-0051" not in serials
    assert "The first 50 of 60" in serials


async def test_lot_search_by_number_label_or_serial(site: Site):
    story = await write_story(site.sessions)
    heidi = await site.as_user("heidi")
    listing = clean(await heidi.get("/lots"))
    assert story.component in listing and "Lot number, or scan or paste a label" in listing

    by_number = await heidi.get("/lots", params={"q": f" {story.component} "})
    assert by_number.status_code == 303
    assert by_number.headers["location"] == f"/lots/{story.component}"
    by_supplier_label = await heidi.get("/lots", params={"q": "(01)09506000134352(10)NK-4411"})
    assert by_supplier_label.headers["location"] == f"/lots/{story.component}"
    udi = f"(01){IS_2000_GTIN}(10){story.finished}(21)UI-0057"
    by_serial = await heidi.get("/lots", params={"q": udi})
    assert by_serial.headers["location"] == f"/lots/{story.finished}?serial=UI-0057"
    marked = await heidi.get(by_serial.headers["location"])
    assert "Found by serial UI-0057 of this lot" in text_of(marked.text)
    assert "UI-0057 scanned" in text_of(section(marked.text, "serials-h"))  # beyond the first 50

    unknown = await heidi.get("/lots", params={"q": "NO-SUCH-LOT"})
    assert unknown.status_code == 200  # a search that finds nothing says so
    assert "Lot NO-SUCH-LOT is not known" in text_of(unknown.text)
    bad_label = await heidi.get("/lots", params={"q": "(01)09506000134353(10)X"})
    assert 'role="alert"' in bad_label.text
    assert "check digit" in text_of(bad_label.text).lower()
    assert (await heidi.get("/lots/NO-SUCH-LOT")).status_code == 404
    filtered = text_of((await heidi.get("/lots", params={"status": "ON_HOLD"})).text)
    assert "ON_HOLD" in filtered and story.component not in filtered


async def test_work_order_shipment_and_customer_order_pages(site: Site):
    story = await write_story(site.sessions)
    alice = await site.as_user("alice")
    wo = await alice.get(f"/work-orders/{WO_ID}")
    shown = clean(wo)
    assert "WO-2026-9001" in shown and "100 × IS-2000" in shown
    consumed = section(wo.text, "consumed-h")
    assert f'href="/lots/{story.component}"' in consumed and "155 m" in text_of(consumed)
    finished = text_of(section(wo.text, "finished-h"))
    assert story.finished in finished and "Serial numbers (60)" in finished
    assert "The first 50 of 60" in finished

    sh = await alice.get(f"/shipments/{SH_ID}")
    shown = clean(sh)
    assert "Shipment to St. Aurelia Hospital, Central Pharmacy" in shown
    assert "DHL" in shown and "JD0146000011" in shown
    lines = section(sh.text, "lines-h")
    assert f'href="/lots/{story.finished}"' in lines
    assert "40" in text_of(lines) and "CUS-0001 · St. Aurelia Hospital" in text_of(lines)
    assert "Keyed in by warehouse or buyer" in text_of(section(sh.text, "delivered-h"))
    grace = await site.as_user("grace")
    delivery = section((await grace.get(f"/shipments/{SH_ID}")).text, "delivered-h")
    assert 'name="delivered_on"' in delivery and 'type="date"' in delivery

    co = await alice.get(f"/orders/{CO_ID}")
    shown = clean(co)
    assert "CO-2026-9001" in shown and "40 × IS-2000 for St. Aurelia Hospital" in shown
    assert "HOSP-PO-5521" in shown
    children = section(co.text, "children-h")
    assert f'href="/purchases/{CO_ID}.purchase-1">PO-2026-9002</a>' in children
    assert "customer order received" in text_of(section(co.text, "timeline-h"))


async def test_supplier_pages_show_scorecard_certificates_and_asl(site: Site):
    story = await write_story(site.sessions)
    frank = await site.as_user("frank")
    listing = await frank.get("/suppliers")
    shown = clean(listing)
    assert "SUP-0003" in shown and "expired" in shown
    assert re.search(r"SUP-0001 .*75 % 4 receipts 50 % 2 inspections", shown), shown

    page = await frank.get("/suppliers/SUP-0001")
    shown = clean(page)
    scorecard = text_of(section(page.text, "scorecard-h"))
    assert "75 % on-time delivery 3 of 4 receipts" in scorecard
    assert "50 % quality acceptance 1 of 2 incoming inspections" in scorecard
    assert "1 SCARs" in scorecard
    assert "QMS-13485-40871" in text_of(section(page.text, "certificates-h"))
    assert "TB-0150 approved" in text_of(section(page.text, "asl-h"))
    receipts = section(page.text, "receipts-h")
    assert f'href="/purchases/{PO_ID}">PO-2026-9001</a>' in receipts
    assert f'href="/lots/{story.component}"' in receipts

    expired = await frank.get("/suppliers/SUP-0003")
    certificates = text_of(section(expired.text, "certificates-h"))
    assert "QMS-13485-77304" in certificates and "expired" in certificates
    assert "certificate expired" in text_of(expired.text)
    assert "conditional" in text_of(section(expired.text, "asl-h"))
    assert (await frank.get("/suppliers/SUP-9999")).status_code == 404


async def test_start_forms_label_every_field_and_show_errors_in_words(site: Site):
    frank = await site.as_user("frank")
    alice = await site.as_user("alice")
    for person, path, names in (
        (
            frank,
            "purchases",
            ("supplier_code", "line_1_part", "line_1_quantity", "line_1_unit_price"),
        ),
        (alice, "work-orders", ("part_number", "quantity", "due_on")),
        (frank, "shipments", ("customer_code", "line_1_part", "line_1_quantity")),
        (frank, "orders", ("customer_code", "part_number", "quantity", "due_on")),
    ):
        form = await person.get(f"/{path}/new")
        clean(form)
        for name in names:
            assert f'name="{name}"' in form.text, (path, name)
            field_id = re.search(rf'id="([^"]+)" name="{name}"', form.text)
            assert field_id and f'for="{field_id.group(1)}"' in form.text, (path, name)
        assert hidden_value(form.text, "form_key")
    purchase = (await frank.get("/purchases/new")).text
    assert re.search(
        r'<option value="SUP-0005"\s*>SUP-0005 · Hanxi [^<]*\(disqualified\)', purchase
    )
    assert '<option value="TB-0150">' in purchase  # parts offered
    made = (await alice.get("/work-orders/new")).text
    assert '<option value="IS-2000"' in made and '<option value="TB-0150"' not in made

    due = (TODAY + timedelta(days=20)).isoformat()
    forged = await frank.post(
        "/purchases/new",
        {"supplier_code": "SUP-0001", "line_1_part": "TB-0150", "line_1_quantity": "5"},
        csrf="not-the-token",
    )
    assert forged.status_code == 403 and "reload the page and try again" in text_of(forged.text)

    wrong = await frank.post(
        "/purchases/new",
        {
            "supplier_code": "SUP-0001",
            "line_1_part": "TB-0150",
            "line_1_quantity": "500",
            "line_1_unit_price": "1.8",
            "line_3_part": "LC-0110",
            "line_3_quantity": "0",
            "due_on": due,
            "form_key": "k-1",
        },
    )
    assert wrong.status_code == 422
    shown = text_of(wrong.text)
    assert "Line 3, quantity: must be more than 0." in shown
    assert 'value="TB-0150"' in wrong.text and 'value="500"' in wrong.text  # kept
    assert hidden_value(wrong.text, "form_key") == "k-1"  # the same form, the same key
    empty = await frank.post("/shipments/new", {"customer_code": "CUS-0001"})
    assert empty.status_code == 422
    assert "Lines: fill in at least one line (part and quantity)" in text_of(empty.text)
    no_date = await alice.post(
        "/work-orders/new", {"part_number": "IS-2000", "quantity": "abc", "due_on": ""}
    )
    assert no_date.status_code == 422
    assert "Quantity: enter a number; Due date: enter a date like 2026-12-31." in text_of(
        no_date.text
    )
    assert (await frank.get("/lots/new")).status_code == 404


async def test_event_forms_need_the_csrf_token(site: Site):
    await write_story(site.sessions)
    grace = await site.as_user("grace")
    page = await grace.get(f"/purchases/{PO_ID}")
    event_id = hidden_value(section(page.text, "goods-received-h"), "event_id")
    forged = await grace.post(
        f"/purchases/{PO_ID}/events/goods-received",
        {"event_id": event_id, "part_number": "TB-0150", "quantity": "100"},
        csrf="",
    )
    assert forged.status_code == 403
    assert "reload the page and try again" in text_of(forged.text)
    async with site.sessions() as session:
        receipts = (await session.scalars(select(Receipt))).all()
    assert len(receipts) == 1  # nothing recorded


async def test_start_a_purchase_from_the_form(site: Site):
    heidi = await site.as_user("heidi")
    refused = await heidi.get("/purchases/new")
    assert refused.status_code == 403
    assert "Starting a purchase needs one of the groups buyer, purchasing-manager" in text_of(
        refused.text
    )
    assert 'name="supplier_code"' not in refused.text
    assert "/new" not in section_free(await heidi.get("/supply"))  # no start buttons

    frank = await site.as_user("frank")
    form = await frank.get("/purchases/new")
    key = hidden_value(form.text, "form_key")
    fields = {
        "form_key": key,
        "supplier_code": "SUP-0001",
        "line_1_part": "tb-0150",  # typed in lower case: read as TB-0150
        "line_1_quantity": "500",
        "line_1_unit_price": "1.80",
        "due_on": (TODAY + timedelta(days=21)).isoformat(),
    }
    unknown = await frank.post(
        "/purchases/new", fields | {"line_2_part": "XX-9999", "line_2_quantity": "5"}
    )
    assert unknown.status_code == 422
    assert "does not match the ERP: part XX-9999 is not known" in text_of(unknown.text)
    assert hidden_value(unknown.text, "form_key") == key

    started = await frank.post("/purchases/new", fields)
    assert started.status_code == 303, text_of(started.text)
    location = started.headers["location"]
    assert re.fullmatch(r"/purchases/po-[0-9a-f]{16}", location), location
    again = await frank.post("/purchases/new", fields)  # the same form sent twice
    assert again.status_code == 303 and again.headers["location"] == location
    page = await frank.get(location)
    shown = clean(page)
    assert "being registered" in shown or re.search(r"PO-\d{4}-\d{4}", shown), shown


def section_free(response) -> str:  # type: ignore[no-untyped-def]
    """The links of the page's main content (the menu left out)."""
    main = response.text.split('<main id="main"', 1)[1]
    return " ".join(re.findall(r'href="([^"]+)"', main))


async def test_event_refusals_are_shown_on_the_form(site: Site):
    await write_story(site.sessions)
    frank = await site.as_user("frank")
    wrong_sender = await frank.post(
        f"/purchases/{PO_ID}/events/goods-received",
        {"event_id": "ev-frank", "part_number": "TB-0150", "quantity": "100"},
    )
    assert wrong_sender.status_code == 403
    refusal = text_of(section(wrong_sender.text, "goods-received-h"))
    assert (
        "may be sent by a system with events:send or by a person in one of the groups warehouse"
        in refusal
    )

    async with site.sessions() as session, session.begin():
        process = await session.get(Process, PO_ID)
        assert process is not None
        process.status = "completed"
    grace = await site.as_user("grace")
    late = await grace.post(
        f"/purchases/{PO_ID}/events/goods-received",
        {"event_id": "ev-late", "part_number": "TB-0150", "quantity": "100", "gs1": "(01)x"},
    )
    assert late.status_code == 409
    box = section(late.text, "goods-received-h")
    assert f"Process {PO_ID} is completed; it accepts no more events." in text_of(box)
    assert 'role="alert"' in box
    assert "it takes no more events" in text_of(box)  # and no form to send another
    assert (await grace.post(f"/work-orders/{WO_ID}/events/delivered", {})).status_code == 404
    async with site.sessions() as session:
        receipts = (await session.scalars(select(Receipt))).all()
    assert len(receipts) == 1  # nothing recorded


# ---------------------------------------------------------------- events on the real processes


async def wait_for(site: Site, query, what: str):  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        async with site.sessions() as session:
            return await session.scalar(query)

    return await eventually(probe, timeout=60, what=what)


async def issued_purchase(site: Site) -> str:
    """A purchase of 500 m tubing started over REST by frank, approved by judy, issued."""
    started = await site.api.http.post(
        "/api/v1/processes/purchase",
        json={
            "supplier_code": "SUP-0001",
            "lines": [{"part_number": "TB-0150", "quantity": "500", "unit_price": "1.80"}],
            "due_on": (TODAY + timedelta(days=14)).isoformat(),
        },
        headers=await site.api.token("frank"),
    )
    assert started.status_code in (200, 201), started.text
    process_id = str(started.json()["id"])
    approval = await wait_for(
        site,
        select(Task).where(Task.workflow_id == f"{process_id}.approval", Task.status == "open"),
        "the approval task",
    )
    decided = await site.api.http.post(
        f"/api/v1/tasks/{approval.id}/decision",
        json={"outcome": "approve", "password": DEMO_PASSWORD},
        headers=await site.api.token("judy"),
    )
    assert decided.status_code == 200, decided.text
    await wait_for(
        site,
        select(PurchaseOrder.id).where(
            PurchaseOrder.process_id == process_id, PurchaseOrder.status == "issued"
        ),
        "the purchase order issued",
    )
    return process_id


async def test_goods_keyed_in_by_hand_refused_then_received_once(site: Site):
    process_id = await issued_purchase(site)
    grace = await site.as_user("grace")
    page = await grace.get(f"/purchases/{process_id}")
    event_id = hidden_value(section(page.text, "goods-received-h"), "event_id")
    goods = {
        "event_id": event_id,
        "part_number": "TB-0150",
        "quantity": "600",
        "supplier_lot": "NK-HAND-1",
        "manufactured_on": (TODAY - timedelta(days=30)).isoformat(),
        "expires_on": (TODAY + timedelta(days=900)).isoformat(),
    }
    too_much = await grace.post(f"/purchases/{process_id}/events/goods-received", goods)
    assert too_much.status_code == 409
    refusal = text_of(section(too_much.text, "goods-received-h"))
    assert "Only 500 m of TB-0150 is still open on PO-" in refusal
    assert 'value="NK-HAND-1"' in too_much.text  # what was typed is kept

    received = await grace.post(
        f"/purchases/{process_id}/events/goods-received", goods | {"quantity": "200"}
    )
    assert received.status_code == 200, text_of(received.text)
    answer = re.search(
        r'<div class="alert ok" role="status" id="event-answer">(.*?)</div>', received.text, re.S
    )
    assert answer, text_of(received.text)
    said = text_of(answer.group(1))
    lot_number = re.search(r"received as lot (\S+), in QUARANTINE", said)
    assert lot_number, said
    assert f'href="/lots/{lot_number.group(1)}"' in answer.group(1)
    receipts = text_of(section(received.text, "receipts-h"))
    assert lot_number.group(1) in receipts and "NK-HAND-1" in receipts and "QUARANTINE" in receipts
    fresh = hidden_value(section(received.text, "goods-received-h"), "event_id")
    assert fresh != event_id  # the next receipt is a new event

    again = await grace.post(
        f"/purchases/{process_id}/events/goods-received", goods | {"quantity": "200"}
    )
    assert again.status_code == 200
    assert "This was recorded before; nothing changed." in text_of(again.text)
    async with site.sessions() as session:
        count = len(
            (await session.scalars(select(Receipt).where(Receipt.process_id == process_id))).all()
        )
    assert count == 1


async def test_delivery_confirmed_on_the_shipment_page(site: Site):
    started = await site.api.http.post(
        "/api/v1/processes/shipment",
        json={"customer_code": "CUS-0003", "lines": [{"part_number": "IS-2000", "quantity": "10"}]},
        headers=await site.api.token("grace"),
    )
    assert started.status_code in (200, 201), started.text
    process_id = str(started.json()["id"])
    pick = await wait_for(
        site,
        select(Task).where(Task.workflow_id == f"{process_id}.pick-1", Task.status == "open"),
        "the pick task",
    )
    grace = await site.as_user("grace")
    page = await grace.get(f"/shipments/{process_id}")
    assert "Pick and ship" in text_of(section(page.text, "tasks-h"))
    delivery = {
        "event_id": hidden_value(section(page.text, "delivered-h"), "event_id"),
        "delivered_on": TODAY.isoformat(),
        "received_by": "Ward 3, night pharmacist",
    }
    early = await grace.post(f"/shipments/{process_id}/events/delivered", delivery)
    assert early.status_code == 409
    assert "has not been shipped yet" in text_of(section(early.text, "delivered-h"))

    shipped = await site.api.http.post(
        f"/api/v1/tasks/{pick.id}/decision",
        json={"outcome": "shipped", "fields": {"carrier": "DHL", "tracking": "JD0146000099"}},
        headers=await site.api.token("grace"),
    )
    assert shipped.status_code == 200, shipped.text
    await wait_for(
        site,
        select(Shipment.id).where(Shipment.process_id == process_id, Shipment.status == "shipped"),
        "the shipment shipped",
    )
    lines = section((await grace.get(f"/shipments/{process_id}")).text, "lines-h")
    assert "CUS-0003 · Clínica Santa Lucía" in text_of(lines)
    assert 'href="/lots/' in lines

    confirmed = await grace.post(f"/shipments/{process_id}/events/delivered", delivery)
    assert confirmed.status_code == 200, text_of(confirmed.text)
    shown = text_of(confirmed.text)
    assert re.search(rf"Delivery of SH-\d{{4}}-\d{{4}} on {TODAY.isoformat()} recorded", shown), (
        shown
    )
    facts = text_of(section(confirmed.text, "shipment-h"))
    assert "Status delivered" in facts and "Delivered 20" in facts, facts


async def test_customer_order_page_links_its_children(site: Site):
    started = await site.api.http.post(
        "/api/v1/processes/procure-to-deliver",
        json={
            "customer_code": "CUS-0003",
            "part_number": "IS-2000",
            "quantity": "10",
            "due_on": (TODAY + timedelta(days=30)).isoformat(),
            "customer_reference": "CSL-7781",
        },
        headers=await site.api.token("judy"),
    )
    assert started.status_code in (200, 201), started.text
    process_id = str(started.json()["id"])
    await wait_for(  # in stock: shipped from stock, nothing bought or made
        site, select(Process.id).where(Process.id == f"{process_id}.shipment"), "the shipment"
    )
    judy = await site.as_user("judy")

    async def with_the_pick_task():  # type: ignore[no-untyped-def]
        response = await judy.get(f"/orders/{process_id}")
        return response if "Pick and ship" in response.text else None

    page = await eventually(with_the_pick_task, what="the child's pick task on the order page")
    shown = clean(page)
    assert re.search(r"CO-\d{4}-\d{4}", shown) and "CSL-7781" in shown
    assert "10 × IS-2000 for Clínica Santa Lucía" in shown
    children = section(page.text, "children-h")
    assert f'href="/shipments/{process_id}.shipment">SH-' in children
    timeline = text_of(section(page.text, "timeline-h"))
    assert "Pick and ship" in timeline  # the child's task, on the parent's timeline
    listed = (await judy.get("/supply", params={"kind": "procure-to-deliver"})).text
    assert f'href="/orders/{process_id}"' in listed


async def decide(site: Site, task: Task, who: str, outcome: str, **fields: str) -> None:
    """Decide a task over REST as `who` (signing outcomes re-enter the password)."""
    decided = await site.api.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": outcome, "fields": fields, "password": DEMO_PASSWORD},
        headers=await site.api.token(who),
    )
    assert decided.status_code == 200, decided.text


async def open_step(site: Site, process_id: str, step: str) -> Task:
    return await wait_for(
        site,
        select(Task).where(Task.workflow_id == f"{process_id}.{step}", Task.status == "open"),
        f"the {step} task",
    )


async def test_work_order_page_on_a_real_run_of_pumps(site: Site):
    started = await site.api.http.post(
        "/api/v1/processes/work-order",
        json={
            "part_number": "IP-3000",
            "quantity": "3",
            "due_on": (TODAY + timedelta(days=14)).isoformat(),
        },
        headers=await site.api.token("alice"),
    )
    assert started.status_code in (200, 201), started.text
    process_id = str(started.json()["id"])
    production = await open_step(site, process_id, "production-1")
    alice = await site.as_user("alice")
    before = (await alice.get(f"/work-orders/{process_id}")).text
    assert production.title in text_of(section(before, "tasks-h"))
    assert "Nothing consumed yet" in text_of(section(before, "consumed-h"))
    assert "Not produced yet" in text_of(section(before, "finished-h"))

    await decide(site, production, "ivan", "done", produced_quantity="3", notes="line 2")
    inspection = await open_step(site, process_id, "final-inspection")
    made = (await alice.get(f"/work-orders/{process_id}")).text
    assert inspection.title in text_of(section(made, "tasks-h"))
    assert "QUARANTINE" in text_of(section(made, "finished-h"))  # made, not released yet

    await decide(site, inspection, "heidi", "pass", sample_size="3", defects="0", results="ok")
    await decide(site, await open_step(site, process_id, "dhr-review"), "bob", "reviewed")
    await decide(site, await open_step(site, process_id, "qa-release"), "carol", "release")
    await wait_for(
        site,
        select(Process.id).where(Process.id == process_id, Process.status == "completed"),
        "the work order completed",
    )

    async with site.sessions() as session:
        wo = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == process_id))
        assert wo is not None
        finished = await session.scalar(select(Lot).where(Lot.work_order_id == wo.id))
        assert finished is not None
        serials = list(
            await session.scalars(
                select(SerialNumber)
                .where(SerialNumber.lot_id == finished.id)
                .order_by(SerialNumber.serial)
            )
        )
        components = {
            lot.part_number: lot.lot_number
            for lot in await session.scalars(
                select(Lot).where(Lot.part_number.in_(["PB-0710", "HS-0720", "MT-0730"]))
            )
        }
    response = await alice.get(f"/work-orders/{process_id}")
    shown = clean(response)
    page = response.text
    assert wo.number in shown and "3 × IP-3000" in shown and "serialised" in shown
    assert "WO completed" in shown and "data-progress-url" not in page

    consumed = section(page, "consumed-h")
    rows = re.findall(r"<tr>(.*?)</tr>", consumed.split("<tbody>")[1], re.S)
    assert [text_of(r) for r in rows] == [
        f"{part} {lot_number} 3 ea {finished.lot_number}"
        for part, lot_number in sorted(components.items())
    ]
    for lot_number in [*components.values(), finished.lot_number]:
        assert f'href="/lots/{lot_number}"' in consumed, lot_number

    lot_card = section(page, "finished-h")
    facts = text_of(lot_card)
    assert f"Lot {finished.lot_number} Lot status: RELEASED" in facts
    assert "3 ea made · 3 on hand" in facts and "Expires —" in facts  # a pump does not expire
    assert "Serial numbers (3)" in facts
    assert [s.serial for s in serials] == ["IP3-000006", "IP3-000007", "IP3-000008"]
    listed = re.findall(
        r'<span class="mono">([^<]+)</span> <span class="udi">([^<]+)</span>', lot_card
    )
    assert [(serial, unescape(udi)) for serial, udi in listed] == [
        (s.serial, s.udi) for s in serials
    ]
    for s in serials:
        assert f"(10){finished.lot_number}(21){s.serial}" in s.udi

    inspections = text_of(section(page, "inspections-h"))
    assert re.search(rf"{finished.lot_number} final pass 3 .*0 heidi", inspections), inspections
    timeline = text_of(section(page, "timeline-h"))
    assert "signed" in timeline and "carol" in timeline and "step: qa release" in timeline
