"""The nonconformance and CAPA pages over HTTP, on the real stack with the demo data plus the quality
story of tests/api/test_quality_api.py written straight into the ERP: the NC list with its filters
and aging view, an NC with its lots, dispositions, SCAR, CAPA and recall, the CAPA list with the
action board, a CAPA with its plan rounds and effectiveness checks, the report and CAPA forms with
their refusals in words, CSRF, and an NC reported on the form on a real run."""

from __future__ import annotations

import re
from urllib.parse import quote

from sqlalchemy import select

from erp.master_data import Lot
from erp.models import Process, Task
from erp.quality import Nonconformance
from tests.api.test_quality_api import CAPA_A, NC_A, NC_B, NC_C, NC_D, write_quality_story
from tests.helpers import eventually
from tests.ui.conftest import Site, hidden_value, text_of
from tests.ui.test_pages import assert_secure_headers
from tests.ui.test_supply_pages import clean, progress_parts, section
from ui import pages


def rows(html: str, heading_id: str) -> list[str]:
    """The text of each body row of the table in the card whose heading has this id."""
    bodies = re.findall(r"<tbody>.*?</tbody>", section(html, heading_id), re.S)
    if not bodies:  # the card says there is nothing yet (e.g. the NC is still registering)
        return []
    return [text_of(row) for row in re.findall(r"<tr\b.*?</tr>", bodies[0], re.S)]


def alert(html: str) -> str:
    """What the page's error box says."""
    found = re.search(r'<div class="alert error" role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert found, "no error on the page"
    return text_of(found.group(1))


async def test_quality_pages_need_a_login(site: Site):
    page = await site.browser()
    for path in (
        "/nonconformances",
        "/nonconformances/new",
        f"/nonconformances/{NC_A}",
        f"/nonconformances/{NC_A}/progress",
        "/capas",
        "/capas/new",
        f"/capas/{CAPA_A}",
    ):
        response = await page.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={quote(path, safe='')}", path
    posted = await page.post("/nonconformances/new", {"title": "x"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")


async def test_nc_list_filters_and_aging_view(site: Site):
    await write_quality_story(site.sessions)
    carol = await site.as_user("carol")
    home = (await carol.get("/")).text
    assert 'href="/nonconformances"' in home and ">Quality</a>" in home

    response = await carol.get("/nonconformances")
    shown = clean(response)
    assert 'aria-current="page">Quality</a>' in response.text
    for number in ("NC-2026-9001", "NC-2026-9002", "NC-2026-9003"):
        assert number in shown
    assert "NC-2026-9004" not in shown  # closed: the list opens on the open ones
    aging = text_of(section(response.text, "aging-h"))
    assert "1 0–7 days" in aging and "1 8–30 days" in aging and "1 > 90 days" in aging
    assert "0 31–90 days" in aging
    assert 'href="/nonconformances?status=open&amp;age=over-90"' in response.text
    table = {row.split()[0]: row for row in rows(response.text, "list-h")}
    assert "Major" in table["NC-2026-9001"] and "3 days open" in table["NC-2026-9001"]
    assert "2 lots" in table["NC-2026-9001"] and "SUP-0003" in table["NC-2026-9001"]
    assert "overdue since" in table["NC-2026-9002"] and "Critical" in table["NC-2026-9003"]
    assert "recall requested" in table["NC-2026-9003"]
    assert f'href="/nonconformances/{NC_A}"' in response.text

    def numbers(html: str) -> set[str]:
        return set(re.findall(r"NC-2026-900\d", section(html, "list-h")))

    closed = (await carol.get("/nonconformances?status=closed")).text
    assert numbers(closed) == {"NC-2026-9004"}
    old = (await carol.get("/nonconformances?age=over-90")).text
    assert numbers(old) == {"NC-2026-9003"}
    assert "show all ages" in text_of(section(old, "aging-h"))
    assert numbers((await carol.get("/nonconformances?overdue=1")).text) == {"NC-2026-9002"}
    assert numbers((await carol.get("/nonconformances?supplier=SUP-0003")).text) == {"NC-2026-9001"}
    by_part = await carol.get("/nonconformances?part=is-2000&severity=critical")
    assert numbers(by_part.text) == {"NC-2026-9003"}
    assert re.search(r'<option value="critical" selected>', by_part.text)
    assert numbers((await carol.get("/nonconformances?source=in_process")).text) == {"NC-2026-9002"}
    wrong = await carol.get("/nonconformances?status=someday")
    assert wrong.status_code == 400
    assert "Status is one of open, closed, all" in text_of(wrong.text)
    for label in ("Status", "Source", "Severity", "Supplier", "Part number"):
        assert f">{label}</label>" in response.text, label


async def test_nc_page_lots_dispositions_scar_capa_and_recall(site: Site):
    story = await write_quality_story(site.sessions)
    bob = await site.as_user("bob")
    response = await bob.get(f"/nonconformances/{NC_A}")
    page = clean(response)
    assert "NC-2026-9001" in page and "Flash on the filter seat of drip chambers" in page
    assert "Incoming inspection" in page and "Brightwater" in page
    lots = {row.split()[0]: row for row in rows(response.text, "lots-h")}
    returned, extended = lots[story.returned], lots[story.extended]
    assert "REJECTED" in returned and "Return to supplier applied" in returned
    assert "decided by bob, alice" in returned and "held (was QUARANTINE)" in returned
    assert "“Flash is a supplier moulding defect.”" in returned
    assert "extended by genealogy" in extended and "not held" in extended
    assert "Use as is applied" in extended and "shipped in part before containment" in extended
    scars = rows(response.text, "scars-h")
    assert len(scars) == 1 and "SCAR-2026-9001" in scars[0] and "SUP-0003" in scars[0]
    links = section(response.text, "links-h")
    assert f'href="/capas/{CAPA_A}">CAPA-2026-9001</a>' in links
    assert "Not requested" in text_of(links)
    assert "Mould insert 4 worn" in text_of(section(response.text, "report-h"))
    # the page refreshes its changing parts while the NC runs, lots and SCARs among them
    tasks = section(response.text, "tasks-h")
    assert f'data-progress-url="/nonconformances/{NC_A}/progress"' in tasks
    progress = await bob.get(f"/nonconformances/{NC_A}/progress")
    assert progress.status_code == 200 and progress.headers["cache-control"] == "no-store"
    assert_secure_headers(progress)
    assert "<html" not in progress.text
    assert progress_parts(progress.text) == progress_parts(response.text)
    assert set(progress_parts(progress.text)) >= {
        "progress-tasks",
        "progress-lots",
        "progress-scars",
        "progress-links",
        "progress-timeline",
    }
    assert section(progress.text, "lots-h") == section(response.text, "lots-h")

    # found by its number, the page lives at its process id
    by_number = await bob.get("/nonconformances/NC-2026-9001")
    assert by_number.status_code == 303
    assert by_number.headers["location"] == f"/nonconformances/{NC_A}"

    recall = await bob.get(f"/nonconformances/{NC_C}")
    links = text_of(section(recall.text, "links-h"))
    assert (
        "recall requested" in links and "CUS-0001 · St. Aurelia Hospital 40 SH-2026-0007" in links
    )
    assert f"Suspect lots {story.extended}" in links and "Shipped 40" in links
    assert "Escalated by carol" in links and "1 shipment line" in links
    closed = (await bob.get(f"/nonconformances/{NC_D}")).text
    assert "data-progress-url" not in closed  # completed: nothing to wait for
    awaiting = rows((await bob.get(f"/nonconformances/{NC_B}")).text, "lots-h")
    assert "awaiting the MRB" in awaiting[0] and "ON_HOLD" in awaiting[0]

    unknown = await bob.get("/nonconformances/nc-nowhere")
    assert unknown.status_code == 404 and "nc-nowhere" in text_of(unknown.text)
    assert (await bob.get("/nonconformances/nc-nowhere/progress")).status_code == 404


async def test_capa_list_action_board_and_capa_page(site: Site):
    await write_quality_story(site.sessions)
    ivan = await site.as_user("ivan")
    response = await ivan.get("/capas")
    page = clean(response)
    assert "CAPA-2026-9001" in page and "CAPA-2026-9002" not in page  # closed
    board = text_of(section(response.text, "board-h"))
    # ivan's overdue action first, then alice's by due date
    assert board.index("Ivan Petrov") < board.index("Alice Chen")
    assert "1 overdue" in board and "Train operators on flash inspection" in board
    assert board.index("Add insert wear to the PM plan") < board.index(
        "Drawing DWG-DC-0330: flash limit"
    )
    assert "Replace mould insert 4" not in board  # done
    assert "Polish insert 4" not in board  # an earlier plan round
    listed = rows(response.text, "list-h")
    assert "3 open" in listed[0] and "1 overdue" in listed[0] and "NC-2026-9001" in listed[0]
    assert "CAPA-2026-9002" in text_of((await ivan.get("/capas?status=closed")).text)
    assert "CAPA-2026-9001" not in text_of(
        section((await ivan.get("/capas?owner=carol")).text, "list-h")
    )
    assert ivan.csrf and "Start a CAPA" not in page  # production may not start one

    capa = await ivan.get(f"/capas/{CAPA_A}")
    shown = clean(capa)
    assert "CAPA-2026-9001" in shown and "reopened · plan round 2" in shown
    assert "1 action overdue" in shown
    assert f'href="/nonconformances/{NC_A}">NC-2026-9001</a>' in capa.text
    assert "5 why" in text_of(section(capa.text, "rca-h"))
    plan = text_of(section(capa.text, "plan-h"))
    assert plan.index("Round 2") < plan.index("Round 1")  # the current round first
    assert "Round 1 replaced" in plan and "not effective" in plan
    assert "Why not effective: polishing does not last" in plan
    assert "Insert replaced, FAI report FAI-311" in plan and "overdue" in plan
    assert "through change cr-qs-0001" in plan
    assert "Ivan Petrov" in plan
    effectiveness = text_of(section(capa.text, "effectiveness-h"))
    assert "90 days" in effectiveness and "carol" in effectiveness
    progress = await ivan.get(f"/capas/{CAPA_A}/progress")
    assert progress.status_code == 200
    assert progress_parts(progress.text) == progress_parts(capa.text)
    assert "progress-plan" in progress_parts(progress.text)
    assert (await ivan.get("/capas/CAPA-2026-9001")).headers["location"] == f"/capas/{CAPA_A}"


async def test_report_form_labels_fields_and_refuses_in_words(site: Site):
    ivan = await site.as_user("ivan")
    form = await ivan.get("/nonconformances/new?lot=L2611-0001")
    clean(form)
    for name in ("source", "title", "description", "lots", "part_number", "quantity", "evidence"):
        field_id = re.search(rf'id="([^"]+)" name="{name}"', form.text)
        assert field_id and f'for="{field_id.group(1)}"' in form.text, name
    assert "<legend>Severity</legend>" in form.text
    assert ">L2611-0001</textarea>" in form.text  # a lot page's link fills the lot in
    key = hidden_value(form.text, "form_key")

    forged = await ivan.post("/nonconformances/new", {"title": "x"}, csrf="not-the-token")
    assert forged.status_code == 403 and "reload the page and try again" in text_of(forged.text)
    typed = {
        "form_key": key,
        "source": "in_process",
        "severity": "",
        "title": "Kinks",
        "description": "Kinked tubing found at station 3.",
        "lots": "NOPE-0001",
    }
    missing = await ivan.post("/nonconformances/new", typed)
    assert missing.status_code == 422
    assert alert(missing.text).startswith("Severity:"), alert(missing.text)
    assert 'value="Kinks"' in missing.text and ">NOPE-0001</textarea>" in missing.text
    assert hidden_value(missing.text, "form_key") == key  # the same report, not a second
    unknown = await ivan.post("/nonconformances/new", typed | {"severity": "minor"})
    assert unknown.status_code == 422
    assert "lot NOPE-0001 is not known; check the lot number" in alert(unknown.text)


async def test_capa_form_for_the_quality_groups_only(site: Site):
    await write_quality_story(site.sessions)
    alice = await site.as_user("alice")
    refused = await alice.get("/capas/new")
    assert refused.status_code == 403
    assert "qa, qa-manager, quality-director, admin" in text_of(refused.text)
    assert 'name="title"' not in refused.text
    posted = await alice.post(
        "/capas/new", {"title": "Some CAPA", "problem_statement": "x" * 10, "owner": "alice"}
    )
    assert posted.status_code == 403

    carol = await site.as_user("carol")
    running = (await carol.get(f"/nonconformances/{NC_B}")).text  # its CAPA decision comes
    assert "a QA manager decides whether one is needed" in text_of(section(running, "links-h"))
    assert "/capas/new" not in section(running, "links-h")
    closed = (await carol.get(f"/nonconformances/{NC_D}")).text
    assert f'href="/capas/new?nc={NC_D}"' in section(closed, "links-h")
    form = await carol.get(f"/capas/new?nc={NC_B}")
    clean(form)
    assert 'value="NC-2026-9002"' in form.text
    assert 'value="NC-2026-9002: Kinked tubing at the roller clamp"' in form.text
    assert '<option value="carol" selected>' in form.text  # the owner proposed: herself
    assert '<option value="mes"' not in form.text  # systems own nothing
    wrong = await carol.post(
        "/capas/new",
        {
            "form_key": hidden_value(form.text, "form_key"),
            "title": "Kinked tubing",
            "problem_statement": "Kinks at station 3.",
            "owner": "alice",
            "source": "nonconformance",
            "nc_process_id": "NC-2099-0001",
            "effectiveness_wait_days": "0",
        },
    )
    assert wrong.status_code == 422
    assert "Effectiveness check after (days):" in text_of(wrong.text)
    again = await carol.post(
        "/capas/new",
        {
            "form_key": hidden_value(form.text, "form_key"),
            "title": "Kinked tubing",
            "problem_statement": "Kinks at station 3.",
            "owner": "alice",
            "source": "nonconformance",
            "nc_process_id": "NC-2099-0001",
            "effectiveness_wait_days": "90",
        },
    )
    assert again.status_code == 422
    assert "Nonconformance NC-2099-0001 is not known" in text_of(again.text) or (
        "nonconformance NC-2099-0001 is not known" in text_of(again.text)
    )


async def test_processes_and_tasks_lead_to_the_quality_pages(site: Site):
    await write_quality_story(site.sessions)
    assert pages.process_url("nonconformance", NC_A) == f"/nonconformances/{NC_A}"
    assert pages.process_url("capa", f"{NC_A}.capa") == f"/capas/{quote(NC_A + '.capa')}"
    carol = await site.as_user("carol")
    listed = (await carol.get("/processes")).text
    assert f'href="/nonconformances/{NC_A}"' in listed and f'href="/capas/{CAPA_A}"' in listed


# ---------------------------------------------------------------- on a real run


async def test_an_nc_reported_on_the_form_holds_its_lot(site: Site):
    async with site.sessions() as session:
        lot = await session.scalar(
            select(Lot).where(Lot.part_number == "LC-0110", Lot.status == "RELEASED")
        )
    assert lot is not None
    heidi = await site.as_user("heidi")
    form = await heidi.get(f"/nonconformances/new?lot={lot.lot_number}")
    report = {
        "form_key": hidden_value(form.text, "form_key"),
        "source": "incoming",
        "severity": "major",
        "title": "Luer connectors cracked",
        "description": "Hairline cracks on 4 of 50 connectors.",
        "lots": lot.lot_number,
        "quantity": "12000",
        "evidence": "Photos P-7, P-8",
    }
    posted = await heidi.post("/nonconformances/new", report)
    assert posted.status_code == 303, text_of(posted.text)
    location = posted.headers["location"]
    assert re.fullmatch(r"/nonconformances/nc-[0-9a-f]{16}", location), location
    repeated = await heidi.post("/nonconformances/new", report)  # the same form, sent twice
    assert repeated.headers["location"] == location

    async def contained() -> str | None:
        page = await heidi.get(location)
        if page.status_code != 200 or "data-reload-after" in page.text:
            return None
        lots = rows(page.text, "lots-h")
        return page.text if lots and "ON_HOLD" in lots[0] else None

    page = await eventually(contained, timeout=60, what="the NC page with its lot held")
    shown = text_of(page)
    assert re.search(r"NC-\d{4}-\d{4}", shown) and "Luer connectors cracked" in shown
    assert lot.lot_number in text_of(section(page, "lots-h"))
    assert "LC-0110" in shown and "SUP-0002" in shown  # from the lot
    assert "heidi" in text_of(section(page, "timeline-h"))

    async def a_task() -> Task | None:
        async with site.sessions() as session:
            return await session.scalar(
                select(Task).where(
                    Task.process_id == location.rsplit("/", 1)[1], Task.status == "open"
                )
            )

    task = await eventually(a_task, timeout=60, what="the NC's first task")
    later = await heidi.get(location)
    assert f'href="/tasks/{task.id}"' in section(later.text, "tasks-h")
    carol = await site.as_user("carol")  # qa: she sees the NC's tasks
    task_page = await carol.get(f"/tasks/{task.id}")
    assert task_page.status_code == 200, text_of(task_page.text)
    assert f'href="{location}"' in task_page.text  # the crumbs lead back to the NC page


async def test_a_capa_started_on_the_form_asks_its_owner_for_the_root_cause(site: Site):
    carol = await site.as_user("carol")
    form = await carol.get("/capas/new")
    started = {
        "form_key": hidden_value(form.text, "form_key"),
        "title": "Label smudging on pouches",
        "problem_statement": "Three complaints in a month about unreadable lot numbers.",
        "owner": "alice",
        "source": "complaint",
        "effectiveness_wait_days": "60",
    }
    posted = await carol.post("/capas/new", started)
    assert posted.status_code == 303, text_of(posted.text)
    location = posted.headers["location"]
    assert re.fullmatch(r"/capas/capa-[0-9a-f]{16}", location), location
    assert (await carol.post("/capas/new", started)).headers["location"] == location

    async def asked() -> str | None:
        page = await carol.get(location)
        if page.status_code != 200 or "data-reload-after" in page.text:
            return None
        tasks = section(page.text, "tasks-h")
        return page.text if "/tasks/" in tasks else None

    page = await eventually(asked, timeout=60, what="the CAPA page with its first task")
    shown = text_of(page)
    assert re.search(r"CAPA-\d{4}-\d{4}", shown) and "Label smudging on pouches" in shown
    assert "Complaint trend" in shown and "60 days after the actions" in shown
    assert "Not recorded yet" in text_of(section(page, "rca-h"))
    assert "No plan yet" in text_of(section(page, "plan-h"))
    assert "alice" in text_of(section(page, "tasks-h"))
    listed = (await carol.get("/capas")).text
    assert location in listed


async def test_an_nc_raised_by_a_purchase_leads_back_to_it(site: Site):
    async with site.sessions() as session, session.begin():
        session.add(
            Process(
                id="po-qs-0001",
                run_id="run-qs",
                kind="purchase",
                title="Purchase of tubing",
                business_key="PO-2026-9101",
                initiator="frank",
                status="running",
                current_step="inspection",
            )
        )
        session.add(
            Nonconformance(
                number="NC-2026-9101",
                process_id="po-qs-0001.nc-1",  # raised by the purchase: on its timeline
                source="incoming",
                severity="major",
                title="Failed incoming inspection of R2611-00001",
                description="7 defects in a sample of 32 (accept 1).",
                reported_by="heidi",
                status="investigation",
            )
        )
    carol = await site.as_user("carol")
    page = await carol.get("/nonconformances/po-qs-0001.nc-1")
    facts = text_of(section(page.text, "facts-h"))
    assert "Raised by PO-2026-9101 · purchase" in facts
    assert 'href="/purchases/po-qs-0001">PO-2026-9101</a>' in page.text
