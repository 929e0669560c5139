"""The inbox in a real browser (Chromium through Playwright) against the app served over real HTTP:
the whole stack, as a person at a laptop or a tablet uses it.

Chromium comes from the system (`apt-get install chromium`), never from `playwright install`. When
it is missing these tests fail, they do not skip: a browser test that silently does not run
proves nothing. Screenshots land in /tmp/lotline-shots/ for a person to look at.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from erp.models import Task
from erp.seed import DEMO_PASSWORD, seed_demo
from settings import Settings
from tests.helpers import eventually
from tests.ui.conftest import APPROVAL
from worker import build_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path("/tmp/lotline-shots")
VIEWPORTS: dict[str, ViewportSize] = {
    "laptop": {"width": 1366, "height": 800},
    "tablet": {"width": 820, "height": 1180},
}


@dataclass
class Live:
    """The app on a real port, with a REST client for what happens outside the browser."""

    base_url: str
    rest: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]

    async def start_approval(self, initiator: str = "alice", **changes: object) -> Task:
        token = await self.rest.post(
            "/api/v1/auth/token", json={"username": initiator, "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        started = await self.rest.post(
            "/api/v1/processes/approval",
            json=APPROVAL | changes,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert started.status_code == 201, started.text
        process_id = started.json()["id"]

        async def probe() -> Task | None:
            async with self.sessions() as session:
                return await session.scalar(
                    select(Task).where(Task.process_id == process_id, Task.status == "open")
                )

        return await eventually(probe, what=f"the open task of {process_id}")


@pytest.fixture
async def live(database_url, sessions, dev_env, task_queue) -> AsyncIterator[Live]:
    await seed_demo(sessions)
    settings = Settings(database_url=database_url, task_queue=task_queue)
    app = create_app(settings, temporal_client=dev_env.client)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket over
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    base_url = f"http://127.0.0.1:{port}"
    async with build_worker(dev_env.client, task_queue, sessions):
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            for _ in range(500):
                if server.started or serving.done():
                    break
                await asyncio.sleep(0.02)
            if serving.done():
                serving.result()  # raises what stopped it
            assert server.started, f"uvicorn did not start on {base_url}"
            async with httpx.AsyncClient(base_url=base_url, trust_env=False) as rest:
                assert (await rest.get("/healthz")).status_code == 200
                yield Live(base_url=base_url, rest=rest, sessions=sessions)
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, timeout=15)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system's Chromium. Missing or broken, the test fails and says how to fix it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium); do not use `playwright install`",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
            )
        except PlaywrightError as err:
            pytest.fail(f"{CHROMIUM} is there but did not start: {err}", pytrace=False)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """One browser tab that records what went wrong in the page (script errors, CSP refusals)."""

    page: Page
    viewport: str
    problems: list[str] = field(default_factory=list)

    async def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SHOTS / f"{self.viewport}-{name}.png", full_page=True)


@asynccontextmanager
async def tab(browser: Browser, live: Live, viewport: str) -> AsyncIterator[Tab]:
    context = await browser.new_context(
        base_url=live.base_url, viewport=VIEWPORTS[viewport], locale="en-US"
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    opened = Tab(page, viewport)
    page.on(
        "console",
        lambda m: (
            opened.problems.append(f"console {m.type}: {m.text} ({m.location['url']})")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: opened.problems.append(f"script error: {e}"))
    try:
        yield opened
    finally:
        await context.close()
    assert opened.problems == [], opened.problems


async def log_in(page: Page, username: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Log in").click()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_bob_approves_in_the_browser(live: Live, viewport: str):
    task = await live.start_approval()
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        await page.goto("/")
        await expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
        await expect(page.get_by_role("heading", name="Log in to Lotline")).to_be_visible()
        await t.shot("login")

        await log_in(page, "bob")
        await expect(page).to_have_url(f"{live.base_url}/")
        await expect(page.get_by_role("heading", name=re.compile("^Inbox"))).to_be_visible()
        link = page.get_by_role("link", name="Approve SOP-QA-014 rev D", exact=True)
        await expect(link).to_be_visible()
        await expect(page.get_by_text("Bob Okafor")).to_be_visible()
        await t.shot("inbox")

        await link.click()
        await expect(page).to_have_url(f"{live.base_url}/tasks/{task.id}")
        await expect(page.get_by_role("heading", name="Approve SOP-QA-014 rev D")).to_be_visible()
        await expect(page.get_by_role("heading", name="Electronic signature")).to_be_visible()
        await t.shot("task-before")

        await page.get_by_role("button", name="Claim").click()
        await expect(page.get_by_role("status")).to_have_text("You claimed this task.")
        await expect(page.get_by_role("button", name="Release")).to_be_visible()

        reason = page.get_by_role("textbox", name="Reason for rejecting")
        await page.get_by_role("radio", name=re.compile("^Reject")).check()
        assert await reason.evaluate("el => el.required")  # rejecting needs a reason
        await page.get_by_role("radio", name=re.compile("^Approve")).check()
        assert not await reason.evaluate("el => el.required")
        password = page.get_by_label("Re-enter your password to sign")
        await expect(password).to_be_visible()
        await password.fill(DEMO_PASSWORD)
        await page.get_by_label("Comment (optional)").fill(
            "Sampling plan matches ANSI Z1.4 level II."
        )
        await t.shot("task-signing")
        await page.get_by_role("button", name="Submit decision").click()

        await expect(page).to_have_url(f"{live.base_url}/tasks/{task.id}?done=decided")
        await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
        signature = page.get_by_label("electronic signature")
        await expect(signature).to_contain_text("Signed by Bob Okafor (bob)")
        await expect(signature).to_contain_text("meaning: approved")
        history = page.locator("section[aria-labelledby=history] tbody tr")
        decided = history.filter(has=page.get_by_role("cell", name="decided", exact=True))
        await expect(decided).to_have_count(1)
        await expect(decided).to_contain_text("bob")
        await expect(page.get_by_role("radio")).to_have_count(0)  # nothing left to decide
        await t.shot("task-after")

        await page.get_by_role("navigation").get_by_role("link", name="Inbox").click()
        await expect(page.get_by_text("Nothing here.")).to_be_visible()

        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(f"{live.base_url}/login")
        await page.goto(f"/tasks/{task.id}")
        await expect(page).to_have_url(re.compile(rf"/login\?next=%2Ftasks%2F{task.id}$"))


async def test_login_and_inbox_with_the_keyboard_only(live: Live):
    await live.start_approval()
    async with chromium() as browser, tab(browser, live, "laptop") as t:
        page = t.page
        await page.goto("/login")
        focused = "document.activeElement && document.activeElement.id"
        assert await page.evaluate(focused) == "username"  # autofocus: type straight away
        await page.keyboard.type("bob")
        await page.keyboard.press("Tab")
        assert await page.evaluate(focused) == "password"
        outline = await page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
        )
        assert outline[0] != "none" and outline[1] >= 2, f"focus is not visible: {outline}"
        await page.keyboard.type(DEMO_PASSWORD)
        await t.shot("login-keyboard")
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/")

        # the first Tab on a page reaches the skip link, visible when focused
        await page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        await expect(skip).to_be_focused()
        box = await skip.bounding_box()
        assert box is not None and box["x"] >= 0 and box["y"] >= 0, box
        await page.keyboard.press("Enter")
        assert await page.evaluate(focused) == "main"

        # from the content, Tab reaches the task and Enter opens it
        title = page.get_by_role("link", name="Approve SOP-QA-014 rev D", exact=True)
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await title.evaluate("el => el === document.activeElement"):
                break
        await expect(title).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Approve SOP-QA-014 rev D")).to_be_visible()


async def test_every_page_renders_cleanly(live: Live):
    """Every menu page in both viewports: no script errors, no CSP refusals, nothing wider than
    the screen (a table that forces sideways scrolling of the whole page is unusable on a tablet)."""
    await live.start_approval()
    async with chromium() as browser:
        for viewport in VIEWPORTS:
            async with tab(browser, live, viewport) as t:
                page = t.page
                await page.goto("/login")
                await log_in(page, "carol")
                await expect(page).to_have_url(f"{live.base_url}/")
                pages = {
                    "processes": "/processes",
                    "new-request": "/processes/new",
                    "delegations": "/delegations",
                    "audit": "/audit?verify=1",
                }
                for name, path in pages.items():
                    await page.goto(path)
                    await expect(page.locator("h1")).to_be_visible()
                    wide = await page.evaluate(
                        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                    )
                    assert wide <= 1, f"{path} on the {viewport} is {wide}px wider than the screen"
                    await t.shot(name)
                    if name == "new-request":  # k only shows for "k different approvers"
                        await expect(page.get_by_label("k (for")).to_be_hidden()
                        await page.get_by_label("Who must decide").select_option("k_of_n")
                        await expect(page.get_by_label("k (for")).to_be_visible()
                await page.get_by_role("navigation").get_by_role("link", name="Processes").click()
                await page.locator("tbody a").first.click()
                await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
                await t.shot("process")
