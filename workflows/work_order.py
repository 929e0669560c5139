"""WorkOrder (being built for issue #4)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.supply import WorkOrderRequest, WorkOrderResult


@workflow.defn(name="WorkOrder")
class WorkOrderWorkflow:
    @workflow.run
    async def run(self, request: WorkOrderRequest) -> WorkOrderResult:
        raise ApplicationError("not built yet", non_retryable=True)
