"""Issue 7.2: PostgreSQL and the Temporal server go down while processes run. Meanwhile the API
answers 503 with a message saying which service is down and that nothing was changed, /readyz
names it; when it is back, activities retry, workflows resume and the API recovers by itself,
with nothing lost or written twice and the audit chain intact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from erp.audit import verify_chain
from lotline_run.stack import DEMO_PASSWORD, LocalStack
from tests.reliability.approvals import (
    approval,
    approve,
    assert_each_once,
    open_task,
    start_approvals,
    wait_completed,
)

COUNT = 8


async def readiness(stack: LocalStack) -> tuple[int, dict[str, object]]:
    response = await stack.http.get("/readyz")
    return response.status_code, response.json()


async def chain_ok(stack: LocalStack) -> None:
    assert stack.sessions is not None
    async with stack.sessions() as session:
        result = await verify_chain(session)
    assert result.ok, result.problem


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # a clean stop, and a crash
async def test_postgres_goes_down_while_processes_start_and_decide(
    tmp_path: Path, mode: str
) -> None:
    async with LocalStack(tmp_path) as stack:
        await stack.start(workers=1)
        bob = await stack.token("bob")
        first = await start_approvals(stack, COUNT, "pg-a")
        stack.stop_postgres(mode)  # activities of those starts are in flight

        status, ready = await readiness(stack)
        assert status == 503 and ready["database"] != "ok" and ready["temporal"] == "ok"
        inbox = await stack.http.get("/api/v1/tasks", headers=bob)
        assert inbox.status_code == 503
        assert inbox.headers["Retry-After"]
        assert "database is not reachable" in inbox.json()["detail"]
        assert "nothing was changed" in inbox.json()["detail"]

        await asyncio.sleep(3)  # the worker's activities fail and back off meanwhile
        stack.start_postgres()
        assert (await readiness(stack))[0] == 200
        second = await start_approvals(stack, COUNT, "pg-b")
        for process_id in first + second:
            await approve(stack, process_id)
        await wait_completed(stack, first + second)
        await assert_each_once(stack, first + second)
        await chain_ok(stack)


async def test_temporal_restarts_while_processes_wait_and_run(tmp_path: Path) -> None:
    async with LocalStack(tmp_path) as stack:
        await stack.start(workers=1)
        alice, bob = await stack.token("alice"), await stack.token("bob")
        waiting = await start_approvals(stack, COUNT, "tmp-a")
        task = await open_task(stack, waiting[0])
        await stack.stop_temporal()

        status, ready = await readiness(stack)
        assert status == 503 and ready["temporal"] != "ok" and ready["database"] == "ok"
        start = await stack.http.post(
            "/api/v1/processes/approval", json=approval(99), headers=alice
        )
        assert start.status_code == 503, start.text
        assert "Temporal" in start.json()["detail"] and "nothing was changed" in start.text
        decision = await stack.http.post(
            f"/api/v1/tasks/{task.id}/decision",
            json={"outcome": "approve", "password": DEMO_PASSWORD},
            headers=bob,
        )
        assert decision.status_code == 503, decision.text
        assert (await stack.http.get("/api/v1/tasks", headers=bob)).status_code == 200

        await stack.start_temporal()  # the same state file: every workflow is still there
        assert (await readiness(stack))[0] == 200
        more = await start_approvals(stack, COUNT, "tmp-b")
        for process_id in waiting + more:
            await approve(stack, process_id)
        await wait_completed(stack, waiting + more)
        await assert_each_once(stack, waiting + more)
        await chain_ok(stack)


async def test_temporal_killed_mid_flight_loses_nothing(tmp_path: Path) -> None:
    async with LocalStack(tmp_path) as stack:
        await stack.start(workers=1)
        started = await start_approvals(stack, COUNT, "tkill")
        await stack.restart_temporal(kill=True, down_for=2)  # SIGKILL, not a clean stop
        for process_id in started:
            await approve(stack, process_id)
        await wait_completed(stack, started)
        await assert_each_once(stack, started)
        await chain_ok(stack)
