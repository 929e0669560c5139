"""The change-control pages over HTTP, on the real stack with the demo catalogue: raise a change
with the form, find it in the list, read its page (impact, old vs new, revisions, timeline), and
the change tasks' fields as the task page renders them."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from erp.models import Task
from schemas.change_control import ChangeContent, ChangeRequestInput
from tests.helpers import eventually
from tests.ui.conftest import Page, Site, text_of
from tests.ui.test_pages import assert_secure_headers

EFFECTIVE = (date.today() + timedelta(days=30)).isoformat()
FORM = {
    "change_type": "design",
    "title": "Luer lock connector rev D (stronger collar)",
    "reason": "Collar cracks found in complaint CMP-2026-031; rev D uses a thicker collar.",
    "risk": "medium",
    "affected_items": "IS-2000",
    "affected_documents": "",
    "affected_suppliers": "",
    "action_1_kind": "item_revision",
    "action_1_target": "LC-0110",
    "action_1_new_revision": "D",
    "action_2_kind": "document_version",
    "action_2_target": "LBL-IS-2000",
    "action_2_new_revision": "04",
    "action_3_kind": "asl_status",
    "action_3_target": "SUP-0002",
    "action_3_part_number": "LC-0110",
    "action_3_new_status": "conditional",
    "action_3_note": "first articles of rev D pending",
    "requested_effective_on": EFFECTIVE,
}
TRIAGE = {
    "classification": "minor",
    "assess_engineering": "no",
    "assess_qa": "yes",
    "assess_ra": "yes",
    "assess_production": "no",
    "assess_supply_chain": "no",
    "implementer": "ivan",
}


async def raise_change(page: Page, **changes: str) -> str:
    """Post the start form; answer the change's page address."""
    started = await page.post("/changes/new", FORM | changes)
    assert started.status_code == 303, text_of(started.text)
    location = started.headers["location"]
    assert re.fullmatch(r"/changes/cr-\d{4}-[0-9a-f]{8}", location), location
    return location


async def registered(page: Page, location: str) -> str:
    async def probe() -> str | None:
        response = await page.get(location)
        assert response.status_code == 200, response.text
        return response.text if "CR-" in text_of(response.text) else None

    return await eventually(probe, what=f"{location} registered")


async def open_task(site: Site, change_id: str, step: str) -> Task:
    async def probe() -> Task | None:
        async with site.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.workflow_id == f"{change_id}.{step}", Task.status == "open")
            )

    return await eventually(probe, what=f"task {step}")


async def decide(
    site: Site, username: str, change_id: str, step: str, outcome: str, **fields: Any
) -> Task:
    task = await open_task(site, change_id, step)
    password = fields.pop("password", None)
    response = await site.api.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": outcome, "fields": fields} | ({"password": password} if password else {}),
        headers=await site.api.token(username),
    )
    assert response.status_code == 200, (step, response.text)
    return task


def section(html: str, heading_id: str) -> str:
    """The HTML of the card whose heading has this id."""
    found = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, re.S)
    assert found, f"no section {heading_id}"
    return found.group(0)


async def test_raise_a_change_and_read_its_page(site: Site):
    alice = await site.as_user("alice")
    menu = await alice.get("/")
    assert 'href="/changes"' in menu.text and ">Changes</a>" in menu.text

    form = await alice.get("/changes/new")
    assert form.status_code == 200
    assert_secure_headers(form)
    assert "style=" not in form.text and "<script>" not in form.text
    for name in ("change_type", "title", "reason", "risk", "requested_effective_on"):
        assert f'name="{name}"' in form.text, name
    assert 'type="date"' in form.text
    assert 'name="action_4_kind"' in form.text and 'name="action_5_kind"' not in form.text
    assert '<option value="LC-0110">part · Luer lock connector' in form.text  # suggestions

    forged = await alice.post("/changes/new", FORM, csrf="not-the-token")
    assert forged.status_code == 403 and "reload the page and try again" in text_of(forged.text)

    location = await raise_change(alice)
    change_id = location.removeprefix("/changes/")
    first = await alice.get(location)  # right after the start: the change or "starting"
    assert first.status_code == 200
    assert "CR-" in text_of(first.text) or "reloads by itself" in text_of(first.text)
    await registered(alice, location)
    await open_task(site, change_id, "triage-1")
    page = await alice.get(location)
    assert_secure_headers(page)
    html = page.text
    assert "style=" not in html and "<script>" not in html
    shown = text_of(html)
    number = re.search(r"CR-\d{4}-\d{4}", shown)
    assert number, shown
    assert "Luer lock connector rev D (stronger collar)" in shown
    assert "triage" in shown and "not classified yet" in shown and "revision 1" in shown
    assert "Collar cracks found in complaint CMP-2026-031" in shown
    assert "part LC-0110: revision D becomes effective" in shown
    assert "supplier SUP-0002 for part LC-0110: conditional (first articles of rev D pending)" in (
        shown
    )

    tasks = text_of(section(html, "tasks-h"))
    assert f"Triage {number.group(0)}: Luer lock connector rev D" in tasks

    impact = text_of(section(html, "impact-h"))
    for label in (
        "Open purchase orders",
        "Lots in stock",
        "Work orders",
        "Where used",
        "Documents",
        "Approved supplier list",
    ):
        assert label in impact, label
    assert "Computed now from the ERP" in impact
    assert "SUP-0002" in impact and "LBL-IS-2000" in impact

    compare = section(html, "compare-h")
    part = compare.split("part LC-0110", 1)[1].split("</article>", 1)[0]
    assert re.search(
        r'<tr class="changed">\s*<th scope="row">Revision <span class="tag">changed</span></th>'
        r'\s*<td class="old">C</td>\s*<td class="new">D</td>',
        part,
    ), part
    assert re.search(r'<th scope="row">Description</th>\s*<td class="old">Luer lock', part)
    assert "Before (old)" in compare and "After (new)" in compare
    label = compare.split("document LBL-IS-2000", 1)[1].split("</article>", 1)[0]
    assert '<td class="old">03</td>' in label and '<td class="new">04</td>' in label
    asl = compare.split("ASL SUP-0002 × LC-0110", 1)[1].split("</article>", 1)[0]
    assert '<td class="old">approved</td>' in asl and '<td class="new">conditional</td>' in asl

    revisions = text_of(section(html, "revisions-h"))
    assert "Revision 1 current" in revisions and "by alice" in revisions
    assert "initial request" in revisions
    timeline = text_of(section(html, "timeline-h"))
    assert "alice change requested" in timeline and "system status: triage" in timeline
    assert "No assessments yet" in text_of(section(html, "assessments-h"))
    assert "None yet." in text_of(section(html, "signatures-h"))

    by_number = await alice.get(f"/changes/{number.group(0)}")
    assert by_number.status_code == 200 and change_id in by_number.text

    listed = await alice.get("/changes")
    assert listed.status_code == 200
    assert_secure_headers(listed)
    row = text_of(listed.text.split("<tbody>", 1)[1].split("</tr>", 1)[0])
    for cell in (number.group(0), "Luer lock connector rev D", "Design", "medium", "triage"):
        assert cell in row, (cell, row)
    assert "alice" in row and EFFECTIVE in row
    assert f'href="/changes/{change_id}"' in listed.text
    for params, there in (
        ({"status": "open"}, True),
        ({"status": "any"}, True),
        ({"status": "triage"}, True),
        ({"status": "closed"}, False),
        ({"q": "collar"}, True),
        ({"q": number.group(0)}, True),
        ({"q": "nothing-like-this"}, False),
        ({"change_type": "design"}, True),
        ({"change_type": "labeling"}, False),
    ):
        response = await alice.get("/changes", params=params)
        assert response.status_code == 200
        assert (number.group(0) in response.text) is there, params
    empty = text_of((await alice.get("/changes", params={"status": "closed"})).text)
    assert "No change requests match the filters." in empty

    missing = await alice.get("/changes/CR-1999-0001")
    assert missing.status_code == 404
    assert "Change CR-1999-0001 was not found" in text_of(missing.text)


async def test_the_form_says_what_is_wrong_and_keeps_what_was_typed(site: Site):
    alice = await site.as_user("alice")
    unknown = await alice.post(
        "/changes/new",
        FORM
        | {
            "action_1_target": "NOPE-1",
            "action_1_new_revision": "B",
            "action_2_kind": "",
            "action_2_target": "",
            "action_2_new_revision": "",
            "action_3_kind": "",
            "action_3_target": "",
            "action_3_part_number": "",
            "action_3_new_status": "",
            "action_3_note": "",
        },
    )
    assert unknown.status_code == 422
    shown = text_of(unknown.text)
    assert "The change request does not match the ERP: unknown part number NOPE-1." in shown
    assert 'role="alert"' in unknown.text
    assert 'value="Luer lock connector rev D (stronger collar)"' in unknown.text
    assert 'value="NOPE-1"' in unknown.text and f'value="{EFFECTIVE}"' in unknown.text
    assert '<option value="design" selected>' in unknown.text
    assert '<option value="item_revision" selected>' in unknown.text
    assert "Collar cracks found in complaint CMP-2026-031" in unknown.text

    incomplete = await alice.post(
        "/changes/new",
        {
            "change_type": "design",
            "title": "Luer",
            "reason": "kept reason text",
            "risk": "",
            "action_2_kind": "item_revision",
            "action_2_target": "LC-0110",
            "requested_effective_on": "",
        },
    )
    assert incomplete.status_code == 422
    shown = text_of(incomplete.text)
    assert "Title: string should have at least 5 characters" in shown
    assert "Risk: choose one of the options" in shown
    assert "Action 2: item_revision needs new_revision" in shown  # the row as the form numbers it
    assert "Requested effective date:" in shown
    assert "kept reason text" in incomplete.text

    nothing = await alice.post("/changes/new", FORM | {f"action_{n}_kind": "" for n in (1, 2, 3)})
    assert nothing.status_code == 422, text_of(nothing.text)
    assert "Action 1: choose what the action does" in text_of(nothing.text)
    none = {
        k: ""
        for k in FORM
        if k.startswith("action_")  # every action row left empty
    }
    no_actions = await alice.post("/changes/new", FORM | none)
    assert no_actions.status_code == 422
    assert "Actions: fill in at least one action" in text_of(no_actions.text)

    listed = await alice.get("/changes", params={"status": "any"})
    assert "No change requests yet" in text_of(listed.text)  # nothing was started


async def test_revisions_side_by_side_and_the_change_tasks_fields(site: Site):
    alice = await site.as_user("alice")
    location = await raise_change(alice)
    change_id = location.removeprefix("/changes/")
    await registered(alice, location)

    bob = await site.as_user("bob")
    triage = await open_task(site, change_id, "triage-1")
    page = await bob.get(f"/tasks/{triage.id}")
    assert page.status_code == 200
    assert f'href="/changes/{change_id}"' in page.text  # the task leads to its change
    for name in ("classification", "assess_qa", "assess_supply_chain"):
        assert f'type="radio" name="field_{name}" value=' in page.text, name
    assert "<legend>Classification" in page.text  # required for accepting, not for returning
    assert 'name="field_implementer"' in page.text
    assert '<textarea id="field_reason" name="field_reason"' in page.text
    kept = await bob.post(
        f"/tasks/{triage.id}/decision",
        {"outcome": "accept", "field_classification": "major", "field_assess_qa": "yes"},
    )
    assert kept.status_code == 422  # fields are missing; what was chosen is kept
    assert 'name="field_classification" value="major"' in kept.text and "checked" in kept.text

    await decide(
        site,
        "bob",
        change_id,
        "triage-1",
        "return",
        reason="Say which lots are affected.",
        **TRIAGE,
    )
    revise = await open_task(site, change_id, "revise-r1")
    revise_page = await alice.get(f"/tasks/{revise.id}")
    assert '<input id="field_requested_effective_on" name="field_requested_effective_on"' in (
        revise_page.text
    )
    assert 'type="date"' in revise_page.text
    assert '<textarea id="field_what_changed"' in revise_page.text
    later = (date.today() + timedelta(days=45)).isoformat()
    resubmit = await alice.post(
        f"/tasks/{revise.id}/decision",
        {
            "outcome": "resubmit",
            "field_what_changed": "Lots named; effective date moved.",
            "field_title": "Luer lock connector rev D (thicker collar)",
            "field_requested_effective_on": later,
        },
    )
    assert resubmit.status_code == 303, text_of(resubmit.text)

    async def revised() -> str | None:
        html = (await alice.get(location)).text
        return html if "revision 2 of 2 kept" in text_of(html) else None

    html = await eventually(revised, what="revision 2 on the change page")
    revisions = section(html, "revisions-h")
    second = revisions.split('id="revision-2"', 1)[1].split("</article>", 1)[0]
    assert "Lots named; effective date moved." in text_of(second)
    assert '<th scope="col">Revision 1</th><th scope="col">Revision 2</th>' in second
    assert re.search(
        r'<th scope="row">Title <span class="tag">changed</span></th>'
        r'<td class="old prewrap">Luer lock connector rev D \(stronger collar\)</td>'
        r'<td class="new prewrap">Luer lock connector rev D \(thicker collar\)</td>',
        second,
    ), second
    assert re.search(
        rf'<th scope="row">Requested effective date <span class="tag">changed</span></th>'
        rf'<td class="old prewrap">{EFFECTIVE}</td><td class="new prewrap">{later}</td>',
        second,
    )
    assert '<th scope="row">Reason</th>' in second  # unchanged: not marked
    first = revisions.split('id="revision-1"', 1)[1].split("</article>", 1)[0]
    assert "initial request" in text_of(first) and "<details>" in first
    timeline = text_of(section(html, "timeline-h"))
    assert "bob decided: return" in timeline and "alice revised: revision 2" in timeline


async def test_a_closed_change_reads_as_what_it_replaced(site: Site):
    alice = await site.as_user("alice")
    location = await raise_change(alice, requested_effective_on=date.today().isoformat())
    change_id = location.removeprefix("/changes/")
    await registered(alice, location)
    await decide(site, "bob", change_id, "triage-1", "accept", **TRIAGE)
    await decide(site, "carol", change_id, "assess-qa-r1", "acceptable", assessment="Inspect.")
    await decide(site, "erin", change_id, "assess-ra-r1", "not_acceptable", assessment="File it.")
    for username in ("bob", "erin"):
        await decide(site, username, change_id, "ccb-r1", "approve", password="lotline-demo")
    for n in (1, 2, 3):
        await decide(site, "ivan", change_id, f"implement-{n}-round1", "done", evidence="ECO pack")
    await decide(site, "bob", change_id, "verify-round1", "verified", password="lotline-demo")
    await decide(site, "carol", change_id, "closure", "close", password="lotline-demo")

    async def closed() -> str | None:
        html = (await alice.get(location)).text
        return html if "the change is closed" in text_of(html) else None

    html = await eventually(closed, what="the change closed")
    head = text_of(html.split('<nav class="toc"', 1)[0])
    assert "closed" in head and "minor change" in head
    status = text_of(section(html, "status-h"))
    assert "Assessments QA, RA" in status and "Implementer ivan" in status
    assert "Took effect 20" in status and "Closed 20" in status
    signatures = text_of(section(html, "signatures-h"))
    for who, meaning in (
        ("Bob Okafor", "approved"),
        ("Erin Li", "approved"),
        ("Bob Okafor", "verified"),
        ("Carol Diaz", "closed"),
    ):
        assert f"Signed by {who}" in signatures and f"meaning: {meaning}" in signatures
    assert signatures.count("record SHA-256") == 4
    assessments = text_of(section(html, "assessments-h"))
    assert "RA revision 1 not acceptable erin File it." in assessments
    assert "As recorded with the impact assessments of revision 1." in text_of(html)

    compare = section(html, "compare-h")
    assert "The records the change replaced next to the records it made effective." in compare
    part = compare.split("part LC-0110", 1)[1].split("</article>", 1)[0]
    assert re.search(r'<td class="old">C</td>\s*<td class="new">D</td>', part), part
    assert re.search(r'<td class="old">obsolete</td>\s*<td class="new">effective</td>', part)
    asl = compare.split("SUP-0002", 1)[1].split("</article>", 1)[0]
    assert "conditional" in asl
    timeline = text_of(section(html, "timeline-h"))
    assert "system took effect" in timeline and "system status: closed" in timeline
    assert "carol decided: close signed" in timeline
    listed = await alice.get("/changes", params={"status": "closed"})
    assert change_id in listed.text
    assert change_id not in (await alice.get("/changes")).text  # not open any more


async def test_a_change_not_registered_yet_says_it_is_starting(site: Site):
    """The workflow registers the change in its first step; until then the page says so and
    reloads itself (a workflow on a queue no worker serves stays in that moment)."""
    content = ChangeContent.model_validate(
        {
            "change_type": "design",
            "title": FORM["title"],
            "reason": FORM["reason"],
            "risk": "low",
            "actions": [{"kind": "item_revision", "target": "LC-0110", "new_revision": "D"}],
            "requested_effective_on": EFFECTIVE,
        }
    )
    handle = await site.api.temporal.start_workflow(
        "ChangeControl",
        ChangeRequestInput(process_id="cr-starting-1", requester="alice", content=content),
        id="cr-starting-1",
        task_queue=f"{site.api.task_queue}-nobody-listens",
    )
    try:
        alice = await site.as_user("alice")
        page = await alice.get("/changes/cr-starting-1")
        assert page.status_code == 200
        shown = text_of(page.text)
        assert "The change request was sent and is being registered" in shown
        assert 'data-reload-after="2"' in page.text  # app.js reloads it
        assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
    finally:
        await handle.terminate("test over")
