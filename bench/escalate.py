"""escalate: N tasks falling due at the same moment — time until every one is escalated and audited.

Method (the same for the figure and its ceiling, on one stack):
1. start N workflows whose timer is long enough that every one has started it before any is due;
2. wait until every one is settled (its timer running, no workflow task or activity pending);
3. stop the worker, and wait until every timer's time has passed: now they are all due at once;
4. start the worker again and time until every one has done its work.

For the figure the workflows are ApprovalRequest processes with one group in the escalation chain
and no reminder; "done" is every task at level 2 with its `task.escalated` audit row. The ceiling
is as many BenchTimer workflows (bench/trivial_worker.py: one timer, then complete) on their own
task queue and worker process; "done" is every one completed. Both times include the worker's
start and its cold cache (each history replayed), as after a deploy.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy import func, select
from temporalio.client import Client

from bench.common import Row, Sizes, Stopwatch, cpu_seconds, local_stack, say
from bench.trivial_worker import TIMER_WORKFLOW
from erp.models import AuditEntry, Task
from lotline_run.stack import LocalStack
from schemas.approval import ApprovalRequestInput
from workflows.human_task import task_workflow_id

TRIVIAL_QUEUE = "bench-trivial"
START_CONCURRENCY = 32
DESCRIBE_CONCURRENCY = 32
# How long the setup may take before the first timer falls due is measured, not guessed: a pilot
# of N/20 workflows (left waiting on a day-long timer) gives the rate, and the timer is set to
# MARGIN_SECONDS + SLACK × the time N take at that rate. The rate varies twofold on a shared
# machine; a shortfall is detected and reported, never hidden.
MARGIN_SECONDS = 30.0
SLACK = 2.0
PILOT_TIMER = 24 * 3600.0
# The workers' workflow sandbox imports each workflow's module afresh for every workflow it
# creates (a cold cache: once per workflow here). Without bytecode on disk that is a compile of
# the module's source each time — some 15 % of the worker's CPU in this scenario when the shell
# sets PYTHONDONTWRITEBYTECODE. A deployment has its bytecode, so the stack's children get a
# bytecode cache of their own (outside the source tree).
BYTECODE_ENV = {
    "PYTHONDONTWRITEBYTECODE": "",
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "lotline-bench-pycache"),
}


async def run(sizes: Sizes) -> list[Row]:
    n = sizes.escalations
    async with local_stack("escalate", workers=1, api=False, env=BYTECODE_ENV) as stack:
        client = await stack.client()
        ceiling, ceiling_notes = await _timers(stack, client, n)
        value, notes = await _escalations(stack, client, n)
    ratio = value / ceiling if value is not None and ceiling else None
    return [
        Row(
            "escalate",
            f"{n:,} tasks due at once: all escalated and audited",
            value,
            "s",
            ceiling=ceiling,
            better="lower",
            target="≤ 2 ×",
            met=None if ratio is None else ratio <= 2.0,
            notes=[
                "method: start N workflows, wait until all are settled on their timer, stop the "
                "worker, wait until every timer is past due, start the worker and time until all "
                "are done (figure: every task at level 2 with its task.escalated audit row; "
                "ceiling: as many one-timer workflows completed, own worker process and task "
                "queue); both include the worker's start and its cold workflow cache; the workers "
                "have their bytecode (a cache of their own)",
                *notes,
                *ceiling_notes,
            ],
        )
    ]


# --- the ceiling: one timer in a trivial workflow ---------------------------------------------


async def _timers(stack: LocalStack, client: Client, n: int) -> tuple[float | None, list[str]]:
    say(f"escalate: ceiling, {n} one-timer workflows")
    worker = await stack.start_worker(
        argv=[sys.executable, "-m", "bench.trivial_worker", TRIVIAL_QUEUE]
    )

    async def start(workflow_id: str, timer: float) -> None:
        await client.start_workflow(TIMER_WORKFLOW, timer, id=workflow_id, task_queue=TRIVIAL_QUEUE)

    pilot = [f"bench-timer-pilot-{i}" for i in range(max(20, n // 20))]
    with Stopwatch() as piloting:
        await bounded(START_CONCURRENCY, [functools.partial(start, w, PILOT_TIMER) for w in pilot])
        await _settle(client, pilot, what="pilot timers")
    timer = MARGIN_SECONDS + SLACK * n * piloting.seconds / len(pilot)
    ids = [f"bench-timer-{i}" for i in range(n)]
    began = time.monotonic()
    with Stopwatch() as starting:
        await bounded(START_CONCURRENCY, [functools.partial(start, w, timer) for w in ids])
    await _settle(client, ids, what="timers")
    await stack.stop_worker(worker)
    settled = time.monotonic()
    if settled - began > timer:
        return None, [f"ceiling: setup outlasted the {timer:.0f} s timer; raise SLACK"]
    # each timer started by the time its workflow settled: all are due by then + timer
    await _sleep_until(settled + timer + 2, "the timers are due")
    query = f'WorkflowType="{TIMER_WORKFLOW}" AND ExecutionStatus="Completed"'
    seconds, profile = await _measure(
        stack,
        [sys.executable, "-m", "bench.trivial_worker", TRIVIAL_QUEUE],
        lambda: _count(client, query),
        n,
        what="timer workflows completed",
    )
    await stack.stop_worker(stack.workers[-1])
    say(f"escalate: ceiling {seconds:.1f} s")
    return seconds, [
        f"ceiling: {n:,} BenchTimer workflows started in {starting.seconds:.1f} s "
        f"({n / starting.seconds:.0f}/s), timer {timer:.0f} s (from a pilot of {len(pilot)}: "
        f"{len(pilot) / piloting.seconds:.0f}/s); {profile}"
    ]


async def _measure(
    stack: LocalStack,
    argv: list[str] | None,
    probe: Callable[[], Awaitable[int]],
    n: int,
    *,
    what: str,
) -> tuple[float, str]:
    """Start the worker and time until `probe()` reaches n; and where the time went: when the
    first was done (the worker's start, mostly) and the CPU each part of the stack spent, which
    tells the bottleneck apart from the noise of a shared machine."""
    assert stack.temporal is not None and stack.postgres is not None
    others = {"Temporal": stack.temporal.process.pid, "PostgreSQL": stack.postgres.postmaster_pid}
    cpu_before = {name: cpu_seconds(pid) for name, pid in others.items()}
    first: list[float] = []

    async def watched() -> int:
        count = await probe()
        if count and not first:
            first.append(time.perf_counter() - sw.started)
        return count

    with Stopwatch() as sw:
        worker = await stack.start_worker(argv)
        await poll_until(watched, n, what=what)
    cpu = {"worker": cpu_seconds(worker.process.pid)} | {
        name: cpu_seconds(pid) - cpu_before[name] for name, pid in others.items()
    }
    spent = ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items())
    return sw.seconds, (
        f"first done after {first[0] if first else sw.seconds:.1f} s; CPU s spent: {spent}"
    )


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


# --- the figure: approval processes escalating ------------------------------------------------


async def _escalations(stack: LocalStack, client: Client, n: int) -> tuple[float | None, list[str]]:
    say(f"escalate: {n} approval processes")

    async def start(process_id: str, sla: float) -> None:
        request = ApprovalRequestInput(
            process_id=process_id,
            title=f"Approve SOP-QA-{process_id[-5:]} rev B",
            initiator="alice",
            approver_groups=["qa"],
            sla_hours=sla / 3600,
            reminder_hours=None,
            escalation_chain=["qa-manager"],
        )
        await client.start_workflow(
            "ApprovalRequest", request, id=process_id, task_queue=stack.task_queue
        )

    def opened(prefix: str) -> Callable[[], Awaitable[int]]:
        statement = select(func.count()).select_from(Task).where(Task.process_id.startswith(prefix))
        return lambda: _scalar(stack, statement)

    pilot = [f"bench-pilot-{i:05d}" for i in range(max(20, n // 20))]
    with Stopwatch() as piloting:
        await bounded(START_CONCURRENCY, [functools.partial(start, p, PILOT_TIMER) for p in pilot])
        await poll_until(opened("bench-pilot-"), len(pilot), what="pilot tasks open")
        await _settle(
            client, pilot + [task_workflow_id(p, "approval") for p in pilot], what="pilots"
        )
    sla = MARGIN_SECONDS + SLACK * n * piloting.seconds / len(pilot)
    ids = [f"bench-esc-{i:05d}" for i in range(n)]
    began = time.monotonic()
    with Stopwatch() as starting:
        await bounded(START_CONCURRENCY, [functools.partial(start, p, sla) for p in ids])
    say(f"escalate: started in {starting.seconds:.1f} s; waiting for the tasks to open")
    await poll_until(opened("bench-esc-"), n, what="tasks open")
    opened_after = time.monotonic() - began
    await _settle(client, ids + [task_workflow_id(p, "approval") for p in ids], what="processes")
    await stack.stop_worker(stack.workers[0])
    settled_after = time.monotonic() - began
    early = await _scalar(stack, select(func.count()).select_from(Task).where(Task.level >= 2))
    setup = [
        f"{n:,} ApprovalRequest processes started (Temporal client) in {starting.seconds:.1f} s "
        f"({n / starting.seconds:.0f}/s); every task open after {opened_after:.1f} s "
        f"({n / opened_after:.0f} processes/s to an open task), settled after {settled_after:.0f} s"
        f", SLA {sla:.0f} s (from a pilot of {len(pilot)}: {len(pilot) / piloting.seconds:.1f}/s)"
    ]
    if early or settled_after > sla:
        return None, [*setup, f"{early} escalated before the worker stopped: raise SLACK"]
    # the tasks say when they are due (on the database's clock, which the workflows share)
    last_due = select(func.extract("epoch", func.max(Task.due_at) - func.clock_timestamp())).where(
        Task.process_id.startswith("bench-esc-")
    )
    due_in = await _scalar(stack, last_due)
    await _sleep_until(time.monotonic() + due_in + 2, "the tasks are due")

    async def done() -> int:
        escalated = await _scalar(
            stack, select(func.count()).select_from(Task).where(Task.level >= 2)
        )
        audited = await _scalar(
            stack,
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "task.escalated"),
        )
        return min(escalated, audited)

    seconds, profile = await _measure(stack, None, done, n, what="tasks escalated and audited")
    say(f"escalate: {seconds:.1f} s ({n / seconds:.0f} escalations/s)")
    return seconds, [*setup, f"{n / seconds:.0f} escalations/s; {profile}"]


async def _scalar(stack: LocalStack, statement: object) -> int:
    assert stack.sessions is not None
    async with stack.sessions() as session:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]


# --- helpers ------------------------------------------------------------------------------------


async def bounded(limit: int, calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run the calls, `limit` at a time."""
    queue = list(reversed(calls))

    async def drain() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(drain() for _ in range(limit)))


async def poll_until(
    probe: Callable[[], Awaitable[int]], n: int, *, what: str, every: float = 0.25
) -> None:
    """Until `probe()` reaches n; its cost is one cheap query per `every` seconds."""
    last_said = time.monotonic()
    while (count := await probe()) < n:
        if time.monotonic() - last_said > 30:
            say(f"{count}/{n} {what}")
            last_said = time.monotonic()
        await asyncio.sleep(every)


async def _settle(client: Client, ids: list[str], *, what: str) -> None:
    """Until no workflow of `ids` has a workflow task or activity pending: each waits on its timer."""
    pending = list(ids)
    while pending:
        busy: list[str] = []
        await bounded(
            DESCRIBE_CONCURRENCY,
            [functools.partial(_check_settled, client, w, busy) for w in pending],
        )
        pending = busy
        if pending:
            say(f"escalate: {len(pending)} {what} still busy")
            await asyncio.sleep(1)


async def _check_settled(client: Client, workflow_id: str, busy: list[str]) -> None:
    raw = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    if raw.HasField("pending_workflow_task") or raw.pending_activities:
        busy.append(workflow_id)


async def _sleep_until(moment: float, what: str) -> None:
    wait = moment - time.monotonic()
    if wait > 0:
        say(f"escalate: {wait:.0f} s until {what}")
        await asyncio.sleep(wait)
