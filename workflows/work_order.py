"""Work order (21 CFR 820.184 device history record; ISO 13485 §7.5).

register (the part's effective revision, with a BOM) → allocate materials first-expiry-first-out
(short: production decides retry or cancel) → production records what it made → issue, finished
lot in QUARANTINE, genealogy and serials with UDI in one transaction (a lot refused by the database
since allocation: production is told why, materials are allocated again) → final inspection →
device history record review → QA release with signature → lot RELEASED. A failed check opens a
nonconformance that holds the lot (`_hold_nonconforming`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskSpec,
    )
    from schemas.production import (
        AllocateMaterialsInput,
        Allocation,
        CancelWorkOrderInput,
        DeviceHistoryInput,
        DeviceHistoryRecord,
        FinishLotInput,
        ProductionRecord,
        RecordInspectionInput,
        RecordProductionInput,
        RegisterWorkOrderInput,
        RegisterWorkOrderResult,
        quantity_text,
    )
    from schemas.quality import NcSource, NonconformanceRequest, Severity
    from schemas.shipping import shortages_said
    from schemas.supply import WorkOrderRequest, WorkOrderResult
    from workflows.human_task import human_task
    from workflows.nonconformance import NC_PATCH, raise_nonconformance
    from workflows.process_kit import (
        StepPolicy,
        again_or_cancel,
        cancellation,
        decider,
        finished,
        headline,
        lot_refusal,
        picks_context,
        register_process,
        register_then,
        run_activity,
        task_spec,
        update_process,
    )
    from workflows.wording import described, reason_wording, said, said_again, titled

KIND = "work-order"

POLICY = {
    "materials": StepPolicy(timedelta(days=1), ("purchasing-manager",)),
    "production": StepPolicy(timedelta(days=5), ("engineering",)),
    "final-inspection": StepPolicy(timedelta(days=2), ("qa-manager",)),
    "dhr-review": StepPolicy(timedelta(days=2), ("qa-manager", "quality-director")),
    "qa-release": StepPolicy(timedelta(days=1), ("qa-manager", "quality-director")),
}


@workflow.defn(name="WorkOrder")
class WorkOrderWorkflow:
    def __init__(self) -> None:
        self._request: WorkOrderRequest | None = None
        self._registered: RegisterWorkOrderResult | None = None
        self._result = WorkOrderResult(process_id="", number="", status="registering")
        self._allocations = 0
        self._shortages = 0
        self._productions = 0
        self._refusals = 0

    @workflow.run
    async def run(self, request: WorkOrderRequest) -> WorkOrderResult:
        self._request = request
        self._result = WorkOrderResult(process_id=self._pid, number="", status="registering")
        await register_then(self._register(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _proceed(self, registered: RegisterWorkOrderResult) -> None:
        if registered.refusal:
            refusal = said_again(registered.refusal_wording, registered.refusal)
            await self._finish("rejected", refusal, process_status="failed")
        else:
            await self._make_and_release()

    async def _cancelled(self, registering: asyncio.Future[RegisterWorkOrderResult]) -> None:
        await finished(registering)  # cancelled while registering: record it once registered
        await self._cancel(said("the work order was cancelled"))

    @workflow.query(name="status")
    def status(self) -> WorkOrderResult:
        return self._result

    # ------------------------------------------------------------ the steps

    async def _make_and_release(self) -> None:
        made = await self._produce()
        if made is None:
            return
        record, producer = made
        self._result.lot_number = record.lot_number
        self._result.quantity = record.quantity
        self._result.serials = record.serial_count
        inspector = await self._final_inspection(record, producer)
        if inspector is None:
            return
        reviewer = await self._dhr_review(record, producer)
        if reviewer is None:
            return
        await self._qa_release(record, [producer, reviewer])

    async def _produce(self) -> tuple[ProductionRecord, str] | None:
        """Allocate, let production make it, record it; again after a refusal. None: cancelled."""
        note = ""
        while True:
            allocation = await self._allocate()
            if allocation is None:
                return None
            self._productions += 1
            await self._step(f"production-{self._productions}")
            task = await human_task(self._production_spec(allocation, note))
            producer = decider(task)
            produced = _quantity(task.fields.get("produced_quantity"))
            scrap = _quantity(task.fields.get("scrap_quantity") or "0")
            if produced is None or scrap is None:
                note = said("the quantities must be numbers with at most 4 decimals")
            else:
                try:
                    record = await run_activity(
                        "record_production",
                        RecordProductionInput(
                            process_id=self._pid,
                            attempt=self._productions,
                            produced_quantity=produced,
                            scrap_quantity=scrap,
                            notes=task.fields.get("notes", ""),
                            produced_by=producer,
                            allocation=allocation.picks,
                        ),
                        ProductionRecord,
                    )
                except ActivityError as err:
                    refused = lot_refusal(err)
                    if refused is None:
                        raise
                    note = refused
                else:
                    if not record.problem:
                        return record, producer
                    note = said_again(record.problem_wording, record.problem)
            if not await self._tell_refusal(note):
                return None

    async def _allocate(self) -> Allocation | None:
        """Allocate until nothing is short; production may cancel instead. None: cancelled."""
        while True:
            self._allocations += 1
            allocation: Allocation = await run_activity(
                "allocate_materials",
                AllocateMaterialsInput(process_id=self._pid, attempt=self._allocations),
                Allocation,
            )
            if not allocation.shortages:
                return allocation
            self._shortages += 1
            why = shortages_said(allocation.shortages)
            await self._step(f"materials-short-{self._shortages}", why)
            task = await human_task(self._shortage_spec(allocation))
            cancelled = cancellation(task, said("materials short: %(shortages)s", shortages=why))
            if cancelled:
                await self._cancel(cancelled)
                return None

    async def _tell_refusal(self, why: str) -> bool:
        """Production hears why its record was refused; then allocate again, or cancel."""
        self._refusals += 1
        await self._step(f"production-refused-{self._refusals}", why)
        cancelled = cancellation(await human_task(self._refusal_spec(why)), why)
        if cancelled:
            await self._cancel(cancelled)
        return cancelled is None

    async def _final_inspection(self, record: ProductionRecord, producer: str) -> str | None:
        await self._step("final-inspection")
        task = await human_task(self._final_inspection_spec(record, producer))
        inspector = decider(task)
        passed = task.outcome == "pass"
        reason = task.fields.get("reason", "")
        await run_activity(
            "record_final_inspection",
            RecordInspectionInput(
                process_id=self._pid,
                lot_number=record.lot_number,
                outcome="pass" if passed else "fail",
                inspector=inspector,
                sample_size=_whole(task.fields.get("sample_size")),
                defects=_whole(task.fields.get("defects")),
                results=task.fields.get("results", ""),
                reason=reason,
            ),
        )
        if passed:
            return inspector
        await self._hold_nonconforming(
            record,
            said("final inspection failed: %(why)s", why=reason),
            inspector,
            "final-inspection",
        )
        return None

    async def _dhr_review(self, record: ProductionRecord, producer: str) -> str | None:
        await self._step("dhr-review")
        history: DeviceHistoryRecord = await run_activity(
            "summarize_device_history",
            DeviceHistoryInput(process_id=self._pid),
            DeviceHistoryRecord,
        )
        task = await human_task(self._dhr_spec(history, producer))
        reviewer = decider(task)
        if task.outcome == "reviewed":
            return reviewer
        why = task.fields.get("reason", "")
        await self._hold_nonconforming(
            record,
            said("device history record not acceptable: %(why)s", why=why),
            reviewer,
            "dhr-review",
        )
        return None

    async def _qa_release(self, record: ProductionRecord, excluded: list[str]) -> None:
        await self._step("qa-release")
        task = await human_task(self._release_spec(record, excluded))
        by = decider(task)
        if task.outcome != "release":
            why = task.fields.get("reason", "")
            await self._hold_nonconforming(
                record, said("not released by QA: %(why)s", why=why), by, "qa-release"
            )
            return
        released = said("released by QA (%(by)s) after final inspection and DHR review", by=by)
        try:
            await run_activity(
                "release_finished_lot",
                FinishLotInput(
                    process_id=self._pid,
                    lot_number=record.lot_number,
                    decided_by=by,
                    reason=released,
                    source="qa-release",
                    reason_wording=reason_wording(released),
                ),
            )
        except ActivityError as err:
            refused = lot_refusal(err)
            if refused is None:
                raise
            await self._finish("on_hold", refused)
            return
        await self._finish("released", "")

    async def _hold_nonconforming(
        self, record: ProductionRecord, reason: str, by: str, source: str
    ) -> None:
        """A finished lot failed a check (final inspection, DHR review, QA release): a
        nonconformance (child `<id>.nc-1`, reported by whoever failed it) contains the lot, and
        the work order completes with the lot counted as held; it does not wait for the NC. Runs
        started before the NC process existed (not patched) hold the lot themselves."""
        nonconformance = None
        if workflow.patched(NC_PATCH):
            nonconformance = await raise_nonconformance(
                1, self._nonconformance(record, reason, by, source)
            )
        await run_activity(
            "hold_nonconforming_lot",
            FinishLotInput(
                process_id=self._pid,
                lot_number=record.lot_number,
                decided_by=by,
                reason=reason,
                source=source,
                nonconformance=nonconformance,
                reason_wording=reason_wording(reason),
            ),
        )
        await self._finish("on_hold", reason)

    def _nonconformance(
        self, record: ProductionRecord, reason: str, by: str, source: str
    ) -> NonconformanceRequest:
        assert self._registered is not None
        part = self._registered.part_number
        return NonconformanceRequest(
            reporter=by,
            source=NcSource.FINAL,
            severity=Severity.MAJOR,
            title=headline(f"Lot {record.lot_number} ({part}): {reason}", 120),
            description=headline(
                f"Lot {record.lot_number} of {self._result.number} ({quantity_text(record.quantity)}"
                f" × {part}) stopped at {source} by {by}: {reason}",
                5000,
            ),
            part_number=part,
            lots=[record.lot_number],
            quantity=record.quantity if record.quantity > 0 else None,
            evidence=f"work order {self._result.number}, step {source}",
        )

    async def _cancel(self, reason: str) -> None:
        await run_activity(
            "cancel_work_order",
            CancelWorkOrderInput(
                process_id=self._pid, reason=reason, reason_wording=reason_wording(reason)
            ),
        )
        await self._finish("cancelled", reason, process_status="cancelled")

    async def _finish(self, status: str, reason: str, *, process_status: str = "completed") -> None:
        self._result.status, self._result.reason = status, reason
        await update_process(status, status=process_status, outcome=status, reason=reason)

    # ------------------------------------------------------------ task specs

    def _spec(self, step: str, policy: str, **values: Any) -> TaskSpec:
        """A task of this work order: its SLA and escalation chain, and what is being made."""
        assert self._request is not None and self._registered is not None
        about = {
            "Work order": self._result.number,
            "Device": f"{self._registered.part_number} revision {self._registered.revision}"
            f" — {self._registered.description}",
            "Quantity": quantity_text(self._request.quantity),
            "Due": self._request.due_on.isoformat(),
        }
        if self._request.customer_order:
            about["Customer order"] = self._request.customer_order
        return task_spec(
            step,
            POLICY[policy],
            process_kind=KIND,
            business_key=self._result.number,
            about=about,
            **values,
        )

    def _shortage_spec(self, allocation: Allocation) -> TaskSpec:
        why = shortages_said(allocation.shortages)
        return self._spec(
            f"materials-short-{self._shortages}",
            "materials",
            kind=TaskKind.PERFORM,
            **titled(
                "Materials short for %(number)s: %(why)s", number=self._result.number, why=why
            ),
            **described(
                "Retry once the materials are in stock and released, or cancel the work order."
            ),
            candidates=Candidates(groups=["production"]),
            **again_or_cancel("retry", "Allocate again", "Cancel the work order"),
            context={
                **{
                    said("Short %(n)s", n=n): s.describe()
                    for n, s in enumerate(allocation.shortages, start=1)
                },
                **picks_context(allocation.picks),
            },
        )

    def _production_spec(self, allocation: Allocation, note: str) -> TaskSpec:
        assert self._request is not None and self._registered is not None
        serialised = self._registered.serial_controlled
        return self._spec(
            f"production-{self._productions}",
            "production",
            kind=TaskKind.PERFORM,
            **titled(
                "Produce %(number)s: %(quantity)s × %(part_number)s",
                limit=None,
                number=self._result.number,
                quantity=quantity_text(self._request.quantity),
                part_number=self._registered.part_number,
            ),
            description=(
                f"The last record was refused: {note}. The materials were allocated again: "
                "issue the lots listed here."
                if note
                else "Issue the lots listed here (first expiry first out), make the devices, "
                "and record what was made."
            )
            + (" Serial numbers and UDIs are given to the good units." if serialised else ""),
            candidates=Candidates(groups=["production"]),
            fields=[
                FieldSpec(
                    name="produced_quantity",
                    label="Good units produced",
                    type=FieldType.NUMBER,
                    required=True,
                ),
                FieldSpec(name="scrap_quantity", label="Units scrapped", type=FieldType.NUMBER),
                FieldSpec(name="notes", label="Notes", type=FieldType.LONG_TEXT),
            ],
            outcomes=[OutcomeSpec(name="done", label="Production done")],
            context=({"Refused": note} if note else {}) | picks_context(allocation.picks),
        )

    def _refusal_spec(self, why: str) -> TaskSpec:
        return self._spec(
            f"production-refused-{self._refusals}",
            "production",
            kind=TaskKind.PERFORM,
            **titled(
                "Production of %(number)s not recorded: %(why)s",
                number=self._result.number,
                why=why,
            ),
            **described(
                "Nothing was issued or made in the ERP. Set the refused material aside; the "
                "materials are allocated again when you continue."
            ),
            candidates=Candidates(groups=["production"]),
            **again_or_cancel("allocate_again", "Allocate again", "Cancel the work order"),
            context={"Refused": why},
        )

    def _final_inspection_spec(self, record: ProductionRecord, producer: str) -> TaskSpec:
        return self._spec(
            "final-inspection",
            "final-inspection",
            kind=TaskKind.INSPECT,
            **titled(
                "Final inspection of lot %(lot_number)s (%(number)s)",
                limit=None,
                lot_number=record.lot_number,
                number=self._result.number,
            ),
            candidates=Candidates(groups=["qc"]),
            excluded_users=[producer],
            fields=[
                FieldSpec(name="sample_size", label="Sample size", type=FieldType.NUMBER),
                FieldSpec(name="defects", label="Defects found", type=FieldType.NUMBER),
                FieldSpec(name="results", label="Results", type=FieldType.LONG_TEXT),
                FieldSpec(name="reason", label="Why it fails", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(name="pass", label="Pass"),
                OutcomeSpec(name="fail", label="Fail", required_fields=["reason"]),
            ],
            context=self._record_context(record),
        )

    def _dhr_spec(self, history: DeviceHistoryRecord, producer: str) -> TaskSpec:
        return self._spec(
            "dhr-review",
            "dhr-review",
            kind=TaskKind.REVIEW,
            **titled(
                "Review the device history record of lot %(lot_number)s (%(number)s)",
                limit=None,
                lot_number=history.lot_number,
                number=self._result.number,
            ),
            candidates=Candidates(groups=["qa"]),
            excluded_users=[producer],
            fields=[
                FieldSpec(name="reason", label="What is not acceptable", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(
                    name="reviewed", label="Reviewed", signature_meaning=SignatureMeaning.REVIEWED
                ),
                OutcomeSpec(
                    name="not_acceptable", label="Not acceptable", required_fields=["reason"]
                ),
            ],
            context=history.context(),
        )

    def _release_spec(self, record: ProductionRecord, excluded: list[str]) -> TaskSpec:
        return self._spec(
            "qa-release",
            "qa-release",
            kind=TaskKind.APPROVE,
            **titled(
                "QA release of lot %(lot_number)s (%(number)s)",
                limit=None,
                lot_number=record.lot_number,
                number=self._result.number,
            ),
            candidates=Candidates(groups=["qa"]),
            excluded_users=sorted(set(excluded)),
            fields=[
                FieldSpec(name="reason", label="Why it is not released", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(
                    name="release", label="Release", signature_meaning=SignatureMeaning.RELEASED
                ),
                OutcomeSpec(
                    name="not_released", label="Do not release", required_fields=["reason"]
                ),
            ],
            context=self._record_context(record) | {"DHR reviewed by": excluded[-1]},
        )

    def _record_context(self, record: ProductionRecord) -> dict[str, str]:
        shown = {
            "Lot": record.lot_number,
            "Produced": f"{quantity_text(record.quantity)} "
            f"(scrap {quantity_text(record.scrap_quantity)})",
        }
        if record.serial_count:
            shown["Serials"] = (
                f"{record.serial_first} … {record.serial_last} ({record.serial_count})"
            )
        return shown

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    async def _register(self, request: WorkOrderRequest) -> RegisterWorkOrderResult:
        registered: RegisterWorkOrderResult = await run_activity(
            "register_work_order",
            RegisterWorkOrderInput(
                process_id=self._pid, run_id=workflow.info().run_id, request=request
            ),
            RegisterWorkOrderResult,
        )
        self._registered = registered
        self._result.number = registered.number
        what = {
            "number": registered.number,
            "quantity": quantity_text(request.quantity),
            "part": request.part_number,
        }
        await register_process(
            KIND,
            **(
                titled(
                    "%(number)s: %(quantity)s × %(part)s %(description)s",
                    limit=None,
                    description=registered.description,
                    **what,
                )
                if registered.description
                else titled("%(number)s: %(quantity)s × %(part)s", limit=None, **what)
            ),
            business_key=registered.number,
            initiator=request.requester or None,
        )
        self._result.status = "planned"
        return registered

    async def _step(self, step: str, reason: str = "") -> None:
        self._result.status = step
        await update_process(step, reason=reason)


def _quantity(value: str | None) -> Decimal | None:
    """A quantity typed into a task, or None when it is not one the ERP can store."""
    try:
        quantity = Decimal((value or "").strip())
        if (
            quantity.is_finite()
            and abs(quantity) < 10**10
            and quantity == quantity.quantize(Decimal("0.0001"))
        ):
            return quantity
    except InvalidOperation:
        pass
    return None


def _whole(value: str | None) -> int:
    """A count typed into a task (the task checked it is a number)."""
    try:
        return int(float(value or 0))
    except ValueError:
        return 0
