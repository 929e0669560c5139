"""A process step's reason reads in the person's language: the workflow's `said(…)` reason goes to
`update_process` (and `cancel_task`, and an activity's own audit rows) with its wording, which the
audit row keeps in `after["reason_wording"]` while `reason` stays the English; the timelines, the
task history and the audit page show it through `ui.i18n.audit_reason`. The supply activities'
registration refusals and shortages carry their wording as data too."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.process import ProcessActivities
from activities.purchase import PurchaseActivities
from activities.records import required_process_record
from activities.shipping import ShipmentActivities
from api.task_service import audit_out
from api.workflow_updates import refusal_message
from erp.models import AuditEntry
from erp.seed import seed_demo
from erp.supply import Shipment
from schemas.activities import RegisterProcessInput, UpdateProcessInput
from schemas.production import Shortage
from schemas.purchase import RegisterPurchaseInput
from schemas.shipping import Picking, RegisterShipmentInput, shortages_said
from schemas.supply import (
    PurchaseLine,
    PurchaseRequest,
    ShipmentLineRequest,
    ShipmentRequest,
    ShipmentResult,
    WorkOrderRequest,
)
from tests.helpers import decide_task, eventually, task_by_workflow
from tests.ui.conftest import Site, text_of
from ui import change_views, i18n
from ui.pages import audit_reason_of
from worker import build_worker
from workflows.shipment import ShipmentWorkflow
from workflows.wording import reason_wording, said, said_again, wording
from workflows.work_order import WorkOrderWorkflow

SHORT = [
    Shortage(part_number="MT-0730", required=Decimal(5), available=Decimal(2)),
    Shortage(part_number="HS-0720", required=Decimal("1.5"), available=Decimal(0), uom="kg"),
]


def test_a_shortage_keeps_its_english_and_reads_in_chinese() -> None:
    text = shortages_said(SHORT)
    assert text == "; ".join(s.describe() for s in SHORT)  # byte-identical to before
    assert Picking(shortages=SHORT).shortage_text() == text
    cancelled = said(
        "cancelled by %(who)s: %(why)s",
        who="grace",
        why=said("stock short: %(shortages)s", shortages=text),
    )
    after = {"reason_wording": reason_wording(cancelled)}
    assert i18n.audit_reason("en", cancelled, after) == str(cancelled)
    assert i18n.audit_reason("zh_Hans", cancelled, after) == (
        "已由 grace 取消：库存不足：MT-0730 需要 5 ea，可用 2；HS-0720 需要 1.5 kg，可用 0"
    )


def test_a_reason_without_wording_reads_as_recorded() -> None:
    assert reason_wording("raised in error") is None  # a person's own words: a plain text
    assert i18n.audit_reason("zh_Hans", "raised in error", None) == "raised in error"
    assert i18n.audit_reason("zh_Hans", "raised in error", {"status": "x"}) == "raised in error"
    # an older row whose reason is one of our constant texts: looked up as it is
    assert i18n.audit_reason("zh_Hans", "the process was cancelled", None) == "流程已取消"
    # a wording that does not fit its values: the recorded English
    broken = {"reason_wording": {"template": "final inspection failed: %(why)s", "values": {}}}
    assert i18n.audit_reason("zh_Hans", "final inspection failed: x", broken) == (
        "final inspection failed: x"
    )
    assert i18n.audit_reason(None, None, None) == ""


async def test_a_step_reason_is_stored_with_its_wording(sessions) -> None:
    env = ActivityEnvironment()
    activities = ProcessActivities(sessions)
    await env.run(
        activities.register_process,
        RegisterProcessInput(
            process_id="wo-reason",
            run_id="r1",
            kind="work-order",
            title="WO-1",
            business_key="WO-1",
            initiator=None,
        ),
    )
    why = said("final inspection failed: %(why)s", why="burr on the housing")  # their words
    await env.run(
        activities.update_process,
        UpdateProcessInput(
            process_id="wo-reason",
            step="on_hold",
            status="completed",
            outcome="on_hold",
            reason=why,
            reason_wording=reason_wording(why),
        ),
    )
    await env.run(  # an older input: no wording, the row as before
        activities.update_process,
        UpdateProcessInput(process_id="wo-reason", step="qa-release", reason="as typed"),
    )
    async with sessions() as session:
        rows = {
            row.action: row
            for row in await session.scalars(
                select(AuditEntry).where(AuditEntry.entity_id == "wo-reason")
            )
        }
    held, step = rows["process.completed"], rows["process.step"]
    assert held.reason == "final inspection failed: burr on the housing"  # the English kept
    assert held.after == {
        "status": "completed",
        "step": "on_hold",
        "outcome": "on_hold",
        "reason_wording": {
            "template": "final inspection failed: %(why)s",
            "values": {"why": "burr on the housing"},
        },
    }
    assert step.after == {"status": "running", "step": "qa-release", "outcome": None}

    shown = audit_out(held)
    assert audit_reason_of(shown, "zh_Hans") == "最终检验不合格：burr on the housing"
    assert audit_reason_of(shown, "en") == held.reason
    assert audit_reason_of(audit_out(step), "zh_Hans") == "as typed"
    # the change and supply timelines (ui/change_views.Event) read it the same way
    event = change_views.timeline([shown])[0]
    assert event.detail == held.reason
    assert audit_reason_of(event, "zh_Hans") == "最终检验不合格：burr on the housing"


async def _carried(err: ApplicationError) -> ApplicationError:
    """The refusal as a workflow receives it from an activity (encoded, then decoded)."""
    failure = Failure()
    await DataConverter.default.encode_failure(err, failure)
    back = await DataConverter.default.decode_failure(failure)
    assert isinstance(back, ApplicationError)
    return back


async def test_registration_refusals_carry_their_wording(sessions) -> None:
    await seed_demo(sessions)
    env = ActivityEnvironment()
    shipments = ShipmentActivities(sessions)
    request = ShipmentRequest(
        process_id="sh-unknown",
        customer_code="CUS-9999",
        lines=[ShipmentLineRequest(part_number="IS-2000", quantity=Decimal(5))],
    )
    data = RegisterShipmentInput(process_id="sh-unknown", run_id="r1", request=request)
    first = await env.run(shipments.register_shipment, data)
    again = await env.run(shipments.register_shipment, data)  # a retry: from the audit row
    assert first.refusal == again.refusal == "customer CUS-9999 is not known"
    assert first.refusal_wording == again.refusal_wording
    refusal = said_again(again.refusal_wording, again.refusal)  # as the workflow takes it
    assert i18n.translate_message("zh_Hans", refusal) == "客户 CUS-9999 未知"
    async with sessions() as session:
        row = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "shipment.refused")
        )
    assert row is not None and row.reason == "customer CUS-9999 is not known"
    assert i18n.audit_reason("zh_Hans", row.reason, row.after) == "客户 CUS-9999 未知"

    purchases = PurchaseActivities(sessions)
    order = PurchaseRequest(
        requester="alice",
        supplier_code="SUP-9999",
        lines=[PurchaseLine(part_number="XX-1", quantity=Decimal(5), unit_price=Decimal(1))],
        due_on=date.today() + timedelta(days=14),
    )
    asked = RegisterPurchaseInput(process_id="po-unknown", run_id="r1", request=order)
    for _ in range(2):  # the first answer, then a retry's from the audit row
        with pytest.raises(ApplicationError) as refused:
            await env.run(purchases.register_purchase, asked)
        carried = await _carried(refused.value)
        assert carried.type == "PurchaseRefused" and str(carried.details[0]).startswith("PO-")
        english = "supplier SUP-9999 is not known; XX-1 has no effective revision, so it cannot be ordered"
        assert carried.message == english
        reason = said_again(carried.details[1], carried.message)  # workflows/purchase.py
        assert i18n.translate_message("zh_Hans", reason) == (
            "供应商 SUP-9999 不存在；XX-1 没有生效版本，因此无法订购"
        )
        assert i18n.audit_reason("zh_Hans", reason, {"reason_wording": wording(reason)}) == (
            "供应商 SUP-9999 不存在；XX-1 没有生效版本，因此无法订购"
        )

    # "no %(what)s for process …": the record's kind travels as a text of its own
    async with sessions() as session:
        with pytest.raises(ApplicationError) as missing:
            await required_process_record(session, Shipment, "sh-nothing", said("shipment"))
    message = refusal_message(await _carried(missing.value))
    assert message == "no shipment for process sh-nothing"
    assert i18n.translate_message("zh_Hans", message) == "流程 sh-nothing 没有对应的 发货"


# ---------------------------------------------------------------- the workflows


async def _reasons(sessions, pid: str) -> dict[str, AuditEntry]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.workflow_id == pid))
        # a step by its name (`process.step:stock-short-1`), any other row by its action
        return {
            f"{row.action}:{(row.after or {}).get('step')}"
            if row.action == "process.step"
            else row.action: row
            for row in rows
        }


async def test_a_workflows_step_reasons_read_in_chinese(
    time_skipping_env, sessions, task_queue
) -> None:
    env = time_skipping_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        # CUS-0002 wants 540 days of shelf life left: 6000 of the 6500 asked for qualify
        await env.client.start_workflow(
            ShipmentWorkflow.run,
            ShipmentRequest(
                process_id="sh-zh",
                requester="frank",
                customer_code="CUS-0002",
                lines=[ShipmentLineRequest(part_number="IS-2000", quantity=Decimal(6500))],
            ),
            id="sh-zh",
            task_queue=task_queue,
        )
        await eventually(
            lambda: task_by_workflow(sessions, "sh-zh.stock-short-1"), what="the short task"
        )
        await decide_task(
            env.client,
            "sh-zh.stock-short-1",
            "grace",
            "cancel",
            groups=["warehouse"],
            reason="no stock this month",
        )
        shipped = await env.client.get_workflow_handle("sh-zh", result_type=ShipmentResult).result()
        made = await (
            await env.client.start_workflow(
                WorkOrderWorkflow.run,
                WorkOrderRequest(
                    process_id="wo-zh",
                    requester="alice",
                    part_number="XX-9999",
                    quantity=Decimal(5),
                    due_on=date.today() + timedelta(days=14),
                ),
                id="wo-zh",
                task_queue=task_queue,
            )
        ).result()

    assert shipped.reason == "cancelled by grace: no stock this month"  # the English as before
    rows = await _reasons(sessions, "sh-zh")
    short, cancelled = rows["process.step:stock-short-1"], rows["process.cancelled"]
    assert short.reason == "IS-2000 needs 6500 ea, 6000 available"
    assert (
        i18n.audit_reason("zh_Hans", short.reason, short.after) == "IS-2000 需要 6500 ea，可用 6000"
    )
    assert i18n.audit_reason("zh_Hans", cancelled.reason, cancelled.after) == (
        "已由 grace 取消：no stock this month"  # the person's words stay as typed
    )
    picked = rows["shipment.stock_short"]  # the activity's own row: its said(…) reason
    assert i18n.audit_reason("zh_Hans", picked.reason, picked.after) == (
        "IS-2000 需要 6500 ea，可用 6000（CUS-0002 只接收剩余货架期至少 540 天的批次）"
    )
    assert i18n.audit_reason("zh_Hans", *_of(rows["shipment.cancelled"])) == (
        "已由 grace 取消：no stock this month"
    )

    assert made.status == "rejected"
    assert made.reason == "XX-9999 has no effective revision: nothing can be made of it"
    failed = (await _reasons(sessions, "wo-zh"))["process.failed"]
    assert failed.reason == made.reason
    assert i18n.audit_reason("zh_Hans", failed.reason, failed.after) == (
        "XX-9999 没有生效版本：无法生产"
    )


def _of(row: AuditEntry) -> tuple[str, dict | None]:  # type: ignore[type-arg]
    return row.reason, row.after


# ---------------------------------------------------------------- a person who reads Chinese


async def test_a_withdrawn_approval_reads_in_chinese_on_the_pages(site: Site) -> None:
    process_id = await site.start_approval()
    task = await site.open_task(process_id)
    alice = await site.as_user("alice")
    withdrawn = await alice.post(f"/processes/{process_id}/cancel", {"reason": "raised in error"})
    assert withdrawn.status_code == 303

    async def recorded() -> AuditEntry | None:
        async with site.sessions() as session:
            return await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.entity_id == process_id, AuditEntry.action == "process.cancelled"
                )
            )

    row = await eventually(recorded, what="the process cancelled")
    assert row.reason == "withdrawn by the requester"  # the English as it always was
    assert row.after is not None
    assert row.after["reason_wording"] == {"template": "withdrawn by the requester", "values": {}}

    english = text_of((await alice.get(f"/processes/{process_id}")).text)
    assert "withdrawn by the requester" in english

    dave = await site.as_user("dave")  # quality director: reads the audit trail
    assert (await dave.post("/settings", {"locale": "zh_Hans"})).status_code == 303
    page = text_of((await dave.get(f"/processes/{process_id}")).text)
    assert "已由申请人撤回" in page and "withdrawn by the requester" not in page, page

    async def cancelled_task() -> str | None:
        shown = text_of((await dave.get(f"/tasks/{task.id}")).text)
        return shown if "流程已取消" in shown else None

    history = await eventually(cancelled_task, what="the task's cancellation in its history")
    assert "the process was cancelled" not in history
    audit = text_of((await dave.get(f"/audit?entity_id={process_id}")).text)
    assert "已由申请人撤回" in audit, audit
    assert re.search(r"process\.cancelled", audit)  # the recorded action is still shown
