"""The ceiling of the decide scenario: a trivial workflow whose update does nothing, on a worker of
its own (`python -m bench.update_worker`, task queue `bench-noop`), so a no-op update's round trip
through the same Temporal server is measured beside a real decision."""

from __future__ import annotations

import asyncio
import os

from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

TASK_QUEUE = "bench-noop"


@workflow.defn(name="BenchNoopUpdate")
class NoopUpdateWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.update(name="noop")
    async def noop(self, value: int) -> int:
        return value

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self._done = True


async def main() -> None:
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
    )
    worker = Worker(client, task_queue=TASK_QUEUE, workflows=[NoopUpdateWorkflow])
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
