"""The audit trail's recorded actions read in the page's language, the recorded value beside.

The scan and the labels need no servers; the page check has a person who reads Chinese open the
audit page. The scan (`tests/ui/audit_action_scan.py`) reads every action the code can write,
the composed ones (`f"process.{data.status}"`) with the values the workflows pass, so a new
status or a new action fails here until it is listed and translated."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import update

from erp.models import AppUser
from schemas.wording import Said
from tests.ui import audit_action_scan as scan
from tests.ui.conftest import Site, text_of
from ui import i18n, values
from ui.audit_actions import AUDIT_ACTION_LABELS, RECORDED_ACTIONS, humanize

ZH = "zh_Hans"


def _chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def test_every_action_the_code_writes_has_a_label() -> None:
    literal, templates = scan.written()
    unknown = sorted(t for t, found in templates.items() if found is None)
    assert not unknown, f"tell tests/ui/audit_action_scan.expand what these can be: {unknown}"
    blind = sorted(t for t, found in templates.items() if not found)
    assert not blind, f"the scan no longer finds the values of: {blind}"
    composed = set().union(*(found or set() for found in templates.values()))
    # the scan finds them: keyword literals, either side of an `if`, a helper's argument
    assert {
        "task.decided",
        "login.succeeded",
        "lot.held",
        "task.claim_refused",
        "work_order.produced",
        "api_key.created",
    } <= literal
    # and the composed ones, through the workflows' arguments and defaults
    assert {
        "process.completed",
        "process.failed",  # shipment/work order: _finish(…, process_status="failed")
        "process.cancelled",
        "master_data.item_revision",
        "master_data.supplier_status",
        "capa.planning",
        "capa.not_effective",
        "change.ccb",
        "customer_order.shipping",
        "nonconformance.containment",
        "recall.scoping",
        "purchase.approved",  # purchase: _finish(po_status, …) and SetPurchaseStatusInput
        "lot.scrap",
        "recall.check_failed",
        "recall.termination_refused",
    } <= composed
    assert "process.running" not in composed  # a running step is `process.step`
    missing = sorted((literal | composed) - set(RECORDED_ACTIONS))
    assert not missing, (
        f"add them to ui/audit_actions.py and ui/locales/zh_Hans/audit.po: {missing}"
    )


def test_each_action_has_its_own_label_and_its_chinese() -> None:
    assert len(set(RECORDED_ACTIONS)) == len(RECORDED_ACTIONS)
    shared = [label for label, n in Counter(AUDIT_ACTION_LABELS.values()).items() if n > 1]
    assert not shared, f"two actions read the same: {shared}"
    table = i18n.catalog(ZH)
    untranslated = [
        action
        for action, label in AUDIT_ACTION_LABELS.items()
        if not _chinese(table.get(i18n.keyed("audit action", label), ""))
    ]
    assert not untranslated, f"add msgctxt 'audit action' entries to audit.po: {untranslated}"


def test_an_action_reads_in_chinese_and_as_the_timelines_show_it_in_english() -> None:
    assert AUDIT_ACTION_LABELS["task.decided"] == "decided"
    assert AUDIT_ACTION_LABELS["process.started"] == "process started"
    assert values.stored("audit action", "task.decided", "en") == "decided"
    assert values.stored("audit action", "task.decided", ZH) == "任务已决定"
    assert values.stored("audit action", "lot.held", ZH) == "批次已暂扣"
    # a master-data change, a status a workflow sets, a disposition, a refusal
    assert values.stored("audit action", "master_data.item_revision", "en") == (
        "master data: item revision"
    )
    assert values.stored("audit action", "master_data.item_revision", ZH) == (
        "主数据：物料新版本已生效"
    )
    assert values.stored("audit action", "capa.plan_approval", ZH) == "CAPA 状态：计划批准"
    assert values.stored("audit action", "recall.hazard_evaluation", ZH) == (
        "召回状态：健康危害评估"
    )
    assert values.stored("audit action", "lot.use_as_is", ZH) == "批次处置：照常使用"
    assert values.stored("audit action", "task.decision_refused", ZH) == "任务决定被拒绝"
    # an action no code writes any more (an old row) reads as humanize gives it
    assert values.stored("audit action", "scar.reviewed", ZH) == humanize("scar.reviewed")


def test_every_status_a_workflow_sets_is_in_its_label_table() -> None:
    """The record pages and the reports show a status with `stored("capa status")`: a status a
    workflow sets and the table does not list would read as stored (`actions` → 操作)."""
    tables = {
        "capa status": "SetCapaStatusInput",
        "nc status": "SetNcStatusInput",
        "recall status": "SetRecallStatusInput",
        "order status": "SetOrderStatusInput",
        "purchase order status": "SetPurchaseStatusInput",
        "process status": "UpdateProcessInput",
    }
    missing = {
        context: sorted(set(scan.passed_to(model, "status")) - set(values.VALUE_LABELS[context]))
        for context, model in tables.items()
    }
    assert not {c: m for c, m in missing.items() if m}, f"add to ui/values.py: {missing}"
    assert values.stored("capa status", "actions", ZH) == "措施实施"
    assert values.stored("purchase order status", "closed", ZH) == "已关闭"


def test_every_outcome_a_task_offers_reads_in_chinese_by_its_value() -> None:
    """A message names a decision by its outcome's value ("…completed: %(outcome)s.") and the
    pages show a stored outcome with `stored("outcome")`: both read the outcome's label."""
    names = scan.outcome_names()
    assert {"approve", "escalate_to_recall", "retry", "pick_again", "release"} <= names
    english = {name: values.stored("outcome", name, "en") for name in names}
    in_messages = {
        name: i18n.translate_message(ZH, Said("%(outcome)s", outcome=name)) for name in names
    }
    on_pages = {name: values.stored("outcome", name, ZH) for name in names}
    assert not [n for n, text in in_messages.items() if not _chinese(text)]
    assert not [n for n, text in on_pages.items() if not _chinese(text)]
    assert english["escalate_to_recall"] == "escalate to recall"  # English pages unchanged
    assert in_messages["escalate_to_recall"] == on_pages["escalate_to_recall"] == "升级为召回"
    assert in_messages["release"] == "放行"  # the lot's release, not a task released (释放)
    assert in_messages["approve"] == "批准"
    said = Said("Decision recorded. The task is completed: %(outcome)s.", outcome="no_capa")
    assert "不需要 CAPA" in i18n.translate_message(ZH, said)
    # and the task page's label of each outcome, also one passed on as an argument
    labels = scan.outcome_names("label")
    assert {"Approve termination", "Pick again", "Cancel the shipment"} <= labels
    table = i18n.catalog(ZH)
    assert not sorted(label for label in labels if not _chinese(table.get(label, "")))


async def test_the_audit_page_shows_actions_in_chinese_with_the_recorded_value(
    site: Site,
) -> None:
    english = await site.as_user("carol")
    rows = (await english.get("/audit")).text.split("<tbody>")[1]
    assert "<code>login.succeeded</code>" in rows and "登录成功" not in rows

    async with site.sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "carol").values(locale="zh_Hans")
        )
    chinese = await site.as_user("carol")
    page = await chinese.get("/audit")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1]
    assert "<code>login.succeeded</code>" in rows  # an auditor still reads what was recorded
    assert "登录成功" in text_of(rows)
