"""The last places that showed a recorded reason or value in English: a lot's hold reason on the
dashboard and the work order page, the DHR's status history, an ISO time inside a wording's
value, and a value with ": " inside a wording (not a form's problems). A zh_Hans reader reads
Chinese, an English reader exactly what was shown before."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.production import WorkOrderActivities
from erp.master_data import Lot
from schemas.customer_order import OrderPlan, PlannedPurchase
from schemas.production import (
    AllocateMaterialsInput,
    CancelWorkOrderInput,
    RecordProductionInput,
    RegisterWorkOrderInput,
)
from schemas.supply import PurchaseLine, WorkOrderRequest
from schemas.wording import Said
from tests.ui.conftest import Site, text_of
from ui import i18n, reason_text
from workflows.wording import reason_wording, said, wording

ZH = "zh_Hans"
DUE = "2026-12-07T09:30:00+00:00"


# ---------------------------------------------------------------- values inside a wording


def test_an_iso_time_inside_a_wording_reads_as_the_locale_writes_it() -> None:
    reminded = said("due %(when)s", when=DUE)  # a task reminder's reason
    after = {"reason_wording": wording(reminded)}
    assert i18n.audit_reason(ZH, str(reminded), after) == "截止时间 2026年12月7日 09:30 UTC"
    assert i18n.audit_reason("en", str(reminded), after) == f"due {DUE}"  # as before
    # the same through a page's `sentence` (translate_message) and a task's title
    assert i18n.translate_message(ZH, reminded) == "截止时间 2026年12月7日 09:30 UTC"
    assert i18n.translate_message("en", reminded) == f"due {DUE}"
    task = SimpleNamespace(
        title=str(reminded), title_template="due %(when)s", title_values={"when": DUE}
    )
    assert i18n.task_text(ZH, task) == "截止时间 2026年12月7日 09:30 UTC"
    assert i18n.task_text("en", task) == f"due {DUE}"
    # a datetime or a date given as a value, an offset other than UTC, no offset (UTC), a day
    moment = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    assert i18n.translate_message(ZH, Said("due %(when)s", when=moment)) == (
        "截止时间 2026年12月7日 09:30 UTC"
    )
    assert i18n.translate_message(ZH, Said("due %(when)s", when="2026-12-07T17:30+08:00")) == (
        "截止时间 2026年12月7日 09:30 UTC"
    )
    assert i18n.translate_message(ZH, Said("due %(when)s", when="2026-12-07T09:30:00")) == (
        "截止时间 2026年12月7日 09:30 UTC"
    )
    assert i18n.translate_message(ZH, Said("due %(when)s", when=date(2026, 12, 7))) == (
        "截止时间 2026年12月7日"
    )
    # only a value that is wholly an ISO date or time: anything else as recorded
    for kept in ("2026-12-07T09:30:00+00:00 or later", "2026-13-45T09:30", "WO-2026-12-07"):
        assert i18n.translate_message(ZH, Said("due %(when)s", when=kept)) == f"截止时间 {kept}"
        nested = {"reason_wording": {"template": "due %(when)s", "values": {"when": kept}}}
        assert i18n.audit_reason(ZH, f"due {kept}", nested) == f"截止时间 {kept}"


def test_a_value_with_a_colon_inside_a_wording_is_left_as_it_is() -> None:
    plan = OrderPlan(  # a customer order's plan: its purchases are a value of its summary
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
    summary = plan.summary()
    assert i18n.translate_message(ZH, summary) == "库存 20，生产 30；采购 SUP-0001: 60 TB-0150"
    assert i18n.translate_message("en", summary) == (
        "20 in stock, make 30; buy SUP-0001: 60 TB-0150"
    )
    unknown = "supplier %(code)s is not known"
    code = "Title: fill this in; Quantity: x"  # a value, not a form's problems
    assert i18n.translate_message(ZH, said(unknown, code=code)) == (
        i18n.translate(ZH, unknown, code=code)
    )
    assert code in i18n.translate(ZH, unknown, code=code)
    # a plain text shown as a whole message still reads as a form's "Label: problem" list
    assert i18n.translate_message(ZH, "Title: fill this in") == (
        f"{i18n.translate(ZH, 'Title')}：{i18n.translate(ZH, 'fill this in')}"
    )
    assert i18n.translate_message("en", "Title: fill this in") == "Title: fill this in"


# ---------------------------------------------------------------- a held lot, elsewhere


def _in_workflow(workflow_id: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    return env


async def _cancelled_work_order(site: Site, process_id: str) -> tuple[str, str, str]:
    """A work order that made its lot and was cancelled before release: the lot is held with
    a reason of ours (`WO-… cancelled before release: …`). Its number, the lot's, the reason."""
    activities = WorkOrderActivities(site.sessions)
    env = _in_workflow(process_id)
    registered = await env.run(
        activities.register_work_order,
        RegisterWorkOrderInput(
            process_id=process_id,
            run_id="r1",
            request=WorkOrderRequest(
                process_id=process_id,
                requester="alice",
                part_number="IP-3000",
                quantity=Decimal(2),
                due_on=date.today() + timedelta(days=10),
            ),
        ),
    )
    allocation = await env.run(
        activities.allocate_materials, AllocateMaterialsInput(process_id=process_id, attempt=1)
    )
    record = await env.run(
        activities.record_production,
        RecordProductionInput(
            process_id=process_id,
            attempt=1,
            produced_quantity=Decimal(2),
            produced_by="ivan",
            allocation=allocation.picks,
        ),
    )
    why = said("cancelled by %(who)s: %(why)s", who="grace", why="customer withdrew the order")
    await env.run(
        activities.cancel_work_order,
        CancelWorkOrderInput(process_id=process_id, reason=why, reason_wording=reason_wording(why)),
    )
    number = registered.number
    held = f"{number} cancelled before release: cancelled by grace: customer withdrew the order"
    return number, record.lot_number, held


async def test_a_held_lots_reason_reads_in_chinese_on_the_dashboard_work_order_and_dhr(
    site: Site,
) -> None:
    number, lot_number, held = await _cancelled_work_order(site, "wo-elsewhere")
    chinese = f"{number} 在放行前已取消：已由 grace 取消：customer withdrew the order"
    made = f"made in {number}; awaiting final inspection and release"
    async with site.sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        assert lot is not None and lot.status == "ON_HOLD" and lot.hold_reason == held
        other = await session.scalar(select(Lot).where(Lot.lot_number != lot_number).limit(1))
        assert other is not None
        # every lot asked for in one query; a lot without a noted reason is missing
        found = await reason_text.reasons_of_lots(session, [lot_number, other.lot_number, None])
    assert set(found) == {lot_number}
    assert set(found[lot_number]) == {made, held}
    assert reason_text.lot_reason(held, found[lot_number], locale=ZH) == chinese
    assert reason_text.lot_reason_cell(held, found[lot_number], locale=ZH) == (
        f"{chinese} ({held})"
    )
    assert reason_text.lot_reason_cell(held, found[lot_number], locale="en") == held

    dave = await site.as_user("dave")
    english = {
        url: text_of((await dave.get(url)).text)
        for url in ("/dashboard", "/work-orders/wo-elsewhere")
    }
    for url, text in english.items():
        assert held in text, (url, text)
    headers = await site.api.token("dave")
    dhr_url = f"/api/v1/reports/device-history/{lot_number}"
    dhr = await site.api.http.get(dhr_url, params={"format": "csv"}, headers=headers)
    assert dhr.status_code == 200, dhr.text
    assert held in dhr.text and made in dhr.text and "在放行前已取消" not in dhr.text

    assert (await dave.post("/settings", {"locale": ZH})).status_code == 303
    for url in english:
        response = await dave.get(url)
        assert response.status_code == 200, response.text
        page = text_of(response.text)
        assert chinese in page, (url, page)
        assert "cancelled before release" not in page, (url, page)

    dhr = await site.api.http.get(dhr_url, params={"format": "csv"}, headers=headers)
    assert dhr.status_code == 200, dhr.text
    # the status history (and the hold reason): the translation, the recorded English beside it
    assert f"{chinese} ({held})" in dhr.text, dhr.text
    assert f"由 {number} 生产；待最终检验和放行 ({made})" in dhr.text, dhr.text
