"""The API's request-validation problems and the start requests' ERP checks in the caller's
language: a caller who asks for Chinese (`Accept-Language: zh-Hans`) reads every problem
translated with its values filled in; any other caller reads the English, byte for byte as the
API always answered it (integrators match on it)."""

from __future__ import annotations

from tests.api.test_change_control_api import CHANGE
from tests.api.test_supply_api import PURCHASE

CHINESE = {"Accept-Language": "zh-Hans"}


async def test_the_request_validation_problems_read_in_chinese_when_asked(stack) -> None:
    body = PURCHASE | {
        "lines": [{"part_number": "TB-0150", "quantity": "0", "unit_price": "0.42"}],
        "due_on": "2026-13-45",
        "supplier_code": "",
    }
    english = await stack.http.post("/api/v1/processes/purchase", json=body, headers=stack.mes)
    assert english.status_code == 422, english.text
    problems = [
        "supplier_code: String should have at least 1 character",
        "lines.0.quantity: Input should be greater than 0",
        "due_on: Input should be a valid date or datetime, month value is outside expected "
        "range of 1-12",
    ]
    assert english.json() == {
        "detail": "the request is not valid: " + "; ".join(problems),
        "errors": problems,
    }
    chinese = await stack.http.post(
        "/api/v1/processes/purchase", json=body, headers=stack.mes | CHINESE
    )
    assert chinese.status_code == 422, chinese.text
    said = [
        "supplier_code：字符串应至少有 1 个字符",
        "lines.0.quantity：输入值应大于 0",
        "due_on：输入值应为有效的日期或日期时间：月份数值超出有效范围 1-12",
    ]
    assert chinese.json() == {"detail": "请求无效：" + "；".join(said), "errors": said}

    # a query's problems, a list's length and a choice, the field paths as sent (code)
    alice = await stack.token("alice")
    query = await stack.http.get("/api/v1/tasks?limit=0&scope=nobody", headers=alice | CHINESE)
    assert query.status_code == 422, query.text
    detail = query.json()["detail"]
    assert "query.limit：输入值应大于或等于 1" in detail, detail
    assert "query.scope：输入值应为 'all'" in detail and " 或 '" in detail, detail
    assert "Input should" not in detail
    again = await stack.http.get("/api/v1/tasks?limit=0", headers=alice)
    assert again.json()["detail"] == (
        "the request is not valid: query.limit: Input should be greater than or equal to 1"
    )
    empty = await stack.http.post(
        "/api/v1/processes/purchase", json=PURCHASE | {"lines": []}, headers=stack.mes | CHINESE
    )
    assert "lines：校验后列表应至少有 1 项，而不是 0 项" in empty.json()["detail"], empty.text

    # a body that is no JSON
    broken = await stack.http.post(
        "/api/v1/processes/purchase",
        content=b'{"supplier_code": ',
        headers=stack.mes | CHINESE | {"Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["detail"] == (
        "请求无效：body：不是有效的 JSON（第 18 个字符处：此处应为一个值）"
    ), broken.text
    plain = await stack.http.post(
        "/api/v1/processes/purchase",
        content=b'{"supplier_code": ',
        headers=stack.mes | {"Content-Type": "application/json"},
    )
    assert plain.json()["detail"] == (
        "the request is not valid: body: not valid JSON (Expecting value at character 18)"
    )


async def test_the_erp_checks_of_a_start_read_in_chinese_when_asked(stack) -> None:
    body = PURCHASE | {
        "supplier_code": "SUP-9999",
        "lines": [{"part_number": "ZZ-0001", "quantity": "1", "unit_price": "1"}],
        "due_on": "2020-01-01",
    }
    english = await stack.http.post("/api/v1/processes/purchase", json=body, headers=stack.mes)
    assert english.status_code == 422, english.text
    detail = english.json()["detail"]
    assert detail.startswith(
        "the purchase request does not match the ERP: supplier SUP-9999 is not known; "
        "part ZZ-0001 is not known; due_on 2020-01-01 is in the past (today is "
    ), detail
    chinese = await stack.http.post(
        "/api/v1/processes/purchase", json=body, headers=stack.mes | CHINESE
    )
    assert chinese.status_code == 422, chinese.text
    said = chinese.json()["detail"]
    assert (
        "系统中没有供应商 SUP-9999；系统中没有物料 ZZ-0001；due_on 2020年1月1日 已是过去的日期"
        in said
    ), said
    assert "not known" not in said and "in the past" not in said

    work_order = await stack.http.post(
        "/api/v1/processes/work-order",
        json={"part_number": "TB-0150", "quantity": "5", "due_on": PURCHASE["due_on"]},
        headers=stack.mes | CHINESE,
    )
    assert work_order.status_code == 422, work_order.text
    assert "TB-0150 第 C 版没有物料清单（BOM）" in work_order.json()["detail"], work_order.text

    # a change request: the ERP's problems (erp/changes.py) and the body's (pydantic)
    alice = await stack.token("alice")
    unknown = CHANGE | {
        "affected_items": ["NOPE-1"],
        "actions": [{"kind": "item_revision", "target": "LC-0110", "new_revision": "C"}],
    }
    english = await stack.http.post("/api/v1/processes/change-control", json=unknown, headers=alice)
    assert english.status_code == 422, english.text
    assert english.json()["detail"] == (
        "the change request does not match the ERP: unknown part number NOPE-1; "
        "part LC-0110 revision C is already effective"
    )
    chinese = await stack.http.post(
        "/api/v1/processes/change-control", json=unknown, headers=alice | CHINESE
    )
    said = chinese.json()["detail"]
    assert "未知物料号 NOPE-1；物料 LC-0110" in said and "已处于" in said, said
    assert "unknown part number" not in said
