"""A worker of one trivial workflow, the ceiling of the escalate scenario: a timer and nothing else.

Run as its own process on its own task queue (`python -m bench.trivial_worker QUEUE`), so the
benchmark can stop and start it exactly as it does Lotline's worker, and the ceiling pays the same
restart (a cold workflow cache, every history replayed) that the escalations do. It uses the same
Worker options as Lotline's (`worker.WORKFLOW_TUNING`), so the ceiling moves with any tuning.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

from temporalio import workflow

TIMER_WORKFLOW = "BenchTimer"


@workflow.defn(name=TIMER_WORKFLOW)
class BenchTimerWorkflow:
    """Sleep on one durable timer, then complete: the least any escalation can cost."""

    @workflow.run
    async def run(self, seconds: float) -> None:
        await workflow.sleep(timedelta(seconds=seconds))


async def main(task_queue: str) -> None:
    # imported here, not at the top: the workflow sandbox re-runs this module for every workflow
    # it creates, and it must not import the whole of Lotline each time
    from temporalio.worker import Worker

    from settings import Settings
    from worker import WORKFLOW_TUNING, connect

    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(levelname)s %(message)s")
    client = await connect(Settings.from_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client, task_queue=task_queue, workflows=[BenchTimerWorkflow], **WORKFLOW_TUNING
    )
    logging.info("trivial worker polling task queue %r", task_queue)
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "bench-trivial"))
