"""Procure-to-deliver for one customer order: check stock, purchase what is short, produce, ship,
deliver — the children (Purchase, WorkOrder, Shipment) are child workflows with ids under this
process's id, so one timeline covers them all.

The order is planned again after every purchase or work order: a lot held at incoming inspection,
a work order that made fewer than asked, or a rejected purchase shows up as a new shortage, and a
person decides whether to try again or cancel.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.customer_order import (
        OrderPlan,
        PlanOrderInput,
        RegisterOrderInput,
        RegisterOrderResult,
        SetOrderStatusInput,
    )
    from schemas.human_task import Candidates, TaskKind, TaskSpec
    from schemas.production import quantity_text
    from schemas.shipping import joined_said
    from schemas.supply import (
        ProcureToDeliverRequest,
        ProcureToDeliverResult,
        PurchaseRequest,
        PurchaseResult,
        ShipmentLineRequest,
        ShipmentRequest,
        ShipmentResult,
        WorkOrderRequest,
        WorkOrderResult,
    )
    from workflows.human_task import human_task, is_cancellation
    from workflows.process_kit import (
        StepPolicy,
        again_or_cancel,
        register_process,
        run_activity,
        task_spec,
    )
    from workflows.wording import reason_wording, said, said_again, spoken, titled

KIND = "procure-to-deliver"
DECISION_SLA = timedelta(days=1)
REPLAN = StepPolicy(DECISION_SLA, ("purchasing-manager",))
PURCHASE_LEAD = timedelta(days=14)  # components are wanted this long before the order is due
PRODUCTION_LEAD = timedelta(days=3)
T = TypeVar("T")


def _failed(child: str, why: str) -> str:
    return said("%(child)s failed: %(why)s", child=child, why=why)


def _ended(child: str, result: PurchaseResult | WorkOrderResult) -> str:
    return said("%(number)s ended %(status)s", number=result.number or child, status=result.status)


class OrderStopped(Exception):
    """A person decided to cancel the order: it ends normally as cancelled."""


@workflow.defn(name="ProcureToDeliver")
class ProcureToDeliverWorkflow:
    def __init__(self) -> None:
        self._request: ProcureToDeliverRequest | None = None
        self._number = ""
        self._status = "registered"
        self._status_changes = 0
        self._rounds = 0
        self._purchases: list[str] = []
        self._work_orders: list[str] = []
        self._shipment: str | None = None

    @workflow.run
    async def run(self, request: ProcureToDeliverRequest) -> ProcureToDeliverResult:
        self._request = request
        await self._register(request)
        try:
            await self._supply()
            await self._ship()
        except OrderStopped as stop:
            await self._set_status("cancelled", stop.args[0])  # a `said`, as raised
        except BaseException as err:
            if is_cancellation(err):  # an administrator cancelled it: record that, then end
                await asyncio.shield(
                    asyncio.ensure_future(
                        self._set_status("cancelled", said("cancelled by an administrator"))
                    )
                )
            raise
        else:
            await self._set_status(
                "delivered", said("delivered by %(shipment)s", shipment=self._shipment)
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    @workflow.query(name="status")
    def status(self) -> ProcureToDeliverResult:
        return self._result()

    def _result(self) -> ProcureToDeliverResult:
        assert self._request is not None
        return ProcureToDeliverResult(
            process_id=self._pid,
            number=self._number,
            status=self._status,
            purchases=list(self._purchases),
            work_order=self._work_orders[-1] if self._work_orders else None,
            shipment=self._shipment,
        )

    # ------------------------------------------------------------ the order

    async def _supply(self) -> None:
        """Plan, buy, make — again until the finished stock covers the order."""
        while True:
            self._rounds += 1
            plan = await run_activity(
                "plan_customer_order",
                PlanOrderInput(process_id=self._pid, attempt=self._rounds, on=self._today),
                OrderPlan,
            )
            if plan.unbuyable:
                why = joined_said(
                    [
                        said(
                            "%(part)s: %(why)s",
                            part=s.part_number,
                            why=said_again(s.why_wording, s.why),
                        )
                        for s in plan.unbuyable
                    ]
                )
                await self._decide_or_stop(
                    "buyer", said("Cannot source order %(number)s", number=self._number), why
                )
            elif plan.purchases:
                await self._buy(plan)
            elif plan.to_make > 0:
                await self._make(plan)
            else:
                return

    async def _buy(self, plan: OrderPlan) -> None:
        assert self._request is not None
        ids = [
            f"{self._pid}.purchase-{len(self._purchases) + n + 1}"
            for n in range(len(plan.purchases))
        ]
        self._purchases.extend(ids)
        await self._set_status("purchasing", plan.summary(), children=ids)
        due = max(self._today + timedelta(days=1), self._request.due_on - PURCHASE_LEAD)
        results = await asyncio.gather(
            *(
                self._child(
                    "Purchase",
                    PurchaseRequest(
                        process_id=child,
                        requester=self._request.requester,
                        supplier_code=planned.supplier_code,
                        lines=planned.lines,
                        due_on=due,
                        buyer_note=f"for customer order {self._number}",
                        customer_order=self._number,
                    ),
                    PurchaseResult,
                )
                for child, planned in zip(ids, plan.purchases, strict=True)
            )
        )
        failed = [
            _failed(child, result) if isinstance(result, str) else _ended(child, result)
            for child, result in zip(ids, results, strict=True)
            if isinstance(result, str) or result.status not in ("received", "closed")
        ]
        if failed:
            why = joined_said(failed)
            await self._decide_or_stop(
                "buyer", said("Purchase for order %(number)s failed", number=self._number), why
            )

    async def _make(self, plan: OrderPlan) -> None:
        assert self._request is not None
        n = len(self._work_orders) + 1
        child = f"{self._pid}.work-order" + (f"-{n}" if n > 1 else "")
        self._work_orders.append(child)
        await self._set_status("production", plan.summary(), children=[child])
        result = await self._child(
            "WorkOrder",
            WorkOrderRequest(
                process_id=child,
                requester=self._request.requester,
                part_number=self._request.part_number,
                quantity=plan.to_make,
                due_on=max(self._today + timedelta(days=1), self._request.due_on - PRODUCTION_LEAD),
                customer_order=self._number,
            ),
            WorkOrderResult,
        )
        if isinstance(result, str) or result.status != "released":
            await self._decide_or_stop(
                "production",
                said("Work order for order %(number)s did not release stock", number=self._number),
                _failed(child, result) if isinstance(result, str) else _ended(child, result),
            )

    async def _ship(self) -> None:
        assert self._request is not None
        child = f"{self._pid}.shipment"
        self._shipment = child
        await self._set_status("shipping", "", children=[child])
        result = await self._child(
            "Shipment",
            ShipmentRequest(
                process_id=child,
                requester=self._request.requester,
                customer_code=self._request.customer_code,
                lines=[
                    ShipmentLineRequest(
                        part_number=self._request.part_number, quantity=self._request.quantity
                    )
                ],
                customer_order=self._number,
                expected_transit_days=5,
                external_id=None,
            ),
            ShipmentResult,
        )
        if isinstance(result, str):
            raise OrderStopped(said("shipment %(child)s failed: %(why)s", child=child, why=result))
        if result.status != "delivered":
            raise OrderStopped(
                said(
                    "shipment %(number)s ended %(status)s",
                    number=result.number or child,
                    status=result.status,
                )
            )

    async def _decide_or_stop(self, group: str, title: str, why: str) -> None:
        """A person decides: plan again (after fixing the cause) or cancel the order."""
        await self._set_status("blocked", why)
        result = await human_task(self._replan_spec(group, title, why))
        if result.outcome == "cancel":
            raise OrderStopped(said("cancelled: %(why)s", why=result.fields.get("reason") or why))

    def _replan_spec(self, group: str, title: str, why: str) -> TaskSpec:
        assert self._request is not None
        return task_spec(
            f"replan-{self._rounds}",
            REPLAN,
            process_kind=KIND,
            business_key=self._number,
            about={
                "Order": self._number,
                "Customer": self._request.customer_code,
                "Part": self._request.part_number,
                "Quantity": quantity_text(self._request.quantity),
                "Due": self._request.due_on.isoformat(),
            },
            context={"Problem": why},
            kind=TaskKind.PERFORM,
            **titled("%(title)s: plan again or cancel", limit=None, title=title),
            description=why,
            candidates=Candidates(groups=[group]),
            **again_or_cancel(
                "replan",
                "Plan again (the cause is fixed)",
                "Cancel the order",
                reason_label="Why the order is cancelled",
            ),
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    @property
    def _today(self) -> date:
        return workflow.now().date()

    async def _child(self, workflow_type: str, request: object, result_type: type[T]) -> T | str:
        """Run a child process under this one; its failure comes back as a message (cancellation
        of this order still propagates)."""
        process_id = request.process_id  # type: ignore[attr-defined]
        try:
            return await workflow.execute_child_workflow(
                workflow_type,
                request,
                id=process_id,
                result_type=result_type,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            )
        except ChildWorkflowError as err:
            if is_cancellation(err):
                raise
            cause: BaseException | None = err.cause
            while isinstance(cause, FailureError) and isinstance(cause.cause, FailureError):
                cause = cause.cause
            if isinstance(cause, ApplicationError):  # a refusal: with its wording, as a `Said`
                return spoken(cause)
            return cause.message if isinstance(cause, FailureError) else str(err)

    async def _register(self, request: ProcureToDeliverRequest) -> None:
        registered = await run_activity(
            "register_customer_order",
            RegisterOrderInput(
                process_id=self._pid, run_id=workflow.info().run_id, request=request
            ),
            RegisterOrderResult,
        )
        self._number = registered.number
        await register_process(
            KIND,
            **titled(
                "%(number)s: %(quantity)s × %(part)s for %(customer)s",
                limit=None,
                number=registered.number,
                quantity=quantity_text(request.quantity),
                part=request.part_number,
                customer=request.customer_code,
            ),
            business_key=registered.number,
            initiator=request.requester,
        )

    async def _set_status(
        self, status: str, reason: str, *, children: list[str] | None = None
    ) -> None:
        self._status = status
        self._status_changes += 1
        await run_activity(
            "set_customer_order_status",
            SetOrderStatusInput(
                process_id=self._pid,
                seq=self._status_changes,
                status=status,
                reason=reason,
                reason_wording=reason_wording(reason),
                children=children or [],
            ),
        )
