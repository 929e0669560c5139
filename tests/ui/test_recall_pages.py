"""The recall pages and the trace explorer over HTTP, on the real stack with the recall story of
tests/api/test_recall_api.py written straight into the ERP: the trace explorer (lot number and
GS1 string; both trees and the consignees; an unknown lot in words), the recall list with its
filters, a recall's page (scope with versions and hash, consignee board with the silent filter,
clock, effectiveness gauge with its numbers as text, drill times, PDF), its refreshed parts, the
start form (drill checkbox, who may, refusals in words), and the NC page's recall button."""

from __future__ import annotations

import re
from urllib.parse import quote

from erp.quality import Nonconformance
from tests.activities.test_trace import Genealogy, generate_genealogy
from tests.api.test_recall_api import DRILL_ID, RECALL_ID, write_recall_story
from tests.ui.conftest import Site, hidden_value, text_of
from tests.ui.test_supply_pages import clean, progress_parts, section


async def test_recall_pages_need_a_login(site: Site):
    page = await site.browser()
    for path in ("/trace", "/recalls", "/recalls/new", f"/recalls/{RECALL_ID}"):
        response = await page.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={quote(path, safe='')}", path


async def test_trace_explorer_shows_both_trees_and_the_consignees(site: Site):
    story = await write_recall_story(site.sessions)
    heidi = await site.as_user("heidi")
    menu = (await heidi.get("/")).text
    assert 'href="/recalls"' in menu and ">Recalls</a>" in menu
    html = (await heidi.get("/trace", params={"q": story.gs1})).text
    text = clean(await heidi.get("/trace", params={"q": story.gs1}))
    assert "Lot TR-F3" in text
    forward = text_of(section(html, "forward-h"))
    # TR-F3 is shipped to CUS-0004 and CUS-0001 (tests.activities.test_trace: n % 4, n + 1)
    assert "SH-TR-CUS-0004 → CUS-0004" in forward and "SH-TR-CUS-0001 → CUS-0001" in forward
    backward = text_of(section(html, "backward-h"))
    shape = Genealogy()
    subassemblies = {p for p in shape.finished_parents(3) if p.startswith("TR-S")}
    components = {c for s in subassemblies for c in shape.subassembly_parents(int(s[4:]))}
    for parent in shape.finished_parents(3) | components:
        assert parent in backward, parent
    consignees = text_of(section(html, "consignees-h"))
    assert "CUS-0001" in consignees and "CUS-0004" in consignees and "CUS-0002" not in consignees
    # a component: forward reaches finished lots and their consignees through the sub-assemblies
    component = await heidi.get("/trace", params={"q": "TR-T2"})
    assert "<details open>" in component.text and "TR-F" in text_of(component.text)
    unknown = await heidi.get("/trace", params={"q": "NOPE-1"})
    assert unknown.status_code == 200  # the search page says so in words
    assert "Lot NOPE-1 is not known" in text_of(unknown.text)


async def test_recall_list_and_page(site: Site):
    await write_recall_story(site.sessions)
    carol = await site.as_user("carol")
    listed = clean(await carol.get("/recalls"))
    assert "RCL-2026-9001" in listed and "DRL-2026-9001" not in listed  # open ones by default
    drills = clean(await carol.get("/recalls", params={"status": "all", "drill": "yes"}))
    assert "DRL-2026-9001" in drills and "RCL-2026-9001" not in drills
    by_number = await carol.get("/recalls/RCL-2026-9001")
    assert by_number.status_code == 303 and by_number.headers["location"] == f"/recalls/{RECALL_ID}"

    response = await carol.get(f"/recalls/{RECALL_ID}")
    html = response.text
    clean(response)
    scope = text_of(section(html, "scope-h"))
    assert "v2" in scope and "TR-T2" in scope and "suspect" in scope
    assert "added consignees: CUS-0003" in scope and "added lots: TR-F5" in scope
    assert re.search(r'id="scope-hash">[0-9a-f]{64}<', html)
    board = text_of(section(html, "board-h"))
    assert "1 answered · 1 silent · 1 reconciled" in board
    silent_row = text_of(re.findall(r'<tr id="consignee-CUS-0002".*?</tr>', html, re.S)[0])
    assert "escalated" in silent_row and "6 d" in silent_row
    clock = text_of(section(html, "clock-h"))
    assert "Working days left" in clock and "not yet" in clock
    gauge = text_of(section(html, "effect-h"))
    assert "Responded: 1 of 3 (33 %)" in gauge and "Reconciled: 1 of 3 (33 %)" in gauge
    assert "target 100 % (level A)" in gauge and "not met yet" in gauge
    assert '<svg class="gauge"' in html and 'width="33.3"' in html
    times = text_of(section(html, "times-h"))
    assert "To scope 4.0 s" in times and "To notify —" in times
    assert f'href="/recalls/{RECALL_ID}/report.pdf"' in html
    assert 'id="widen-scope"' in html  # carol is a QA manager

    only_silent = await carol.get(f"/recalls/{RECALL_ID}", params={"silent": "1"})
    board = section(only_silent.text, "board-h")
    assert "CUS-0002" in board and "CUS-0001" not in board and "CUS-0003" not in board

    progress = await carol.get(f"/recalls/{RECALL_ID}/progress")
    parts = progress_parts(progress.text)
    for part in ("progress-board", "progress-scope", "progress-clock", "progress-effectiveness"):
        assert part in parts, part
    assert f'data-progress-url="/recalls/{RECALL_ID}/progress"' in html

    pdf = await carol.get(f"/recalls/{RECALL_ID}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")

    heidi = await site.as_user("heidi")  # QC: reads, does not widen
    assert 'id="widen-scope"' not in (await heidi.get(f"/recalls/{RECALL_ID}")).text
    drill = clean(await heidi.get(f"/recalls/{DRILL_ID}"))
    assert "Drill times" in drill and "To notify 9.0 s" in drill


async def test_start_form_drill_and_refusals(site: Site):
    async with site.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
    frank = await site.as_user("frank")
    refused = await frank.get("/recalls/new")
    assert refused.status_code == 403
    assert "Starting a recall needs one of the groups" in text_of(refused.text)

    bob = await site.as_user("bob")  # QA: drills only
    form = await bob.get("/recalls/new", params={"lot": "TR-T2"})
    assert form.status_code == 200 and 'name="drill" checked' in form.text
    key = hidden_value(form.text, "form_key")
    real = await bob.post(
        "/recalls/new", {"form_key": key, "suspect_lots": "TR-T2", "reason": "Cracked tubing"}
    )
    assert real.status_code == 403 and "qa-manager, quality-director, ra, admin" in real.text

    carol = await site.as_user("carol")
    form = await carol.get("/recalls/new")
    key = hidden_value(form.text, "form_key")
    unknown = await carol.post(
        "/recalls/new",
        {"form_key": key, "suspect_lots": "TR-T2\nNOPE-9", "reason": "Cracked tubing"},
    )
    assert unknown.status_code == 422 and "NOPE-9" in text_of(unknown.text)
    assert "TR-T2\nNOPE-9" in unknown.text  # what was typed stays
    short = await carol.post(
        "/recalls/new", {"form_key": key, "suspect_lots": "TR-T2", "reason": "x"}
    )
    assert short.status_code == 422 and "Reason:" in text_of(short.text)
    started = await carol.post(
        "/recalls/new",
        {"form_key": key, "suspect_lots": "TR-T2", "reason": "Cracked tubing", "drill": "on"},
    )
    assert started.status_code == 303
    process_id = started.headers["location"].rsplit("/", 1)[1]
    assert started.headers["location"] == f"/recalls/{process_id}"
    handle = site.api.temporal.get_workflow_handle(process_id)
    assert (await handle.describe()).workflow_type == "Recall"
    waiting = await carol.get(started.headers["location"])
    assert waiting.status_code == 200 and "being registered" in text_of(waiting.text)
    forged = await carol.post("/recalls/new", {"form_key": key}, csrf="forged")
    assert forged.status_code == 403


async def test_nc_page_opens_the_recall_it_asked_for(site: Site):
    async with site.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
        session.add(
            Nonconformance(
                number="NC-2026-9201",
                process_id="nc-rc-1",
                source="complaint",
                severity="critical",
                title="Leaking tubing",
                description="Customer reports leaks",
                reported_by="heidi",
                status="closed",
                recall_requested=True,
                recall_scope={"suspect_lots": ["TR-T2"], "reason": "Leaks at the joint"},
            )
        )
    dave = await site.as_user("dave")
    html = (await dave.get("/nonconformances/nc-rc-1")).text
    assert 'action="/nonconformances/nc-rc-1/recall"' in html
    opened = await dave.post("/nonconformances/nc-rc-1/recall")
    assert opened.status_code == 303 and opened.headers["location"] == "/recalls/nc-rc-1.recall"
    again = await dave.post("/nonconformances/nc-rc-1/recall")
    assert again.headers["location"] == "/recalls/nc-rc-1.recall"
    heidi = await site.as_user("heidi")
    assert (
        'action="/nonconformances/nc-rc-1/recall"'
        not in (await heidi.get("/nonconformances/nc-rc-1")).text
    )
