"""The printed reports in the reader's language: the audit trail's action as a label beside the
action as recorded (PDF and CSV, on a real migrated PostgreSQL), and the other reports' stored
values (statuses, kinds, roles) as their label with the recorded value in parentheses."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from erp.audit import AuditRecord, append_audit
from erp.report_audit import AuditSelection, audit_trail_report
from erp.reports import Producer, Report, label, plain, recorded, render_csv, render_pdf
from ui.i18n import gettext_for, translate
from workflows.wording import reason_wording, said

ZH = "zh_Hans"
WRITTEN = [
    ("task.decided", "task", "41"),
    ("master_data.item_revision", "item", "PN-1001"),
    ("capa.planning", "capa", "CAPA-2026-0001"),
    ("scar.reviewed", "scar", "SCAR-1"),  # no code writes it: read as humanize gives it
]


async def _report(sessions, locale: str) -> Report:
    async with sessions() as session:
        since = datetime.now(UTC) - timedelta(hours=1)
        return await audit_trail_report(session, AuditSelection(since=since), gettext_for(locale))


def _rows(report: Report, locale: str) -> list[dict[str, str]]:
    """The audit rows of the report's CSV file, by their (translated) column headings."""
    file = render_csv(
        report, Producer("carol", "Carol Diaz", datetime.now(UTC)), plain(gettext_for(locale))
    )
    content = file.content.partition(b"\r\n\r\n")[2].decode()
    lines = list(csv.reader(io.StringIO(content)))
    start = lines.index([f"# {translate(locale, 'Audit rows')}"]) + 1
    heading, *rows = lines[start:]
    return [dict(zip(heading, r, strict=True)) for r in rows if r]


def _pdf_strings(pdf: bytes) -> str:
    """The texts an uncompressed reportlab PDF draws: Helvetica's as Latin-1, the CJK font's as
    UTF-16 (UniGB-UCS2-H)."""
    found = []
    for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", pdf, re.S):
        raw = re.sub(
            rb"\\([0-7]{1,3}|.)",
            lambda m: bytes([int(m.group(1), 8)]) if m.group(1)[:1].isdigit() else m.group(1),
            literal,
        )
        found.append(raw.decode("latin-1"))
        if len(raw) % 2 == 0:
            found.append(raw.decode("utf-16-be", errors="replace"))
    return "\n".join(found)


async def test_the_audit_trail_report_prints_the_action_label_beside_the_recorded_action(
    sessions,
) -> None:
    for action, entity_type, entity_id in WRITTEN:
        async with sessions() as session, session.begin():
            await append_audit(
                session,
                AuditRecord(
                    actor="bob",
                    on_behalf_of="o'brien&co",
                    action=action,
                    entity_type=entity_type,
                    entity_id=entity_id,
                    source="cli",
                ),
            )
    chinese = await _report(sessions, ZH)
    action, action_label = translate(ZH, "Action"), translate(ZH, "Action label")
    assert action_label == "操作名称"
    rows = {r[action]: r for r in _rows(chinese, ZH)}  # the raw action keeps its own column
    assert set(rows) >= {a for a, _, _ in WRITTEN}
    assert rows["task.decided"][action_label] == "任务已决定"
    assert rows["master_data.item_revision"][action_label] == "主数据：物料新版本已生效"
    assert rows["capa.planning"][action_label] == "CAPA 状态：制定计划"
    assert rows["scar.reviewed"][action_label] == "scar.reviewed"
    # a value inside a translated text is printed as it is, not HTML-escaped
    assert rows["task.decided"][translate(ZH, "Who")] == "bob（代 o'brien&co）"

    pdf = render_pdf(
        chinese,
        Producer("carol", "Carol Diaz", datetime.now(UTC)),
        plain(gettext_for(ZH)),
        compress=False,
    )
    printed = _pdf_strings(pdf.content)
    assert "任务已决定" in printed and "task.decided" in printed  # the label and the record
    assert "&amp;" not in printed and "&#39;" not in printed

    english = await _report(sessions, "en")
    (audit_rows,) = [s for s in english.sections if s.title == "Audit rows"]
    assert audit_rows.columns[3:5] == ["Action", "Action label"]
    by_action = {r[3]: r[4] for r in audit_rows.rows}
    assert by_action["task.decided"] == "decided"  # what the timelines show
    assert by_action["master_data.item_revision"] == "master data: item revision"


def test_a_stored_value_prints_as_recorded_with_its_label_for_a_chinese_reader() -> None:
    zh, en = plain(gettext_for(ZH)), plain(gettext_for("en"))
    assert recorded(zh, "lot status", "RELEASED") == "已放行 (RELEASED)"
    assert recorded(zh, "capa status", "root_cause") == "根本原因分析 (root_cause)"
    assert recorded(zh, "recall lot role", "affected") != "affected"
    assert recorded(zh, "lot status", "NO_SUCH") == "NO_SUCH"  # nothing to say beside it
    assert recorded(zh, "lot status", None) == ""
    assert recorded(en, "lot status", "RELEASED") == "RELEASED"  # English: as it always was
    assert recorded(en, "capa status", "root_cause") == "root_cause"
    assert label(zh, "audit action", "lot.held") == "批次已暂扣"
    assert label(en, "audit action", "lot.held") == "lot.held"


async def test_the_audit_trail_report_prints_a_recorded_reason_in_the_readers_language(
    sessions,
) -> None:
    reason = said("plan rejected by %(approver)s: %(reason)s", approver="dave", reason="no owner")
    async with sessions() as session, session.begin():
        for entity_id, after in (
            ("CAPA-REASON-1", {"status": "planning", "reason_wording": reason_wording(reason)}),
            ("CAPA-REASON-2", {"status": "planning"}),  # an older row: no wording stored
        ):
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="capa.planning",
                    entity_type="capa",
                    entity_id=entity_id,
                    reason=str(reason),
                    after=after,
                    source="worker",
                ),
            )
    since = datetime.now(UTC) - timedelta(hours=1)
    for locale, worded, older in (
        (ZH, "计划被 dave 驳回：no owner (plan rejected by dave: no owner)", str(reason)),
        ("en", str(reason), str(reason)),
    ):
        async with sessions() as session:
            report = await audit_trail_report(
                session, AuditSelection(since=since), gettext_for(locale), locale
            )
        why, record = translate(locale, "Why"), translate(locale, "Record")
        by_record = {r[record]: r[why] for r in _rows(report, locale)}
        assert by_record["capa CAPA-REASON-1"] == worded
        assert by_record["capa CAPA-REASON-2"] == older  # shown as recorded
