"""The inbox pages over HTTP, on the real stack: log in with the form, keep the session cookie,
post the forms the pages carry — and check what a person would see."""

from __future__ import annotations

from sqlalchemy import func, select

from erp.models import AuditEntry, Delegation, TaskDecision
from tests.helpers import eventually
from tests.ui.conftest import Page, Site, hidden_value, text_of

HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


def assert_secure_headers(response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert "unsafe-inline" not in csp


async def inbox_showing(page: Page, title: str) -> str:
    async def probe() -> str | None:
        response = await page.get("/")
        assert response.status_code == 200, response.text
        return response.text if title in response.text else None

    return await eventually(probe, what=f"{title!r} in the inbox")


async def decisions_of(site: Site, task_id: int) -> int:
    async with site.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(TaskDecision).where(TaskDecision.task_id == task_id)
        )
    return int(count or 0)


async def test_pages_need_a_login_and_carry_security_headers(site: Site):
    page = await site.browser()
    home = await page.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/login?next=%2F"
    deep = await page.get("/tasks/7?done=claimed")
    assert deep.status_code == 303
    assert deep.headers["location"] == "/login?next=%2Ftasks%2F7%3Fdone%3Dclaimed"
    assert (await page.post("/tasks/7/claim")).status_code == 303  # no session: to the login

    login = await page.get("/login", params={"next": "/processes"})
    assert login.status_code == 200
    assert_secure_headers(login)
    assert login.headers.get("cache-control") == "no-store"
    assert hidden_value(login.text, "next") == "/processes"
    assert 'autocomplete="current-password"' in login.text
    css = await page.get("/static/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert_secure_headers(css)

    bob = await site.as_user("bob")
    for path in ("/", "/processes", "/processes/new", "/changes", "/changes/new", "/delegations"):
        response = await bob.get(path)
        assert response.status_code == 200, (path, response.text)
        assert_secure_headers(response)
        assert "style=" not in response.text, f"inline style on {path} (the CSP blocks it)"
        assert "<script>" not in response.text, f"inline script on {path} (the CSP blocks it)"
    missing = await bob.get("/tasks/999999")
    assert missing.status_code == 404 and "Task 999999 was not found" in text_of(missing.text)
    assert_secure_headers(missing)


async def test_login_form_refuses_wrong_password_and_forged_posts(site: Site):
    page = await site.browser()
    wrong = await page.login("bob", "guess")
    assert wrong.status_code == 401
    shown = text_of(wrong.text)
    assert "Wrong username or password." in shown
    assert 'value="bob"' in wrong.text  # the username is kept, the password is not
    assert "guess" not in wrong.text
    assert "lotline_session" not in page.http.cookies
    assert (await page.get("/")).status_code == 303  # still not logged in

    fresh = await site.browser()
    forged = await fresh.http.post(
        "/login", data={"username": "bob", "password": "lotline-demo", "csrf_token": "x"}
    )
    assert forged.status_code == 403 and "login form expired" in text_of(forged.text)
    assert "lotline_session" not in fresh.http.cookies

    away = await site.browser()
    response = await away.login("bob", next="//evil.example/phish")
    assert response.status_code == 303 and response.headers["location"] == "/"
    async with site.sessions() as session:
        failed = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "login.failed", AuditEntry.entity_id == "bob"
            )
        )
    assert failed is not None and failed.source == "ui"


async def test_claim_and_decide_through_the_forms(site: Site):
    process_id = await site.start_approval()
    task = await site.open_task(process_id)
    bob = await site.as_user("bob")
    inbox = await inbox_showing(bob, "Approve SOP-QA-014 rev D")
    assert f'href="/tasks/{task.id}"' in inbox
    assert "due in 47 h" in text_of(inbox) or "due in 48 h" in text_of(inbox)

    before = await bob.get(f"/tasks/{task.id}")
    assert before.status_code == 200
    shown = text_of(before.text)
    assert 'id="decision-form"' in before.text
    assert 'name="outcome" value="approve"' in before.text
    assert 'name="outcome" value="reject"' in before.text
    assert "Electronic signature" in shown and "Re-enter your password to sign" in shown
    assert "Signed as Bob Okafor (bob)" in shown
    assert f'action="/tasks/{task.id}/claim"' in before.text
    assert "No decisions yet." in shown

    # forged posts: no token, a wrong token, another user's token — refused, nothing changes
    alice = await site.as_user("alice")
    for token in ("", "not-the-token", alice.csrf):
        claim = await bob.post(f"/tasks/{task.id}/claim", csrf=token)
        assert claim.status_code == 403, claim.text
        assert "reload the page and try again" in text_of(claim.text)
        decide = await bob.post(
            f"/tasks/{task.id}/decision",
            {"outcome": "approve", "password": "lotline-demo"},
            csrf=token,
        )
        assert decide.status_code == 403, decide.text
    row = await site.task(task.id)
    assert row.claimed_by is None and row.status == "open"
    assert await decisions_of(site, task.id) == 0

    claimed = await bob.post(f"/tasks/{task.id}/claim")
    assert claimed.status_code == 303
    assert claimed.headers["location"] == f"/tasks/{task.id}?done=claimed"
    after_claim = await bob.get(claimed.headers["location"])
    assert "You claimed this task." in text_of(after_claim.text)
    assert f'action="/tasks/{task.id}/release"' in after_claim.text
    assert (await site.task(task.id)).claimed_by == "bob"

    no_outcome = await bob.post(f"/tasks/{task.id}/decision", {"comment": "looks fine"})
    assert no_outcome.status_code == 422 and "Choose an outcome." in text_of(no_outcome.text)
    assert "looks fine" in no_outcome.text  # what was typed is kept

    unsigned = await bob.post(f"/tasks/{task.id}/decision", {"outcome": "approve"})
    assert unsigned.status_code == 422
    assert "This decision signs: re-enter your password to sign it." in text_of(unsigned.text)

    wrong = await bob.post(
        f"/tasks/{task.id}/decision",
        {"outcome": "approve", "password": "guess", "comment": "sampling plan ok"},
    )
    assert wrong.status_code == 403
    assert "2 attempt(s) left" in text_of(wrong.text)
    assert 'value="approve" required checked' in wrong.text  # the choice is kept
    assert "sampling plan ok" in wrong.text
    assert "guess" not in wrong.text  # the password is never echoed
    assert await decisions_of(site, task.id) == 0

    decided = await bob.post(
        f"/tasks/{task.id}/decision",
        {"outcome": "approve", "password": "lotline-demo", "comment": "sampling plan ok"},
    )
    assert decided.status_code == 303, text_of(decided.text)
    assert decided.headers["location"] == f"/tasks/{task.id}?done=decided"
    done = await bob.get(decided.headers["location"])
    shown = text_of(done.text)
    assert "Your decision was recorded." in shown
    assert "Signed by Bob Okafor (bob)" in shown and "meaning: approved" in shown
    assert "record SHA-256" in shown
    assert "Approve by bob" in shown and "“sampling plan ok”" in shown
    assert 'id="decision-form"' not in done.text
    assert "This task is completed with outcome Approve" in shown
    history = done.text.split('id="history"', 1)[1]
    for action in ("opened", "claimed", "decided"):
        assert f"<td>{action}" in history, action
    assert "signature.refused" in history  # the wrong password is on record too
    assert await decisions_of(site, task.id) == 1

    async def signed_process() -> str | None:
        shown = text_of((await bob.get(f"/processes/{process_id}")).text)
        return shown if "completed: approve" in shown else None

    process_page = await eventually(signed_process, what="the process completed")
    assert "Electronic signatures" in process_page
    assert "Signed by Bob Okafor (bob) · meaning: approved" in process_page

    again = await bob.post(
        f"/tasks/{task.id}/decision", {"outcome": "reject", "password": "lotline-demo"}
    )
    assert again.status_code == 409 and "already completed" in text_of(again.text)
    assert await decisions_of(site, task.id) == 1


async def test_initiator_cannot_decide_own_request(site: Site):
    process_id = await site.start_approval()
    task = await site.open_task(process_id)
    alice = await site.as_user("alice")
    page = await alice.get(f"/tasks/{task.id}")
    assert page.status_code == 200  # she may follow her request
    assert "Segregation of duties: you initiated this request." in text_of(page.text)
    assert 'id="decision-form"' not in page.text

    refused = await alice.post(
        f"/tasks/{task.id}/decision", {"outcome": "approve", "password": "lotline-demo"}
    )
    assert refused.status_code == 403
    shown = text_of(refused.text)
    assert "Segregation of duties: you initiated this request." in shown
    assert refused.headers["content-type"].startswith("text/html")  # a page, not JSON
    claim = await alice.post(f"/tasks/{task.id}/claim")
    assert claim.status_code == 403 and "Segregation of duties" in text_of(claim.text)
    row = await site.task(task.id)
    assert row.status == "open" and row.claimed_by is None
    assert await decisions_of(site, task.id) == 0


async def test_logout_revokes_the_session(site: Site):
    bob = await site.as_user("bob")
    cookie = bob.http.cookies["lotline_session"]
    refused = await bob.post("/logout", csrf="wrong")
    assert refused.status_code == 403
    assert (await bob.get("/")).status_code == 200  # still logged in

    out = await bob.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "lotline_session" not in bob.http.cookies

    thief = await site.browser()
    thief.http.cookies.set("lotline_session", cookie)
    replay = await thief.get("/")
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


async def test_new_request_form_starts_a_process(site: Site):
    alice = await site.as_user("alice")
    form = await alice.get("/processes/new")
    assert form.status_code == 200
    assert 'name="approver_groups" value="qa"' in form.text
    assert 'value="systems"' not in form.text.split("<legend>Approver groups</legend>")[1][:2000]

    invalid = await alice.post("/processes/new", {"title": "x", "description": "kept text"})
    assert invalid.status_code == 422
    shown = text_of(invalid.text)
    assert "What needs approval: string should have at least 3 characters" in shown
    assert "Approver groups: list should have at least 1 item" in shown
    assert "kept text" in invalid.text

    started = await alice.post(
        "/processes/new",
        {
            "title": "Approve label LBL-200 rev B",
            "description": "New UDI layout",
            "approver_groups": "qa",
            "rule": "any",
            "k": "1",
            "sla_hours": "24",
            "escalate_1": "qa-manager",
            "signs": "on",
        },
    )
    assert started.status_code == 303, text_of(started.text)
    location = started.headers["location"]
    assert location.startswith("/processes/")
    first = await alice.get(location)
    assert first.status_code == 200  # right after the start it may still say "starting"

    async def process_page() -> str | None:
        shown = text_of((await alice.get(location)).text)
        return shown if "Approve label LBL-200 rev B" in shown else None

    shown = await eventually(process_page, what="the process page with its title")
    assert "running" in shown and "alice" in shown
    task = await site.open_task(location.removeprefix("/processes/"))
    assert task.initiator == "alice" and list(task.candidate_groups) == ["qa"]

    bob = await site.as_user("bob")
    await inbox_showing(bob, "Approve label LBL-200 rev B")
    filtered = await bob.get("/", params={"q": "nothing-like-this"})
    assert "Nothing here." in text_of(filtered.text)


async def test_delegation_page_creates_a_delegation(site: Site):
    carol = await site.as_user("carol")
    page = await carol.get("/delegations")
    assert page.status_code == 200 and "No delegations." in text_of(page.text)

    to_self = await carol.post(
        "/delegations",
        {"delegate": "carol", "starts_at": "2020-01-01T00:00", "ends_at": "2099-01-01T00:00"},
    )
    assert to_self.status_code == 422
    assert "cannot stand in for themselves" in text_of(to_self.text)

    bad_date = await carol.post(
        "/delegations", {"delegate": "ivan", "starts_at": "tomorrow", "ends_at": "2099-01-01T00:00"}
    )
    assert bad_date.status_code == 422 and "is not a date and time" in text_of(bad_date.text)

    created = await carol.post(
        "/delegations",
        {
            "delegate": "ivan",
            "starts_at": "2020-01-01T00:00",
            "ends_at": "2099-01-01T00:00",
            "reason": "vacation",
        },
    )
    assert created.status_code == 303 and created.headers["location"] == "/delegations"
    listed = text_of((await carol.get("/delegations")).text)
    assert "carol ivan 2020-01-01 00:00 UTC 2099-01-01 00:00 UTC vacation active" in listed
    async with site.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Delegation)) == 1

    ivan = await site.as_user("ivan")
    inbox = text_of((await ivan.get("/")).text)
    assert "You are standing in for: carol" in inbox


async def test_audit_page_verifies_chain_for_quality_only(site: Site):
    carol = await site.as_user("carol")
    page = await carol.get("/audit", params={"verify": "1"})
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Chain intact:" in shown and "rows verified" in shown
    assert "login.succeeded" in shown and "demo.seeded" in shown
    assert 'href="/audit"' in (await carol.get("/")).text  # the menu offers it

    filtered = await carol.get("/audit", params={"actor": "carol"})
    rows = filtered.text.split("<tbody>")[1]
    assert "login.succeeded" in rows and "demo.seeded" not in rows

    ivan = await site.as_user("ivan")
    refused = await ivan.get("/audit", params={"verify": "1"})
    assert refused.status_code == 403
    assert "Not allowed" in text_of(refused.text)
    assert "Chain intact" not in refused.text
    assert 'href="/audit"' not in (await ivan.get("/")).text


async def test_refusals_and_withdrawal_read_as_pages(site: Site):
    process_id = await site.start_approval()
    task = await site.open_task(process_id)
    ivan = await site.as_user("ivan")
    hidden = await ivan.get(f"/tasks/{task.id}")
    assert hidden.status_code == 403
    assert "This task is not in your inbox" in text_of(hidden.text)
    bad_id = await ivan.get("/tasks/not-a-number")
    assert bad_id.status_code == 422 and bad_id.headers["content-type"].startswith("text/html")

    bob = await site.as_user("bob")
    bogus = await bob.post(f"/tasks/{task.id}/decision", {"outcome": "bogus"})
    assert bogus.status_code == 422, text_of(bogus.text)
    assert 'id="decision-form"' in bogus.text  # the form is there to try again
    assert await decisions_of(site, task.id) == 0

    alice = await site.as_user("alice")
    page = await alice.get(f"/processes/{process_id}")
    assert f'action="/processes/{process_id}/cancel"' in page.text
    assert (
        f'action="/processes/{process_id}/cancel"'
        not in (await bob.get(f"/processes/{process_id}")).text
    )
    short = await alice.post(f"/processes/{process_id}/cancel", {"reason": "x"})
    assert short.status_code == 422 and "Give a reason" in text_of(short.text)
    withdrawn = await alice.post(f"/processes/{process_id}/cancel", {"reason": "raised in error"})
    assert withdrawn.status_code == 303

    async def cancelled() -> str | None:
        shown = text_of((await alice.get(f"/processes/{process_id}")).text)
        return shown if "cancelled" in shown else None

    await eventually(cancelled, what="the process cancelled")
    closed = await bob.get(f"/tasks/{task.id}")
    assert "This task is cancelled" in text_of(closed.text)
    assert 'id="decision-form"' not in closed.text
