"""The procure-to-deliver pages in a real browser (the system's Chromium through Playwright)
against the app served over real HTTP, at laptop and tablet width: every supply page renders
without script errors or CSP refusals and fits the screen; and receiving as it happens at the dock:
a purchase started through the API and approved, the goods keyed in on the purchase page with the
GS1 string of the supplier's label, the lot in QUARANTINE, the incoming inspection passed by heidi
and the QA release signed by bob in the task pages, the lot page showing RELEASED with its history.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from erp.master_data import Lot, PurchaseOrder
from erp.models import Task
from erp.seed import DEMO_PASSWORD
from tests.helpers import eventually
from tests.ui.test_browser import VIEWPORTS, WIDER, Live, chromium, live, log_in, tab
from tests.ui.test_supply_pages import CO_ID, PO_ID, SH_ID, WO_ID, write_story

__all__ = ["live"]  # the fixture, shared with the inbox's browser tests

TODAY = date.today()
# GS1's own example GTIN (check digit 2): a supplier's item, not one of ours
SUPPLIER_GTIN = "09506000134352"


async def fits(page: Page, viewport: str, what: str) -> None:
    wide = await page.evaluate(WIDER)
    assert wide <= 1, f"{what} on the {viewport} is {wide}px wider than the screen"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_every_supply_page_renders_cleanly(live: Live, viewport: str):
    story = await write_story(live.sessions)
    starts = {  # what an administrator may start
        "purchase-new": ("/purchases/new", "New purchase"),
        "work-order-new": ("/work-orders/new", "New work order"),
        "shipment-new": ("/shipments/new", "New shipment"),
        "order-new": ("/orders/new", "New customer order"),
    }
    pages = {  # what the warehouse sees, with the receipt and delivery forms
        "supply": ("/supply", "Supply"),
        "purchase": (f"/purchases/{PO_ID}", "Purchase from Nordkamm Polymertechnik GmbH"),
        "work-order": (f"/work-orders/{WO_ID}", "100 × IS-2000"),
        "shipment": (f"/shipments/{SH_ID}", "Shipment to St. Aurelia Hospital"),
        "order": (f"/orders/{CO_ID}", "40 × IS-2000 for St. Aurelia Hospital"),
        "lots": ("/lots", "Lots"),
        "lot": (f"/lots/{story.component}", f"Lot {story.component}"),
        "lot-finished": (f"/lots/{story.finished}", f"Lot {story.finished}"),
        "suppliers": ("/suppliers", "Suppliers"),
        "supplier": ("/suppliers/SUP-0003", "Brightwater Molding Inc."),
    }
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        for username, shown in (("admin", starts), ("grace", pages)):
            await page.goto("/supply")
            await log_in(page, username)
            await expect(page).to_have_url(f"{live.base_url}/supply")
            for name, (path, heading) in shown.items():
                await page.goto(path)
                await expect(page.locator("h1")).to_contain_text(heading)
                await fits(page, viewport, path)
                await t.shot(f"supply-{name}")
            if username == "admin":
                await page.get_by_role("button", name="Log out").click()
        await page.goto(f"/purchases/{PO_ID}")
        await expect(page.locator("section#goods-received form")).to_be_visible()
        # the menu leads to the supply lists and the lots
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Supply").click()
        await expect(page).to_have_url(f"{live.base_url}/supply")
        await page.get_by_role("link", name="PO-2026-9001").click()
        await expect(page).to_have_url(f"{live.base_url}/purchases/{PO_ID}")
        await page.get_by_role("link", name=story.component, exact=True).first.click()
        await expect(page.get_by_role("heading", name="Status history")).to_be_visible()


async def test_find_a_lot_by_its_label_with_the_keyboard(live: Live):
    story = await write_story(live.sessions)
    async with chromium() as browser, tab(browser, live, "tablet") as t:
        page = t.page
        await page.goto("/lots")
        await log_in(page, "heidi")
        await expect(page).to_have_url(f"{live.base_url}/lots")
        search = page.get_by_label("Lot number, or scan or paste a label (GS1 / UDI)")
        await expect(search).to_be_focused()  # a scanner types straight into it
        await page.keyboard.type(f"(01){SUPPLIER_GTIN}(10)NK-4411")
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/lots/{story.component}")
        await expect(page.locator(".badges .lot-status")).to_have_text("Lot status: RELEASED")

        await page.goto("/lots")
        await expect(search).to_be_focused()  # typed before the focus lands, keys are lost
        await page.keyboard.type("(01)09506000134353(10)NK-4411")  # one digit off
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_contain_text("check digit")
        await expect(search).to_have_value("(01)09506000134353(10)NK-4411")
        await t.shot("lot-search-refused")


# ---------------------------------------------------------------- receiving with a GS1 label


async def open_task(live: Live, workflow_prefix: str, what: str) -> Task:
    async def probe() -> Task | None:
        async with live.sessions() as session:
            return await session.scalar(
                select(Task)
                .where(Task.workflow_id.like(f"{workflow_prefix}%"), Task.status == "open")
                .order_by(Task.id)
            )

    return await eventually(probe, timeout=60, what=what)


async def issued(live: Live, process_id: str) -> None:
    """Wait until the approved purchase order went to the supplier (goods are taken only then)."""

    async def probe() -> bool:
        async with live.sessions() as session:
            status = await session.scalar(
                select(PurchaseOrder.status).where(PurchaseOrder.process_id == process_id)
            )
        return status == "issued"

    await eventually(probe, timeout=60, what=f"the purchase order of {process_id} issued")


async def test_receive_with_a_gs1_label_then_inspect_and_release(live: Live):
    started = await live.rest.post(
        "/api/v1/processes/purchase",
        json={
            "supplier_code": "SUP-0001",
            "lines": [{"part_number": "TB-0150", "quantity": "500", "unit_price": "1.80"}],
            "due_on": (TODAY + timedelta(days=14)).isoformat(),
        },
        headers=await live.token("frank"),
    )
    assert started.status_code in (200, 201), started.text
    process_id = started.json()["id"]
    # 900 EUR: one approval by a buyer other than frank, who raised it
    approval = await open_task(live, f"{process_id}.", "the approval task")
    decided = await live.rest.post(
        f"/api/v1/tasks/{approval.id}/decision",
        json={"outcome": "approve", "password": DEMO_PASSWORD},
        headers=await live.token("judy"),
    )
    assert decided.status_code == 200, decided.text

    await issued(live, process_id)

    made = (TODAY - timedelta(days=20)).strftime("%y%m%d")
    expires = (TODAY + timedelta(days=700)).strftime("%y%m%d")
    label = f"(01){SUPPLIER_GTIN}(10)SUPLOT-1(11){made}(17){expires}"
    async with chromium() as browser, tab(browser, live, "laptop") as t:
        page = t.page
        await page.goto(f"/purchases/{process_id}")
        await log_in(page, "grace")
        await expect(page.locator(".pagehead .number")).to_have_text(
            re.compile(r"^PO-\d{4}-\d{4}$")
        )
        await expect(page.get_by_text("PO issued")).to_be_visible()
        receipt = page.locator("section#goods-received")
        await receipt.get_by_label("Part").select_option("TB-0150")
        await receipt.get_by_label("Quantity received").fill("500")
        await receipt.get_by_label("Supplier's label (GS1): scan or paste the label").fill(label)
        await t.shot("receive-gs1")
        await receipt.get_by_role("button", name="Record receipt").click()

        answer = page.get_by_role("status").filter(has_text="QUARANTINE")
        await expect(answer).to_be_visible()
        lot_link = answer.get_by_role("link")
        lot_number = (await lot_link.inner_text()).strip()
        receipts = page.locator("section[aria-labelledby=receipts-h]")
        await expect(receipts).to_contain_text(lot_number)
        await expect(receipts).to_contain_text("SUPLOT-1")
        await expect(receipts.locator(".lot-status")).to_have_text("Lot status: QUARANTINE")
        await t.shot("received")

        async with live.sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        assert lot is not None and lot.status == "QUARANTINE"
        assert lot.supplier_lot == "SUPLOT-1"
        assert lot.expires_on is not None and lot.expires_on.strftime("%y%m%d") == expires

        # the inspection task opens a moment after the receipt: grace's page shows it by itself
        await page.evaluate("window.lotlineNotReloaded = true")
        tasks = page.locator("section#progress-tasks")
        inspection = await open_task(live, f"{process_id}.inspect", "the incoming inspection")
        await expect(tasks.get_by_role("link", name=inspection.title)).to_be_visible(timeout=30_000)
        await expect(page.locator("#progress-badges")).to_contain_text("step: inspection")

        # heidi inspects at her own desk, from the task on the purchase page
        async with tab(browser, live, "tablet") as desk:
            await desk.page.goto(f"/purchases/{process_id}")
            await log_in(desk.page, "heidi")
            await desk.page.get_by_role("link", name=inspection.title).click()
            await expect(desk.page).to_have_url(f"{live.base_url}/tasks/{inspection.id}")
            await desk.page.get_by_role("radio", name=re.compile("^pass", re.I)).check()
            for field in await desk.page.locator("[name^=field_]").all():
                name = await field.get_attribute("name")
                if await field.evaluate("el => el.required") and name:
                    value = "0" if "defect" in name else "32" if "sample" in name else "OK"
                    await field.fill(value)
            await desk.shot("inspection")
            await desk.page.get_by_role("button", name="Submit decision").click()
            await expect(desk.page.get_by_role("status")).to_have_text(
                "Your decision was recorded."
            )

        # the QA release opened only after heidi's decision: grace's page, never reloaded, has it
        release = await open_task(live, f"{process_id}.release", "the QA release")
        await expect(tasks.get_by_role("link", name=release.title)).to_be_visible(timeout=30_000)
        await expect(tasks.get_by_role("link", name=inspection.title)).to_have_count(0)
        await expect(page.locator("#progress-timeline")).to_contain_text("heidi")
        assert await page.evaluate("window.lotlineNotReloaded === true"), "the page reloaded"
        await t.shot("release-task-appeared")

        # bob signs the QA release
        release = await open_task(live, f"{process_id}.release", "the QA release")
        await page.get_by_role("button", name="Log out").click()
        await page.goto(f"/tasks/{release.id}")
        await log_in(page, "bob")
        await expect(page.get_by_role("heading", name=release.title)).to_be_visible()
        await page.get_by_role("radio", name=re.compile("^(approve|release)", re.I)).check()
        await page.get_by_label("Re-enter your password to sign").fill(DEMO_PASSWORD)
        await page.get_by_role("button", name="Submit decision").click()
        await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
        await expect(page.get_by_label("electronic signature")).to_contain_text(
            "Signed by Bob Okafor (bob)"
        )

        await page.goto(f"/lots/{lot_number}")
        status = page.locator(".badges .lot-status")
        for _ in range(50):  # the release is applied a moment after the decision
            if "RELEASED" in await status.inner_text():
                break
            await page.wait_for_timeout(200)
            await page.reload()
        await expect(status).to_have_text("Lot status: RELEASED")
        history = page.locator("section[aria-labelledby=history-h] tbody tr")
        await expect(history).to_have_count(2)
        await expect(history.nth(0)).to_contain_text("QUARANTINE")
        await expect(history.nth(1)).to_contain_text("RELEASED")
        await expect(history.nth(1)).to_contain_text("bob")
        await expect(page.locator("section[aria-labelledby=origin-h]")).to_contain_text(label)
        inspections = page.locator("section[aria-labelledby=inspections-h] tbody tr")
        await expect(inspections).to_contain_text("heidi")
        await fits(page, "laptop", "the lot page")
        await t.shot("lot-released")
