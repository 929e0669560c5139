"""Short API answers, dates and outcomes inside answers, and the API's data problems in the
reader's language; the English byte for byte as before. No servers needed."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError

from api.answers import detail_in_language
from api.errors import ApiError
from api.validation_problems import problems_of
from schemas.api import SupplyProcessOut
from schemas.wording import Said
from ui import i18n


def test_a_start_answers_detail_reads_in_the_language_asked_for() -> None:
    started = SupplyProcessOut(
        id="purchase-1",
        kind="purchase",
        number=None,
        status="starting",
        current_step="starting",
        initiator=None,
        started_at=None,
        detail="registered in a moment; read it at the Location given",
    )
    assert detail_in_language(started, None) is started
    assert detail_in_language(started, "en-GB,en;q=0.8") is started
    chinese = detail_in_language(started, "zh-CN,zh;q=0.9")
    assert chinese.detail == "稍后即完成登记；请到所给的 Location 地址读取"
    assert chinese.status == "starting"  # values, not words: as stored
    repeat = started.model_copy(update={"detail": "started before with this key; nothing new"})
    assert detail_in_language(repeat, "zh-Hans").detail == "此前已用该键启动；未新建任何内容"


def test_a_day_reads_as_the_locale_writes_it_and_an_outcome_as_its_label() -> None:
    confirmed = Said(
        "%(number)s confirmed by the supplier for %(day)s", number="PO-7", day="2026-12-03"
    )
    assert (
        i18n.translate_message("en", confirmed) == "PO-7 confirmed by the supplier for 2026-12-03"
    )
    chinese = i18n.translate_message("zh_Hans", confirmed)
    assert "2026年12月3日" in chinese and "2026-12-03" not in chinese
    assert confirmed.values["day"] == "2026-12-03"  # the stored value stays ISO

    decided = Said("Decision recorded. The task is completed: %(outcome)s.", outcome="approve")
    assert i18n.translate_message("en", decided) == (
        "Decision recorded. The task is completed: approve."
    )
    assert i18n.translate_message("zh_Hans", decided) == "决定已记录。任务已完成：批准。"


class _Receipt(BaseModel):
    quantity: int = Field(gt=0)
    lot: str


def test_the_data_problems_are_english_as_pydantic_says_and_chinese_part_by_part() -> None:
    try:
        _Receipt.model_validate({"quantity": 0})
    except ValidationError as err:
        problems = problems_of(err, "data")
        before = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in err.errors()
        )
    assert problems == before == "quantity: Input should be greater than 0; lot: Field required"
    refusal = ApiError(
        422, "the '%(event)s' data is not valid: %(problems)s", event="x", problems=problems
    )
    chinese = i18n.translate_message("zh_Hans", refusal.detail)
    assert "quantity：输入值应大于 0；lot：必填字段" in chinese  # the field keys as sent
    assert "Input should" not in chinese and "Field required" not in chinese
