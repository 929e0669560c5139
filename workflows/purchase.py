"""Purchase (being built for issue #4)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.supply import PurchaseRequest, PurchaseResult


@workflow.defn(name="Purchase")
class PurchaseWorkflow:
    @workflow.run
    async def run(self, request: PurchaseRequest) -> PurchaseResult:
        raise ApplicationError("not built yet", non_retryable=True)
