"""Stored values, form problems and the API's refusals in the reader's language.

The scans and the form problems need no servers; the last test, on the whole stack, has a person
who reads Chinese see a refusal of the API, a form's problem and a stored value in Chinese."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from tests.ui.conftest import Site, text_of
from ui import i18n, values
from ui.supply_views import form_problem

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "ui" / "templates").glob("*.html"))
# a stored status, kind, step… printed as it is (or with `_` made a space); not one in an attribute
# (class="risk-{{ c.risk }}") or a URL, which are for the code
RAW_VALUE = re.compile(
    r"(?<![-=\"/?&])\{\{\s*([\w.]+\.(?:status|kind|risk|role|status_before|outcome|step"
    r"|current_step|severity|source))\s*(\|\s*replace\([^)]*\))?\s*\}\}"
)
# free text, not a value from a list: a supplier certificate's kind is "ISO 13485:2016"
FREE_TEXT = {"c.kind"}


def test_every_stored_value_has_a_translation_in_its_context() -> None:
    chinese = i18n.catalog("zh_Hans")
    missing = [
        (context, label)
        for context, table in values.VALUE_LABELS.items()
        for label in table.values()
        if i18n.keyed(context, label) not in chinese
    ]
    assert not missing, f"add msgctxt/msgid/msgstr to ui/locales/zh_Hans/messages.po: {missing}"


def test_no_template_prints_a_stored_value_raw() -> None:
    raw = [
        f"{path.name}: {match.group(0)}"
        for path in TEMPLATES
        for match in RAW_VALUE.finditer(path.read_text(encoding="utf-8"))
        if match.group(1) not in FREE_TEXT
    ]
    assert not raw, f'show these with |stored("<context>") (ui/values.py): {raw}'


def test_a_stored_value_reads_in_its_context() -> None:
    assert values.stored("capa status", "root_cause", "en") == "root cause"
    assert values.stored("capa status", "root_cause", "zh_Hans") == "根本原因分析"
    assert values.stored("nc status", "closure", "zh_Hans") == "关闭审核"
    assert values.stored("lot status", "ON_HOLD", "zh_Hans") == "已冻结"
    assert values.stored("risk", "high", "zh_Hans") == "高"
    # a value the table does not know yet: as stored, `_` a space; an outcome label translated
    assert values.stored("step", "new_step", "zh_Hans") == "new step"
    assert values.stored("outcome", "reject", "zh_Hans") == "驳回"
    assert values.stored("risk", None, "zh_Hans") == ""


class _Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class _Form(BaseModel):
    title: str = Field(min_length=3, max_length=10)
    quantity: Decimal = Field(gt=0)
    due_on: date
    colour: _Colour
    note: str = Field(min_length=1)


def test_form_problems_are_chosen_by_type_and_read_in_chinese() -> None:
    try:
        _Form.model_validate(
            {"title": "far too long a title", "quantity": "0", "due_on": "soon", "colour": "green"}
        )
    except ValidationError as err:
        problem = form_problem(err, labels={"title": "Title", "colour": "Colour"})
    english = i18n.translate_message("en", problem)
    assert english == (
        "Title: string should have at most 10 characters; Quantity: must be more than 0; "
        "Due date: enter a date like 2026-12-31; Colour: choose one of 'red' or 'blue'; "
        "note: fill this in"
    ), english
    chinese = i18n.translate_message("zh_Hans", problem)
    assert chinese.startswith("标题：最多 10 个字符；数量：必须大于 0；到期日：请按 2026-12-31"), (
        chinese
    )
    assert "请从 'red' 或 'blue' 中选择一项" in chinese, chinese
    assert "should" not in chinese and "must" not in chinese, chinese


# ---------------------------------------------------------------- a person who reads Chinese


async def test_refusals_form_problems_and_stored_values_in_chinese(site: Site) -> None:
    headers = await site.api.token("alice")
    asked = await site.api.http.get(
        "/api/v1/lots", params={"status": "bogus"}, headers=headers | {"Accept-Language": "zh"}
    )
    assert asked.status_code == 422
    assert asked.json()["detail"].startswith("status 应为 QUARANTINE, RELEASED"), asked.text
    assert asked.json()["detail"].endswith("而不是 'bogus'"), asked.text
    english = await site.api.http.get("/api/v1/lots", params={"status": "bogus"}, headers=headers)
    assert english.json()["detail"].startswith("status is one of QUARANTINE, RELEASED")

    await site.start_approval()
    alice = await site.as_user("alice")
    assert (await alice.post("/settings", {"locale": "zh_Hans"})).status_code == 303

    invalid = await alice.post("/processes/new", {"title": "x", "description": "kept"})
    assert invalid.status_code == 422
    shown = text_of(invalid.text)
    assert "至少需要 3 个字符" in shown and "至少需要 1 项" in shown, shown
    assert "should have" not in shown, shown

    listed = (await alice.get("/processes")).text
    assert '<span class="pill kind">审批</span>' in listed, listed
    assert ">运行中" in listed, listed
