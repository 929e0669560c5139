"""The trace explorer and a recall's page in a real browser (the system's Chromium through
Playwright) against the app served over real HTTP, at laptop and tablet width, fitting the
screen: heidi pastes a GS1 string and sees the forward and backward trees and the consignees the
lot reached, and opens a branch with the keyboard; carol reads a recall's consignee board, the
silent filter, the clock and the effectiveness gauge."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from erp.recall import Recall
from erp.seed import DEMO_API_KEY
from schemas.human_task import SignatureMeaning
from tests.activities.test_trace import Genealogy, generate_genealogy
from tests.api.test_recall_api import RECALL_ID, write_recall_story
from tests.helpers import decide_task, eventually
from tests.ui.test_browser import VIEWPORTS, Live, chromium, live, log_in, tab
from tests.ui.test_supply_browser import fits

__all__ = ["live"]  # the fixture, shared with the inbox's browser tests


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_trace_explorer_from_a_pasted_gs1_string(live: Live, viewport: str):
    story = await write_recall_story(live.sessions)
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        await page.goto("/trace")
        await log_in(page, "heidi")
        await expect(page).to_have_url(f"{live.base_url}/trace")
        field = page.get_by_label("Lot number or GS1 string")
        await expect(field).to_be_focused()
        await field.fill(story.gs1)
        await field.press("Enter")
        await expect(page.locator("#trace-root")).to_contain_text("Lot TR-F3")
        forward = page.locator("#trace-forward")
        await expect(forward).to_contain_text("SH-TR-CUS-0001 → CUS-0001")
        await expect(forward).to_contain_text("SH-TR-CUS-0004 → CUS-0004")
        backward = page.locator("#trace-backward")
        await expect(backward.get_by_role("link", name="TR-S4")).to_be_visible()
        await expect(backward.get_by_role("link", name="TR-P4")).to_be_visible()
        where = page.locator("#trace-consignees")
        await expect(where).to_contain_text("CUS-0001")
        await expect(where).to_contain_text("CUS-0004")
        await fits(page, viewport, "the trace of TR-F3")
        await t.shot("trace-gs1")

        # a component lot: its tree folds and unfolds from the keyboard
        await page.goto("/trace?q=TR-T2")
        first = page.locator("#trace-forward summary").first
        await first.focus()
        await page.keyboard.press("Enter")  # fold the root
        await expect(page.locator("#trace-forward details").first).not_to_have_attribute("open", "")
        await page.keyboard.press("Enter")
        await expect(page.locator("#trace-forward .consignee").first).to_be_visible()
        await fits(page, viewport, "the trace of TR-T2")

        await page.get_by_label("Lot number or GS1 string").fill("NOPE-1")
        await page.get_by_role("button", name="Trace").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Lot NOPE-1 is not known; check the lot number or scan its label."
        )


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_recall_page_board_clock_and_gauge(live: Live, viewport: str):
    await write_recall_story(live.sessions)
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        await page.goto("/recalls")
        await log_in(page, "carol")
        await expect(page).to_have_url(f"{live.base_url}/recalls")
        await fits(page, viewport, "the recall list")
        await page.get_by_role("link", name="RCL-2026-9001").click()
        await expect(page).to_have_url(f"{live.base_url}/recalls/{RECALL_ID}")
        board = page.locator("#consignee-board")
        await expect(board.locator("tbody tr")).to_have_count(3)
        await expect(page.locator("#consignee-CUS-0002")).to_contain_text("6 d")
        await expect(page.locator("#gauge-text")).to_contain_text("Responded: 1 of 3 (33 %)")
        await expect(page.locator("#working-days-left")).to_be_visible()
        await fits(page, viewport, "the recall page")
        await t.shot("recall-board")
        await page.get_by_role("link", name="Show only the silent ones").click()
        await expect(page.locator("#consignee-board tbody tr")).to_have_count(1)
        await expect(page.locator("#consignee-board")).to_contain_text("CUS-0002")
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Recalls").click()
        )
        await expect(page).to_have_url(f"{live.base_url}/recalls")


# ---------------------------------------------------------------- a real recall's board


async def _recall_row(live: Live, process_id: str) -> Recall | None:
    async with live.sessions() as session:
        recall = await session.scalar(select(Recall).where(Recall.process_id == process_id))
    return recall if recall is not None and recall.notified_at is not None else None


async def test_answers_through_the_api_change_the_consignee_board(live: Live, dev_env):
    """A drill of tubing lot TR-T2 on the real Recall and RecallNotice workflows: hazard,
    classification and signed strategy decided, every consignee notified; the board shows them
    all silent, then a consignee's answer sent over REST by the customer's system appears on the
    board (refreshed by the page itself) and moves the gauge."""
    async with live.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
    carol = await live.token("carol")
    started = await live.rest.post(
        "/api/v1/processes/recall",
        json={"suspect_lots": ["TR-T2"], "reason": "Mock recall of tubing TR-T2", "drill": True},
        headers=carol,
    )
    assert started.status_code == 201, started.text
    pid = started.json()["id"]
    client = dev_env.client
    await decide_task(
        client, f"{pid}.health-hazard", "erin", "evaluated", groups=["ra"], hazard="Leak"
    )
    await decide_task(
        client,
        f"{pid}.classification-1",
        "erin",
        "classified",
        groups=["ra"],
        classification="II",
        depth="retail",
        public_warning="no",
        effectiveness_level="A",
    )
    await decide_task(
        client,
        f"{pid}.strategy-1",
        "dave",
        "approve",
        groups=["quality-director"],
        sign=SignatureMeaning.APPROVED,
    )
    recall = await eventually(lambda: _recall_row(live, pid), timeout=60, what="notified")
    assert recall.number.startswith("DRL-")
    mes = {"X-API-Key": DEMO_API_KEY}
    async with chromium() as browser, tab(browser, live, "laptop") as t:
        page = t.page
        await page.goto(f"/recalls/{pid}")
        await log_in(page, "carol")
        await expect(page).to_have_url(f"{live.base_url}/recalls/{pid}")
        board = page.locator("#consignee-board")
        await expect(board.locator("tbody tr")).to_have_count(4)
        await expect(page.locator("#silent-count")).to_have_text("4 silent")
        await expect(page.locator("#gauge-text")).to_contain_text("Responded: 0 of 4 (0 %)")
        await t.shot("recall-board-silent")

        answered = await live.rest.post(
            f"/api/v1/processes/{pid}/events/consignee-response",
            json={"consignee_code": "CUS-0002", "quantity_on_hand": "3", "note": "3 on the shelf"},
            headers=mes | {"Idempotency-Key": "cus-0002-answer-1"},
        )
        assert answered.status_code == 200, answered.text
        # the page refreshes its board by itself
        await expect(page.locator("#silent-count")).to_have_text("3 silent", timeout=30_000)
        row = page.locator("#consignee-CUS-0002")
        await expect(row).not_to_have_class("silent")
        await expect(row.locator("td").nth(5)).to_have_text("3")  # on hand
        await expect(page.locator("#gauge-text")).to_contain_text("Responded: 1 of 4 (25 %)")
        await t.shot("recall-board-answered")
