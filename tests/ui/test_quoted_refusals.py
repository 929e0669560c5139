"""A refusal a workflow quotes inside a task (a shipment's "refused: %(why)s") reads in the
person's language: the activity's refusal, through Temporal's failure converter as it travels,
back to a `Said` (`workflows.wording.spoken`), onto the spec as nested wording, out through
`ui.i18n.task_text`; a spec written before (plain values) still reads as it did."""

from __future__ import annotations

from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from activities.records import lot_refused
from erp.lots import LOT_TRANSITION_REFUSED, LotRefused, trigger_said
from schemas.human_task import Candidates, OutcomeSpec, TaskSpec
from ui import i18n
from workflows.wording import said, spoken, titled, wording

HELD = "lot L-7 is held by NC-0003: only its disposition releases it"


async def _carried(err: ApplicationError) -> ApplicationError:
    """The refusal as a workflow receives it from an activity (encoded, then decoded)."""
    converter = DataConverter.default
    failure = Failure()
    await converter.encode_failure(err, failure)
    back = await converter.decode_failure(failure)
    assert isinstance(back, ApplicationError)
    return back


def _spec(**wording: object) -> TaskSpec:
    spec = TaskSpec.model_validate(
        {
            "step": "ship-refused-1",
            "kind": "perform",
            "process_kind": "shipment",
            "process_id": "shipment-SH-1",
            "business_key": "SH-1",
            "candidates": Candidates(groups=["warehouse"]),
            "outcomes": [OutcomeSpec(name="pick_again", label="Pick again")],
            **wording,
        }
    )
    return TaskSpec.model_validate_json(spec.model_dump_json())  # as stored and read back


async def test_a_quoted_lot_refusal_reads_in_chinese_inside_a_task_title() -> None:
    refusal = await _carried(
        lot_refused(LotRefused(trigger_said(HELD, LOT_TRANSITION_REFUSED), "x"))
    )
    why = spoken(refusal)
    assert why == HELD  # the English is byte-identical
    spec = _spec(
        **titled("Shipment %(number)s refused: %(why)s", number="SH-1", why=why),
    )
    assert spec.title == f"Shipment SH-1 refused: {HELD}"
    assert i18n.task_text("en", spec) == spec.title
    zh = i18n.task_text("zh_Hans", spec)
    assert zh == "发货 SH-1 被拒：批次 L-7 被 NC-0003 冻结：只有其处置决定才能解除冻结", zh


async def test_a_problem_inside_a_quoted_refusal_is_translated_too() -> None:
    inner = said(
        "lot %(lot)s cannot go from %(before)s to %(after)s",
        lot="L-2",
        before="HELD",
        after="RELEASED",
    )
    refusal = await _carried(
        ApplicationError(str(outer := said("could not ship: %(why)s", why=inner)), {})
    )
    assert spoken(refusal) == str(outer)  # a refusal without wording stays its English
    spec = _spec(**titled("Shipment %(number)s refused: %(why)s", number="SH-2", why=outer))
    why: Any = (spec.title_values or {})["why"]
    assert why["inner"]["why"]["values"]["lot"] == "L-2"
    zh = i18n.task_text("zh_Hans", spec)
    assert zh.startswith("发货 SH-2 被拒：") and "批次 L-2 的状态不能从" in zh, zh


def test_a_spec_with_plain_values_reads_as_before() -> None:
    spec = _spec(
        title=f"Shipment SH-3 refused: {HELD}",
        title_template="Shipment %(number)s refused: %(why)s",
        title_values={"number": "SH-3", "why": HELD},
    )
    assert i18n.task_text("zh_Hans", spec) == f"发货 SH-3 被拒：{HELD}"
    assert i18n.task_text("en", spec) == spec.title


async def test_a_quoted_refusal_in_a_task_context_reads_in_chinese() -> None:
    refusal = await _carried(
        lot_refused(LotRefused(trigger_said(HELD, LOT_TRANSITION_REFUSED), "x"))
    )
    why = spoken(refusal)
    spec = _spec(
        **titled("Resolve: %(number)s could not take effect", number="CC-1"),
        context={"Problem": why, "Change": "CC-1"},
        context_wording={"Problem": wording(why)},  # what workflows.process_kit.task_spec adds
    )
    assert spec.context["Problem"] == HELD
    assert (
        i18n.context_text("zh_Hans", spec, "Problem")
        == "批次 L-7 被 NC-0003 冻结：只有其处置决定才能解除冻结"
    )
    assert i18n.context_text("en", spec, "Problem") == HELD
    assert i18n.context_text("zh_Hans", spec, "Change") == "CC-1"  # recorded as it is
