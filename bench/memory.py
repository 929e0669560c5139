"""memory: worker and API resident memory with N processes waiting on people, and its growth.

N approval processes are started (with the Temporal client) and left waiting on their task (48 h
SLA). Then, under a light load of the kind people put on it — inbox lists and task details
through the API, and now and then a decision (signed) and a new request — the resident set of the
worker and of the API (each with any child processes) is sampled every few seconds: first through
a warm-up, then for the run measured. Growth is the last sample against the first after warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import statistics
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bench.common import Row, Sizes, Stopwatch, local_stack, rss, say
from bench.escalate import BYTECODE_ENV, START_CONCURRENCY, bounded, poll_until
from erp.models import Task
from lotline_run.stack import DEMO_PASSWORD, LocalStack
from schemas.approval import ApprovalRequestInput

MIB = 2**20
GROWTH_PERCENT = 5.0
GROWTH_MIB = 10.0
TARGET = f"growth ≤ {GROWTH_PERCENT:.0f} % or ≤ {GROWTH_MIB:.0f} MiB after warm-up"
# the load: every tick an inbox list and a task detail; every DECIDE_EVERY ticks a decision and a
# new request, so the number waiting stays about N
TICK_SECONDS = 1.0
DECIDE_EVERY = 5


@dataclass
class Load:
    """What the load did, for the notes (and to see it did not fail silently)."""

    requests: int = 0
    errors: int = 0
    decisions: int = 0
    starts: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


async def run(sizes: Sizes) -> list[Row]:
    n = sizes.memory_processes
    measured = sizes.memory_minutes * 60
    warm_up = max(10.0, min(60.0, measured / 10))
    every = max(5.0, min(30.0, measured / 20))
    async with local_stack("memory", workers=1, api=True, env=BYTECODE_ENV) as stack:
        started = await _start_waiting(stack, n)
        assert stack.api is not None and stack.temporal is not None
        pids = {
            "worker": stack.workers[0].process.pid,
            "API": stack.api.process.pid,
            "Temporal": stack.temporal.process.pid,
        }
        samples: dict[str, list[float]] = {name: [] for name in pids}
        load = Load()
        loading = asyncio.create_task(_load(stack, load, n))
        try:
            say(f"memory: warm-up {warm_up:.0f} s under load")
            await asyncio.sleep(warm_up)
            deadline = time.monotonic() + measured
            say(f"memory: sampling every {every:.0f} s for {measured / 60:.1f} min")
            while True:
                for name, pid in pids.items():
                    samples[name].append(rss(pid) / MIB)
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
    load_note = (
        f"load: {load.requests:,} API requests ({load.errors} failed; statuses "
        f"{dict(sorted(load.statuses.items()))}), {load.decisions} decisions (signed), "
        f"{load.starts} new requests, over {(warm_up + measured) / 60:.1f} min"
    )
    temporal = samples["Temporal"]
    rows: list[Row] = []
    for name in ("worker", "API"):
        series = samples[name]
        first, last = series[0], series[-1]
        growth = last - first
        percent = growth / first * 100 if first else 0.0
        rows += [
            Row("memory", f"{name} RSS with {n:,} processes waiting", last, "MiB", target="report"),
            Row(
                "memory",
                f"{name} RSS growth over {measured / 60:.0f} min",
                growth,
                "MiB",
                target=TARGET,
                met=growth <= GROWTH_MIB or percent <= GROWTH_PERCENT,
                notes=[
                    f"{name}: {first:.0f} MiB after warm-up → {last:.0f} MiB at the end "
                    f"({growth:+.1f} MiB, {percent:+.1f} %); slope {_slope(series, every):+.2f} "
                    f"MiB/min; peak {max(series):.0f} MiB; {len(series)} samples, every "
                    f"{every:.0f} s (RSS of the process and its children)"
                ],
            ),
        ]
    rows[-1].notes += [
        f"Temporal dev server RSS {temporal[0]:.0f} → {temporal[-1]:.0f} MiB "
        f"(median {statistics.median(temporal):.0f})",
        started,
        load_note,
    ]
    return rows


def _slope(series: list[float], every: float) -> float:
    """Least-squares growth in MiB per minute."""
    if len(series) < 2:
        return 0.0
    xs = [i * every / 60 for i in range(len(series))]
    return statistics.linear_regression(xs, series).slope


async def _start_waiting(stack: LocalStack, n: int) -> str:
    """N approval processes, each waiting on its (qa group) task; returns the note on it."""
    say(f"memory: starting {n} approval processes")
    client = await stack.client()

    async def start(i: int) -> None:
        process_id = f"bench-mem-{i:05d}"
        request = ApprovalRequestInput(
            process_id=process_id,
            title=f"Approve SOP-QA-{i:05d} rev B",
            initiator="alice",
            approver_groups=["qa"],
            escalation_chain=["qa-manager"],
        )
        await client.start_workflow(
            "ApprovalRequest", request, id=process_id, task_queue=stack.task_queue
        )

    with Stopwatch() as sw:
        await bounded(START_CONCURRENCY, [functools.partial(start, i) for i in range(n)])
        assert stack.sessions is not None

        async def open_tasks() -> int:
            assert stack.sessions is not None
            async with stack.sessions() as session:
                statement = select(func.count()).select_from(Task).where(Task.status == "open")
                return int(await session.scalar(statement) or 0)

        await poll_until(open_tasks, n, what="tasks open", every=1.0)
    return f"{n:,} processes started and their tasks open in {sw.seconds:.0f} s ({n / sw.seconds:.0f}/s)"


async def _load(stack: LocalStack, load: Load, n: int) -> None:
    """Until cancelled: bob (qa) reads his inbox and a task every tick; every few ticks he
    decides one and alice asks for a new approval."""
    bob = await stack.token("bob")
    alice = await stack.token("alice")
    rng = random.Random(8)
    tick = 0

    async def call(method: str, url: str, **kwargs: object) -> dict[str, object] | None:
        load.requests += 1
        try:
            response = await stack.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except Exception:  # the figure is memory; a failed request is counted, not fatal
            load.errors += 1
            return None
        load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 400:
            load.errors += 1
            return None
        return response.json()  # type: ignore[no-any-return]

    while True:
        began = time.monotonic()
        tick += 1
        offset = rng.randrange(0, max(1, n - 50))  # anywhere in the inbox, not only its top
        inbox = await call(
            "GET",
            "/api/v1/tasks",
            params={"scope": "groups", "limit": 50, "offset": offset},
            headers=bob,
        )
        items = list(inbox.get("items", [])) if inbox else []  # type: ignore[call-overload]
        if items:
            task = rng.choice(items)
            await call("GET", f"/api/v1/tasks/{task['id']}", headers=bob)
            if tick % DECIDE_EVERY == 0:
                decided = await call(
                    "POST",
                    f"/api/v1/tasks/{task['id']}/decision",
                    json={"outcome": "approve", "password": DEMO_PASSWORD},
                    headers=bob,
                )
                load.decisions += decided is not None
        if tick % DECIDE_EVERY == 0:
            started = await call(
                "POST",
                "/api/v1/processes/approval",
                json={"title": f"Approve WI-PR-{tick:05d} rev A", "approver_groups": ["qa"]},
                headers=alice | {"Idempotency-Key": f"bench-memory-{tick}"},
            )
            load.starts += started is not None
        await asyncio.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - began)))
