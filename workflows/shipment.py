"""Shipment (21 CFR 820.160 distribution records: consignee, lot, quantity on every line).

register → pick released finished lots first-expiry-first-out with the customer's minimum
remaining shelf life (short: the warehouse retries or cancels) → the warehouse picks and ships →
ship movements, lines with consignee, serials and the ship notice in one transaction (a lot the
database refuses — held since picking — is shown to the warehouse with the reason; then pick
again) → wait for the `delivered` event; at the end of the expected delivery day without one, a
warehouse task escalates; whichever comes first records the delivery and closes the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        TaskKind,
        TaskResult,
        TaskSpec,
    )
    from schemas.production import quantity_text
    from schemas.shipping import (
        CancelShipmentInput,
        Picking,
        PickShipmentInput,
        RecordDeliveryInput,
        RegisterShipmentInput,
        RegisterShipmentResult,
        ShipGoodsInput,
        ShipmentRecord,
    )
    from schemas.supply import (
        DeliveryConfirmation,
        EventResult,
        ProcessEvent,
        ShipmentLineRequest,
        ShipmentRequest,
        ShipmentResult,
    )
    from workflows.human_task import human_task
    from workflows.process_kit import (
        StepPolicy,
        again_or_cancel,
        cancellation,
        close_task,
        decider,
        finished,
        lot_refusal,
        picks_context,
        register_process,
        register_then,
        run_activity,
        task_spec,
        update_process,
    )
    from workflows.wording import (
        answered,
        described,
        reason_wording,
        refuse,
        said,
        said_again,
        titled,
    )

KIND = "shipment"
EVENTS = ("delivered",)
# a consignee's date is its local date; ours are UTC: a day either way is not an error
DATE_TOLERANCE = timedelta(days=1)

POLICY = {
    "stock": StepPolicy(timedelta(days=1), ("purchasing-manager",)),
    "pick": StepPolicy(timedelta(days=1), ("purchasing-manager",)),
    "delivery": StepPolicy(timedelta(days=2), ("purchasing-manager",)),
}


@workflow.defn(name="Shipment")
class ShipmentWorkflow:
    def __init__(self) -> None:
        self._request: ShipmentRequest | None = None
        self._registered: RegisterShipmentResult | None = None
        self._result = ShipmentResult(process_id="", number="", status="registering")
        self._shipped: ShipmentRecord | None = None
        self._picks = 0
        self._shortages = 0
        self._pick_tasks = 0
        self._refusals = 0
        self._delivery_tasks = 0
        self._recording = False  # a delivery is being recorded (by an event or a task)
        self._delivered_on: date | None = None
        self._event_results: dict[str, EventResult] = {}
        self._events_in_flight: set[str] = set()

    @workflow.run
    async def run(self, request: ShipmentRequest) -> ShipmentResult:
        self._request = request
        self._result = ShipmentResult(process_id=self._pid, number="", status="registering")
        await register_then(self._register(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _proceed(self, registered: RegisterShipmentResult) -> None:
        if registered.refusal:
            refusal = said_again(registered.refusal_wording, registered.refusal)
            await self._finish("rejected", refusal, process_status="failed")
        elif await self._pick_and_ship():
            await self._await_delivery()
            await self._finish("delivered", "")

    async def _cancelled(self, registering: asyncio.Future[RegisterShipmentResult]) -> None:
        await finished(registering)  # cancelled while registering: record it once registered
        await self._cancel(said("the shipment was cancelled"))

    @workflow.query(name="status")
    def status(self) -> ShipmentResult:
        return self._result

    # ------------------------------------------------------------ the event "delivered"

    @workflow.update(name="event")
    async def event(self, event: ProcessEvent) -> EventResult:
        if event.event_id in self._event_results or event.event_id in self._events_in_flight:
            await workflow.wait_condition(lambda: event.event_id in self._event_results)
            return self._event_results[event.event_id].model_copy(update={"repeated": True})
        confirmation = DeliveryConfirmation.model_validate(event.data)
        self._events_in_flight.add(event.event_id)
        self._recording = True
        await self._record_delivery(
            event.event_id,
            confirmation.delivered_on,
            received_by=confirmation.received_by,
            note=confirmation.note,
            by=event.sent_by,
        )
        result = EventResult(
            process_id=self._pid,
            event=event.event,
            event_id=event.event_id,
            **answered(
                "delivery of %(number)s on %(day)s recorded",
                number=self._result.number,
                day=confirmation.delivered_on.isoformat(),
            ),
            data={"shipment": self._result.number, "status": "delivered"},
        )
        self._event_results[event.event_id] = result
        return result

    @event.validator
    def _validate_event(self, event: ProcessEvent) -> None:
        if event.event_id in self._event_results or event.event_id in self._events_in_flight:
            return  # a repeat: answered with the first answer
        if self._registered is None:
            raise refuse("NotReady", "the shipment is still being registered")
        number = self._result.number
        if event.event not in EVENTS:
            raise refuse(
                "Invalid",
                "shipment %(number)s accepts the event %(events)s, not '%(event)s'",
                number=number,
                events=", ".join(EVENTS),
                event=event.event,
            )
        try:
            confirmation = DeliveryConfirmation.model_validate(event.data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise refuse("Invalid", "delivered: %(problems)s", problems=problems) from None
        if self._result.status in ("rejected", "cancelled"):
            raise refuse(
                "Conflict",
                "shipment %(number)s is %(status)s",
                number=number,
                status=self._result.status,
            )
        if self._shipped is None:
            raise refuse("Conflict", "shipment %(number)s has not been shipped yet", number=number)
        if self._recording or self._delivered_on is not None:
            if self._delivered_on:
                raise refuse(
                    "Conflict",
                    "the delivery of shipment %(number)s is already recorded (%(on)s)",
                    number=number,
                    on=self._delivered_on.isoformat(),
                )
            raise refuse(
                "Conflict", "the delivery of shipment %(number)s is already recorded", number=number
            )
        problem = self._date_problem(confirmation.delivered_on)
        if problem:
            raise refuse("Invalid", problem)

    # ------------------------------------------------------------ picking and shipping

    async def _pick_and_ship(self) -> bool:
        """Pick, let the warehouse ship, record it; again after a refusal. False: cancelled."""
        note = ""
        while True:
            picking = await self._pick()
            if picking is None:
                return False
            self._pick_tasks += 1
            await self._step(f"pick-{self._pick_tasks}")
            task = await human_task(self._pick_spec(picking, note))
            try:
                record: ShipmentRecord = await run_activity(
                    "ship_goods",
                    self._ship_input(picking, task),
                    ShipmentRecord,
                )
            except ActivityError as err:
                refused = lot_refusal(err)
                if refused is None:
                    raise
                note = refused
            else:
                if not record.problem:
                    self._shipped = record
                    self._result.lots = [line.lot_number for line in record.lines]
                    self._result.expected_delivery_on = record.expected_delivery_on
                    await self._step("shipped")
                    return True
                note = said_again(record.problem_wording, record.problem)
            if not await self._tell_refusal(note):
                return False

    def _ship_input(self, picking: Picking, task: TaskResult) -> ShipGoodsInput:
        assert self._request is not None
        return ShipGoodsInput(
            process_id=self._pid,
            attempt=self._pick_tasks,
            lines=self._request.lines,
            picks=picking.picks,
            carrier=task.fields.get("carrier", ""),
            tracking=task.fields.get("tracking", ""),
            shipped_by=decider(task),
            expected_transit_days=self._request.expected_transit_days,
        )

    async def _pick(self) -> Picking | None:
        """Pick until nothing is short; the warehouse may cancel instead. None: cancelled."""
        assert self._request is not None
        while True:
            self._picks += 1
            picking: Picking = await run_activity(
                "pick_shipment",
                PickShipmentInput(
                    process_id=self._pid, attempt=self._picks, lines=self._request.lines
                ),
                Picking,
            )
            if not picking.shortages:
                return picking
            self._shortages += 1
            why = picking.shortage_text()
            await self._step(f"stock-short-{self._shortages}", why)
            task = await human_task(self._shortage_spec(picking))
            cancelled = cancellation(task, said("stock short: %(shortages)s", shortages=why))
            if cancelled:
                await self._cancel(cancelled)
                return None

    async def _tell_refusal(self, why: str) -> bool:
        """The warehouse hears why nothing shipped; then pick again, or cancel."""
        self._refusals += 1
        await self._step(f"ship-refused-{self._refusals}", why)
        cancelled = cancellation(await human_task(self._refusal_spec(why)), why)
        if cancelled:
            await self._cancel(cancelled)
        return cancelled is None

    # ------------------------------------------------------------ delivery

    async def _await_delivery(self) -> None:
        """The `delivered` event, or past the expected day a warehouse task; the first records."""
        assert self._shipped is not None and self._shipped.expected_delivery_on is not None
        await self._step("in-transit")
        expected_end = datetime.combine(
            self._shipped.expected_delivery_on + timedelta(days=1), time(0), UTC
        )
        wait = expected_end - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._recording, timeout=wait)
            except TimeoutError:
                pass
        note = ""
        while not self._recording:
            note = await self._delivery_task(note)
        await workflow.wait_condition(lambda: self._delivered_on is not None)

    async def _delivery_task(self, note: str) -> str:
        """One overdue-delivery task; records the delivery it confirms, or closes when the event
        came first. Returns why the confirmed date was not taken ('' when done)."""
        self._delivery_tasks += 1
        step = "delivery-overdue" + (f"-{self._delivery_tasks}" if self._delivery_tasks > 1 else "")
        await self._step(step)
        task = asyncio.ensure_future(human_task(self._delivery_spec(step, note)))
        await workflow.wait_condition(lambda: task.done() or self._recording)
        if self._recording:  # the event came first: close the task, saying why
            why = said("the consignee confirmed delivery of %(number)s", number=self._result.number)
            await close_task(task, step, why)
            return ""
        result = task.result()
        delivered_on = date.fromisoformat(result.fields["delivered_on"])
        problem = self._date_problem(delivered_on)
        if problem:
            return problem
        self._recording = True
        await self._record_delivery(
            f"task-{result.task_id}",
            delivered_on,
            received_by="",
            note=result.fields.get("note", ""),
            by=decider(result),
        )
        return ""

    async def _record_delivery(
        self, event_id: str, delivered_on: date, *, received_by: str, note: str, by: str
    ) -> None:
        await run_activity(
            "record_delivery",
            RecordDeliveryInput(
                process_id=self._pid,
                event_id=event_id,
                delivered_on=delivered_on,
                received_by=received_by,
                note=note,
                recorded_by=by,
            ),
        )
        self._delivered_on = delivered_on
        self._result.delivered_on = delivered_on

    def _date_problem(self, delivered_on: date) -> str:
        assert self._shipped is not None and self._shipped.shipped_at is not None
        shipped_on = self._shipped.shipped_at.astimezone(UTC).date()
        if delivered_on < shipped_on - DATE_TOLERANCE:
            return said(
                "delivered on %(on)s is before the shipment left (%(shipped_on)s)",
                on=delivered_on.isoformat(),
                shipped_on=shipped_on.isoformat(),
            )
        if delivered_on > workflow.now().date() + DATE_TOLERANCE:
            return said("delivered on %(on)s is in the future", on=delivered_on.isoformat())
        return ""

    # ------------------------------------------------------------ endings

    async def _cancel(self, reason: str) -> None:
        await run_activity(
            "cancel_shipment",
            CancelShipmentInput(
                process_id=self._pid, reason=reason, reason_wording=reason_wording(reason)
            ),
        )
        await self._finish("cancelled", reason, process_status="cancelled")

    async def _finish(self, status: str, reason: str, *, process_status: str = "completed") -> None:
        self._result.status, self._result.reason = status, reason
        await update_process(status, status=process_status, outcome=status, reason=reason)

    # ------------------------------------------------------------ task specs

    def _spec(self, step: str, policy: str, **values: Any) -> TaskSpec:
        """A task of this shipment, for the warehouse: its SLA and escalation chain, and what
        goes to whom."""
        assert self._request is not None and self._registered is not None
        about: dict[str, str] = {
            "Shipment": self._result.number,
            "Consignee": f"{self._registered.customer_code} {self._registered.customer_name}",
            "Shelf life required": said("%(days)s days", days=self._registered.min_shelf_life_days),
            **lines_context(self._request.lines),
        }
        if self._request.customer_order:
            about["Customer order"] = self._request.customer_order
        return task_spec(
            step,
            POLICY[policy],
            process_kind=KIND,
            business_key=self._result.number,
            about=about,
            **({"candidates": Candidates(groups=["warehouse"])} | values),
        )

    def _shortage_spec(self, picking: Picking) -> TaskSpec:
        why = picking.shortage_text()
        return self._spec(
            f"stock-short-{self._shortages}",
            "stock",
            kind=TaskKind.PERFORM,
            **titled("Stock short for %(number)s: %(why)s", number=self._result.number, why=why),
            **described(
                "Only released lots with enough shelf life left for the customer ship. Retry once "
                "stock is released, or cancel the shipment."
            ),
            **again_or_cancel("retry", "Pick again", "Cancel the shipment"),
            context={
                **{
                    said("Short %(n)s", n=n): s.describe()
                    for n, s in enumerate(picking.shortages, start=1)
                },
                **picks_context(picking.picks),
            },
        )

    def _pick_spec(self, picking: Picking, note: str) -> TaskSpec:
        return self._spec(
            f"pick-{self._pick_tasks}",
            "pick",
            kind=TaskKind.PERFORM,
            **titled("Pick and ship %(number)s", limit=None, number=self._result.number),
            description=(
                f"The last shipment was refused: {note}. Picked again: ship the lots listed here."
                if note
                else "Pick the lots listed here (first expiry first out), pack and hand over."
            ),
            fields=[
                FieldSpec(name="carrier", label="Carrier"),
                FieldSpec(name="tracking", label="Tracking number"),
            ],
            outcomes=[OutcomeSpec(name="shipped", label="Shipped")],
            context=({"Refused": note} if note else {}) | picks_context(picking.picks),
        )

    def _refusal_spec(self, why: str) -> TaskSpec:
        return self._spec(
            f"ship-refused-{self._refusals}",
            "pick",
            kind=TaskKind.PERFORM,
            **titled("Shipment %(number)s refused: %(why)s", number=self._result.number, why=why),
            **described(
                "Nothing was shipped in the ERP. Take the refused lot out of the consignment and "
                "put it aside; the shipment is picked again when you continue."
            ),
            **again_or_cancel("pick_again", "Pick again", "Cancel the shipment"),
            context={"Refused": why},
        )

    def _delivery_spec(self, step: str, note: str) -> TaskSpec:
        assert self._shipped is not None and self._shipped.expected_delivery_on is not None
        shipped: dict[str, str] = {
            "Expected": self._shipped.expected_delivery_on.isoformat(),
            **{
                said("Shipped %(n)s", n=n): line.describe()
                for n, line in enumerate(self._shipped.lines, 1)
            },
        }
        return self._spec(
            step,
            "delivery",
            kind=TaskKind.PERFORM,
            **titled(
                "Delivery of %(number)s not confirmed", limit=None, number=self._result.number
            ),
            **described(
                "Expected on %(expected_delivery_on)s; no delivery confirmation came. Ask the "
                "carrier or the consignee and confirm the date.",
                expected_delivery_on=self._shipped.expected_delivery_on.isoformat(),
            ),
            fields=[
                FieldSpec(
                    name="delivered_on", label="Delivered on", type=FieldType.DATE, required=True
                ),
                FieldSpec(name="note", label="Note", type=FieldType.LONG_TEXT),
            ],
            outcomes=[OutcomeSpec(name="confirmed", label="Delivery confirmed")],
            context=shipped | ({"Not taken": note} if note else {}),
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    async def _register(self, request: ShipmentRequest) -> RegisterShipmentResult:
        registered: RegisterShipmentResult = await run_activity(
            "register_shipment",
            RegisterShipmentInput(
                process_id=self._pid, run_id=workflow.info().run_id, request=request
            ),
            RegisterShipmentResult,
        )
        self._result.number = registered.number
        consignee = registered.customer_name or registered.customer_code
        await register_process(
            KIND,
            **titled(
                "%(number)s to %(consignee)s",
                limit=None,
                number=registered.number,
                consignee=consignee,
            ),
            business_key=registered.number,
            initiator=request.requester or None,
        )
        self._registered = registered
        self._result.status = "planned"
        return registered

    async def _step(self, step: str, reason: str = "") -> None:
        self._result.status = step
        await update_process(step, reason=reason)


def lines_context(lines: Sequence[ShipmentLineRequest]) -> dict[str, str]:
    """`Line n: 5 × TB-0150` for a task's context, key and value `said(…)`s (translated)."""
    return {
        said("Line %(n)s", n=n): said(
            "%(quantity)s × %(part)s", quantity=quantity_text(line.quantity), part=line.part_number
        )
        for n, line in enumerate(lines, start=1)
    }
