"""start: processes started per second through `POST /api/v1/processes/approval` by 32 concurrent
clients, against the same workflows started directly with the Temporal client.

Both legs run on one stack with its worker stopped, so neither is slowed by the other's backlog
being worked off: what is measured is the start path (authentication, the checks, the audit of
nothing — a start writes no ERP row itself — and Temporal's own start), not the first activities.
The direct leg uses the same workflow, input, id policy and task queue as `start_once`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.common import Row, Sizes, Stopwatch, local_stack, p50, p95, say
from schemas.approval import ApprovalRequestInput

BODY = {
    "title": "Approve supplier quality agreement QA-2026-118",
    "description": "Annual renewal, no changes to the incoming inspection clauses.",
    "approver_groups": ["qa"],
    "sla_hours": 48,
    "escalation_chain": ["qa-manager"],
    "signs": False,
}


async def _clients(count: int, total: int, one: object) -> tuple[float, list[float]]:
    """`total` calls of `one(n)` from `count` concurrent clients: (seconds, latencies in ms)."""
    numbers = itertools.count()
    latencies: list[float] = []

    async def client() -> None:
        while (n := next(numbers)) < total:
            began = time.perf_counter()
            await one(n)  # type: ignore[operator]
            latencies.append((time.perf_counter() - began) * 1000)

    with Stopwatch() as clock:
        await asyncio.gather(*(client() for _ in range(count)))
    return clock.seconds, latencies


async def run(sizes: Sizes) -> list[Row]:
    async with local_stack("start", workers=1) as stack:
        for worker in list(stack.workers):
            await stack.stop_worker(worker)
        temporal = await stack.client()
        mes = stack.mes
        tag = uuid.uuid4().hex[:8]

        async def through_api(n: int) -> None:
            response = await stack.http.post(
                "/api/v1/processes/approval",
                json=BODY,
                headers=mes | {"Idempotency-Key": f"bench-{tag}-{n}"},
            )
            if response.status_code != 201:
                raise RuntimeError(f"start {n}: {response.status_code} {response.text[:300]}")

        async def direct(n: int) -> None:
            process_id = f"apr-direct-{tag}-{n}"
            await temporal.start_workflow(
                "ApprovalRequest",
                ApprovalRequestInput.model_validate(
                    BODY | {"process_id": process_id, "initiator": "mes"}
                ),
                id=process_id,
                task_queue=stack.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )

        # warm both paths (connections, the API's first requests) before measuring
        await _clients(sizes.clients, sizes.clients, lambda n: through_api(10**9 + n))
        await _clients(sizes.clients, sizes.clients, lambda n: direct(10**9 + n))
        # alternate halves so that any drift of the machine (the SQLite file growing) is shared
        half = sizes.starts // 2
        api_s, dir_s = 0.0, 0.0
        api_ms: list[float] = []
        dir_ms: list[float] = []
        for leg in range(2):
            say(f"start: {half} through the API ({sizes.clients} clients), leg {leg + 1}")
            seconds, ms = await _clients(
                sizes.clients, half, lambda n, base=leg * half: through_api(base + n)
            )
            api_s, api_ms = api_s + seconds, api_ms + ms
            say(f"start: {half} directly with the Temporal client, leg {leg + 1}")
            seconds, ms = await _clients(
                sizes.clients, half, lambda n, base=leg * half: direct(base + n)
            )
            dir_s, dir_ms = dir_s + seconds, dir_ms + ms
    api_rate, dir_rate = len(api_ms) / api_s, len(dir_ms) / dir_s
    return [
        Row(
            "start",
            f"processes started/s, {sizes.clients} clients, POST /api/v1/processes/approval",
            api_rate,
            "/s",
            dir_rate,
            better="higher",
            target="≥ 70 % of direct starts",
            met=api_rate >= 0.7 * dir_rate,
            notes=[
                f"{len(api_ms)} starts each way, worker stopped (the start path only); "
                f"API p50 {p50(api_ms):.0f} ms, p95 {p95(api_ms):.0f} ms; "
                f"direct p50 {p50(dir_ms):.0f} ms, p95 {p95(dir_ms):.0f} ms"
            ],
        ),
        Row(
            "start",
            "start latency p95",
            p95(api_ms),
            "ms",
            p95(dir_ms),
            target="(report)",
        ),
    ]
