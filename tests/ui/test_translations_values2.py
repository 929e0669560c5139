"""The last recorded values printed raw, now in the reader's language: an audit row's outcome,
a nonconformance's severity, a lot's disposition and an e-signature's meaning (label tables of
`ui.values`, the reports' `recorded`, the pages' `stored` filter); a form's `enum` problem with
its "or" translated; a `%(outcome)s` read as the label of the task's own spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from erp.audit import AuditRecord, append_audit
from erp.report_audit import AuditSelection, audit_trail_report
from erp.report_capa import signatures_section, timeline_section
from erp.reports import plain, recorded
from schemas.api import AuditOut, SignatureOut
from schemas.human_task import OutcomeSpec, SignatureMeaning
from schemas.quality import Disposition, Severity
from schemas.wording import Said
from ui import i18n, values
from ui.pages import templates
from ui.quality_views import DISPOSITION_LABELS, SEVERITY_LABELS
from ui.supply_views import form_problem

ZH = "zh_Hans"
TEMPLATES = Path(__file__).resolve().parents[2] / "ui" / "templates"
ENUMS: dict[str, type[StrEnum]] = {
    "nc severity": Severity,
    "nc disposition": Disposition,
    "signature meaning": SignatureMeaning,
}


def test_every_value_of_the_enums_has_a_label_and_a_chinese_translation() -> None:
    chinese = i18n.catalog(ZH)
    for context, enum in ENUMS.items():
        table = values.VALUE_LABELS[context]
        assert set(table) == {member.value for member in enum}, context
        for label in table.values():
            assert i18n.keyed(context, label) in chinese, (context, label)
    assert set(values.VALUE_LABELS["audit outcome"]) == {"ok", "refused"}  # AuditEntry.outcome
    # the reports label a severity and a disposition as the quality pages do
    assert {s.value: label for s, label in SEVERITY_LABELS.items()} == values.VALUE_LABELS[
        "nc severity"
    ]
    assert DISPOSITION_LABELS == values.VALUE_LABELS["nc disposition"]


def test_the_values_read_in_chinese_and_english_stays_as_it_was() -> None:
    zh, en = plain(i18n.gettext_for(ZH)), plain(i18n.gettext_for("en"))
    assert recorded(zh, "audit outcome", "refused") == "已拒绝 (refused)"
    assert recorded(zh, "audit outcome", "ok") == "成功 (ok)"
    assert recorded(zh, "nc severity", "critical") == "严重 (critical)"
    # an NC lot's role in the DHR report, as the NC page shows it
    assert recorded(zh, "nc lot role", "extended") == "经谱系扩展 (extended)"
    assert recorded(zh, "nc lot role", "affected") == "受影响 (affected)"
    assert recorded(zh, "nc disposition", "use_as_is") == "照常使用 (use_as_is)"
    assert recorded(zh, "signature meaning", "approved") == "批准 (approved)"
    assert recorded(zh, "signature meaning", "authored") == "编制 (authored)"
    for context, value in (
        ("audit outcome", "refused"),
        ("nc severity", "critical"),
        ("nc disposition", "return_to_supplier"),
        ("signature meaning", "released"),
    ):
        assert recorded(en, context, value) == value  # an English report: as recorded
    assert values.stored("signature meaning", "reviewed", ZH) == "审核"
    assert values.stored("signature meaning", "reviewed", "en") == "reviewed"


def test_the_capa_and_recall_sections_print_meaning_and_outcome_with_their_labels() -> None:
    now = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    signature = SignatureOut(
        id=1, signer="dave", printed_name="Dave Ng", meaning="approved", signed_at=now,
        record_hash="ab" * 32,
    )  # fmt: skip
    refused = AuditOut(
        id=7, recorded_at=now, actor="bob", on_behalf_of=None, action="capa.planning",
        entity_type="capa", entity_id="CAPA-1", outcome="refused", reason="", before=None,
        after=None, workflow_id=None, activity=None, source="ui", row_hash="cd" * 32,
    )  # fmt: skip
    zh, en = plain(i18n.gettext_for(ZH)), plain(i18n.gettext_for("en"))
    assert signatures_section([signature], zh).rows[0][2] == "批准 (approved)"
    assert timeline_section([refused], zh).rows[0][5] == "已拒绝 (refused)"
    assert signatures_section([signature], en).rows[0][2] == "approved"
    assert timeline_section([refused], en).rows[0][5] == "refused"


async def test_the_audit_trail_report_prints_a_refused_rows_outcome_in_chinese(sessions) -> None:
    async with sessions() as session, session.begin():
        await append_audit(
            session,
            AuditRecord(
                actor="bob",
                action="task.decided",
                entity_type="task",
                entity_id="OUTCOME-ZH-1",
                outcome="refused",
                source="ui",
            ),
        )
    since = datetime.now(UTC) - timedelta(hours=1)
    for locale, expected in ((ZH, "已拒绝 (refused)"), ("en", "refused")):
        async with sessions() as session:
            report = await audit_trail_report(
                session,
                AuditSelection(entity_id="OUTCOME-ZH-1", since=since),
                i18n.gettext_for(locale),
            )
        (rows,) = [s for s in report.sections if s.title == i18n.translate(locale, "Audit rows")]
        outcome = rows.columns.index(i18n.translate(locale, "Outcome"))
        assert [r[outcome] for r in rows.rows] == [expected]


def test_a_pages_signature_meaning_reads_in_chinese() -> None:
    for name in (
        "quality_nc.html",
        "quality_capa.html",
        "recall.html",
        "process.html",
        "change.html",
    ):
        assert "{{ s.meaning }}" not in (TEMPLATES / name).read_text(encoding="utf-8"), name
    # task.html (another area's file) still prints `d.signature.meaning` as recorded: docs/i18n.md
    line = next(
        text
        for text in (TEMPLATES / "quality_nc.html").read_text(encoding="utf-8").splitlines()
        if "s.meaning" in text
    )
    snippet = templates.env.from_string(line)
    signature = {
        "printed_name": "Dave Ng",
        "signer": "dave",
        "meaning": "approved",
        "signed_at": None,
    }
    chinese = snippet.render(d={"signatures": [signature]}, locale=ZH, _=i18n.gettext_for(ZH))
    assert "· 批准 ·" in chinese and "approved" not in chinese, chinese
    english = snippet.render(d={"signatures": [signature]}, locale="en", _=i18n.gettext_for("en"))
    assert "· approved ·" in english, english


class _Filter(BaseModel):
    scope: Literal["all", "mine", "team"]


def test_a_forms_enum_problem_says_or_in_chinese() -> None:
    try:
        _Filter.model_validate({"scope": "nobody"})
    except ValidationError as err:
        problem = form_problem(err, labels={"scope": "Scope"})
    english = i18n.translate_message("en", problem)
    assert english == "Scope: choose one of 'all', 'mine' or 'team'", english
    chinese = i18n.translate_message(ZH, problem)
    assert "'all', 'mine' 或 'team'" in chinese and " or " not in chinese, chinese


def test_an_outcome_reads_as_the_label_of_the_tasks_own_spec() -> None:
    spec = [
        OutcomeSpec(
            name="approve", label="Approve termination", signature_meaning=SignatureMeaning.APPROVED
        ),
        OutcomeSpec(name="reject", label="Reject"),
    ]

    class _Task:
        outcomes = spec

    assert i18n.outcome_labels(_Task()) == {"approve": "Approve termination", "reject": "Reject"}
    as_dicts = type("T", (), {"outcomes": [o.model_dump() for o in spec]})()
    assert i18n.outcome_labels(as_dicts) == i18n.outcome_labels(_Task())
    decided = Said("Decision recorded. The task is completed: %(outcome)s.", outcome="approve")
    own = i18n.outcome_labels(_Task())
    assert i18n.translate_message(ZH, decided, own) == "决定已记录。任务已完成：批准终止。"
    assert i18n.translate_message(ZH, decided) == "决定已记录。任务已完成：批准。"  # no task
    assert i18n.translate_message("en", decided, own) == (
        "Decision recorded. The task is completed: approve."
    )
    # a refusal quoting the outcome, nested in another wording, reads the same way
    refused = Said(
        "'%(outcome)s' is a signing decision: re-enter your password to sign", outcome="approve"
    )
    assert "批准终止" in i18n.translate_message(ZH, refused, own)
    # a spec label the catalog does not know: the outcome's own label
    unknown = {"approve": "Approve the lot's odd thing"}
    assert i18n.translate_message(ZH, decided, unknown) == "决定已记录。任务已完成：批准。"


def test_the_task_pages_refusal_reads_the_outcome_as_the_tasks_label() -> None:
    """task.html renders `error|sentence(outcomes=task_outcomes)`, the labels of the task's spec
    (`ui/routes.py`): the page's refusal names the outcome as the task names it."""
    import html

    from ui.pages import templates

    refused = Said(
        "'%(outcome)s' is a signing decision: re-enter your password to sign", outcome="approve"
    )
    line = templates.env.from_string("{{ error|sentence(outcomes=task_outcomes) }}")
    own = {"approve": "Approve termination"}
    chinese = line.render(error=refused, task_outcomes=own, locale=ZH)
    assert "批准终止" in chinese and chinese.endswith("。")
    assert "批准终止" not in line.render(error=refused, task_outcomes=None, locale=ZH)
    english = html.unescape(line.render(error=refused, task_outcomes=own, locale="en"))
    assert english == "'approve' is a signing decision: re-enter your password to sign."
