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
from tests.ui.test_change_pages import FORM, TRIAGE
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

    async def token(self, username: str) -> dict[str, str]:
        token = await self.rest.post(
            "/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def start_approval(self, initiator: str = "alice", **changes: object) -> Task:
        started = await self.rest.post(
            "/api/v1/processes/approval",
            json=APPROVAL | changes,
            headers=await self.token(initiator),
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
                    "changes-list": "/changes",
                    "change-form": "/changes/new",
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


# ---------------------------------------------------------------- change control


async def change_task(live: Live, change_id: str, step: str) -> Task:
    async def probe() -> Task | None:
        async with live.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.workflow_id == f"{change_id}.{step}", Task.status == "open")
            )

    return await eventually(probe, what=f"task {step} of {change_id}")


async def change_at_ccb(live: Live) -> tuple[str, str, Task]:
    """A change driven over REST to its CCB step: raised by alice, triaged by bob (QA and RA to
    assess), assessed by carol (QA) and erin (RA). Answers its id, number and the CCB task."""
    body = {
        "change_type": FORM["change_type"],
        "title": FORM["title"],
        "reason": FORM["reason"],
        "risk": FORM["risk"],
        "affected_items": ["IS-2000"],
        "actions": [
            {"kind": "item_revision", "target": "LC-0110", "new_revision": "D"},
            {"kind": "document_version", "target": "LBL-IS-2000", "new_revision": "04"},
            {
                "kind": "asl_status",
                "target": "SUP-0002",
                "part_number": "LC-0110",
                "new_status": "conditional",
                "note": "first articles of rev D pending",
            },
        ],
        "requested_effective_on": FORM["requested_effective_on"],
    }
    started = await live.rest.post(
        "/api/v1/processes/change-control", json=body, headers=await live.token("alice")
    )
    assert started.status_code == 201, started.text
    change_id = started.json()["id"]
    for username, step, outcome, fields in (
        ("bob", "triage-1", "accept", TRIAGE),
        ("carol", "assess-qa-r1", "acceptable", {"assessment": "Inspect the collar wall."}),
        ("erin", "assess-ra-r1", "acceptable", {"assessment": "Letter to file; no new 510(k)."}),
    ):
        task = await change_task(live, change_id, step)
        decided = await live.rest.post(
            f"/api/v1/tasks/{task.id}/decision",
            json={"outcome": outcome, "fields": fields},
            headers=await live.token(username),
        )
        assert decided.status_code == 200, (step, decided.text)
    ccb = await change_task(live, change_id, "ccb-r1")
    detail = await live.rest.get(f"/api/v1/changes/{change_id}", headers=await live.token("alice"))
    return change_id, detail.json()["number"], ccb


def assert_fits(viewport: str, path: str, wide: int) -> None:
    assert wide <= 1, f"{path} on the {viewport} is {wide}px wider than the screen"


WIDER = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_erin_signs_the_ccb_approval_in_the_browser(live: Live, viewport: str):
    change_id, number, ccb = await change_at_ccb(live)
    async with chromium() as browser, tab(browser, live, viewport) as t:
        page = t.page
        await page.goto("/")
        await log_in(page, "erin")
        await expect(page).to_have_url(f"{live.base_url}/")
        link = page.get_by_role(
            "link", name=f"CCB approval of {number}: {FORM['title']}", exact=True
        )
        await expect(link).to_be_visible()
        await link.click()
        await expect(page).to_have_url(f"{live.base_url}/tasks/{ccb.id}")
        await expect(page.get_by_role("heading", name=f"CCB approval of {number}")).to_be_visible()
        await expect(page.get_by_role("link", name=number).first).to_have_attribute(
            "href", f"/changes/{change_id}"
        )
        await page.get_by_role("radio", name=re.compile("^Approve")).check()
        await page.get_by_label("Re-enter your password to sign").fill(DEMO_PASSWORD)
        await t.shot("ccb-signing")
        await page.get_by_role("button", name="Submit decision").click()

        await expect(page).to_have_url(f"{live.base_url}/tasks/{ccb.id}?done=decided")
        await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
        signature = page.get_by_label("electronic signature")
        await expect(signature).to_contain_text("Signed by Erin Li (erin)")
        await expect(signature).to_contain_text("meaning: approved")
        # the CCB decides "all": bob (QA) still has to approve, so the task stays open for him
        await expect(page.get_by_text("Approve by erin")).to_be_visible()

        await page.get_by_role("link", name=number).first.click()
        await expect(page).to_have_url(f"{live.base_url}/changes/{change_id}")
        await expect(page.get_by_role("heading", name=FORM["title"])).to_be_visible()
        signatures = page.locator("section[aria-labelledby=signatures-h]")
        await expect(signatures).to_contain_text("Signed by Erin Li (erin)")
        await expect(signatures.locator("strong", has_text="approved")).to_have_count(1)
        assessments = page.locator("section[aria-labelledby=assessments-h] tbody tr")
        await expect(assessments).to_have_count(2)
        await expect(page.locator("section[aria-labelledby=tasks-h]")).to_contain_text(
            f"CCB approval of {number}"
        )
        changed = page.locator("table.compare tr.changed", has_text="Revision")
        await expect(changed.locator("td.old")).to_have_text("C")
        await expect(changed.locator("td.new")).to_have_text("D")
        assert_fits(viewport, "the change page", await page.evaluate(WIDER))
        await t.shot("change")

        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Changes").click()
        )
        await expect(page).to_have_url(f"{live.base_url}/changes")
        await expect(page.get_by_role("link", name=number)).to_be_visible()
        assert_fits(viewport, "/changes", await page.evaluate(WIDER))
        await t.shot("changes")


async def test_alice_raises_a_change_in_the_browser(live: Live):
    for viewport in VIEWPORTS:
        async with chromium() as browser, tab(browser, live, viewport) as t:
            page = t.page
            await page.goto("/changes/new")
            await log_in(page, "alice")
            await expect(page).to_have_url(f"{live.base_url}/changes/new")
            await expect(page.get_by_role("heading", name="New change request")).to_be_visible()
            assert_fits(viewport, "/changes/new", await page.evaluate(WIDER))
            await t.shot("change-new")
            if viewport != "laptop":
                continue
            await page.get_by_label("Type").select_option("design")
            await page.get_by_label("Risk").select_option("medium")
            await page.get_by_label("Title").fill(FORM["title"])
            await page.get_by_label("Reason").fill(FORM["reason"])
            await page.get_by_label("Requested effective date").fill(FORM["requested_effective_on"])
            await page.get_by_label("Items (part numbers)").fill("IS-2000")
            first = page.locator("fieldset", has_text="Action 1")
            # the fields follow the kind: a part revision needs no status nor part number
            await first.get_by_label("What changes").select_option("item_revision")
            await expect(first.get_by_label("New status")).to_be_hidden()
            await expect(first.get_by_label("Part number")).to_be_hidden()
            await first.get_by_label("Target").fill("LC-0110")
            await first.get_by_label("New revision or version").fill("D")
            second = page.locator("fieldset", has_text="Action 2")
            await second.get_by_label("What changes").select_option("asl_status")
            await expect(second.get_by_label("New revision or version")).to_be_hidden()
            await second.get_by_label("Target").fill("SUP-0002")
            await second.get_by_label("Part number").fill("LC-0110")
            await second.get_by_label("New status").select_option("conditional")
            await t.shot("change-new-filled")
            await page.get_by_role("button", name="Raise change request").click()

            # registered a moment after the start: the page waits and reloads by itself
            await expect(page).to_have_url(re.compile(r"/changes/cr-\d{4}-[0-9a-f]{8}$"))
            await expect(page.get_by_role("heading", name=FORM["title"])).to_be_visible()
            await expect(page.locator(".number")).to_have_text(re.compile(r"^CR-\d{4}-\d{4}$"))
            await expect(page.locator("section[aria-labelledby=tasks-h]")).to_contain_text(
                "Triage", timeout=20_000
            )


async def test_api_docs_render_offline(live: Live):
    """The API docs address `make run` prints works with no internet: assets are installed."""
    async with chromium() as browser, tab(browser, live, "laptop") as t:
        await t.page.goto("/docs")
        await expect(t.page.locator(".swagger-ui .info .title")).to_contain_text("OAS 3.1")
        await expect(t.page.get_by_text("/api/v1/tasks/{task_id}/decision").first).to_be_visible()
        await t.shot("api-docs")
