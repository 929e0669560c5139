"""Approval requests over REST on a LocalStack: the small process the fault tests run by the
dozen (register, open a task, decide it, complete), with the checks they share."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from erp.models import Process, Task, TaskDecision
from lotline_run.stack import DEMO_PASSWORD, LocalStack
from tests.helpers import eventually


def approval(n: int) -> dict[str, Any]:
    return {"title": f"Approve SOP-QA-{n:03d} rev B", "approver_groups": ["qa"], "sla_hours": 48}


async def start_approvals(stack: LocalStack, count: int, prefix: str) -> list[str]:
    """Start `count` approvals as alice, each with its own Idempotency-Key; their process ids."""
    alice = await stack.token("alice")

    async def start(n: int) -> str:
        response = await stack.http.post(
            "/api/v1/processes/approval",
            json=approval(n),
            headers=alice | {"Idempotency-Key": f"{prefix}-{n}"},
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])

    return list(await asyncio.gather(*(start(n) for n in range(count))))


async def open_task(stack: LocalStack, process_id: str, timeout: float = 120) -> Task:
    async def probe() -> Task | None:
        assert stack.sessions is not None
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.process_id == process_id, Task.status == "open")
            )

    return await eventually(probe, timeout=timeout, what=f"the task of {process_id}")


async def approve(stack: LocalStack, process_id: str) -> None:
    """bob approves the process's task (retrying while a dependency is still coming back)."""
    task = await open_task(stack, process_id)
    bob = await stack.token("bob")

    async def attempt() -> bool:
        response = await stack.http.post(
            f"/api/v1/tasks/{task.id}/decision",
            json={"outcome": "approve", "password": DEMO_PASSWORD},
            headers=bob,
        )
        if response.status_code == 503:
            return False
        assert response.status_code == 200, response.text
        return True

    await eventually(attempt, timeout=120, what=f"bob's decision on {process_id}")


async def wait_completed(stack: LocalStack, process_ids: list[str], timeout: float = 120) -> None:
    async def probe() -> bool:
        assert stack.sessions is not None
        async with stack.sessions() as session:
            done = await session.scalar(
                select(func.count())
                .select_from(Process)
                .where(Process.id.in_(process_ids), Process.status == "completed")
            )
        return done == len(process_ids)

    await eventually(probe, timeout=timeout, what=f"{len(process_ids)} approvals completed")


async def assert_each_once(stack: LocalStack, process_ids: list[str]) -> None:
    """One process row, one task and one decision per approval: nothing lost, nothing twice."""
    assert stack.sessions is not None
    async with stack.sessions() as session:
        processes = await session.scalar(
            select(func.count()).select_from(Process).where(Process.id.in_(process_ids))
        )
        tasks = await session.scalar(
            select(func.count()).select_from(Task).where(Task.process_id.in_(process_ids))
        )
        decisions = await session.scalar(
            select(func.count())
            .select_from(TaskDecision)
            .join(Task, Task.id == TaskDecision.task_id)
            .where(Task.process_id.in_(process_ids))
        )
    assert (processes, tasks, decisions) == (len(process_ids),) * 3
