"""The trace explorer and a recall's page in a real browser (the system's Chromium through
Playwright) against the app served over real HTTP, at laptop and tablet width, fitting the
screen: heidi pastes a GS1 string and sees the forward and backward trees and the consignees the
lot reached, and opens a branch with the keyboard; carol reads a recall's consignee board, the
silent filter, the clock and the effectiveness gauge."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.api.test_recall_api import RECALL_ID, write_recall_story
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
