"""audit: audited ERP writes per second through the real activity code, against plain INSERTs of
the same rows (the ERP row and an audit row without chain, hash or lock) over one pool.

The write is `register_process` (activities/process.py): one `process` row and its hash-chained,
keyed audit row, committed together, the chain lock held from the head's read to the commit. It
runs under `temporalio.testing.ActivityEnvironment` (the real activity, its context and its
audit origin; real PostgreSQL; no server) from `audit_writers` concurrent callers. The ceiling runs
after it on the same database (its unchained rows would otherwise be the head the activities
chain onto), with as many concurrent INSERTers over a pool of the same size. A third figure, with
no target, runs the same activity on a real Temporal worker from as many concurrent workflows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.liveness import LivenessInterceptor
from activities.process import ProcessActivities
from bench.audit_workflow import TASK_QUEUE, AuditedWritesWorkflow
from bench.common import Row, Sizes, Stopwatch, local_stack, say
from erp.audit import verify_chain
from erp.db import make_engine, make_session_factory
from erp.models import AuditEntry, Process
from lotline_run.stack import LocalStack
from schemas.activities import RegisterProcessInput


def _worker_rows(sizes: Sizes) -> int:
    """The Temporal leg's writes: at most 1,000 (each is a round trip through the server; the
    figure is a rate, and 5,000 would add minutes to the run for no better a figure)."""
    return min(sizes.audit_rows, 1_000)


def _input(prefix: str, n: int) -> RegisterProcessInput:
    return RegisterProcessInput(
        process_id=f"{prefix}-{n}",
        run_id=uuid.uuid4().hex,
        kind="approval",
        title=f"Approve work instruction WI-{n:05d} rev B",
        business_key=f"WI-{n:05d}",
        initiator="alice",
    )


async def _writers(count: int, total: int, one: Callable[[int], Awaitable[None]]) -> float:
    """`total` calls of `one(n)` from `count` concurrent callers; the seconds it took."""
    numbers = itertools.count()

    async def caller() -> None:
        while (n := next(numbers)) < total:
            await one(n)

    with Stopwatch() as clock:
        await asyncio.gather(*(caller() for _ in range(count)))
    return clock.seconds


async def _through_activity(engine: AsyncEngine, sizes: Sizes, prefix: str) -> float:
    activities = ProcessActivities(make_session_factory(engine))
    base = ActivityEnvironment().info

    async def one(n: int) -> None:
        data = _input(prefix, n)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            base,
            activity_type="register_process",
            workflow_id=data.process_id,
            workflow_run_id=data.run_id,
            workflow_type="ApprovalRequest",
        )
        await env.run(activities.register_process, data)

    await _writers(sizes.audit_writers, sizes.audit_writers, lambda n: one(10**7 + n))  # warm
    return await _writers(sizes.audit_writers, sizes.audit_rows, one)


async def _plain_inserts(engine: AsyncEngine, sizes: Sizes, prefix: str) -> float:
    """The same two rows per write, as plain INSERTs in one transaction: no existence check, no
    lock, no head, no hash or MAC, no seal."""

    async def one(n: int) -> None:
        data = _input(prefix, n)
        async with engine.begin() as conn:
            await conn.execute(
                insert(Process).values(
                    id=data.process_id,
                    run_id=data.run_id,
                    kind=data.kind,
                    title=data.title,
                    business_key=data.business_key,
                    initiator=data.initiator,
                    status="running",
                    current_step="started",
                )
            )
            await conn.execute(
                insert(AuditEntry).values(
                    recorded_at=func.clock_timestamp(),
                    actor=data.initiator or "system",
                    action="process.started",
                    entity_type="process",
                    entity_id=data.process_id,
                    outcome="ok",
                    reason="",
                    after={"kind": data.kind, "title": data.title},
                    workflow_id=data.process_id,
                    run_id=data.run_id,
                    activity="register_process",
                    source="worker",
                    idempotency_key=f"{data.process_id}:{data.run_id}:registered",
                    prev_hash="",
                    row_hash="",
                )
            )

    await _writers(sizes.audit_writers, sizes.audit_writers, lambda n: one(10**7 + n))
    return await _writers(sizes.audit_writers, sizes.audit_rows, one)


async def run(sizes: Sizes) -> list[Row]:
    async with local_stack("audit", workers=0, api=False) as stack:
        tag = uuid.uuid4().hex[:6]
        # as the worker's: one pool, as large as the concurrency (make_engine adds as many overflow)
        engine = make_engine(stack.database_url, pool_size=sizes.audit_writers)
        try:
            say(f"audit: {sizes.audit_rows} register_process from {sizes.audit_writers} callers")
            activity_s = await _through_activity(engine, sizes, f"apr-bench-{tag}")
            say("audit: the Temporal worker leg")
            worker_s = await _through_worker(stack, engine, sizes, f"apr-worker-{tag}")
            async with make_session_factory(engine)() as session:
                verified = await verify_chain(session)
            say(f"audit: {sizes.audit_rows} plain INSERT pairs from {sizes.audit_writers} callers")
            plain_s = await _plain_inserts(engine, sizes, f"apr-plain-{tag}")
            async with engine.connect() as conn:
                rows = await conn.scalar(select(func.count()).select_from(AuditEntry))
        finally:
            await engine.dispose()
    activity_rate = sizes.audit_rows / activity_s
    plain_rate = sizes.audit_rows / plain_s
    worker_rate = _worker_rows(sizes) / worker_s
    return [
        Row(
            "audit",
            f"audited ERP writes/s (register_process, {sizes.audit_writers} concurrent callers)",
            activity_rate,
            "/s",
            plain_rate,
            better="higher",
            target="≥ 40 % of plain INSERTs",
            met=activity_rate >= 0.4 * plain_rate,
            notes=[
                f"{sizes.audit_rows} writes each way, one pool of {sizes.audit_writers} (+ as many "
                f"overflow) connections; activity leg under ActivityEnvironment (no server); "
                f"ceiling: the process row and an audit row as plain INSERTs in one transaction; "
                f"chain after the activity legs: {verified.rows_checked} rows verified, "
                f"intact={verified.ok}; {rows} audit rows in all",
            ],
        ),
        Row(
            "audit",
            f"the same through a Temporal worker ({_worker_rows(sizes)} writes from "
            f"{sizes.audit_writers} concurrent workflows)",
            worker_rate,
            "/s",
            plain_rate,
            better="higher",
            target="(report)",
        ),
    ]


async def _through_worker(
    stack: LocalStack, engine: AsyncEngine, sizes: Sizes, prefix: str
) -> float:
    """The activity through a real worker (in this process, the same pool): `audit_writers`
    workflows, each registering its share of processes one after another."""
    client = await stack.client()
    activities = ProcessActivities(make_session_factory(engine))
    total = _worker_rows(sizes)
    share = [total // sizes.audit_writers] * sizes.audit_writers
    share[0] += total - sum(share)
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[AuditedWritesWorkflow],
        activities=[activities.register_process],
        interceptors=[LivenessInterceptor()],
    ):
        with Stopwatch() as clock:
            await asyncio.gather(
                *(
                    client.execute_workflow(
                        AuditedWritesWorkflow.run,
                        args=[f"{prefix}-{w}", count],
                        id=f"{prefix}-{w}",
                        task_queue=TASK_QUEUE,
                    )
                    for w, count in enumerate(share)
                )
            )
    return clock.seconds
