"""Issue 7.3: two workers poll one task queue (the scale-out shape). Work spreads across both,
as the identities in the workflows' histories show; when one is stopped — cleanly, or killed —
the other carries every process to its end and nothing stalls or runs twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from lotline_run.stack import LocalStack
from tests.reliability.approvals import (
    approve,
    assert_each_once,
    open_task,
    start_approvals,
    wait_completed,
)

COUNT = 16


async def activity_workers(stack: LocalStack, process_ids: list[str]) -> set[str]:
    """The identities (pid@host) of the workers that ran the processes' activities."""
    client = await stack.client()
    identities: set[str] = set()
    for process_id in process_ids:
        history = await client.get_workflow_handle(process_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_started_event_attributes"):
                identities.add(event.activity_task_started_event_attributes.identity)
    return identities


@pytest.mark.parametrize("stop", ["stopped", "killed"])
async def test_two_workers_share_the_work_and_one_is_enough_when_the_other_goes(
    tmp_path: Path, stop: str
) -> None:
    async with LocalStack(tmp_path) as stack:
        await stack.start(workers=2)
        first = await start_approvals(stack, COUNT, f"two-{stop}")
        for process_id in first:
            await open_task(stack, process_id)
        pids = {str(worker.process.pid) for worker in stack.workers}
        ran = await activity_workers(stack, first)
        assert {identity.split("@")[0] for identity in ran} == pids, (ran, pids)

        leaving = stack.workers[0]
        if stop == "killed":
            await stack.kill_worker(leaving)
        else:
            await stack.stop_worker(leaving)
        second = await start_approvals(stack, COUNT, f"one-{stop}")
        for process_id in first + second:
            await approve(stack, process_id)
        await wait_completed(stack, first + second)
        await assert_each_once(stack, first + second)
