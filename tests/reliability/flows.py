"""Real processes brought to the step a reliability test needs, over the API as callers do."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from erp.master_data import Lot
from erp.models import Task
from erp.seed import DEMO_PASSWORD
from tests.api.conftest import Stack
from tests.helpers import eventually

DUE = (date.today() + timedelta(days=30)).isoformat()
TUBING = {"part_number": "TB-0150", "quantity": "2000", "unit_price": "0.42"}


async def started(stack: Stack, kind: str, body: dict[str, Any], who: dict[str, str]) -> str:
    """The id of a process of `kind` just started with `body`."""
    response = await stack.http.post(f"/api/v1/processes/{kind}", json=body, headers=who)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def open_task(stack: Stack, workflow_id: str) -> int:
    """The id of the open inbox row of a task workflow, once it is there."""

    async def probe() -> int | None:
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task.id).where(Task.workflow_id == workflow_id, Task.status == "open")
            )

    return await eventually(probe, timeout=60, what=f"the open task {workflow_id}")


async def lot_of(stack: Stack, part_number: str, status: str) -> str:
    """A seeded lot of a part in a status."""
    async with stack.sessions() as session:
        lot = await session.scalar(
            select(Lot.lot_number)
            .where(Lot.part_number == part_number, Lot.status == status)
            .order_by(Lot.id)
            .limit(1)
        )
    assert lot is not None, (part_number, status)
    return lot


async def purchase_at_receiving(stack: Stack) -> str:
    """A purchase of tubing approved by the buyer and confirmed by the supplier: it now takes
    ASNs and goods receipts."""
    purchase = await started(
        stack,
        "purchase",
        {"supplier_code": "SUP-0001", "lines": [TUBING], "due_on": DUE},
        stack.mes,
    )
    approval = await open_task(stack, f"{purchase}.approval")
    decided = await stack.http.post(
        f"/api/v1/tasks/{approval}/decision",
        json={"outcome": "approve", "password": DEMO_PASSWORD},
        headers=await stack.token("frank"),
    )
    assert decided.status_code == 200, decided.text

    async def confirmed() -> httpx.Response | None:
        response = await stack.http.post(
            f"/api/v1/processes/{purchase}/events/supplier-confirmed",
            json={"promised_on": DUE},
            headers=stack.mes,
        )
        return response if response.status_code == 200 else None

    await eventually(confirmed, timeout=60, what="the purchase order issued")
    return purchase
