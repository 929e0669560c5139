"""The nightly lot expiry: a Temporal Schedule (lotline_run/schedules.py) starts it every day; it
moves every in-stock lot past its expiry date to EXPIRED, judged on the workflow's own date."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.lot_expiry import ExpireLotsInput, ExpireLotsResult

ACTIVITY_TIMEOUT = timedelta(minutes=5)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@workflow.defn(name="LotExpiry")
class LotExpiryWorkflow:
    @workflow.run
    async def run(self) -> ExpireLotsResult:
        return await workflow.execute_activity(
            "expire_lots",
            ExpireLotsInput(process_id=workflow.info().workflow_id, on=workflow.now().date()),
            result_type=ExpireLotsResult,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
