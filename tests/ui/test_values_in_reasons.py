"""The last English values inside translated reasons and task contexts read in the person's
language: pydantic's problems in the recall notice's refusals and "Not taken" (each worded as
`api.validation_problems` words it), the why of a part a customer order cannot source
(`Shortage.why_wording`), the problem `change_purchase_supplier` answers (`SupplierChange`), the
database trigger's own lot reasons ("all issued (…)"), and a CAPA action or a shipment line after
a composed key. The English stays byte-identical to what was recorded before."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.customer_order import _sourcing, _why
from activities.purchase import PurchaseActivities
from api.validation_problems import WORDING
from api.workflow_updates import refusal_message
from erp.master_data import Lot
from erp.seed import seed_demo
from erp.supply import InventoryMovement, LotStatusChange
from schemas.customer_order import Shortage
from schemas.human_task import Candidates, OutcomeSpec, TaskSpec
from schemas.problem_wording import problem_said, problems_said
from schemas.purchase import ChangeSupplierInput, SupplierChange
from schemas.quality import ActionKind, PlannedAction
from schemas.recall import ConsigneeResponse, RecallReturnReceived
from schemas.shipping import joined_said
from schemas.supply import ShipmentLineRequest
from schemas.wording import Said
from tests.workflows.test_purchase import (
    approve_small,
    audit_rows,
    decide,
    purchase,
    start,
    task_id_of,
    task_row,
)
from ui import i18n, reason_text
from worker import build_worker
from workflows.capa import Plan, _plan_context
from workflows.process_kit import context_wordings
from workflows.recall_notice import _problems
from workflows.shipment import lines_context
from workflows.wording import refuse, said, said_again, wording


def _old_problems(err: ValidationError) -> str:
    """What the recall notice said before (its English must not change)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())


def _spec(context: dict[str, str]) -> TaskSpec:
    """A task spec as `workflows.process_kit.task_spec` builds it, stored and read back."""
    spec = TaskSpec.model_validate(
        {
            "step": "escalation",
            "kind": "review",
            "process_kind": "recall-notice",
            "process_id": "recall-notice-R-1-CUS-0001",
            "business_key": "R-1",
            "title": "Ask CUS-0001",
            "candidates": Candidates(groups=["ra"]),
            "outcomes": [OutcomeSpec(name="done", label="Done")],
            "context": context,
            "context_wording": context_wordings(context),
        }
    )
    return TaskSpec.model_validate_json(spec.model_dump_json())


# ---------------------------------------------------------------- pydantic's problems


def test_a_recall_notices_pydantic_problems_read_in_chinese() -> None:
    with pytest.raises(ValidationError) as caught:
        ConsigneeResponse.model_validate(
            {"consignee_code": "", "acknowledged": "maybe", "quantity_on_hand": -1}
        )
    problems = _problems(caught.value)
    assert problems == _old_problems(caught.value)  # the English as before
    # an event's refusal (`%(event)s: %(problems)s`), as the API answers it
    refused = refusal_message(
        refuse(
            "Invalid",
            said("%(event)s: %(problems)s", event="consignee-response", problems=problems),
        )
    )
    assert refused == f"consignee-response: {problems}"
    assert i18n.translate_message("zh_Hans", refused) == (
        "consignee-response：consignee_code：字符串应至少有 1 个字符；"
        "acknowledged：输入值应为有效的布尔值，无法识别该输入；"
        "quantity_on_hand：输入值应大于或等于 0"
    )
    assert i18n.translate_message("en", refused) == refused
    # what regulatory affairs keyed in, shown at the next task ("Not taken")
    with pytest.raises(ValidationError) as keyed:
        RecallReturnReceived.model_validate({"consignee_code": "CUS-0001", "quantity": 0})
    note = said(
        "the quantities keyed in are not valid: %(problems)s", problems=_problems(keyed.value)
    )
    assert note == (
        "the quantities keyed in are not valid: lot_number: Field required; "
        "quantity: Input should be greater than 0"
    )
    spec = _spec({"Not taken": note})
    assert i18n.context_text("zh_Hans", spec, "Not taken") == (
        # a field's name is code, but one that is also a catalog text reads translated
        "录入的数量无效：lot_number：必填字段；数量：输入值应大于 0"
    )
    assert i18n.context_text("en", spec, "Not taken") == note


class _Many(BaseModel):
    """Fields with the usual constraints, to word many of pydantic's error types."""

    count: Annotated[int, Field(gt=0, lt=10)] = 1
    share: Annotated[float, Field(ge=0, le=1, multiple_of=0.5)] = 0
    name: Annotated[str, Field(min_length=2, max_length=3)] = "ab"
    code: Annotated[str, Field(pattern=r"^[A-Z]+$")] = "A"
    tags: Annotated[list[str], Field(min_length=1, max_length=2)] = ["a"]
    kind: Literal["corrective", "preventive"] = "corrective"
    price: Annotated[Decimal, Field(max_digits=4, decimal_places=2)] = Decimal(0)
    on: date = date(2026, 12, 4)
    flag: bool = False
    owner: str = "bob"

    @field_validator("owner")
    @classmethod
    def _known(cls, value: str) -> str:
        if value == "nobody":
            raise ValueError(said("user %(user)s is not known", user=value))
        return value


@pytest.mark.parametrize(
    "data",
    [
        {"count": 0},
        {"count": 10},
        {"count": "x"},
        {"count": 1.5},
        {"share": -1},
        {"share": 2},
        {"share": 0.3},
        {"name": "a"},
        {"name": "abcd"},
        {"code": "ab"},
        {"tags": []},
        {"tags": ["a", "b", "c"]},
        {"kind": "other"},
        {"price": "123.456"},
        {"price": "12345"},
        {"on": "2026-13-01"},
        {"on": "soon"},
        {"flag": "maybe"},
        {"owner": "nobody"},
        {"count": None},
        {"name": 5},
    ],
)
def test_each_problem_is_worded_as_the_api_words_it(data: dict[str, object]) -> None:
    """The template found from the error is the one api.validation_problems lists for its type;
    the English is pydantic's message."""
    with pytest.raises(ValidationError) as caught:
        _Many.model_validate(data)
    for error in caught.value.errors():
        worded = problem_said(error)
        assert worded == error["msg"]
        assert isinstance(worded, Said), error
        assert worded.template in WORDING[error["type"]], (error["type"], worded.template)
        assert i18n.translate_message("zh_Hans", worded) != error["msg"], worded
    assert problems_said(caught.value.errors()) == _old_problems(caught.value)


def test_our_validators_problem_keeps_its_template_inside() -> None:
    with pytest.raises(ValidationError) as caught:
        _Many.model_validate({"owner": "nobody"})
    [error] = caught.value.errors()
    worded = problem_said(error)
    assert isinstance(worded, Said) and worded.template == "Value error, %(error)s"
    assert isinstance(worded.values["error"], Said)
    assert i18n.translate_message("en", worded) == "Value error, user nobody is not known"


def test_a_message_whose_values_cannot_be_told_apart_reads_as_pydantic_said_it() -> None:
    odd = {"type": "greater_than", "msg": "Input 1 should be greater than 1", "ctx": {"gt": 1}}
    assert problem_said(odd) == "Input 1 should be greater than 1"
    assert not isinstance(problem_said(odd), Said)
    custom = {"type": "custom", "msg": "100% wrong"}
    assert problem_said(custom) == "100% wrong"


# ---------------------------------------------------------------- a shortage's why


async def test_the_why_of_a_part_that_cannot_be_sourced_reads_in_chinese(sessions) -> None:
    await seed_demo(sessions)
    async with sessions() as session:
        supplier, refusals = await _sourcing(session, "ZZ-0001", date.today())
    assert supplier is None and refusals == ["no supplier is approved for ZZ-0001"]
    shortage = Shortage(
        part_number="ZZ-0001",
        needed=Decimal(5),
        available=Decimal(0),
        **_why(joined_said(refusals)),
    )
    shortage = Shortage.model_validate_json(shortage.model_dump_json())  # as the plan travels
    assert shortage.why == "no supplier is approved for ZZ-0001"
    # the workflow's "%(part)s: %(why)s", joined (workflows/procure_to_deliver.py)
    why = said(
        "%(part)s: %(why)s",
        part=shortage.part_number,
        why=said_again(shortage.why_wording, shortage.why),
    )
    assert why == "ZZ-0001: no supplier is approved for ZZ-0001"
    assert i18n.translate_message("zh_Hans", why) == "ZZ-0001：ZZ-0001 没有已批准的供应商"
    both = joined_said(
        [
            said(
                "%(part)s has only conditionally approved suppliers (%(suppliers)s):"
                " a buyer must order it by hand",
                part="LC-0110",
                suppliers="SUP-0004, SUP-0006",
            ),
            said("%(part)s has no effective revision to make", part="FG-1000"),
        ]
    )
    assert i18n.audit_reason("zh_Hans", both, {"reason_wording": wording(both)}) == (
        "LC-0110 只有有条件批准的供应商（SUP-0004, SUP-0006）：须由采购员手工下单；"
        "FG-1000 没有可用于生产的生效版本"
    )
    older = Shortage(part_number="X", needed=Decimal(1), available=Decimal(0), why="old text")
    assert older.why_wording is None and said_again(older.why_wording, older.why) == "old text"


# ---------------------------------------------------------------- a supplier change's problem


def test_an_older_supplier_change_answer_reads_as_one() -> None:
    """A history's answer of change_purchase_supplier is a plain str: it decodes as a
    `SupplierChange` (what the replayed workflow reads)."""
    converter = pydantic_data_converter.payload_converter
    for answer in ("", "supplier SUP-9 is not known"):
        [payload] = converter.to_payloads([answer])
        [read] = converter.from_payloads([payload], [SupplierChange])
        assert read == SupplierChange(problem=answer)


async def test_a_refused_supplier_change_reads_in_chinese_at_the_next_task(
    time_skipping_env, sessions, task_queue
) -> None:
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-unknown-supplier"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(
            env, task_queue, pid, purchase(supplier="SUP-0005", part="LC-0110", price="0.18")
        )
        await approve_small(env.client, pid)
        await task_id_of(env.client, f"{pid}.supplier-1")
        await decide(
            env.client,
            f"{pid}.supplier-1",
            "frank",
            "change_supplier",
            ["buyer"],
            supplier_code="SUP-9999",
        )
        await task_id_of(env.client, f"{pid}.supplier-2")
        task = await task_row(sessions, f"{pid}.supplier-2")
        assert task is not None
        await decide(env.client, f"{pid}.supplier-2", "frank", "cancel", ["buyer"])
        await handle.result()
    spec = TaskSpec.model_validate(task.spec)
    assert spec.context["Last change refused"] == "supplier SUP-9999 is not known"
    assert i18n.context_text("zh_Hans", spec, "Last change refused") == "供应商 SUP-9999 不存在"
    assert i18n.context_text("en", spec, "Last change refused") == (
        "supplier SUP-9999 is not known"
    )
    [changed] = await audit_rows(sessions, "purchase.supplier_changed")
    assert changed.outcome == "refused" and changed.reason == "supplier SUP-9999 is not known"
    # a repeat of the activity answers the same, its wording from the refused row
    again = await ActivityEnvironment().run(
        PurchaseActivities(sessions).change_purchase_supplier,
        ChangeSupplierInput(
            process_id=pid, attempt=1, supplier_code="SUP-9999", changed_by="frank"
        ),
    )
    assert again.problem == "supplier SUP-9999 is not known"
    assert again.problem_wording == {
        "template": "supplier %(supplier)s is not known",
        "values": {"supplier": "SUP-9999"},
    }


# ---------------------------------------------------------------- the trigger's lot reasons


async def test_the_triggers_own_lot_reasons_read_in_chinese(sessions) -> None:
    await seed_demo(sessions)
    async with sessions() as session, session.begin():
        lot = await session.scalar(
            select(Lot).where(Lot.status == "RELEASED", Lot.quantity > 0).order_by(Lot.id)
        )
        assert lot is not None
        session.add(
            InventoryMovement(
                lot_id=lot.id, kind="ship", quantity=lot.quantity, reference="SH-0042"
            )
        )
    async with sessions() as session:
        history = list(
            await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == lot.id)
                .order_by(LotStatusChange.id)
            )
        )
        found = await reason_text.lot_reasons(
            session, lot.lot_number, [h.process_id for h in history]
        )
    shipped = history[-1]
    assert shipped.to_status == "SHIPPED" and shipped.reason == "all shipped (SH-0042)"
    assert reason_text.lot_reason(shipped.reason, found, locale="zh_Hans") == (
        "已全部发货（SH-0042）"
    )
    assert reason_text.lot_reason(shipped.reason, found, locale="en") == shipped.reason
    assert reason_text.lot_reason_cell(shipped.reason, None, locale="zh_Hans") == (
        "已全部发货（SH-0042） (all shipped (SH-0042))"
    )
    assert reason_text.lot_reason("all issued (WO-0007)", None, locale="zh_Hans") == (
        "已全部发料（WO-0007）"
    )
    # only exactly the trigger's texts
    for other in ("all issued", "nearly all issued (WO-1)", "all issued (WO-1) again"):
        assert reason_text.lot_reason(other, None, locale="zh_Hans") == other
        assert reason_text.trigger_wording(other) is None


# ---------------------------------------------------------------- values after a composed key


def test_a_capa_action_and_a_shipment_line_read_in_chinese() -> None:
    plan = Plan(
        round=2,
        actions=[
            PlannedAction(
                kind=ActionKind.CORRECTIVE,
                description="retrain the line",
                owner="bob",
                due_on=date(2027, 1, 15),
            ),
            PlannedAction(
                kind=ActionKind.PREVENTIVE,
                description="update WI-7",
                owner="carol",
                due_on=date(2027, 2, 1),
                change=True,
            ),
        ],
        wait_days=90,
        author="alice",
    )
    lines = [ShipmentLineRequest(part_number="TB-0150", quantity=Decimal(5))]
    spec = _spec(_plan_context(plan) | lines_context(lines))
    assert spec.context == {  # the English as before
        "Action 1": "corrective: retrain the line — bob, due 2027-01-15",
        "Action 2": "preventive: update WI-7 — carol, due 2027-02-01 (through a change request)",
        "Effectiveness check after": "90 days",
        "Line 1": "5 × TB-0150",
    }
    zh = {k: i18n.context_text("zh_Hans", spec, k) for k in spec.context}
    assert zh == {
        "Action 1": "纠正措施：retrain the line — 负责人 bob，截止日期 2027年1月15日",
        "Action 2": (
            "预防措施：update WI-7 — 负责人 carol，截止日期 2027年2月1日（通过变更申请实施）"
        ),
        "Effectiveness check after": "90 天",
        "Line 1": "5 × TB-0150",
    }
    assert {k: i18n.context_text("en", spec, k) for k in spec.context} == spec.context
    assert spec.context_wording["Line 1"]["key"] == {"template": "Line %(n)s", "values": {"n": 1}}
