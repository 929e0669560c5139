"""Purchase (21 CFR 820.50 purchasing controls, 820.80 receiving acceptance; ISO 13485 §7.4).

requisition → approval by amount along the delegation-of-authority matrix → supplier check (on the
approved supplier list, certificate valid, not disqualified, the effective revision; a refusal goes
to a buyer) → purchase order issued through the outbox → the supplier's confirmation, ASN and the
goods arrive as external events (update "event") → a late-delivery task at the deadline → each
receipt a lot in QUARANTINE → incoming inspection (Z1.4 sampling plan), several side by side → QA
release (signed) or hold; a failed inspection opens a nonconformance that holds the lot → closed
once everything is received and every lot released or held.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from schemas.human_task import (
        Candidates,
        DecisionRule,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskSpec,
    )
    from schemas.production import quantity_text
    from schemas.purchase import (
        ApprovalRoute,
        ApprovalRouteInput,
        ChangeSupplierInput,
        ConfirmPurchaseInput,
        InspectionVerdict,
        IssuePurchaseOrderInput,
        ReceivedLot,
        ReceiveGoodsInput,
        RecordAsnInput,
        RecordInspectionInput,
        RegisteredPurchase,
        RegisterPurchaseInput,
        SetLotStatusInput,
        SetPurchaseStatusInput,
        SupplierChange,
        SupplierCheck,
        SupplierCheckInput,
    )
    from schemas.quality import NcSource, NonconformanceRequest, Severity
    from schemas.supply import (
        EVENTS,
        AdvanceShipNotice,
        EventResult,
        GoodsReceipt,
        ProcessEvent,
        PurchaseRequest,
        PurchaseResult,
        SupplierConfirmation,
    )
    from workflows.human_task import human_task
    from workflows.nonconformance import NC_PATCH, raise_nonconformance
    from workflows.process_kit import (
        StepPolicy,
        close_task,
        decider,
        finished,
        headline,
        refusal_of,
        register_process,
        register_then,
        run_activity,
        task_spec,
        update_process,
    )
    from workflows.wording import (
        answered,
        reason_wording,
        refuse,
        said,
        said_again,
        spoken,
        titled,
    )

KIND = "purchase"

# the steps the process row moves through, in order; it never moves back
STEPS = ("approval", "supplier-check", "awaiting-delivery", "receiving", "inspection")

POLICY = {
    "approval": StepPolicy(timedelta(days=2), ("purchasing-manager",)),
    "supplier": StepPolicy(timedelta(days=2), ("purchasing-manager",)),
    "late": StepPolicy(timedelta(days=1), ("purchasing-manager",)),
    "inspection": StepPolicy(timedelta(days=2), ("qa-manager",)),
    "release": StepPolicy(timedelta(days=2), ("qa-manager", "quality-director")),
    "lot-problem": StepPolicy(timedelta(days=2), ("quality-director",)),
}


@workflow.defn(name="Purchase")
class PurchaseWorkflow:
    def __init__(self) -> None:
        self._request: PurchaseRequest | None = None
        self._order: RegisteredPurchase | None = None
        self._number = ""
        self._supplier = ""
        self._status = "registering"
        self._issued = False
        self._ended = False  # no more events: finished, or being cancelled
        self._finished = False  # the outcome is recorded
        self._received: dict[str, Decimal] = {}
        self._arriving: dict[str, Decimal] = {}  # receipts being recorded right now
        self._events: dict[str, EventResult | None] = {}  # event id → answer (None: in flight)
        self._expected_on: date | None = None
        self._deadline_moves = 0
        self._receipts = 0
        self._lots: list[str] = []
        self._released: list[str] = []
        self._held: list[str] = []
        self._inspections: list[asyncio.Future[None]] = []
        self._watcher: asyncio.Future[None] | None = None
        self._supplier_checks = 0
        self._late_tasks = 0
        self._nonconformances = 0
        self._step_rank = -1
        self._process_writes = asyncio.Lock()  # process row updates in the order they are made

    @workflow.run
    async def run(self, request: PurchaseRequest) -> PurchaseResult:
        self._request = request
        await register_then(self._register(request), self._proceed, self._cancel)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _proceed(self, registered: bool) -> None:
        if registered:
            await self._procure()

    @workflow.query(name="status")
    def status(self) -> PurchaseResult:
        return self._result()

    def _result(self) -> PurchaseResult:
        return PurchaseResult(
            process_id=self._pid,
            number=self._number,
            status=self._status,
            lots=list(self._lots),
            released_lots=list(self._released),
            held_lots=list(self._held),
        )

    # ------------------------------------------------------------ the process

    async def _procure(self) -> None:
        if not await self._approve() or not await self._check_supplier():
            return
        await self._issue()
        watcher = self._watcher = asyncio.ensure_future(self._watch_delivery())
        await workflow.wait_condition(lambda: self._all_received() or watcher.done())
        await watcher
        await self._step("inspection")
        await asyncio.gather(*self._inspections)
        await self._finish(
            "closed",
            outcome="received",
            reason=said("everything ordered is received; every lot is released or held"),
        )

    async def _approve(self) -> bool:
        assert self._order is not None
        route = await run_activity(
            "route_purchase_approval",
            ApprovalRouteInput(process_id=self._pid, amount=self._order.amount),
            ApprovalRoute,
        )
        await self._step("approval")
        result = await human_task(self._approval_spec(route))
        approvers = [d.decider for d in result.decisions]
        if result.outcome != "approve":
            await self._finish(
                "rejected",
                outcome="rejected",
                reason=result.fields.get("reason", ""),
                actor=decider(result),
            )
            return False
        self._status = "approved"
        await run_activity(
            "set_purchase_status",
            SetPurchaseStatusInput(
                process_id=self._pid,
                status="approved",
                actor=decider(result),
                reason=(approved := said("approved by %(by)s", by=", ".join(approvers))),
                reason_wording=reason_wording(approved),
                approvers=approvers,
            ),
        )
        return True

    async def _check_supplier(self) -> bool:
        """Check until the supplier may deliver; a refusal goes to a buyer, who names another
        supplier (checked again) or cancels the purchase."""
        await self._step("supplier-check")
        problem = ""
        while True:
            self._supplier_checks += 1
            attempt = self._supplier_checks
            check = await run_activity(
                "check_purchase_supplier",
                SupplierCheckInput(process_id=self._pid, attempt=attempt, on=self._today),
                SupplierCheck,
            )
            self._supplier = check.supplier_code
            if not check.refusal:
                return True
            refusal = said_again(check.refusal_wording, check.refusal)  # the rules' wording
            result = await human_task(self._supplier_spec(attempt, refusal, problem))
            if result.outcome == "cancel":
                await self._finish(
                    "cancelled",
                    outcome="cancelled",
                    reason=said("cancelled by the buyer: %(refusal)s", refusal=refusal),
                    actor=decider(result),
                )
                return False
            change = await run_activity(
                "change_purchase_supplier",
                ChangeSupplierInput(
                    process_id=self._pid,
                    attempt=attempt,
                    supplier_code=result.fields["supplier_code"].strip(),
                    changed_by=decider(result),
                    note=result.fields.get("note", ""),
                ),
                SupplierChange,  # an older history's answer, a plain str, reads as one too
            )
            problem = said_again(change.problem_wording, change.problem)

    async def _issue(self) -> None:
        assert self._request is not None
        await run_activity("issue_purchase_order", IssuePurchaseOrderInput(process_id=self._pid))
        self._issued, self._status = True, "issued"
        self._expected_on = self._request.due_on
        await self._step("awaiting-delivery")

    async def _finish(
        self, po_status: str, *, outcome: str, reason: str, actor: str = "system"
    ) -> None:
        """End the purchase: the order's last status and the process's outcome."""
        self._status, self._ended = outcome, True
        await run_activity(
            "set_purchase_status",
            SetPurchaseStatusInput(
                process_id=self._pid,
                status=po_status,
                actor=actor,
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
        )
        self._step_rank = len(STEPS)
        async with self._process_writes:
            await update_process(
                po_status,
                status="cancelled" if outcome == "cancelled" else "completed",
                outcome=outcome,
                reason=reason,
            )
        self._finished = True  # only now: a cancellation during these writes records itself

    async def _cancel(self, registering: asyncio.Future[bool]) -> None:
        """The process was cancelled: take no more events, let events in flight finish, close
        the open tasks, and record the order and the process as cancelled."""
        self._ended, self._status = True, "cancelling"
        await finished(registering)  # cancelled while registering: record it once registered
        await workflow.wait_condition(workflow.all_handlers_finished)
        running = [*self._inspections, *([self._watcher] if self._watcher else [])]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._number and not self._finished:
            await self._finish(
                "cancelled", outcome="cancelled", reason=said("the process was cancelled")
            )

    # ------------------------------------------------------------ external events

    @workflow.update(name="event")
    async def event(self, event: ProcessEvent) -> EventResult:
        if event.event_id in self._events:
            return await self._repeated(event.event_id)
        self._events[event.event_id] = None
        try:
            answer = await self._handle(event)
        except BaseException:
            del self._events[event.event_id]  # refused or failed: a new attempt is not a repeat
            raise
        self._events[event.event_id] = answer
        return answer

    @event.validator
    def _validate_event(self, event: ProcessEvent) -> None:
        if event.event_id in self._events:
            return  # a repeat: answered with the first answer
        refusal = self._event_refusal(event)
        if refusal is not None:
            kind, message = refusal
            raise refuse(kind, message, non_retryable=True)

    def _event_refusal(self, event: ProcessEvent) -> tuple[str, str] | None:
        """(kind, message) when this event may not be taken now: Invalid, Conflict, NotReady."""
        data = _event_data(event)
        if isinstance(data, str):
            return "Invalid", data
        if not self._number:
            return "NotReady", said("the purchase is still being registered; try again in a moment")
        if self._ended:
            return "Conflict", said(
                "purchase %(number)s is %(status)s: it takes no more events",
                number=self._number,
                status=self._status,
            )
        if not self._issued:
            return (
                "Conflict",
                said(
                    "purchase order %(number)s has not been issued to the supplier yet "
                    "(status: %(status)s)",
                    number=self._number,
                    status=self._status,
                ),
            )
        if all(self._open(part) <= 0 for part in self._ordered):
            return "Conflict", said(
                "everything ordered on %(number)s has been received", number=self._number
            )
        if isinstance(data, GoodsReceipt):
            return self._receipt_refusal(data)
        return None

    def _receipt_refusal(self, goods: GoodsReceipt) -> tuple[str, str] | None:
        part = goods.part_number
        if part not in self._ordered:
            ordered = ", ".join(self._ordered)
            return (
                "Invalid",
                said(
                    "%(part)s is not on purchase order %(number)s (it orders %(ordered)s)",
                    part=part,
                    number=self._number,
                    ordered=ordered,
                ),
            )
        if goods.expires_on is not None and goods.expires_on < self._today:
            return "Invalid", said(
                "the expiry date %(expires_on)s is in the past", expires_on=str(goods.expires_on)
            )
        still_open = self._open(part)
        if goods.quantity > still_open:
            return (
                "Conflict",
                said(
                    "only %(open)s %(uom)s of %(part)s is still open on %(number)s; "
                    "%(quantity)s is more than that",
                    open=quantity_text(still_open),
                    uom=self._uom(part),
                    part=part,
                    number=self._number,
                    quantity=quantity_text(goods.quantity),
                ),
            )
        return None

    async def _repeated(self, event_id: str) -> EventResult:
        await workflow.wait_condition(
            lambda: self._events.get(event_id) is not None or event_id not in self._events
        )
        first = self._events.get(event_id)
        if first is None:
            raise refuse("Conflict", "the first delivery of this event was refused; send it again")
        return first.model_copy(update={"repeated": True})

    async def _handle(self, event: ProcessEvent) -> EventResult:
        data = EVENTS[KIND][event.event].model_validate(event.data)
        if isinstance(data, GoodsReceipt):
            return await self._goods_received(event, data)
        if isinstance(data, SupplierConfirmation):
            return await self._confirmed(event, data)
        assert isinstance(data, AdvanceShipNotice)
        return await self._advance_ship_notice(event, data)

    async def _confirmed(
        self, event: ProcessEvent, confirmation: SupplierConfirmation
    ) -> EventResult:
        await self._event_activity(
            "confirm_purchase_order",
            ConfirmPurchaseInput(
                process_id=self._pid,
                event_id=event.event_id,
                sent_by=event.sent_by,
                confirmation=confirmation,
            ),
        )
        if self._status == "issued":
            self._status = "confirmed"
        self._move_deadline(confirmation.promised_on)
        return self._answer(
            event,
            said(
                "%(number)s confirmed by the supplier for %(day)s",
                number=self._number,
                day=confirmation.promised_on,
            ),
            promised_on=confirmation.promised_on.isoformat(),
        )

    async def _advance_ship_notice(
        self, event: ProcessEvent, notice: AdvanceShipNotice
    ) -> EventResult:
        await self._event_activity(
            "record_advance_ship_notice",
            RecordAsnInput(
                process_id=self._pid, event_id=event.event_id, sent_by=event.sent_by, notice=notice
            ),
        )
        self._move_deadline(notice.expected_on)
        return self._answer(
            event,
            said(
                "ASN %(asn)s recorded: goods expected on %(day)s",
                asn=notice.asn_reference,
                day=notice.expected_on,
            ),
            expected_on=notice.expected_on.isoformat(),
        )

    async def _goods_received(self, event: ProcessEvent, goods: GoodsReceipt) -> EventResult:
        part = goods.part_number
        self._arriving[part] = self._arriving.get(part, Decimal(0)) + goods.quantity
        self._receipts += 1
        receipt_no = self._receipts
        try:
            received = await self._event_activity(
                "receive_goods",
                ReceiveGoodsInput(
                    process_id=self._pid,
                    event_id=event.event_id,
                    sent_by=event.sent_by,
                    receipt=goods,
                    received_on=self._today,
                ),
                ReceivedLot,
            )
        finally:
            self._arriving[part] -= goods.quantity
        lot = received.model_copy(update={"receipt_no": receipt_no})
        self._received[part] = self._received.get(part, Decimal(0)) + goods.quantity
        self._lots.append(lot.lot_number)
        self._status = "received" if self._all_received() else "partially_received"
        self._inspections.append(asyncio.ensure_future(self._inspect(lot)))
        if not self._all_received():
            await self._step("receiving")
        what = {
            "quantity": quantity_text(goods.quantity),
            "uom": lot.uom,
            "part": part,
            "lot": lot.lot_number,
        }
        return self._answer(
            event,
            said(
                "%(quantity)s %(uom)s of %(part)s received as lot %(lot)s, in QUARANTINE "
                "until incoming inspection and QA release",
                **what,
            )
            if lot.on_time
            else said(
                "%(quantity)s %(uom)s of %(part)s received (late) as lot %(lot)s, in "
                "QUARANTINE until incoming inspection and QA release",
                **what,
            ),
            lot_number=lot.lot_number,
            lot_status="QUARANTINE",
        )

    def _answer(self, event: ProcessEvent, message: str, **data: str) -> EventResult:
        return EventResult(
            process_id=self._pid,
            event=event.event,
            event_id=event.event_id,
            **answered(message),
            data=data,
        )

    def _move_deadline(self, expected_on: date) -> None:
        self._expected_on = expected_on
        self._deadline_moves += 1

    # ------------------------------------------------------------ late delivery

    async def _watch_delivery(self) -> None:
        """At the deadline (end of the expected day, UTC) while goods are still open, a buyer
        chases the supplier; a later confirmation or ASN moves the deadline."""
        while not self._all_received():
            moves = self._deadline_moves
            if await self._moved_or_received_before(self._deadline_at(), moves):
                continue
            await self._chase_late_delivery()
            await self._moved_or_received(moves)

    async def _moved_or_received(self, moves: int) -> None:
        """After a chase: wait for the rest, or a new date to watch."""
        await workflow.wait_condition(lambda: self._all_received() or self._deadline_moves != moves)

    async def _moved_or_received_before(self, deadline: datetime, moves: int) -> bool:
        wait = deadline - workflow.now()
        if wait <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(
                lambda: self._all_received() or self._deadline_moves != moves, timeout=wait
            )
        except TimeoutError:
            return False
        return True

    async def _chase_late_delivery(self) -> None:
        """The buyer's late-delivery task, closed as soon as everything is received."""
        self._late_tasks += 1
        step = f"late-{self._late_tasks}"
        chase = asyncio.ensure_future(human_task(self._late_spec(step)))
        await workflow.wait_condition(lambda: chase.done() or self._all_received())
        if chase.done():
            chase.result()
            return
        await close_task(
            chase,
            step,
            said("everything ordered on %(number)s has been received", number=self._number),
        )

    def _deadline_at(self) -> datetime:
        assert self._expected_on is not None
        return datetime.combine(self._expected_on + timedelta(days=1), time(0), UTC)

    # ------------------------------------------------------------ inspection and release

    async def _inspect(self, lot: ReceivedLot) -> None:
        """Incoming inspection of one received lot, then QA release, or a hold."""
        result = await human_task(self._inspection_spec(lot))
        inspector = decider(result)
        fields = result.fields
        found = await run_activity(
            "record_incoming_inspection",
            RecordInspectionInput(
                process_id=self._pid,
                lot_number=lot.lot_number,
                inspector=inspector,
                chosen_outcome=result.outcome or "",
                sample_size=_count(fields.get("sample_size"), lot.plan.sample_size),
                defects=_count(fields.get("defects"), 0),
                measurements=fields.get("measurements", ""),
                reason=fields.get("reason", ""),
                plan=lot.plan,
            ),
            InspectionVerdict,
        )
        if found.outcome == "fail":
            problem = said_again(found.reason_wording, found.reason)  # ours, or their words
            await self._failed_incoming_inspection(lot, problem, inspector)
            return
        release = await human_task(self._release_spec(lot, inspector))
        if release.outcome == "release":
            reason = said("released by QA after incoming inspection")
            await self._set_lot(lot, "RELEASED", reason, decider(release), "release")
        else:
            reason = said("QA refused release: %(why)s", why=release.fields.get("reason", ""))
            await self._set_lot(lot, "ON_HOLD", reason, decider(release), "release-refused")

    async def _failed_incoming_inspection(self, lot: ReceivedLot, reason: str, by: str) -> None:
        """A lot failed incoming inspection: a nonconformance (child `<id>.nc-<n>`, reported by
        the inspector) contains it, and the purchase goes on with the lot counted as held; it
        does not wait for the NC. Runs started before the NC process existed (not patched) hold
        the lot themselves, awaiting one."""
        if workflow.patched(NC_PATCH):
            self._nonconformances += 1
            await raise_nonconformance(self._nonconformances, self._nonconformance(lot, reason, by))
            self._held.append(lot.lot_number)
            return
        why = said("failed incoming inspection: %(why)s — awaiting nonconformance", why=reason)
        await self._set_lot(lot, "ON_HOLD", why, by, "inspection-failed")

    def _nonconformance(self, lot: ReceivedLot, reason: str, by: str) -> NonconformanceRequest:
        return NonconformanceRequest(
            reporter=by,
            source=NcSource.INCOMING,
            severity=Severity.MAJOR,
            title=headline(f"Lot {lot.lot_number} ({lot.part_number}) failed incoming inspection"),
            description=headline(
                f"Incoming inspection of lot {lot.lot_number} ({quantity_text(lot.quantity)} "
                f"{lot.uom} {lot.part_number}, {self._number}) failed: {reason}",
                5000,
            ),
            part_number=lot.part_number,
            lots=[lot.lot_number],
            quantity=lot.quantity if lot.quantity > 0 else None,
            evidence=headline(
                f"Incoming inspection by {by} ({lot.plan.basis}: {lot.plan.describe()}); "
                f"supplier lot {lot.supplier_lot}",
                5000,
            ),
            supplier_code=lot.supplier_code,
        )

    async def _set_lot(
        self, lot: ReceivedLot, status: str, reason: str, by: str, step: str
    ) -> None:
        """Release or hold the lot; a refusal by the lot status machine goes to a QA manager
        (the lot then counts as not released)."""
        try:
            await run_activity(
                "set_purchased_lot_status",
                SetLotStatusInput(
                    process_id=self._pid,
                    lot_number=lot.lot_number,
                    status=status,
                    reason=reason,
                    actor=by,
                    step=step,
                    reason_wording=reason_wording(reason),
                ),
            )
        except ActivityError as err:
            refused = refusal_of(err, "LotRefused")
            if refused is None:
                raise
            await human_task(self._lot_problem_spec(lot, status, spoken(refused)))
            self._held.append(lot.lot_number)
            return
        (self._released if status == "RELEASED" else self._held).append(lot.lot_number)

    # ------------------------------------------------------------ task specs

    def _spec(self, step: str, policy: str, *, context: dict[str, str], **fields: Any) -> TaskSpec:
        """A task of this purchase: its SLA and escalation chain, and what the purchase is."""
        assert self._request is not None
        fields["title"] = str(fields["title"])[:300]
        return task_spec(
            step,
            POLICY[policy],
            process_kind=KIND,
            business_key=self._number,
            about=self._about(),
            context=context,
            **({"description": self._request.buyer_note} | fields),
        )

    def _about(self) -> dict[str, str]:
        assert self._request is not None and self._order is not None
        return {
            "Purchase order": self._number,
            "Supplier": self._supplier,
            "Amount": f"{self._order.amount:,.2f} {self._order.currency}",
            "Lines": "; ".join(
                f"{ln.part_number} rev {ln.revision}: {quantity_text(ln.quantity)} {ln.uom}"
                for ln in self._order.lines
            ),
            "Due": self._request.due_on.isoformat(),
            "Requested by": self._request.requester,
        }

    def _approval_spec(self, route: ApprovalRoute) -> TaskSpec:
        assert self._request is not None and self._order is not None
        groups = route.groups
        staged = len(groups) > 1
        return self._spec(
            "approval",
            "approval",
            kind=TaskKind.APPROVE,
            **titled(
                "Approve %(number)s: %(amount)s %(currency)s to %(supplier)s",
                limit=None,
                number=self._number,
                amount=f"{self._order.amount:,.2f}",
                currency=self._order.currency,
                supplier=self._supplier,
            ),
            initiator=self._request.requester or None,  # the requester never approves
            candidates=Candidates(groups=groups[:1]),
            rule=DecisionRule.SEQUENTIAL if staged else DecisionRule.ANY,
            stages=[Candidates(groups=[g]) for g in groups] if staged else [],
            fields=[
                FieldSpec(name="reason", label="Reason for rejecting", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(
                    name="approve", label="Approve", signature_meaning=SignatureMeaning.APPROVED
                ),
                OutcomeSpec(
                    name="reject",
                    label="Reject",
                    signature_meaning=SignatureMeaning.REJECTED,
                    required_fields=["reason"],
                ),
            ],
            context={
                "Approvers in turn": " → ".join(groups),
                "Delegation of authority": "; ".join(route.levels),
            },
        )

    def _supplier_spec(self, attempt: int, refusal: str, problem: str) -> TaskSpec:
        return self._spec(
            f"supplier-{attempt}",
            "supplier",
            kind=TaskKind.PERFORM,
            **titled(
                "Supplier refused for %(number)s: %(refusal)s",
                limit=None,
                number=self._number,
                refusal=refusal,
            ),
            candidates=Candidates(groups=["buyer"]),
            fields=[
                FieldSpec(name="supplier_code", label="Order from supplier (code)"),
                FieldSpec(name="note", label="Note", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(
                    name="change_supplier",
                    label="Order from another supplier",
                    required_fields=["supplier_code"],
                ),
                OutcomeSpec(name="cancel", label="Cancel the purchase"),
            ],
            context={"Supplier check failed": refusal}
            | ({"Last change refused": problem} if problem else {}),
        )

    def _late_spec(self, step: str) -> TaskSpec:
        due = self._expected_on.isoformat() if self._expected_on else ""
        return self._spec(
            step,
            "late",
            kind=TaskKind.PERFORM,
            **titled(
                "Late delivery: %(number)s due %(due)s, %(progress)s received",
                limit=None,
                number=self._number,
                due=due,
                progress=self._progress(),
            ),
            candidates=Candidates(groups=["buyer"]),
            fields=[
                FieldSpec(
                    name="note",
                    label="What the supplier says, and what was done",
                    type=FieldType.LONG_TEXT,
                    required=True,
                )
            ],
            outcomes=[OutcomeSpec(name="expedited", label="Expedited")],
            context={"Expected": due, "Received so far": self._progress()},
        )

    def _inspection_spec(self, lot: ReceivedLot) -> TaskSpec:
        plan = lot.plan
        return self._spec(
            f"inspect-{lot.receipt_no}",
            "inspection",
            kind=TaskKind.INSPECT,
            **titled(
                "Incoming inspection of lot %(lot_number)s: %(quantity)s %(uom)s %(part_number)s "
                "from %(supplier_code)s",
                limit=None,
                lot_number=lot.lot_number,
                quantity=quantity_text(lot.quantity),
                uom=lot.uom,
                part_number=lot.part_number,
                supplier_code=lot.supplier_code,
            ),
            candidates=Candidates(groups=["qc"]),
            fields=[
                FieldSpec(name="sample_size", label="Inspected (pieces)", type=FieldType.NUMBER),
                FieldSpec(
                    name="defects",
                    label="Defective found",
                    type=FieldType.NUMBER,
                    required=True,
                ),
                FieldSpec(name="measurements", label="Measurements", type=FieldType.LONG_TEXT),
                FieldSpec(name="reason", label="Why it fails", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(name="pass", label="Pass"),
                OutcomeSpec(name="fail", label="Fail", required_fields=["reason"]),
            ],
            context=_lot_context(lot)
            | {
                "Sampling plan": plan.basis,
                "Inspect": plan.describe(),
                "Sample size": str(plan.sample_size),
                "Accept number": str(plan.accept_number),
                "Reject number": str(plan.reject_number),
            },
        )

    def _release_spec(self, lot: ReceivedLot, inspector: str) -> TaskSpec:
        return self._spec(
            f"release-{lot.receipt_no}",
            "release",
            kind=TaskKind.APPROVE,
            **titled(
                "QA release of lot %(lot_number)s (%(part_number)s)",
                limit=None,
                lot_number=lot.lot_number,
                part_number=lot.part_number,
            ),
            candidates=Candidates(groups=["qa"]),
            excluded_users=[inspector],
            fields=[FieldSpec(name="reason", label="Why not released", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="release",
                    label="Release the lot",
                    signature_meaning=SignatureMeaning.RELEASED,
                ),
                OutcomeSpec(name="hold", label="Refuse release (hold)", required_fields=["reason"]),
            ],
            context=_lot_context(lot)
            | {"Incoming inspection": f"passed, inspected by {inspector}"},
        )

    def _lot_problem_spec(self, lot: ReceivedLot, status: str, message: str) -> TaskSpec:
        return self._spec(
            f"lot-problem-{lot.receipt_no}",
            "lot-problem",
            kind=TaskKind.PERFORM,
            **titled(
                "Lot %(lot_number)s could not become %(status)s: %(message)s",
                limit=None,
                lot_number=lot.lot_number,
                status=status,
                message=message,
            ),
            candidates=Candidates(groups=["qa-manager"]),
            fields=[
                FieldSpec(
                    name="action", label="What was done", type=FieldType.LONG_TEXT, required=True
                )
            ],
            outcomes=[OutcomeSpec(name="acknowledged", label="Acknowledged")],
            context=_lot_context(lot) | {"Refused": message},
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    @property
    def _today(self) -> date:
        return workflow.now().date()

    @property
    def _ordered(self) -> dict[str, Decimal]:
        lines = self._order.lines if self._order else []
        return {line.part_number: line.quantity for line in lines}

    def _uom(self, part: str) -> str:
        lines = self._order.lines if self._order else []
        return next((ln.uom for ln in lines if ln.part_number == part), "")

    def _open(self, part: str) -> Decimal:
        zero = Decimal(0)
        ordered = self._ordered.get(part, zero)
        return ordered - self._received.get(part, zero) - self._arriving.get(part, zero)

    def _all_received(self) -> bool:
        return all(self._received.get(p, Decimal(0)) >= q for p, q in self._ordered.items())

    def _progress(self) -> str:
        """'300 of 1000 m' for one line; per part for several."""
        progress = {
            part: f"{quantity_text(self._received.get(part, Decimal(0)))} of {quantity_text(q)} "
            f"{self._uom(part)}"
            for part, q in self._ordered.items()
        }
        if len(progress) > 1:
            return "; ".join(f"{part} {done}" for part, done in progress.items())
        return "; ".join(progress.values())

    async def _register(self, request: PurchaseRequest) -> bool:
        """The requisition and the process row; False when it cannot be ordered (rejected)."""
        refusal = ""
        try:
            self._order = await run_activity(
                "register_purchase",
                RegisterPurchaseInput(
                    process_id=self._pid, run_id=workflow.info().run_id, request=request
                ),
                RegisteredPurchase,
            )
            self._number, self._supplier = self._order.number, self._order.supplier_code
        except ActivityError as err:
            refused = refusal_of(err, "PurchaseRefused")
            if refused is None:
                raise
            self._number = str(refused.details[0]) if refused.details else ""
            # the reason's wording is the second detail (None from an older activity)
            spoken = refused.details[1] if len(refused.details) > 1 else None
            refusal = said_again(spoken, refused.message)
        parts = ", ".join(line.part_number for line in request.lines)
        await register_process(
            KIND,
            **titled(
                "%(number)s: %(parts)s from %(supplier)s",
                limit=None,
                number=self._number,
                parts=parts,
                supplier=request.supplier_code,
            ),
            business_key=self._number,
            initiator=request.requester or None,
        )
        if refusal:
            await self._finish("rejected", outcome="rejected", reason=refusal)
            return False
        self._status = "requisition"
        return True

    async def _step(self, step: str) -> None:
        """Move the process row to a later step (receipts and the main flow both move it)."""
        rank = STEPS.index(step)
        if rank <= self._step_rank:
            return
        self._step_rank = rank
        async with self._process_writes:
            await update_process(step)

    async def _event_activity(self, name: str, arg: object, result_type: type | None = None):  # type: ignore[no-untyped-def]
        """An event's ERP write; its business refusal reaches the sender with its kind."""
        try:
            return await run_activity(name, arg, result_type)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise ApplicationError(
                    cause.message, *cause.details, type=cause.type or "Conflict", non_retryable=True
                ) from err
            raise


def _event_data(event: ProcessEvent) -> BaseModel | str:
    """The event's data as its model, or why it is not acceptable."""
    accepted = EVENTS[KIND]
    model = accepted.get(event.event)
    if model is None:
        return said(
            "a purchase accepts the events %(accepted)s; not '%(event)s'",
            accepted=", ".join(accepted),
            event=event.event,
        )
    try:
        return model.model_validate(event.data)
    except ValidationError as err:
        return "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or event.event}: {e['msg']}"
            for e in err.errors()
        )


def _lot_context(lot: ReceivedLot) -> dict[str, str]:
    return {
        "Lot": lot.lot_number,
        "Part": lot.part_number,
        "Quantity": f"{quantity_text(lot.quantity)} {lot.uom}",
        "Supplier lot": lot.supplier_lot,
        "Expires": lot.expires_on.isoformat() if lot.expires_on else "no expiry",
        "Delivered": "on time" if lot.on_time else "late",
    }


def _count(value: str | None, default: int) -> int:
    """A whole, non-negative count from a number field ('' or absent: the default)."""
    try:
        return max(0, int(Decimal(value))) if value and value.strip() else default
    except InvalidOperation:
        return default
