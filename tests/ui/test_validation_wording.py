"""Every pydantic-core error type has our wording and a Simplified Chinese translation, for the
API's problems (`api.validation_problems`) and a form's (`ui.form_problems`); the English is
pydantic's byte for byte. No servers needed, except the last test (a Chinese reader's pages): a
pydantic upgrade that adds a type, or words one otherwise, fails here until `WORDING` and
`validation.po` know it."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticKnownError
from pydantic_core._pydantic_core import list_all_errors

from api.validation_problems import WORDING, problems_of, worded
from schemas.human_task import Candidates, OutcomeSpec, TaskKind, TaskSpec
from schemas.wording import said
from tests.ui.conftest import Site, text_of
from tests.ui.test_change_pages import FORM as CHANGE_FORM
from ui import form_problems, i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
ERRORS: dict[str, dict[str, Any]] = {str(e["type"]): dict(e) for e in list_all_errors()}


def contexts(kind: str) -> list[dict[str, Any]]:
    """The ctx pydantic gives an error of this type, with values that exercise each wording:
    a count of 1 and of 2 (`1 character`, `2 characters`), a too_long without its length."""
    example = ERRORS[kind].get("example_context") or {}
    if not example:
        return [{}]
    counted = [n for n, v in example.items() if isinstance(v, int) or v is None]
    found = []
    for count in (1, 2):
        ctx: dict[str, Any] = {n: (count if n in counted else f"<{n}>") for n in example}
        if kind == "value_error":
            ctx["error"] = ValueError("the lot is not known")
        found.append(ctx)
        if kind == "too_long":
            found.append(ctx | {"actual_length": None})
    return found


def error_of(kind: str, ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "msg": PydanticKnownError(cast(Any, kind), ctx or None).message(),
        "ctx": ctx,
    }


SAMPLES = [(kind, ctx) for kind in sorted(ERRORS) for ctx in contexts(kind)]


def test_every_pydantic_error_type_is_worded() -> None:
    assert not set(ERRORS) - set(WORDING), (
        "pydantic-core has error types api.validation_problems.WORDING does not word (add their "
        f"templates and a msgstr in ui/locales/zh_Hans/validation.po): {set(ERRORS) - set(WORDING)}"
    )
    assert not set(WORDING) - set(ERRORS), f"not pydantic's types: {set(WORDING) - set(ERRORS)}"


@pytest.mark.parametrize(
    ("kind", "ctx"), SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(SAMPLES)]
)
def test_each_wording_gives_pydantics_english_and_has_a_translation(
    kind: str, ctx: dict[str, Any]
) -> None:
    error = error_of(kind, ctx)
    problem = worded(error)
    assert problem == error["msg"]  # byte for byte what the API always answered
    template = getattr(problem, "template", None)
    assert isinstance(template, str), f"{kind}: no template renders {error['msg']!r}"
    assert set(PLACEHOLDER.findall(template)) <= set(ctx), template
    chinese = i18n.catalog("zh_Hans").get(template)
    assert chinese, f"no zh_Hans msgstr for {template!r}"
    shown = i18n.translate_message("zh_Hans", problem)
    assert "%(" not in shown and shown != error["msg"], shown


@pytest.mark.parametrize(
    ("kind", "ctx"), SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(SAMPLES)]
)
def test_a_form_words_every_type_translatably(kind: str, ctx: dict[str, Any]) -> None:
    problem = form_problems.said(error_of(kind, ctx))
    if kind == "value_error":  # a plain ValueError("…"): its text, lower-cased after a label
        assert problem == "the lot is not known"
        return
    template = getattr(problem, "template", None)
    assert isinstance(template, str), f"{kind}: the form shows {problem!r} untranslated"
    assert template in i18n.catalog("zh_Hans"), f"no zh_Hans msgstr for {template!r}"


class _Order(BaseModel):
    title: str = Field(min_length=1, max_length=5)
    lines: list[int] = Field(min_length=2)
    scope: str = Field(pattern=r"^[a-z]+$")
    kind: int = 0


def test_problems_read_in_chinese_with_their_values_and_in_english_as_pydantic_says() -> None:
    with pytest.raises(ValidationError) as invalid:
        _Order.model_validate({"title": "far too long", "lines": [1], "scope": "A1", "kind": 1.5})
    problems = problems_of(invalid.value, "body")
    assert problems == (
        "title: String should have at most 5 characters; lines: List should have at least 2 "
        "items after validation, not 1; scope: String should match pattern '^[a-z]+$'; kind: "
        "Input should be a valid integer, got a number with a fractional part"
    )
    assert i18n.translate_message("zh_Hans", problems) == (
        "title：字符串最多只能有 5 个字符；lines：校验后列表应至少有 2 项，而不是 1 项；"
        "scope：字符串应符合格式“^[a-z]+$”；kind：输入值应为有效的整数，但收到的是带小数部分的数字"
    )
    # a form has its own words for these types; the rest read as pydantic says them, translated
    lines = form_problems.said(invalid.value.errors()[1])
    assert lines == "list should have at least 2 items"


def test_a_choice_and_a_day_inside_a_problem_read_in_chinese() -> None:
    choices = worded(
        {
            "type": "literal_error",
            "msg": "Input should be 'all', 'mine' or 'team'",
            "ctx": {"expected": "'all', 'mine' or 'team'"},
        }
    )
    assert choices == "Input should be 'all', 'mine' or 'team'"
    assert i18n.translate_message("zh_Hans", choices) == "输入值应为 'all', 'mine' 或 'team'"
    day = worded(
        {
            "type": "date_from_datetime_parsing",
            "msg": "Input should be a valid date or datetime, invalid character in year",
            "ctx": {"error": "invalid character in year"},
        }
    )
    assert (
        i18n.translate_message("zh_Hans", day) == "输入值应为有效的日期或日期时间：年份中有无效字符"
    )
    # a message pydantic words otherwise than its type's template: pydantic's English as it is
    custom = worded({"type": "missing", "msg": "Field required!", "ctx": {}})
    assert custom == "Field required!" and getattr(custom, "template", None) is None


def test_a_task_spec_problem_reads_in_chinese_with_its_values() -> None:
    with pytest.raises(ValidationError) as invalid:
        TaskSpec(
            step="approve",
            kind=TaskKind.APPROVE,
            title="Approve",
            process_kind="approval",
            process_id="p-1",
            business_key="p-1",
            candidates=Candidates(groups=["qa"]),
            outcomes=[OutcomeSpec(name="send_back", label="Send back", required_fields=["reason"])],
        )
    problems = problems_of(invalid.value)
    assert problems == "data: Value error, outcome send_back requires undefined fields {'reason'}"
    assert i18n.translate_message("zh_Hans", problems) == (
        "data：值错误：结果选项 send_back 要求填写未定义的字段 {'reason'}"
    )
    assert i18n.translate_message("zh_Hans", said("sla must be positive")) == "sla 必须大于 0"


def test_a_forms_custom_problem_reads_as_pydantic_says_it_after_a_label() -> None:
    odd = form_problems.said({"type": "lot_format", "msg": "Lot numbers start with L", "ctx": {}})
    assert odd == "lot numbers start with L" and getattr(odd, "template", None) is None


# ---------------------------------------------------------------- a person who reads Chinese


async def test_a_chinese_reader_sees_the_pages_validation_and_erp_problems_translated(
    site: Site,
) -> None:
    bob = await site.as_user("bob")
    saved = await bob.post("/settings", {"locale": "zh_Hans"})
    assert saved.status_code == 303, saved.text
    wrong = await bob.get("/tasks/abc")
    assert wrong.status_code == 422
    assert "请求无效：path.task_id：输入值应为有效的整数，无法将该字符串解析为整数。" in text_of(
        wrong.text
    ), text_of(wrong.text)
    alice = await site.as_user("alice")  # English: as the page always said it
    english = await alice.get("/tasks/abc")
    assert (
        "The request is not valid: path.task_id: Input should be a valid integer, unable to "
        "parse string as an integer." in text_of(english.text)
    )

    # a start form's ERP check (erp/changes.py), its values filled in
    qa = await site.as_user("carol")
    assert (await qa.post("/settings", {"locale": "zh_Hans"})).status_code == 303
    unknown = await qa.post(
        "/changes/new",
        CHANGE_FORM
        | {"action_1_target": "NOPE-1", "action_1_new_revision": "B"}
        | {k: "" for k in CHANGE_FORM if k.startswith(("action_2_", "action_3_"))},
    )
    assert unknown.status_code == 422, text_of(unknown.text)
    assert "变更请求与 ERP 不符：未知物料号 NOPE-1" in text_of(unknown.text), text_of(unknown.text)
