"""ProcureToDeliver (being built for issue #4)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.supply import ProcureToDeliverRequest, ProcureToDeliverResult


@workflow.defn(name="ProcureToDeliver")
class ProcureToDeliverWorkflow:
    @workflow.run
    async def run(self, request: ProcureToDeliverRequest) -> ProcureToDeliverResult:
        raise ApplicationError("not built yet", non_retryable=True)
