"""GET /api/v1/dashboard on known rows: every figure checked exactly — SLA buckets, medians and
90th percentiles (percentile_cont, interpolated), weekly trends, CAPA aging, NCs by source and
supplier, supplier scorecards, recall effectiveness, lots on hold — plus the filters' 422s and
who may read it."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from erp.models import ApiKey, AppUser
from erp.passwords import token_digest
from tests.api.conftest import Stack
from tests.dashboard_rows import RANGE, WEEK_1, WEEK_2, load_known_rows


@pytest.fixture
async def loaded(stack: Stack) -> Stack:
    await load_known_rows(stack.sessions)
    return stack


def cycle(kind: str, step: str | None, count: int, median: float, p90: float) -> dict:
    return {
        "process_kind": kind,
        "step": step,
        "count": count,
        "median_hours": median,
        "p90_hours": p90,
    }


async def test_every_figure_on_known_rows(loaded: Stack) -> None:
    headers = await loaded.token("carol")
    response = await loaded.http.get(
        "/api/v1/dashboard", params=RANGE | {"process": "purchase"}, headers=headers
    )
    assert response.status_code == 200, response.text
    d = response.json()
    assert d["filters"] == {
        "date_from": "2026-01-05",
        "date_to": "2026-01-18",
        "process_kind": "purchase",
    }
    assert d["due_soon_hours"] == 24
    assert d["open_tasks"] == [
        {
            "process_kind": "purchase",
            "on_time": 2,
            "due_soon": 1,
            "overdue": 1,
            "escalated": 1,
            "total": 5,
        }
    ]
    # percentile_cont interpolates: p90 of 1, 2, 3, 4, 10 = 4 + 0.6 × (10 − 4) = 7.6
    assert d["step_cycle_times"] == [
        cycle("purchase", "approval", 2, 6.0, 6.8),
        cycle("purchase", "inspection", 5, 3.0, 7.6),
    ]
    assert d["process_cycle_times"] == [cycle("purchase", None, 2, 36.0, 45.6)]
    assert d["slowest_steps"] == d["step_cycle_times"]  # already slowest first
    # week 1: 1, 2, 3, 5 h; week 2: 4, 7, 10 h
    assert d["task_trend"] == [
        {"week": WEEK_1, "process_kind": None, "count": 4, "median_hours": 2.5, "p90_hours": 4.4},
        {"week": WEEK_2, "process_kind": None, "count": 3, "median_hours": 7.0, "p90_hours": 9.4},
    ]
    assert d["process_trend"] == [
        {
            "week": WEEK_1,
            "process_kind": "purchase",
            "count": 1,
            "median_hours": 24.0,
            "p90_hours": 24.0,
        },
        {
            "week": WEEK_2,
            "process_kind": "purchase",
            "count": 1,
            "median_hours": 48.0,
            "p90_hours": 48.0,
        },
    ]
    assert [(b["key"], b["count"]) for b in d["capa_aging"]] == [
        ("0-30", 1),
        ("31-90", 1),
        ("91-180", 1),
        ("over-180", 1),
    ]
    assert [(r["key"], r["count"]) for r in d["nc_by_source"]] == [
        ("incoming", 3),
        ("complaint", 1),
    ]
    assert [(r["key"], r["count"]) for r in d["nc_by_supplier"]] == [
        ("SUP-0003", 2),
        ("SUP-0001", 1),
    ]
    scores = {s["supplier_code"]: s for s in d["supplier_scorecards"]}
    assert set(scores) == {"SUP-0001", "SUP-0003"}
    assert scores["SUP-0001"] | {"supplier_name": ""} == {
        "supplier_code": "SUP-0001",
        "supplier_name": "",
        "receipts": 4,
        "on_time_receipts": 3,
        "on_time_percent": 75.0,
        "inspections": 4,
        "accepted_inspections": 3,
        "acceptance_percent": 75.0,
        "nonconformances": 1,
    }
    sup3 = scores["SUP-0003"]
    assert (sup3["receipts"], sup3["on_time_percent"]) == (1, 0.0)
    assert (sup3["inspections"], sup3["accepted_inspections"], sup3["acceptance_percent"]) == (
        2,
        1,
        50.0,
    )
    assert sup3["nonconformances"] == 2
    assert [r["number"] for r in d["recalls"]] == ["RCL-T-1"]
    recall = d["recalls"][0]
    assert {k: recall[k] for k in recall if k not in ("process_id", "status", "drill")} == {
        "number": "RCL-T-1",
        "classification": "II",
        "level": "B",
        "target_percent": 50,
        "consignees": 3,
        "notified": 2,
        "responded": 2,
        "responded_percent": 66.7,
        "target_met": True,
        "units_shipped": "100.0000",
        "units_recovered": "30.0000",
        "units_received_back": "8.0000",
        "recovered_percent": 30.0,
    }
    # the demo data holds two lots (a component and a finished good)
    assert d["lots_on_hold_count"] == 2
    assert sorted(lot["part_number"] for lot in d["lots_on_hold"])[0] == "DC-0330"
    assert all(lot["hold_reason"] for lot in d["lots_on_hold"])

    # without the process filter: every kind's open tasks, and change control's CCB is slowest
    everything = (await loaded.http.get("/api/v1/dashboard", params=RANGE, headers=headers)).json()
    assert [
        (r["process_kind"], r["overdue"], r["escalated"], r["total"])
        for r in everything["open_tasks"]
    ] == [
        ("change-control", 1, 1, 2),
        ("purchase", 1, 1, 5),
    ]
    assert [(s["process_kind"], s["step"]) for s in everything["slowest_steps"]] == [
        ("change-control", "ccb"),
        ("purchase", "approval"),
        ("purchase", "inspection"),
    ]
    assert [(p["process_kind"], p["count"]) for p in everything["process_cycle_times"]] == [
        ("change-control", 1),
        ("purchase", 2),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "05/01/2026"}, "from must be a date written YYYY-MM-DD"),
        ({"to": "2026-02-30"}, "to must be a date written YYYY-MM-DD"),
        ({"to": "9999-12-31"}, "to must lie between 1900-01-01 and 2999-12-31"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "starts (2026-02-01) after it ends"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "longer than 731 days"),
        ({"process": "payroll"}, "process is one of approval, change-control"),
    ],
)
async def test_bad_filters_are_refused_with_what_to_send(
    stack: Stack, params: dict[str, str], message: str
) -> None:
    response = await stack.http.get(
        "/api/v1/dashboard", params=params, headers=await stack.token("heidi")
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


async def test_people_read_it_and_systems_need_the_scope(stack: Stack) -> None:
    assert (await stack.http.get("/api/v1/dashboard")).status_code == 401
    refused = await stack.http.get("/api/v1/dashboard", headers=stack.mes)
    assert refused.status_code == 403
    assert "dashboard:read" in refused.json()["detail"]
    async with stack.sessions() as session, session.begin():
        mes = await session.scalar(select(AppUser).where(AppUser.username == "mes"))
        assert mes is not None
        session.add(
            ApiKey(
                name="bi-tool",
                key_hash=token_digest("ll_test_bi_key"),
                scopes=["dashboard:read"],
                user_id=mes.id,
            )
        )
    allowed = await stack.http.get("/api/v1/dashboard", headers={"X-API-Key": "ll_test_bi_key"})
    assert allowed.status_code == 200, allowed.text
    body = allowed.json()
    # default range: the last 12 weeks up to today
    start, end = (
        datetime.fromisoformat(body["filters"][k]).date() for k in ("date_from", "date_to")
    )
    assert (end - start).days + 1 == 84
    assert body["lots_on_hold_count"] == 2
