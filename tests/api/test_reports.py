"""Printed reports over REST, PDF and CSV, on the real stack: the signed record manifestation of
an approval signed through the workflow, the audit trail of that process and of a period with
the chain's verification, the device history record and genealogy of a finished lot, the recall
and CAPA reports over the stories the recall and quality tests write; who may read them, the
refusals, the hash (the PDF prints the SHA-256 of the CSV's content) and the `report.produced`
audit rows; a report in Simplified Chinese."""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, text, update

from erp.models import AppUser, AuditEntry
from erp.reports import Producer, Report, Section, hash_of_csv_file, render_csv, render_pdf
from erp.users import create_api_key
from tests.activities.test_trace import Genealogy
from tests.api.conftest import Stack
from tests.api.test_quality_api import write_quality_story
from tests.api.test_recall_api import write_recall_story
from tests.api.test_tasks_api import start_approval
from tests.helpers import eventually
from tests.ui.conftest import Page
from ui.i18n import catalog, translate

ZH = "zh_Hans"
HASH = re.compile(r"Content SHA-256: ([0-9a-f]{64})")


def pdf_text(pdf: bytes) -> str:
    """The text drawing operators of a reportlab PDF (its page streams are ASCII85 + Flate)."""
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    streams = re.finditer(
        rb"/Filter \[ /ASCII85Decode /FlateDecode \] /Length (\d+)\s*>>\s*stream\r?\n", pdf
    )
    pages = [
        zlib.decompress(base64.a85decode(pdf[m.end() : m.end() + int(m.group(1))], adobe=True))
        for m in streams
    ]
    assert pages, "no page content found"
    return b"\n".join(pages).decode("latin-1")


def parse_csv(body: bytes) -> tuple[dict[str, str], list[list[str]], str]:
    """The header lines, the content rows, and the SHA-256 an auditor recomputes."""
    head, blank, content = body.partition(b"\r\n\r\n")
    assert blank, "a report CSV has an empty line after its header"
    assert head.startswith(b"\xef\xbb\xbf")  # UTF-8 for spreadsheets; outside the hash
    header = dict(csv.reader(io.StringIO(head.decode("utf-8-sig"))))
    rows = list(csv.reader(io.StringIO(content.decode())))
    return header, rows, hashlib.sha256(content).hexdigest()


def section(rows: list[list[str]], title: str) -> list[list[str]]:
    """The rows of one section (after its `# title` row, up to the next empty row)."""
    start = rows.index([f"# {title}"]) + 1
    end = next((i for i in range(start, len(rows)) if not rows[i]), len(rows))
    return rows[start:end]


async def get_report(stack: Stack, url: str, headers: dict[str, str]) -> httpx.Response:
    answer = await stack.http.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer


async def both(
    stack: Stack, url: str, headers: dict[str, str], locale: str = "en"
) -> tuple[dict[str, str], list[list[str]], str, str, str]:
    """The report as CSV and as PDF; the PDF prints the hash the CSV's content has."""
    sep = "&" if "?" in url else "?"
    as_csv = await get_report(stack, f"{url}{sep}format=csv", headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    header, rows, digest = parse_csv(as_csv.content)
    assert header[translate(locale, "Content SHA-256")] == digest
    assert as_csv.headers["X-Content-SHA256"] == digest
    as_pdf = await get_report(stack, url, headers)
    assert as_pdf.headers["content-type"] == "application/pdf"
    printed = pdf_text(as_pdf.content)
    if locale == "en":
        assert set(HASH.findall(printed)) == {as_pdf.headers["X-Content-SHA256"]}
    else:  # the headings in the standard CJK font; the hash itself is plain ASCII
        assert b"/STSong-Light" in as_pdf.content
        assert as_pdf.headers["X-Content-SHA256"] in printed
    return header, rows, digest, printed, as_pdf.headers["X-Content-SHA256"]


async def produced(stack: Stack, digest: str) -> list[AuditEntry]:
    async with stack.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "report.produced")
            .where(AuditEntry.after["content_sha256"].astext == digest)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def test_signed_record_and_audit_trail_reports(stack):
    alice, bob, carol = [await stack.token(u) for u in ("alice", "bob", "carol")]
    process_id = await start_approval(stack, alice)

    async def open_task() -> int | None:
        async with stack.sessions() as session:
            return await session.scalar(
                text("SELECT id FROM task WHERE process_id = :p AND status = 'open'"),
                {"p": process_id},
            )

    task_id = await eventually(open_task, what="the approval task")
    decided = await stack.http.post(
        f"/api/v1/tasks/{task_id}/decision",
        json={"outcome": "approve", "password": "lotline-demo", "comment": "plan ok"},
        headers=bob,
    )
    assert decided.status_code == 200, decided.text

    url = f"/api/v1/reports/signatures/{process_id}"
    header, rows, digest, printed, pdf_digest = await both(stack, url, carol)
    assert pdf_digest == digest  # the same record states the same content, in either form
    assert header["Produced by"] == "Carol Diaz (carol)"
    produced_at = datetime.fromisoformat(header["Produced at (UTC)"].replace("Z", "+00:00"))
    assert abs(produced_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert rows[0] == ["Signed record manifestation", process_id]
    summary = section(rows, "Signatures")
    assert summary[0][:4] == ["Printed name", "User", "Signed at (UTC)", "Meaning"]
    (signature,) = summary[1:]
    assert signature[0:2] == ["Bob Okafor", "bob"] and signature[3] == "approved"
    assert signature[4] == "Approve SOP-QA-014 rev D" and signature[5] == "yes"
    facts = dict(section(rows, "Signature 1"))
    assert facts["Outcome signed"] == "approve" and facts["Comment"] == "plan ok"
    assert re.fullmatch(r"[0-9a-f]{64}", facts["SHA-256 of the signed content"])
    assert facts["Date and time (UTC)"].endswith(" UTC")
    for words in ("Bob Okafor", "approved", "Carol Diaz \\(carol\\)", "Signed record manifest"):
        assert words in printed, words
    recorded = await produced(stack, digest)
    assert [(r.actor, r.after["format"]) for r in recorded] == [("carol", "csv"), ("carol", "pdf")]
    page = Page(stack.http)
    assert (await page.login("carol")).status_code == 303
    process_page = (await page.get(f"/processes/{process_id}")).text
    assert f'href="/reports/signatures/{process_id}"' in process_page
    assert recorded[0].entity_id == f"signatures:{process_id}"

    # the audit trail of the process: its rows, and the chain verified when it was produced
    url = f"/api/v1/reports/audit-trail?process_id={process_id}"
    _header, rows, digest, printed, _pdf = await both(stack, url, carol)
    verification = dict(section(rows, "Verification of the audit trail"))
    assert verification["Hash chain"] == "intact" and int(verification["Rows verified"]) > 10
    assert verification["E-signatures that no longer fit"] == "none"
    entries = section(rows, "Audit rows")
    actions = [r[3] for r in entries[1:]]
    assert actions[0] == "process.started" and "task.decided" in actions
    assert "intact" in printed
    # a period: it holds the report rows just written
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    period = await get_report(stack, f"/api/v1/reports/audit-trail?format=csv&since={since}", carol)
    _header, rows, _digest = parse_csv(period.content)
    assert "report.produced" in {r[3] for r in section(rows, "Audit rows")[1:]}

    refusals = [
        ("/api/v1/reports/audit-trail?process_id=x", alice, 403, "audit:read is needed"),
        ("/api/v1/reports/audit-trail?process_id=x", stack.mes, 403, "audit:read is needed"),
        ("/api/v1/reports/audit-trail?format=csv", carol, 422, "name a record"),
        (
            "/api/v1/reports/audit-trail?since=2026-05-02T00:00:00Z&until=2026-05-01T00:00:00Z",
            carol,
            422,
            "the period is empty",
        ),
        ("/api/v1/reports/audit-trail?since=yesterday", carol, 422, "since"),
        (f"/api/v1/reports/signatures/{process_id}?format=xls", carol, 422, "pdf or csv"),
        ("/api/v1/reports/signatures/apr-nothing", carol, 404, "was not found"),
        ("/api/v1/reports/signatures/x", {}, 401, "authentication required"),
    ]
    for url, headers, status, words in refusals:
        answer = await stack.http.get(url, headers=headers)
        assert answer.status_code == status, (url, answer.text)
        assert words in answer.json()["detail"], (url, answer.text)
    chinese = await stack.http.get(
        f"/api/v1/reports/signatures/{process_id}?format=xls",
        headers=carol | {"Accept-Language": "zh-CN"},
    )
    assert chinese.status_code == 422
    assert chinese.json()["detail"] == translate(
        ZH, "format is pdf or csv, not '%(format)s'", format="xls"
    )
    for url in (  # values that break parsers and databases: refused, never a server error
        "/api/v1/reports/audit-trail?since=0001-01-01T00:00:00%2B14:00",
        "/api/v1/reports/audit-trail?until=9999-12-31T23:59:59-14:00",
        "/api/v1/reports/audit-trail?entity_id=%00",
        "/api/v1/reports/signatures/%00",
        "/api/v1/reports/device-history/%00",
        "/api/v1/reports/genealogy/(01)0950600013435",
        "/api/v1/reports/capa/" + "x" * 201,
        "/reports/audit-trail?until=9999-12-31",
    ):
        answer = await stack.http.get(url, headers=carol)
        assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text[:300])


async def test_device_history_genealogy_and_recall_reports(stack):
    story = await write_recall_story(stack.sessions)  # the genealogy of tests.activities.test_trace
    shape = Genealogy()
    async with stack.sessions() as session, session.begin():
        # each finished lot as its work order registers it (the generator links only the edges)
        await session.execute(
            text(
                "UPDATE lot SET work_order_id = wo.id FROM work_order wo "
                "WHERE wo.number = 'WO-' || lot.lot_number AND lot.origin = 'production'"
            )
        )
    carol = await stack.token("carol")

    _header, rows, digest, printed, pdf_digest = await both(
        stack, "/api/v1/reports/device-history/TR-F3", carol
    )
    assert pdf_digest == digest and rows[0] == ["Device history record", "TR-F3"]
    work_order = dict(section(rows, "Work order"))
    assert work_order["Work order"] == "WO-TR-F3" and work_order["Status"] == "closed"
    components = section(rows, "Components consumed")
    assert components[0][:2] == ["Part", "Lot"]
    assert {r[1] for r in components[1:]} == shape.finished_parents(3)
    assert dict(section(rows, "The device"))["Lot"] == "TR-F3"
    assert "WO-TR-F3" in printed and "TR-F3" in printed
    page = Page(stack.http)
    assert (await page.login("heidi")).status_code == 303
    finished = (await page.get("/lots/TR-F3")).text
    assert 'href="/reports/device-history/TR-F3"' in finished
    tubing = (await page.get("/lots/TR-T2")).text
    assert "/reports/device-history/" not in tubing and 'href="/reports/genealogy/TR-T2"' in tubing
    for url, status, words in (
        ("/api/v1/reports/device-history/TR-T2", 422, "not produced by a work order"),
        ("/api/v1/reports/device-history/NO-SUCH-LOT", 404, "NO-SUCH-LOT"),
        ("/api/v1/reports/genealogy/NO-SUCH-LOT?format=csv", 404, "NO-SUCH-LOT"),
    ):
        answer = await stack.http.get(url, headers=carol)
        assert answer.status_code == status, (url, answer.text)
        assert words in answer.json()["detail"], answer.text

    _header, rows, digest, _printed, pdf_digest = await both(
        stack,
        "/api/v1/reports/genealogy/TR-F3",
        stack.mes,  # a system with lots:read
    )
    assert pdf_digest == digest
    backward = {r[1] for r in section(rows, "Came from (backward)")[1:] if r[0] != "0"}
    parents = shape.finished_parents(3)
    grandparents = {
        g for p in parents if p.startswith("TR-S") for g in shape.subassembly_parents(int(p[4:]))
    }
    assert backward == parents | grandparents
    shipped = {r[3] for r in section(rows, "Shipments of the lots it went into")[1:]}
    assert shipped == shape.consignees(3)
    async with stack.sessions() as session, session.begin():
        no_lots = {"X-API-Key": await create_api_key(session, "reports-tasks", "mes", "tasks:read")}
    refused = await stack.http.get("/api/v1/reports/genealogy/TR-F3", headers=no_lots)
    assert refused.status_code == 403 and "lots:read" in refused.json()["detail"]

    # the recall report in the common framing, with its CSV; the old address prints the same
    url = f"/api/v1/reports/recall/{story.recall}"
    _header, rows, digest, printed, pdf_digest = await both(stack, url, carol)
    assert pdf_digest == digest and rows[0] == ["Recall report", "RCL-2026-9001"]
    board = section(rows, "Reconciliation per consignee")
    assert [r[0].split()[0] for r in board[1:]] == ["CUS-0001", "CUS-0002", "CUS-0003"]
    assert {r[0] for r in section(rows, "Scope")[5:][1:]} >= {"TR-T2", "TR-F3"}
    old = await get_report(stack, f"/api/v1/recalls/{story.recall}/report.pdf", carol)
    assert old.headers["X-Content-SHA256"] == digest
    assert set(HASH.findall(pdf_text(old.content))) == {digest}


async def test_capa_report_and_a_report_in_chinese(stack):
    await write_quality_story(stack.sessions)
    dave = await stack.token("dave")
    _header, rows, digest, printed, pdf_digest = await both(
        stack, "/api/v1/reports/capa/CAPA-2026-9001", dave
    )
    assert pdf_digest == digest and rows[0] == ["CAPA report", "CAPA-2026-9001"]
    facts = dict(section(rows, "CAPA"))
    assert (facts["Process"], facts["Status"], facts["Nonconformance"]) == (
        "capa-qs-0001",
        "actions",
        "NC-2026-9001",
    )
    actions = section(rows, "Plan round 2 (current)")
    assert [(r[0], r[3], r[5]) for r in actions[1:]] == [
        ("1", "alice", "completed"),
        ("2", "ivan", "planned (overdue)"),
        ("3", "alice", "planned"),
        ("4", "alice", "waiting_change"),
    ]
    first_round = section(rows, "Plan round 1")
    assert dict(first_round[:5])["Effectiveness"] == "not_effective"
    assert first_round[5][:3] == ["No.", "Kind", "Action"]
    missing = await stack.http.get("/api/v1/reports/capa/CAPA-2099-0001", headers=dave)
    assert missing.status_code == 404

    # in the pages: the link on the CAPA page, the index, a report produced from a session
    page = Page(stack.http)
    assert (await page.login("carol")).status_code == 303
    capa_page = await page.get("/capas/capa-qs-0001")
    assert 'href="/reports/capa/capa-qs-0001"' in capa_page.text
    index = await page.get("/reports")
    assert index.status_code == 200 and 'action="/reports/audit-trail"' in index.text
    from_page = await page.get("/reports/capa/capa-qs-0001?format=csv")
    assert from_page.status_code == 200
    _header, _rows, same = parse_csv(from_page.content)
    assert same == digest  # the same record, the same content, whoever asks
    (row,) = [r for r in await produced(stack, digest) if r.actor == "carol"]
    assert row.source == "ui" and row.after["report"] == "capa"
    blank = await page.get("/reports/lot?lot=&kind=genealogy")
    assert blank.status_code == 422 and "nter a lot number or scan its label" in blank.text

    async with stack.sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "dave").values(locale="zh_Hans")
        )
    header, rows, chinese, _printed, pdf_digest = await both(
        stack, "/api/v1/reports/capa/CAPA-2026-9001", dave, ZH
    )
    title, produced_by = translate(ZH, "CAPA report"), translate(ZH, "Produced by")
    assert title != "CAPA report" and produced_by != "Produced by"  # both translated
    assert rows[0] == [title, "CAPA-2026-9001"] and chinese == pdf_digest != digest
    assert header[produced_by] == "Dave Müller (dave)"
    assert dict(section(rows, translate(ZH, "CAPA")))[translate(ZH, "Process")] == "capa-qs-0001"


def test_the_framing_without_a_database():
    """A value longer than a page still prints; a spreadsheet formula is not run; the header
    lines are outside the hash, so who and when do not change it."""
    long_text = " ".join(["tubing"] * 8000)
    report = Report(
        kind="test",
        title="Framing",
        subject="S-1",
        sections=[
            Section("Facts", facts=[("Long", long_text)]),
            Section("Table", columns=["Formula", "Quantity"], rows=[["=HYPERLINK(1)", "-5"]]),
        ],
    )
    now = datetime.now(UTC)
    carol, dave = Producer("carol", "Carol Diaz", now), Producer("dave", "Dave Müller", now)
    first, second = render_csv(report, carol), render_csv(report, dave)
    assert first.content != second.content and first.content_sha256 == second.content_sha256
    assert hash_of_csv_file(first.content) == first.content_sha256
    _header, rows, _digest = parse_csv(first.content)
    assert section(rows, "Table")[1] == ["'=HYPERLINK(1)", "-5"]
    pdf = render_pdf(report, dave)
    assert pdf.content_sha256 == first.content_sha256
    assert set(HASH.findall(pdf_text(pdf.content))) == {first.content_sha256}
    assert pdf_text(pdf.content).count("page ") >= 3  # the long fact ran over pages


def test_every_report_heading_has_a_simplified_chinese_translation():
    """The report modules' `_("…")` texts (tests/ui/test_translations.py scans ui/ and api/)."""
    chinese = catalog(ZH)
    root = Path(__file__).resolve().parents[2] / "erp"
    missing = {}
    for path in [root / "reports.py", *sorted(root.glob("report_*.py"))]:
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(call, ast.Call)
                and getattr(call.func, "id", None) == "_"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and call.args[0].value not in chinese
            ):
                missing[call.args[0].value] = path.name
    assert not missing, f"add these to ui/locales/zh_Hans/reports.po: {missing}"
