"""TEMPORARY: screenshots for review; not committed."""
from datetime import date
from tests.ui.test_browser import VIEWPORTS, Live, change_task, chromium, live, log_in, tab  # noqa: F401
from tests.ui.test_change_pages import FORM, TRIAGE
from playwright.async_api import expect


async def test_shots(live: Live):
    body = {"change_type": "design", "title": FORM["title"], "reason": FORM["reason"], "risk": "high",
            "actions": [{"kind": "item_revision", "target": "LC-0110", "new_revision": "D"},
                        {"kind": "asl_status", "target": "SUP-0002", "part_number": "LC-0110", "new_status": "conditional", "note": "FAI pending"},
                        {"kind": "supplier_status", "target": "SUP-0005", "new_status": "disqualified"}],
            "requested_effective_on": date.today().isoformat()}
    started = await live.rest.post("/api/v1/processes/change-control", json=body, headers=await live.token("alice"))
    cid = started.json()["id"]
    steps = [("bob", "triage-1", "accept", TRIAGE, False), ("carol", "assess-qa-r1", "acceptable", {"assessment": "ok"}, False),
             ("erin", "assess-ra-r1", "acceptable", {"assessment": "ok"}, False), ("bob", "ccb-r1", "approve", {}, True),
             ("erin", "ccb-r1", "approve", {}, True)] + [("ivan", f"implement-{n}-round1", "done", {"evidence": "x"}, False) for n in (1, 2, 3)] + [
             ("bob", "verify-round1", "verified", {}, True), ("carol", "closure", "close", {}, True)]
    for user, step, outcome, fields, sign in steps:
        task = await change_task(live, cid, step)
        r = await live.rest.post(f"/api/v1/tasks/{task.id}/decision", json={"outcome": outcome, "fields": fields} | ({"password": "lotline-demo"} if sign else {}), headers=await live.token(user))
        assert r.status_code == 200, r.text
    import asyncio
    started2 = await live.rest.post("/api/v1/processes/change-control", json=body | {"title": "Second change for revisions"}, headers=await live.token("alice"))
    cid2 = started2.json()["id"]
    for user, step, outcome, fields in [("bob", "triage-1", "return", TRIAGE | {"reason": "Name the lots."}),
                                        ("alice", "revise-r1", "resubmit", {"what_changed": "Lots named, date moved", "title": "Second change, revised title", "reason": "A longer reason that now names lots L2506-0009 and L2610-0010.", "requested_effective_on": "2027-03-01"})]:
        task = await change_task(live, cid2, step)
        r = await live.rest.post(f"/api/v1/tasks/{task.id}/decision", json={"outcome": outcome, "fields": fields}, headers=await live.token(user))
        assert r.status_code == 200, r.text
    await change_task(live, cid2, "triage-2")
    await asyncio.sleep(1)
    async with chromium() as browser:
        for vp in VIEWPORTS:
            async with tab(browser, live, vp) as t:
                await t.page.goto(f"/changes/{cid}")
                await log_in(t.page, "alice")
                await expect(t.page.get_by_text("the change is closed")).to_be_visible()
                await t.shot("zz-closed")
                await t.page.goto(f"/changes/{cid2}#revisions-h")
                await t.page.locator("#revisions-h").screenshot(path=f"/tmp/lotline-shots/{vp}-zz-rev-h.png")
                await t.page.locator("section[aria-labelledby=revisions-h]").screenshot(path=f"/tmp/lotline-shots/{vp}-zz-revisions.png")
