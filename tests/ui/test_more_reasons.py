"""The last reasons of ours read in the person's language: a lot's status and hold reasons (the lot
history is written by a trigger, so the wording goes into the audit row's `after["lot_reasons"]`
and the lot page reads it from there), a task reminder's "due …", a work order's cancellation, an
incoming inspection's sample problem, and the texts inside translated reasons (a customer order's
plan, a recall's measured effectiveness, the supplier and revision rules). The English stays
byte-identical to what was recorded before."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.human_task import HumanTaskActivities
from activities.production import WorkOrderActivities
from activities.purchase import verdict
from erp.master_data import Lot
from erp.models import AuditEntry
from erp.seed import seed_demo
from erp.supply import LotStatusChange
from erp.supply_rules import supplier_refusal
from schemas.activities import OpenTaskInput, RemindTaskInput
from schemas.customer_order import OrderPlan, PlannedPurchase
from schemas.human_task import Candidates, OutcomeSpec, TaskKind, TaskSpec
from schemas.production import (
    AllocateMaterialsInput,
    CancelWorkOrderInput,
    RecordProductionInput,
    RegisterWorkOrderInput,
)
from schemas.purchase import RecordInspectionInput, SamplingPlan
from schemas.recall_activities import Effectiveness
from schemas.shipping import joined_said
from schemas.supply import PurchaseLine, WorkOrderRequest
from tests.ui.conftest import Site, text_of
from ui import i18n, reason_text
from workflows.wording import reason_wording, said, said_again, wording

PLAN = SamplingPlan(
    lot_size=3000, code_letter="K", sample_size=125, accept_number=3, reject_number=4, basis="Z1.4"
)


def _inspected(**changes: object) -> RecordInspectionInput:
    given: dict[str, object] = {
        "process_id": "po-x",
        "lot_number": "L-1",
        "inspector": "erin",
        "chosen_outcome": "fail",
        "sample_size": 125,
        "defects": 5,
        "plan": PLAN,
    } | changes
    return RecordInspectionInput.model_validate(given)


def _zh(text: str, spoken: dict | None) -> str:  # type: ignore[type-arg]
    return i18n.audit_reason("zh_Hans", text, {"reason_wording": spoken} if spoken else None)


def test_an_inspections_sample_problem_reads_in_chinese() -> None:
    over = verdict(_inspected(reason="burrs on the tube ends"))
    assert over.reason == (  # the English as before: their words, then ours
        "burrs on the tube ends (5 defective in a sample of 125: more than the accept number 3)"
    )
    assert _zh(over.reason, over.reason_wording) == (
        "burrs on the tube ends（样本量 125 中有 5 件不合格：超过接收数 3）"
    )
    chosen = verdict(_inspected(chosen_outcome="pass"))
    assert chosen.reason == (
        "5 defective in a sample of 125: more than the accept number 3"
        " (recorded as a fail although 'pass' was chosen)"
    )
    assert _zh(chosen.reason, chosen.reason_wording) == (
        "样本量 125 中有 5 件不合格：超过接收数 3（虽然选择了“合格”，仍记录为不合格）"
    )
    short = verdict(_inspected(chosen_outcome="pass", defects=0, sample_size=80))
    assert short.reason == "only 80 inspected where the plan requires 125"
    assert _zh(short.reason, short.reason_wording) == "仅检验了 80 件，而抽样方案要求 125 件"
    # the inspector's own fail: their words, no wording
    own = verdict(_inspected(defects=0, reason="scratched"))
    assert (own.reason, own.reason_wording) == ("scratched", None)
    # as the purchase workflow takes it back, then holds the lot with it (an unpatched run)
    problem = said_again(short.reason_wording, short.reason)
    held = said("failed incoming inspection: %(why)s — awaiting nonconformance", why=problem)
    assert _zh(held, reason_wording(held)) == (
        "进货检验不合格：仅检验了 80 件，而抽样方案要求 125 件 — 待不合格处理"
    )


def test_a_plan_and_a_recalls_effectiveness_read_in_chinese() -> None:
    plan = OrderPlan(
        finished_available=Decimal("20"),
        to_make=Decimal("30.0"),
        purchases=[
            PlannedPurchase(
                supplier_code="SUP-0001",
                lines=[
                    PurchaseLine(part_number="TB-0150", quantity=Decimal(60), unit_price=Decimal(1))
                ],
            )
        ],
    )
    assert plan.summary() == "20 in stock, make 30; buy SUP-0001: 60 TB-0150"
    summary = plan.summary()  # the customer order's step reason (its timeline)
    assert _zh(summary, reason_wording(summary)) == ("库存 20，生产 30；采购 SUP-0001: 60 TB-0150")
    nothing = OrderPlan(finished_available=Decimal(5), to_make=Decimal(0))
    assert nothing.summary() == "5 in stock, make 0; nothing to buy"
    assert i18n.translate_message("zh_Hans", nothing.summary()) == "库存 5，生产 0；无需采购"

    measured = Effectiveness(
        level="B",
        target_percent=90,
        consignees=10,
        notified=10,
        responded=9,
        reconciled=8,
        responded_percent=90.0,
        reconciled_percent=80.0,
        checks=3,
        checks_open=1,
        checks_failed=1,
        met=False,
    )
    assert measured.describe() == (
        "responded 9/10 (90 %), reconciled 8/10 (80 %), target 90 % (level B); "
        "checks 2/3 done, 1 failed"
    )
    # the recall workflow's reason nests it
    reason = said("effectiveness not met: %(measured)s", measured=measured.describe())
    assert _zh(reason, reason_wording(reason)) == (
        "未达到有效性要求：已回复 9/10（90 %），已核对 8/10（80 %），目标 90 %（级别 B）；"
        "有效性检查已完成 2/3，1 项不通过"
    )


async def test_the_supplier_rules_refuse_in_chinese(sessions) -> None:
    await seed_demo(sessions)
    async with sessions() as session:
        unknown = await supplier_refusal(
            session, supplier_code="SUP-9999", part_number="TB-0150", on=date.today()
        )
        not_listed = await supplier_refusal(
            session, supplier_code="SUP-0001", part_number="LC-0110", on=date.today()
        )
    assert unknown == "supplier SUP-9999 is not known"
    assert i18n.translate_message("zh_Hans", unknown) == "供应商 SUP-9999 不存在"
    assert not_listed == "supplier SUP-0001 is not on the approved supplier list for LC-0110"
    assert i18n.translate_message("zh_Hans", not_listed) == (
        "供应商 SUP-0001 不在物料 LC-0110 的合格供应商名录中"
    )
    both = joined_said([unknown, not_listed])  # a purchase's supplier check, line by line
    assert both == f"{unknown}; {not_listed}"
    assert _zh(both, reason_wording(both)) == (
        "供应商 SUP-9999 不存在；供应商 SUP-0001 不在物料 LC-0110 的合格供应商名录中"
    )
    obsolete = said(
        "%(part)s revision %(revision)s is %(status)s, not effective",
        part="TUB-100",
        revision="B",
        status="obsolete",
    )
    assert i18n.translate_message("zh_Hans", obsolete) == (
        "TUB-100 第 B 版的状态为“已作废”，不是生效版本"
    )


async def test_a_reminders_due_reads_in_chinese(sessions) -> None:
    acts = HumanTaskActivities(sessions)
    env = ActivityEnvironment()
    due = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    spec = TaskSpec(
        step="release",
        kind=TaskKind.APPROVE,
        title="Release lot L-1",
        process_kind="approval",
        process_id="apr-due",
        business_key="L-1",
        initiator="alice",
        candidates=Candidates(groups=["qa"]),
        outcomes=[OutcomeSpec(name="release", label="Release")],
    )
    opened = await env.run(
        acts.open_task,
        OpenTaskInput(workflow_id="apr-due.release", run_id="r1", spec=spec, due_at=due),
    )
    await env.run(
        acts.remind_task,
        RemindTaskInput(task_id=opened.task_id, workflow_id="apr-due.release", level=1, due_at=due),
    )
    async with sessions() as session:
        row = await session.scalar(select(AuditEntry).where(AuditEntry.action == "task.reminded"))
    assert row is not None
    assert row.reason == "due 2026-12-07T09:30:00+00:00"  # the English as before
    assert row.after == {
        "level": 1,
        "reason_wording": {
            "template": "due %(when)s",
            "values": {"when": "2026-12-07T09:30:00+00:00"},
        },
    }
    assert i18n.audit_reason("zh_Hans", row.reason, row.after) == (
        "截止时间 2026年12月7日 09:30 UTC"  # the ISO time as the locale writes it
    )


def _in_workflow(workflow_id: str) -> ActivityEnvironment:
    """An activity environment whose activities run as in that workflow (its audit rows'
    workflow_id), as the worker runs them: the process id is the workflow id."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    return env


async def test_a_cancelled_work_orders_lot_history_reads_in_chinese(site: Site) -> None:
    sessions = site.sessions
    activities = WorkOrderActivities(sessions)
    env = _in_workflow("wo-more")
    registered = await env.run(
        activities.register_work_order,
        RegisterWorkOrderInput(
            process_id="wo-more",
            run_id="r1",
            request=WorkOrderRequest(
                process_id="wo-more",
                requester="alice",
                part_number="IP-3000",
                quantity=Decimal(2),
                due_on=date.today() + timedelta(days=10),
            ),
        ),
    )
    number = registered.number
    allocation = await env.run(
        activities.allocate_materials, AllocateMaterialsInput(process_id="wo-more", attempt=1)
    )
    record = await env.run(
        activities.record_production,
        RecordProductionInput(
            process_id="wo-more",
            attempt=1,
            produced_quantity=Decimal(2),
            produced_by="ivan",
            allocation=allocation.picks,
        ),
    )
    why = said("cancelled by %(who)s: %(why)s", who="grace", why="customer withdrew the order")
    cancel = CancelWorkOrderInput(
        process_id="wo-more", reason=why, reason_wording=reason_wording(why)
    )
    await env.run(activities.cancel_work_order, cancel)

    async with sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == record.lot_number))
        assert lot is not None
        history = list(
            await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == lot.id)
                .order_by(LotStatusChange.id)
            )
        )
        cancelled = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "work_order.cancelled")
        )
        found = await reason_text.lot_reasons(
            session, lot.lot_number, [h.process_id for h in history]
        )
    held = f"{number} cancelled before release: cancelled by grace: customer withdrew the order"
    # the English as before: in the lot, its history (the trigger's copy) and the audit row
    assert lot.hold_reason == held
    assert [h.reason for h in history] == [
        f"made in {number}; awaiting final inspection and release",
        held,
    ]
    assert cancelled is not None and cancelled.after is not None
    assert cancelled.reason == "cancelled by grace: customer withdrew the order"
    assert cancelled.after["reason_wording"] == wording(why)
    assert cancelled.after["lot_reasons"][lot.lot_number]["reason"] == held
    assert reason_text.lot_reason(held, found, locale="zh_Hans") == (
        f"{number} 在放行前已取消：已由 grace 取消：customer withdrew the order"
    )
    assert reason_text.lot_reason(held, found, locale="en") == held
    assert reason_text.lot_reason("all issued (WO-1)", found, locale="zh_Hans") == (
        "已全部发料（WO-1）"  # the trigger's own text, by its template (ui.reason_text)
    )

    dave = await site.as_user("dave")
    english = text_of((await dave.get(f"/lots/{lot.lot_number}")).text)
    assert held in english and f"made in {number}" in english
    assert (await dave.post("/settings", {"locale": "zh_Hans"})).status_code == 303
    page = text_of((await dave.get(f"/lots/{lot.lot_number}")).text)
    assert f"由 {number} 生产；待最终检验和放行" in page, page
    assert f"冻结：{number} 在放行前已取消：已由 grace 取消：customer withdrew the order" in page
    assert "cancelled before release" not in page and "awaiting final inspection" not in page
