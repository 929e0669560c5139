"""Dead-worker detection: every activity heartbeats, so a crashed worker's activities are retried
within HEARTBEAT_TIMEOUT instead of after their whole start-to-close timeout.

Without a heartbeat, Temporal learns that a worker died (SIGKILL, lost host, OOM) only when the
activity's start-to-close timeout (60 s) runs out. The worker therefore installs two interceptors:
- on the workflow side, every activity a workflow schedules gets a heartbeat timeout (unless it
  set one). Temporal does not compare timeouts when it replays a history, so histories recorded
  before this change replay unchanged;
- on the activity side, a background task heartbeats while the activity runs.

A cancellation that reaches an activity through its heartbeat is not allowed to interrupt it
half-way: our activities are single transactions that are safe to finish, and the workflow that
cancelled has already moved on (TRY_CANCEL), so the activity runs to its end as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

HEARTBEAT_TIMEOUT = timedelta(seconds=15)
HEARTBEAT_EVERY_SECONDS = 2.0


class LivenessInterceptor(Interceptor):
    """Install on a worker: heartbeat timeouts on scheduled activities, heartbeats while they run."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _HeartbeatingActivity(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _HeartbeatTimeoutWorkflow


class _HeartbeatTimeoutWorkflow(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_HeartbeatTimeoutOutbound(outbound))


class _HeartbeatTimeoutOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        if input.heartbeat_timeout is None:
            input.heartbeat_timeout = HEARTBEAT_TIMEOUT
        return super().start_activity(input)


class _HeartbeatingActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().is_local:
            # a local activity runs inside its workflow task, which the worker's own liveness
            # covers (a dead worker's workflow task times out and runs again elsewhere)
            return await super().execute_activity(input)
        beating = asyncio.create_task(_heartbeat_forever())
        work = asyncio.ensure_future(super().execute_activity(input))
        try:
            while True:
                try:
                    return await asyncio.shield(work)
                except asyncio.CancelledError:
                    if work.done():
                        raise
                    # finish the transaction under way; its result is simply not awaited
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def _heartbeat_forever() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
