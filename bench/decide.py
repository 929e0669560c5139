"""decide: a person's decision through `POST /api/v1/tasks/{id}/decision` until the task is closed
in the ERP, with 1,000 processes waiting on people, against a no-op update round trip on a trivial
workflow through the same Temporal server.

The decision is the real one: the API checks who may decide, sends the `decide` update to the
task's workflow, whose validator checks again and whose audited activity writes the decision and
closes the inbox row; the API answers when that has committed (and the bench checks the row).
Decisions are taken one after another, so the latency is the path's own, not a queue's. The
signed variant adds the re-entered password's argon2 verification, deliberately slow.

Two more figures split the path, for whoever works on it: the same decisions paced (the next one
only after the previous decision's aftermath — the child workflow completing, the parent's steps
and their audited writes — has settled, as it has when a person reads the next task first), and
the `decide` update sent straight to the task's workflow (no HTTP, no API checks).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from sqlalchemy import func, select

from bench.common import Row, Sizes, local_stack, p50, p95, say
from bench.update_worker import TASK_QUEUE as NOOP_QUEUE
from erp.models import Task
from lotline_run.stack import DEMO_PASSWORD
from schemas.approval import ApprovalRequestInput
from schemas.human_task import DecisionRequest

PACE_S = 0.5  # between paced decisions: the previous decision's aftermath takes ~50-100 ms


async def run(sizes: Sizes) -> list[Row]:
    async with local_stack("decide", workers=1) as stack:
        await stack.start_worker([sys.executable, "-m", "bench.update_worker"])
        temporal = await stack.client()
        tag = uuid.uuid4().hex[:6]
        signed = max(10, sizes.decisions // 5)
        split = max(10, sizes.decisions // 3)  # paced through the API, and sent directly
        total = sizes.waiting + sizes.decisions + signed + 2 * split
        say(f"decide: starting {total} approvals")

        async def start(n: int) -> None:
            pid = f"apr-bench-{tag}-{n}"
            await temporal.start_workflow(
                "ApprovalRequest",
                ApprovalRequestInput(
                    process_id=pid,
                    initiator="alice",
                    title=f"Approve work instruction WI-{n:05d} rev B",
                    approver_groups=["qa"],
                    sla_hours=48,
                    escalation_chain=["qa-manager"],
                    signs=n % 2 == 0,
                ),
                id=pid,
                task_queue=stack.task_queue,
            )

        for chunk in range(0, total, 200):
            await asyncio.gather(*(start(n) for n in range(chunk, min(total, chunk + 200))))
        assert stack.sessions is not None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            async with stack.sessions() as session:
                opened = await session.scalar(
                    select(func.count()).select_from(Task).where(Task.status == "open")
                )
            if (opened or 0) >= total:
                break
            await asyncio.sleep(1)
        say(f"decide: {opened} tasks open")
        async with stack.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Task.id,
                        Task.spec["outcomes"][0]["signature_meaning"].as_string(),
                        Task.workflow_id,
                    )
                    .where(Task.status == "open")
                    .order_by(Task.id)
                )
            ).all()
        unsigned = [r[0] for r in rows if r[1] is None]
        signing = [r[0] for r in rows if r[1] is not None]
        workflow_of = {r[0]: r[2] for r in rows}
        bob = await stack.token("bob")

        async def decide(task_id: int, body: dict[str, object]) -> float:
            began = time.perf_counter()
            response = await stack.http.post(
                f"/api/v1/tasks/{task_id}/decision", json=body, headers=bob
            )
            if response.status_code != 200:
                raise RuntimeError(f"decision on {task_id}: {response.text[:300]}")
            async with stack.sessions() as session:  # type: ignore[misc]
                status = await session.scalar(select(Task.status).where(Task.id == task_id))
            if status == "open":
                raise RuntimeError(f"task {task_id} still open after its decision was answered")
            return (time.perf_counter() - began) * 1000

        # the newest tasks are decided, so that `waiting` processes stay waiting throughout
        plain = [await decide(t, {"outcome": "approve"}) for t in unsigned[:3]]  # warm-up
        plain = [await decide(t, {"outcome": "approve"}) for t in unsigned[3 : 3 + sizes.decisions]]
        body: dict[str, object] = {"outcome": "approve", "password": DEMO_PASSWORD}
        signs = [await decide(t, body) for t in signing[:signed]]
        rest = unsigned[3 + sizes.decisions :]

        async def paced(task_id: int) -> float:
            await asyncio.sleep(PACE_S)
            return await decide(task_id, {"outcome": "approve"})

        async def direct(task_id: int) -> float:
            await asyncio.sleep(PACE_S)
            began = time.perf_counter()
            await temporal.get_workflow_handle(workflow_of[task_id]).execute_update(
                "decide",
                DecisionRequest(
                    task_id=task_id,
                    decider="bob",
                    decider_name="Bob Okafor",
                    qualifying_groups=["qa"],
                    outcome="approve",
                ),
                id=f"bench-decide-{task_id}",
            )
            return (time.perf_counter() - began) * 1000

        calm = [await paced(t) for t in rest[:split]]
        straight = [await direct(t) for t in rest[split : 2 * split]]
        async with stack.sessions() as session:
            still = await session.scalar(
                select(func.count()).select_from(Task).where(Task.status == "open")
            )
        say(f"decide: {len(plain)} + {len(signs)} decisions; {still} processes still waiting")

        noop = await temporal.start_workflow(
            "BenchNoopUpdate", id=f"bench-noop-{tag}", task_queue=NOOP_QUEUE
        )
        for n in range(3):
            await noop.execute_update("noop", n, id=f"warm-{n}")
        ceiling = []
        for n in range(sizes.decisions):
            began = time.perf_counter()
            await noop.execute_update("noop", n, id=f"noop-{n}")
            ceiling.append((time.perf_counter() - began) * 1000)
        await noop.signal("finish")
    note = (
        f"{len(plain)} decisions one after another, {still} processes waiting meanwhile; "
        f"decision p50 {p50(plain):.1f} ms, no-op update p50 {p50(ceiling):.1f} ms; "
        f"signed (argon2 re-entry) p50 {p50(signs):.0f} ms; "
        f"paced {PACE_S} s apart p50 {p50(calm):.1f} ms, the update sent straight to the "
        f"workflow (paced) p50 {p50(straight):.1f} ms"
    )
    return [
        Row(
            "decide",
            "decision until closed in the ERP, p95",
            p95(plain),
            "ms",
            p95(ceiling),
            target="≤ 3 × no-op update",
            met=p95(plain) <= 3 * p95(ceiling),
            notes=[note],
        ),
        Row(
            "decide",
            "signed decision (password re-entered), p95",
            p95(signs),
            "ms",
            p95(ceiling),
            target="(report)",
        ),
        Row(
            "decide",
            f"the same, paced {PACE_S} s apart (the previous aftermath settled), p95",
            p95(calm),
            "ms",
            p95(ceiling),
            target="(report)",
        ),
        Row(
            "decide",
            "the decide update sent straight to the workflow (paced; no HTTP, no API), p95",
            p95(straight),
            "ms",
            p95(ceiling),
            target="(report)",
        ),
    ]
