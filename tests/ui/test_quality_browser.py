"""The nonconformance and CAPA pages in a real browser (the system's Chromium through Playwright)
against the app served over real HTTP: every quality page at laptop and tablet width without
script errors or CSP refusals, fitting the screen; and a material review board disposition with
signatures, as it happens: heidi reports a cracked lot on the form, the lot is held at once, carol
investigates, bob returns the lot to its supplier on the MRB task page and signs with his
password, and the NC page then shows the disposition applied, the lot REJECTED and the SCAR, which
counts on the supplier's scorecard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from erp.master_data import Lot
from erp.models import Task
from erp.seed import DEMO_PASSWORD
from tests.api.test_quality_api import CAPA_A, NC_A, NC_C, write_quality_story
from tests.helpers import eventually
from tests.ui.test_browser import VIEWPORTS, Live, chromium, live, log_in, tab
from tests.ui.test_supply_browser import fits

__all__ = ["live"]  # the fixture, shared with the inbox's browser tests


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_every_quality_page_renders_cleanly(live: Live, viewport: str):
    await write_quality_story(live.sessions)
    pages = {
        "ncs": ("/nonconformances", "Nonconformances"),
        "ncs-old": ("/nonconformances?age=over-90", "Nonconformances"),
        "nc": (f"/nonconformances/{NC_A}", "Flash on the filter seat of drip chambers"),
        "nc-recall": (f"/nonconformances/{NC_C}", "Spike leaks at the drip chamber joint"),
        "nc-new": ("/nonconformances/new", "Report a nonconformance"),
        "capas": ("/capas", "CAPAs"),
        "capa": (f"/capas/{CAPA_A}", "Flash on drip chamber filter seats"),
        "capa-new": ("/capas/new", "Start a CAPA"),
    }
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        await page.goto("/nonconformances")
        await log_in(page, "carol")
        await expect(page).to_have_url(f"{live.base_url}/nonconformances")
        for name, (path, heading) in pages.items():
            await page.goto(path)
            await expect(page.locator("h1")).to_contain_text(heading)
            await fits(page, viewport, path)
            await t.shot(f"quality-{name}")
        # the menu leads to the quality pages; the list to the NC, the NC to its CAPA
        await page.goto("/")
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Quality").click()
        )
        await expect(page).to_have_url(f"{live.base_url}/nonconformances")
        await page.get_by_role("link", name="NC-2026-9001").click()
        await expect(page).to_have_url(f"{live.base_url}/nonconformances/{NC_A}")
        await page.locator("#progress-links").get_by_role("link", name="CAPA-2026-9001").click()
        await expect(page).to_have_url(f"{live.base_url}/capas/{CAPA_A}")
        await expect(page.get_by_role("heading", name="Action plan: 2 rounds")).to_be_visible()


# ---------------------------------------------------------------- an MRB disposition, signed


async def open_task(live: Live, process_id: str, step: str) -> Task:
    async def probe() -> Task | None:
        async with live.sessions() as session:
            return await session.scalar(
                select(Task).where(
                    Task.process_id == process_id,
                    Task.step.like(f"{step}%"),
                    Task.status == "open",
                )
            )

    return await eventually(probe, timeout=60, what=f"the {step} task of {process_id}")


async def test_mrb_returns_a_held_lot_to_its_supplier_with_a_signature(live: Live):
    async with live.sessions() as session:
        lot = await session.scalar(
            select(Lot)
            .where(Lot.part_number == "LC-0110", Lot.status == "RELEASED")
            .order_by(Lot.lot_number)
        )
    assert lot is not None
    async with chromium() as browser, tab(browser, live, "tablet") as t:
        page = t.page
        # heidi finds cracked connectors at incoming inspection and reports them on the form
        await page.goto("/nonconformances/new")
        await log_in(page, "heidi")
        await expect(page).to_have_url(f"{live.base_url}/nonconformances/new")
        await page.get_by_label("Where it was found").select_option("incoming")
        await page.get_by_role("radio", name="Major").check()
        await page.get_by_label("Title").fill("Luer connectors cracked at the collar")
        await page.get_by_label("What was found").fill("Hairline cracks on 4 of 50 connectors.")
        await page.get_by_label("Lots: one per line, type the lot number or scan its label").fill(
            lot.lot_number
        )
        await page.get_by_label("Evidence (optional)").fill("Photos P-7, P-8")
        await t.shot("nc-report")
        await page.get_by_role("button", name="Report and hold the lots").click()

        await expect(page).to_have_url(re.compile(r"/nonconformances/nc-[0-9a-f]{16}$"))
        process_id = page.url.rsplit("/", 1)[1]
        await expect(page.locator(".pagehead .number")).to_have_text(
            re.compile(r"^NC-\d{4}-\d{4}$"), timeout=30_000
        )
        number = (await page.locator(".pagehead .number").inner_text()).strip()
        lots = page.locator("#progress-lots")
        await expect(lots.locator(".lot-status")).to_have_text(
            "Lot status: ON_HOLD", timeout=30_000
        )
        await expect(lots).to_contain_text("held (was RELEASED)")
        await expect(lots).to_contain_text("awaiting the MRB")
        facts = page.locator("section[aria-labelledby=facts-h]")
        await expect(facts).to_contain_text("SUP-0002")  # from the lot
        await fits(page, "tablet", "the NC page")
        await t.shot("nc-contained")

        # carol investigates (at her desk, through the API)
        investigation = await open_task(live, process_id, "investigation")
        decided = await live.rest.post(
            f"/api/v1/tasks/{investigation.id}/decision",
            json={
                "outcome": "done",
                "fields": {
                    "findings": "Cracks start at a sharp edge of the collar; supplier's tool.",
                    "root_cause_summary": "Worn moulding tool at the supplier.",
                },
            },
            headers=await live.token("carol"),
        )
        assert decided.status_code == 200, decided.text

        # bob, on the MRB, opens the disposition from the NC page (it appears by itself)
        await page.get_by_role("button", name="Log out").click()
        await page.goto(f"/nonconformances/{process_id}")
        await log_in(page, "bob")
        mrb = await open_task(live, process_id, "disposition")
        link = page.locator("#progress-tasks").get_by_role("link", name=mrb.title)
        await expect(link).to_be_visible(timeout=30_000)
        await link.click()
        await expect(page).to_have_url(f"{live.base_url}/tasks/{mrb.id}")
        await expect(page.get_by_role("heading", name=mrb.title)).to_be_visible()
        choice = page.get_by_label(re.compile(rf"^Lot {re.escape(lot.lot_number)}"))
        # what the context says of lot_1 is said at its choice: where the lot came from
        await expect(choice).to_have_accessible_description(
            re.compile(rf"^{re.escape(lot.lot_number)}: LC-0110, .*supplier SUP-0002$")
        )
        await expect(page.locator("section[aria-labelledby=what]")).not_to_contain_text("lot_1")
        await expect(choice.locator("option")).to_have_text(
            ["—", "Use as is", "Rework", "Return to supplier", "Scrap"]
        )
        await choice.select_option("return_to_supplier")
        await page.get_by_label(re.compile("^Justification")).fill(
            "Cracks come from the supplier's worn tool; the lot goes back for credit."
        )
        await page.get_by_role("radio", name=re.compile("^Sign the disposition")).check()
        await page.get_by_label("Re-enter your password to sign").fill(DEMO_PASSWORD)
        await t.shot("mrb-disposition")
        await page.get_by_role("button", name="Submit decision").click()
        await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
        signature = page.get_by_label("electronic signature")
        await expect(signature).to_contain_text("Signed by Bob Okafor (bob)")
        await expect(signature).to_contain_text("meaning: approved")
        await expect(page.locator("ol.decisions")).to_contain_text("Return to supplier")
        await t.shot("mrb-signed")

        # the NC page: the disposition applied, the lot rejected, the SCAR opened
        await page.get_by_role("link", name=number).first.click()
        await expect(page).to_have_url(f"{live.base_url}/nonconformances/{process_id}")
        await expect(lots.locator(".lot-status")).to_have_text(
            "Lot status: REJECTED", timeout=30_000
        )
        await expect(lots).to_contain_text("Return to supplier")
        await expect(lots).to_contain_text("applied", timeout=30_000)
        await expect(lots).to_contain_text("decided by bob")
        scars = page.locator("#progress-scars")
        await expect(scars).to_contain_text(re.compile(r"SCAR-\d{4}-\d{4}"), timeout=30_000)
        await expect(scars).to_contain_text("SUP-0002")
        await expect(page.locator("#progress-timeline")).to_contain_text("bob")
        await fits(page, "tablet", "the NC page after the disposition")
        await t.shot("nc-returned")

        # the SCAR counts on the supplier's scorecard; the lot says why it was rejected
        await scars.get_by_role("link", name=re.compile("^SUP-0002")).click()
        await expect(page.locator(".scorecard")).to_contain_text("1 SCARs")
        await page.goto(f"/lots/{lot.lot_number}")
        await expect(page.locator(".badges .lot-status")).to_have_text("Lot status: REJECTED")
        await t.shot("lot-rejected")
