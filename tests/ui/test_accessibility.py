"""Accessibility and use on the shop floor, checked in a real browser (the system's Chromium
through Playwright) against the app served over real HTTP with demo data.

- Keyboard only: bob logs in, reaches two tasks from the inbox and decides them (a signed approval,
  a rejection that needs a reason) with Tab, Shift+Tab, arrows, Space, Enter and typing — never a
  click — and the decisions land in the ERP. On the way the inbox and the task page are walked
  with Tab end to end: every stop visible, with a visible focus ring, in document order, and the
  walk leaves the page (no keyboard trap); Shift+Tab walks back the same way.
- Every page reachable from the menu (crawled from the nav, one page per kind of address): `lang`,
  a title and one h1; every field, button and link has an accessible name, every image an alt;
  label[for] points at a field and ids are unique; text meets WCAG AA contrast against its
  effective background (4.5:1, 3:1 for large text).
- On a tablet (1024×768 in English, 768×1024 in Simplified Chinese, touch): no page scrolls
  sideways, tap targets (buttons, fields, links in the menu and in forms) are 44×44 CSS px or have
  that much room to themselves, and tables scroll inside their own box; the decision forms and
  the forms that start something pass the same Tab walk.

Findings are collected per page and reported together, so one run names everything to fix.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from playwright.async_api import Browser, Locator, Page, ViewportSize, expect
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import select, update

from erp.models import AppUser, Task, TaskDecision
from erp.seed import DEMO_PASSWORD
from tests.api.test_quality_api import write_quality_story
from tests.api.test_recall_api import write_recall_story
from tests.helpers import eventually
from tests.ui.test_browser import Live, Tab, change_task, chromium, live
from tests.ui.test_change_pages import FORM
from tests.ui.test_supply_pages import write_story

__all__ = ["live"]  # the fixture, shared with the inbox's browser tests

TABLETS: dict[str, ViewportSize] = {
    "tablet-portrait": {"width": 768, "height": 1024},
    "tablet-landscape": {"width": 1024, "height": 768},
}
NOT_FOUND = "/tasks/999999"
MIN_TARGET = 44  # CSS px, WCAG 2.5.5 (AAA) — gloved fingers on a shop-floor tablet
SKIPPED_PATHS = re.compile(r"^/(static|api|docs|redoc|openapi|logout|healthz|readyz|metrics)\b")
# files, not pages: downloads, reports (PDF by default) and the partials a page refreshes itself with
SKIPPED_FILES = re.compile(
    r"\.(pdf|csv|json|xml|zip|png|svg)$|/progress$|format=(pdf|csv)|^/reports/.|\.(pdf|csv)\?"
)

# ------------------------------------------------------------------ what runs in the page

STRUCTURE_AND_NAMES = """() => {
  const problems = [];
  const say = (el, what) => {
    const html = el.outerHTML.replace(/\\s+/g, ' ');
    problems.push(what + ': ' + (html.length > 160 ? html.slice(0, 160) + '…' : html));
  };
  const text = (el) => (el ? (el.textContent || '').replace(/\\s+/g, ' ').trim() : '');
  const byIds = (ids) => ids.split(/\\s+/).map((id) => document.getElementById(id))
    .filter(Boolean).map(text).join(' ').trim();
  const aria = (el) => {
    const by = el.getAttribute('aria-labelledby');
    if (by && byIds(by)) { return byIds(by); }
    return (el.getAttribute('aria-label') || '').trim();
  };
  if (!(document.documentElement.getAttribute('lang') || '').trim()) {
    problems.push('the page has no lang on <html>');
  }
  if (!document.title.trim()) { problems.push('the page has no <title>'); }
  const h1s = document.querySelectorAll('h1');
  if (h1s.length !== 1) { problems.push('the page has ' + h1s.length + ' h1 (one is wanted)'); }
  const seen = new Map();
  document.querySelectorAll('[id]').forEach((el) => {
    if (seen.has(el.id)) { say(el, 'duplicate id "' + el.id + '"'); }
    seen.set(el.id, el);
  });
  document.querySelectorAll('label[for]').forEach((label) => {
    const target = document.getElementById(label.htmlFor);
    if (!target || !target.matches('input, select, textarea, meter, output, progress')) {
      say(label, 'label[for] points at no field');
    }
  });
  document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach((el) => {
    let name = aria(el);
    if (!name && el.id) {
      name = Array.from(document.querySelectorAll('label[for="' + CSS.escape(el.id) + '"]'))
        .map(text).join(' ').trim();
    }
    if (!name && el.closest('label')) { name = text(el.closest('label')); }
    if (!name && el.matches('[type=submit], [type=button], [type=reset]')) { name = el.value; }
    if (!name) { say(el, 'field without a label'); }
  });
  document.querySelectorAll('button, [role=button], a[href]').forEach((el) => {
    const imgs = Array.from(el.querySelectorAll('img[alt]')).map((i) => i.alt).join(' ');
    if (!(aria(el) || text(el) || imgs.trim() || (el.getAttribute('title') || '').trim())) {
      say(el, (el.tagName === 'A' ? 'link' : 'button') + ' without a name');
    }
  });
  document.querySelectorAll('img:not([alt])').forEach((el) => say(el, 'image without alt'));
  document.querySelectorAll('svg[role=img]').forEach((el) => {
    if (!aria(el) && !el.querySelector('title')) { say(el, 'svg image without a name'); }
  });
  return problems;
}"""

# WCAG 2.x relative luminance and contrast; the background is the element's and its ancestors'
# background colours composited over the white canvas; an ancestor with a background image
# (a gradient) makes the result unknown, and the element is left out rather than guessed.
CONTRAST = """() => {
  const problems = [];
  const rgba = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || '');
    if (!m) { return null; }
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3]))
    .concat([1]);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const background = (el) => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage !== 'none') { return null; }
      const colour = rgba(style.backgroundColor);
      if (colour && colour[3] > 0) { layers.push(colour); }
      if (colour && colour[3] >= 1) { break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const opacity = (el) => {
    let product = 1;
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      product *= Number(getComputedStyle(node).opacity);
    }
    return product;
  };
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && r.right > 0 && r.bottom > 0 &&
      el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  };
  const check = (el, colour, sample) => {
    const bg = background(el);
    if (!bg || !colour) { return; }
    const fg = colour.slice();
    fg[3] *= opacity(el);
    const text = over(fg, bg);
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const got = ratio(text, bg);
    if (got < need) {
      const cls = el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\\s+/g, '.') : '';
      problems.push(el.tagName.toLowerCase() + cls + ' "' + sample.slice(0, 40) + '" ' +
        got.toFixed(2) + ':1 < ' + need + ' (' + style.color + ' on rgb(' +
        bg.slice(0, 3).map(Math.round).join(', ') + '))');
    }
  };
  const seen = new Set();
  document.querySelectorAll('body *').forEach((el) => {
    if (el.closest('svg, script, style, noscript, option, :disabled, [aria-hidden=true]')) { return; }
    const own = Array.from(el.childNodes).filter((n) => n.nodeType === 3)
      .map((n) => n.textContent).join(' ').replace(/\\s+/g, ' ').trim();
    const field = el.matches('input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea');
    if (!own && !field) { return; }
    if (!shown(el)) { return; }
    if (field) {
      const value = el.tagName === 'SELECT' ? (el.selectedOptions[0] || {}).text || '' : el.value;
      if (value) { check(el, rgba(getComputedStyle(el).color), value); }
      if (!value && el.placeholder) {
        check(el, rgba(getComputedStyle(el, '::placeholder').color), el.placeholder);
      }
      return;
    }
    const key = el.tagName + '|' + el.className + '|' + getComputedStyle(el).color;
    if (seen.has(key + own)) { return; }
    seen.add(key + own);
    check(el, rgba(getComputedStyle(el).color), own);
  });
  return Array.from(new Set(problems));
}"""

# On a touch screen: no sideways scrolling of the page; tap targets big enough or with room of
# their own (a 44×44 box centred on a smaller target touches no other target); tables scroll in
# their own box.
TABLET = """(minimum) => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    problems.push('the page is ' + (doc.scrollWidth - window.innerWidth) + 'px wider than the screen');
  }
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && el.checkVisibility({ visibilityProperty: true }) &&
      r.right > 0 && !el.closest('.sr');
  };
  const selector = 'button, input[type=submit], input[type=button], a.button, nav a, form a, ' +
    'select, textarea, summary, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), ' +
    'label:has(> input[type=checkbox]), label:has(> input[type=radio]), ' +
    'input[type=checkbox]:not(label > input), input[type=radio]:not(label > input)';
  const targets = Array.from(document.querySelectorAll(selector))
    .filter((el) => visible(el) && !el.matches('.skip'));
  const rects = targets.map((el) => el.getBoundingClientRect());
  const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  targets.forEach((el, i) => {
    const r = rects[i];
    if (r.width >= minimum - 0.5 && r.height >= minimum - 0.5) { return; }
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2, half = minimum / 2;
    const room = { left: cx - half, right: cx + half, top: cy - half, bottom: cy + half };
    const crowded = targets.find((other, j) => j !== i && !other.contains(el) &&
      !el.contains(other) && overlaps(room, rects[j]));
    if (crowded) {
      const name = (el.textContent || el.getAttribute('aria-label') || el.name || '').replace(/\\s+/g, ' ').trim();
      problems.push('tap target ' + el.tagName.toLowerCase() + ' "' + name.slice(0, 30) + '" is ' +
        Math.round(r.width) + '×' + Math.round(r.height) + ' and crowded by ' +
        other_name(crowded));
    }
  });
  function other_name(el) {
    return el.tagName.toLowerCase() + ' "' + (el.textContent || el.name || '').replace(/\\s+/g, ' ').trim().slice(0, 30) + '"';
  }
  document.querySelectorAll('table').forEach((table) => {
    if (!visible(table)) { return; }
    let box = table.parentElement;
    while (box && box !== document.body) {
      if (['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) { return; }
      box = box.parentElement;
    }
    const caption = table.querySelector('caption, th');
    problems.push('table "' + (caption ? caption.textContent.trim().slice(0, 30) : table.className) +
      '" does not scroll inside a box of its own');
  });
  return problems;
}"""

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) { return null; }
  const style = getComputedStyle(el);
  const ring = (s) => (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) ||
    (s.boxShadow && s.boxShadow !== 'none');
  const label = el.closest('label');  // a visually hidden radio shows its focus on its label
  const r = (label && Number(style.opacity) === 0 ? label : el).getBoundingClientRect();
  return {
    order: Array.prototype.indexOf.call(document.querySelectorAll('*'), el),
    parts: /^(date|time|datetime-local|month|week)$/.test(el.type || ''),
    what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' +
      (el.textContent || el.value || el.name || '').replace(/\\s+/g, ' ').trim().slice(0, 40) + '"',
    visible: r.width > 1 && r.height > 1,
    ring: ring(style) || (label ? ring(getComputedStyle(label)) : false),
  };
}"""


# ------------------------------------------------------------------ helpers


@asynccontextmanager
async def device(
    browser: Browser, live: Live, name: str, viewport: ViewportSize, *, touch: bool
) -> AsyncIterator[Tab]:
    """A browser tab of the given size (touch for tablets) that records script errors; the test
    reports them with its other findings."""
    context = await browser.new_context(
        base_url=live.base_url, viewport=viewport, has_touch=touch, locale="en-US"
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    opened = Tab(page, name)
    page.on(
        "console",
        lambda m: (
            opened.problems.append(
                f"console {m.type}: {m.text} ({m.location['url']} on {page.url})"
            )
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: opened.problems.append(f"script error: {e}"))
    try:
        yield opened
    finally:
        await context.close()


async def keyboard_login(page: Page, username: str) -> None:
    await page.goto("/login")
    assert await page.evaluate("document.activeElement.id") == "username"  # autofocus
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/$"))


async def tap_to_log_in(page: Page, username: str, live: Live) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Log in").tap()
    await expect(page).to_have_url(f"{live.base_url}/")


async def tab_to(page: Page, target: Locator, *, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (or Shift+Tab) until the target has the focus."""
    for _ in range(limit):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


async def walk_with_tab(page: Page, where: str) -> list[str]:
    """Tab from the top of the page to its end and back: every stop is visible, shows a focus
    ring and comes after the one before in the document; the focus leaves the page at the end
    (no trap), and Shift+Tab visits the same stops in reverse. Answers what went wrong."""
    problems: list[str] = []
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    stops: list[dict] = []
    repeats = 0
    for _ in range(250):
        await page.keyboard.press("Tab")
        stop = await page.evaluate(FOCUSED)
        if stop is None or (stops and stop["order"] == stops[0]["order"]):
            break  # past the last stop: the focus left the page (or wrapped to the first)
        if stops and stop["order"] == stops[-1]["order"]:
            if stop["parts"] and repeats < 5:  # Tab walks the day, month and year of a date
                repeats += 1
                continue
            problems.append(f"{where}: the focus is stuck on {stop['what']}")
            break
        repeats = 0
        if stops and stop["order"] < stops[-1]["order"]:
            problems.append(f"{where}: Tab jumps back from {stops[-1]['what']} to {stop['what']}")
        if not stop["visible"]:
            problems.append(f"{where}: Tab stops on {stop['what']}, which cannot be seen")
        if not stop["ring"]:
            problems.append(f"{where}: {stop['what']} shows no focus ring")
        stops.append(stop)
    else:
        problems.append(f"{where}: 250 presses of Tab never left the page (a keyboard trap?)")
    assert len(stops) >= 3, f"{where}: only {len(stops)} stops for Tab"
    if stop is None:  # walk back from outside the page
        back: list[int | None] = []
        for _ in range(len(stops) + 5 * sum(s["parts"] for s in stops)):
            await page.keyboard.press("Shift+Tab")
            found = await page.evaluate(FOCUSED)
            if not back or not found or back[-1] != found["order"]:
                back.append(found["order"] if found else None)
            if len(back) == len(stops) and not (found and found["parts"]):
                break
        if back[: len(stops)] != [s["order"] for s in reversed(stops)]:
            problems.append(f"{where}: Shift+Tab does not walk back the way Tab came")
    return problems


def kind_of(url: str) -> str:
    """One crawled page per kind of address: /lots/LT-1 and /lots/LT-2 are the same page."""
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    shape = "/" + "/".join(re.sub(r".*\d.*", "*", s) for s in segments)  # ids carry digits
    keys = sorted(p.split("=")[0] for p in parts.query.split("&") if p)
    return shape + ("?" + "&".join(keys) if keys else "")


async def links_on(page: Page, base_url: str) -> list[str]:
    hrefs: list[str] = await page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if not href.startswith(base_url) or SKIPPED_PATHS.match(parts.path):
            continue
        address = parts.path + (f"?{parts.query}" if parts.query else "")
        if not SKIPPED_FILES.search(address):
            found.append(address)
    return found


async def change_waiting_for_triage(live: Live) -> Task:
    """A change request raised by alice over REST; answers its QA triage task."""
    started = await live.rest.post(
        "/api/v1/processes/change-control",
        json={
            "change_type": FORM["change_type"],
            "title": FORM["title"],
            "reason": FORM["reason"],
            "risk": FORM["risk"],
            "affected_items": ["IS-2000"],
            "actions": [{"kind": "item_revision", "target": "LC-0110", "new_revision": "D"}],
            "requested_effective_on": FORM["requested_effective_on"],
        },
        headers=await live.token("alice"),
    )
    assert started.status_code == 201, started.text
    return await change_task(live, started.json()["id"], "triage-1")


async def decision_of(live: Live, task_id: int) -> tuple[Task, TaskDecision]:
    async def probe() -> tuple[Task, TaskDecision] | None:
        async with live.sessions() as session:
            task = await session.get(Task, task_id)
            decision = await session.scalar(
                select(TaskDecision).where(TaskDecision.task_id == task_id)
            )
            if task is None or decision is None or task.status == "open":
                return None
            return task, decision

    return await eventually(probe, what=f"the decision of task {task_id}")


# ------------------------------------------------------------------ tests


async def test_bob_decides_two_tasks_with_the_keyboard_only(live: Live):
    signed = await live.start_approval()
    rejected = await live.start_approval(title="Approve WI-PR-007 rev B")
    problems: list[str] = []
    async with (
        chromium() as browser,
        device(browser, live, "keyboard", {"width": 1366, "height": 800}, touch=False) as t,
    ):
        page = t.page
        await keyboard_login(page, "bob")
        problems += await walk_with_tab(page, "the inbox")

        # walked back to the first stop: the skip link, which leads into the content
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"
        # the tabs of the inbox: an arrow key switches (the page reloads), the focus stays there
        everything = page.get_by_role("radio", name="All my work")
        await tab_to(page, everything)
        await page.keyboard.press("ArrowRight")
        await expect(page).to_have_url(re.compile(r"scope=mine"))
        await expect(page.get_by_role("radio", name="Assigned to me")).to_be_focused()
        await page.keyboard.press("ArrowLeft")
        await expect(page).to_have_url(re.compile(r"scope=all"))
        await expect(everything).to_be_focused()
        await tab_to(page, page.get_by_role("link", name=signed.title, exact=True))
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/tasks/{signed.id}")
        problems += await walk_with_tab(page, "the task page")

        # claim with Space, choose Approve with Space, sign by typing the password, send with Enter
        await tab_to(page, page.get_by_role("button", name="Claim"))
        await page.keyboard.press("Space")
        await expect(page.get_by_role("status")).to_have_text("You claimed this task.")
        approve = page.get_by_role("radio", name=re.compile("^Approve"))
        await tab_to(page, approve)
        await page.keyboard.press("Space")
        await expect(approve).to_be_checked()
        await tab_to(page, page.get_by_label("Comment (optional)"))
        await page.keyboard.type("Sampling plan matches ANSI Z1.4 level II.")
        await tab_to(page, page.get_by_label("Re-enter your password to sign"))
        await page.keyboard.type(DEMO_PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/tasks/{signed.id}?done=decided")
        await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
        task, decision = await decision_of(live, signed.id)
        assert (task.status, task.outcome) == ("completed", "approve")
        assert decision.decided_by == "bob" and decision.signature_id is not None
        assert decision.comment == "Sampling plan matches ANSI Z1.4 level II."

        # back to the inbox through the menu (Shift+Tab), the other task, Reject with a reason
        await tab_to(
            page,
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox"),
            backwards=True,
        )
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/")
        await tab_to(page, page.get_by_role("link", name="Approve WI-PR-007 rev B", exact=True))
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{live.base_url}/tasks/{rejected.id}")
        reject = page.get_by_role("radio", name=re.compile("^Reject"))
        await tab_to(page, approve)  # the outcomes are one Tab stop; arrows move between them
        for _ in range(await page.get_by_role("radio").count()):
            if await reject.is_checked():
                break
            await page.keyboard.press("ArrowDown")
        await expect(reject).to_be_focused()
        reason = page.get_by_role("textbox", name="Reason for rejecting")
        assert await reason.evaluate("el => el.required")
        await tab_to(page, reason)
        await page.keyboard.type("Rev B cites a withdrawn sampling table.")
        await tab_to(page, page.get_by_label("Re-enter your password to sign"))
        await page.keyboard.type(DEMO_PASSWORD)  # a rejection is signed too
        await tab_to(page, page.get_by_role("button", name="Submit decision"))
        await page.keyboard.press("Space")
        await expect(page).to_have_url(f"{live.base_url}/tasks/{rejected.id}?done=decided")
        task, decision = await decision_of(live, rejected.id)
        assert (task.status, task.outcome) == ("completed", "reject")
        assert decision.decided_by == "bob"
        assert "Rev B cites a withdrawn sampling table." in decision.fields.values()
        problems += t.problems
    assert problems == [], "\n".join(problems)


async def test_every_page_is_named_labelled_legible_and_fits_a_tablet(live: Live):
    """Crawl the UI from the menu as carol (QA: decides approvals and triage, reads the audit
    trail) on a landscape tablet and check each page; then visit the same pages on a portrait
    tablet with carol reading Simplified Chinese."""
    await write_story(live.sessions)
    await write_quality_story(live.sessions)
    await write_recall_story(live.sessions)
    approval = await live.start_approval()
    triage = await change_waiting_for_triage(live)  # a decision form with choices and a list
    problems: dict[str, list[str]] = {}
    visited: list[str] = []
    answered_404: set[str] = set()
    async with chromium() as browser:
        first, second = "tablet-landscape", "tablet-portrait"
        async with device(browser, live, first, TABLETS[first], touch=True) as t:
            page = t.page
            await page.goto("/login")
            for check in (STRUCTURE_AND_NAMES, CONTRAST):
                problems.setdefault("/login", []).extend(await page.evaluate(check))
            await tap_to_log_in(page, "carol", live)
            # both decision forms: a signed approval, a triage with choices and a list
            queue = ["/", f"/tasks/{approval.id}", f"/tasks/{triage.id}"]
            kinds = {kind_of(path) for path in queue}
            decision_forms = set(queue[1:])
            while queue and len(visited) < 80:
                path = queue.pop(0)
                try:
                    response = await page.goto(path)
                except PlaywrightError as err:  # a report (PDF, CSV) downloads: not a page
                    if "Download is starting" in str(err):
                        continue
                    raise
                assert response is not None
                if "text/html" not in response.headers.get("content-type", ""):
                    continue
                visited.append(path)
                found = problems.setdefault(path, [])
                if response.status >= 500:
                    found.append(f"the page answered {response.status}")
                if response.status == 404:  # a link the test data leaves dangling: the error page
                    answered_404.add(response.url)
                for check in (STRUCTURE_AND_NAMES, CONTRAST):
                    found.extend(await page.evaluate(check))
                found.extend(f"{first}: {p}" for p in await page.evaluate(TABLET, MIN_TARGET))
                if kind_of(path).endswith("/new") or path in decision_forms:  # forms, by keyboard
                    found.extend(await walk_with_tab(page, path))
                for link in await links_on(page, live.base_url):
                    if kind_of(link) not in kinds:
                        kinds.add(kind_of(link))
                        queue.append(link)
            # the error page a person meets too (its own 404 is the one console error allowed)
            response = await page.goto(NOT_FOUND)
            assert response is not None
            found = problems.setdefault(NOT_FOUND, [])
            if response.status != 404:
                found.append(f"a missing task answered {response.status}, not 404")
            for check in (STRUCTURE_AND_NAMES, CONTRAST):
                found.extend(await page.evaluate(check))
            answered_404.add(f"{live.base_url}{NOT_FOUND}")
            script_errors = list(t.problems)
        # the portrait tablet reads Chinese: longer words and another script on the same layout
        async with live.sessions() as session, session.begin():
            await session.execute(
                update(AppUser).where(AppUser.username == "carol").values(locale="zh_Hans")
            )
        async with device(browser, live, second, TABLETS[second], touch=True) as t:
            page = t.page
            await page.goto("/login")
            await tap_to_log_in(page, "carol", live)
            for path in visited:
                await page.goto(path)
                found = problems.setdefault(path, [])
                found.extend(await page.evaluate(STRUCTURE_AND_NAMES))
                if await page.evaluate("document.documentElement.lang") != "zh-Hans":
                    found.append(f"{second}: carol reads Chinese, the page's lang is not zh-Hans")
                if kind_of(path) in ("/", "/tasks/*", "/dashboard"):
                    await t.shot(kind_of(path).strip("/").replace("/*", "") or "inbox")
                found.extend(f"{second}: {p}" for p in await page.evaluate(TABLET, MIN_TARGET))
            script_errors += t.problems
    problems["(script errors)"] = [
        p for p in script_errors if not any(f"({url} on" in p for url in answered_404)
    ]
    must_see = [
        "/",
        "/tasks/*",
        "/processes",
        "/changes",
        "/supply",
        "/nonconformances",
        "/recalls",
        "/lots",
        "/lots/*",
        "/trace",
        "/audit",
        "/delegations",
        "/processes/new",
        "/processes/*",
        "/changes/new",
        "/changes/*",
        "/suppliers/*",
        "/nonconformances/*",
        "/capas/*",
        "/recalls/*",
        "/dashboard",
        "/mailbox",
        "/settings",
    ]
    seen = {kind_of(p).split("?")[0] for p in visited}
    missing = [k for k in must_see if k not in seen]
    assert not missing, f"the crawl did not reach {missing}; it visited {visited}"
    report = [
        f"{path}\n  " + "\n  ".join(dict.fromkeys(found))
        for path, found in problems.items()
        if found
    ]
    assert not report, f"{len(report)} of {len(visited)} pages have problems:\n" + "\n".join(report)
