"""The approver's daily digest: a Temporal Schedule (lotline_run/schedules.py) starts it every
morning; its activity writes one e-mail per person with open tasks to the outbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.notify import DigestInput, DigestResult

ACTIVITY_TIMEOUT = timedelta(minutes=10)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


@workflow.defn(name="ApproverDigest")
class ApproverDigestWorkflow:
    @workflow.run
    async def run(self) -> DigestResult:
        return await workflow.execute_activity(
            "write_approver_digests",
            DigestInput(process_id=workflow.info().workflow_id, at=workflow.now()),
            result_type=DigestResult,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
