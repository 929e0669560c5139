"""Shipment (being built for issue #4)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.supply import ShipmentRequest, ShipmentResult


@workflow.defn(name="Shipment")
class ShipmentWorkflow:
    @workflow.run
    async def run(self, request: ShipmentRequest) -> ShipmentResult:
        raise ApplicationError("not built yet", non_retryable=True)
