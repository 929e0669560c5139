"""Recall notice: one per consignee, started by the recall once its strategy is approved
(21 CFR 7.49; thousands of consignees stay cheap: no task unless a consignee stays silent).

register → send the notice (outbox e-mail, and webhook when the customer has one; nothing leaves
the house in a drill, yet the consignee counts as notified) → tell the recall (signal
"notice-sent" with the consignee's code) → wait for the answer: reminders 7 and 14 days after the
notice, at 21 days a task for regulatory affairs, who keys in what the consignee said (an event
arriving meanwhile closes the task) → answers (`consignee-response`) and returns
(`return-received`) arrive as the update "event" until everything shipped is accounted for
(reconciled, see schemas.recall_notice.ConsigneePosition.reconciled) or the recall ends (it
cancels its notices: an open task is closed, the process row is closed, nothing else is written).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        TaskKind,
        TaskResult,
        TaskSpec,
    )
    from schemas.problem_wording import problems_said
    from schemas.production import quantity_text
    from schemas.recall import (
        RECALL_EVENTS,
        ConsigneeResponse,
        RecallNoticeRequest,
        RecallNoticeResult,
        RecallReturnReceived,
    )
    from schemas.recall_notice import (
        ConsigneePosition,
        EscalateConsigneeInput,
        RecordConsigneeResponseInput,
        RecordRecallReturnInput,
        SendRecallNoticeInput,
        SendReminderInput,
        SentRecallNotice,
    )
    from schemas.supply import EventResult, ProcessEvent
    from workflows.human_task import human_task, is_cancellation
    from workflows.process_kit import (
        StepPolicy,
        close_task,
        decider,
        finished,
        refusal_of,
        register_process,
        register_then,
        run_activity,
        task_spec,
        update_process,
    )
    from workflows.wording import answered, described, refuse, said, titled

KIND = "recall-notice"
SENT_SIGNAL = "notice-sent"  # to the recall, with the consignee's code
REMINDERS = (timedelta(days=7), timedelta(days=14))  # after the notice
ESCALATION = timedelta(days=21)  # after the notice: a person takes over
POLICY = StepPolicy(timedelta(days=3), ("qa-manager",))


@workflow.defn(name="RecallNotice")
class RecallNoticeWorkflow:
    def __init__(self) -> None:
        self._request: RecallNoticeRequest | None = None
        self._sent: SentRecallNotice | None = None
        self._sent_at: datetime | None = None  # workflow time, the reminders' clock
        self._position: ConsigneePosition | None = None
        self._result = RecallNoticeResult(process_id="", consignee_code="", status="sending")
        self._event_results: dict[str, EventResult] = {}
        self._events_in_flight: set[str] = set()
        self._lock = asyncio.Lock()  # one answer at a time: each is checked against the last
        self._tasks = 0
        self._task: asyncio.Future[TaskResult] | None = None
        self._task_step = ""

    @workflow.run
    async def run(self, request: RecallNoticeRequest) -> RecallNoticeResult:
        self._request = request
        self._result = RecallNoticeResult(
            process_id=self._pid, consignee_code=request.consignee_code, status="sending"
        )
        await register_then(self._send(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _proceed(self, sent: SentRecallNotice) -> None:
        await self._tell_recall()
        await self._await_answer()
        await workflow.wait_condition(lambda: self._reconciled)

    async def _cancelled(self, sending: asyncio.Future[SentRecallNotice]) -> None:
        """The recall ended (or cancelled this notice): an open task is closed and the process
        row with it; the consignee's record stays as it is."""
        await finished(sending)
        if self._task is not None:
            await close_task(
                self._task, self._task_step, said("the recall no longer needs this notice")
            )
        outcome = self._result.status
        self._result.status = "cancelled"
        if not self._reconciled:
            await update_process(
                "cancelled",
                status="cancelled",
                outcome=outcome,
                reason=said("the recall ended before the consignee was reconciled"),
            )

    @workflow.query(name="status")
    def status(self) -> RecallNoticeResult:
        return self._result

    # ------------------------------------------------------------ notice and reminders

    async def _send(self, request: RecallNoticeRequest) -> SentRecallNotice:
        await register_process(
            KIND,
            **titled(
                "%(recall)s: notice to %(consignee)s",
                limit=None,
                recall=request.recall_number,
                consignee=request.consignee_code,
            ),
            business_key=request.recall_number,
            initiator=None,
        )
        sent: SentRecallNotice = await run_activity(
            "send_recall_notice",
            SendRecallNoticeInput(
                process_id=self._pid,
                recall_process_id=request.recall_process_id,
                consignee_code=request.consignee_code,
                drill=request.drill,
            ),
            SentRecallNotice,
        )
        self._sent, self._sent_at = sent, workflow.now()
        self._result.notified_at = sent.notified_at
        self._take(sent.position)
        if self._result.status == "sending":
            self._result.status = "notified"
        return sent

    async def _tell_recall(self) -> None:
        """Signal the recall; a recall that is not there (a notice started on its own) is
        logged, never a reason for the notice to fail."""
        assert self._request is not None
        try:
            await workflow.get_external_workflow_handle(self._request.recall_process_id).signal(
                SENT_SIGNAL, self._request.consignee_code
            )
        except FailureError as err:
            if is_cancellation(err):
                raise
            workflow.logger.warning(
                "recall %s not told that %s was notified: %s",
                self._request.recall_process_id,
                self._request.consignee_code,
                err,
            )

    async def _await_answer(self) -> None:
        """Reminders while the consignee is silent, then a person."""
        assert self._request is not None and self._sent_at is not None
        for number, after in enumerate(REMINDERS, start=1):
            if await self._answered_by(self._sent_at + after):
                return
            await run_activity(
                "send_recall_reminder",
                SendReminderInput(
                    process_id=self._pid,
                    recall_process_id=self._request.recall_process_id,
                    consignee_code=self._request.consignee_code,
                    reminder=number,
                    drill=self._request.drill,
                ),
            )
            self._result.reminders = number
        if await self._answered_by(self._sent_at + ESCALATION):
            return
        await self._escalate()

    async def _answered_by(self, deadline: datetime) -> bool:
        wait = deadline - workflow.now()
        if wait <= timedelta(0):
            return self._answered
        try:
            await workflow.wait_condition(lambda: self._answered, timeout=wait)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ the silent consignee

    async def _escalate(self) -> None:
        """A task for regulatory affairs; an answer keyed in there is recorded like an event
        (again with the problem when it cannot be true); an event first closes the task."""
        assert self._request is not None
        self._result.status = "escalated"
        await run_activity(
            "escalate_recall_consignee",
            EscalateConsigneeInput(
                process_id=self._pid,
                recall_process_id=self._request.recall_process_id,
                consignee_code=self._request.consignee_code,
                task_workflow_id=f"{self._pid}.escalation",
            ),
        )
        note = await self._escalation_task("")
        while note:
            note = await self._escalation_task(note)

    async def _escalation_task(self, note: str) -> str:
        """One task: '' once answered (keyed in, or an event closed it), else why the answer
        keyed in was not taken (the next task shows it)."""
        self._tasks += 1
        step = "escalation" + (f"-{self._tasks}" if self._tasks > 1 else "")
        task = asyncio.ensure_future(human_task(self._escalation_spec(step, note)))
        self._task, self._task_step = task, step
        await workflow.wait_condition(lambda: task.done() or self._answered)
        if not task.done():
            await close_task(
                task,
                step,
                said("%(consignee)s answered the recall notice", consignee=self._consignee),
            )
            self._task = None
            return ""
        self._task = None
        return await self._keyed_in(task.result())

    async def _keyed_in(self, task: TaskResult) -> str:
        """Record the answer keyed in at the task; '' once recorded, else why it was not."""
        assert self._position is not None
        fields = task.fields
        try:
            response = ConsigneeResponse(
                consignee_code=self._code,
                acknowledged=fields.get("acknowledged") == "yes",
                quantity_on_hand=_quantity(fields.get("quantity_on_hand", "")),
                quantity_returned=_quantity(fields.get("quantity_returned", "")) or Decimal(0),
                quantity_corrected=_quantity(fields.get("quantity_corrected", "")) or Decimal(0),
                note="\n".join(
                    text for text in (fields.get("what_done", ""), fields.get("note", "")) if text
                ),
            )
        except (ValidationError, InvalidOperation) as err:
            return said(
                "the quantities keyed in are not valid: %(problems)s", problems=_problems(err)
            )
        async with self._lock:
            problem = self._position.response_problem(response)
            if problem:
                return problem
            await self._record_response(f"task-{task.task_id}", response, decider(task))
        return ""

    # ------------------------------------------------------------ the events

    @workflow.update(name="event")
    async def event(self, event: ProcessEvent) -> EventResult:
        await workflow.wait_condition(lambda: event.event_id not in self._events_in_flight)
        if event.event_id in self._event_results:
            return self._event_results[event.event_id].model_copy(update={"repeated": True})
        self._events_in_flight.add(event.event_id)
        try:
            async with self._lock:  # checked again: another answer may have come meanwhile
                _raise_invalid(self._event_problem(event))
                result = await self._apply(event)
        finally:
            self._events_in_flight.discard(event.event_id)
        self._event_results[event.event_id] = result
        return result

    @event.validator
    def _validate_event(self, event: ProcessEvent) -> None:
        if event.event_id in self._event_results or event.event_id in self._events_in_flight:
            return  # a repeat: answered with the first answer
        if self._sent is None:
            raise refuse("NotReady", "the recall notice is still being sent")
        _raise_invalid(self._event_problem(event))
        if self._result.status in ("reconciled", "cancelled"):
            raise refuse(
                "Conflict",
                "the notice to %(code)s is %(status)s; it takes no more events",
                code=self._code,
                status=self._result.status,
            )

    def _event_problem(self, event: ProcessEvent) -> str:
        """Why this event cannot be taken ('' when it can)."""
        assert self._sent is not None and self._position is not None
        if event.event not in RECALL_EVENTS:
            return said(
                "a recall notice accepts the events %(events)s, not '%(event)s'",
                events=", ".join(RECALL_EVENTS),
                event=event.event,
            )
        try:
            model: type[BaseModel] = RECALL_EVENTS[event.event]  # type: ignore[assignment]
            data = model.model_validate(event.data)
        except ValidationError as err:
            return said("%(event)s: %(problems)s", event=event.event, problems=_problems(err))
        if isinstance(data, ConsigneeResponse | RecallReturnReceived):
            if data.consignee_code != self._code:
                return said(
                    "this is the notice of %(recall)s to %(code)s, not to %(other)s",
                    recall=self._sent.recall_number,
                    code=self._code,
                    other=data.consignee_code,
                )
        if isinstance(data, ConsigneeResponse):
            return self._position.response_problem(data)
        if isinstance(data, RecallReturnReceived):
            if data.lot_number not in self._sent.lot_numbers:
                return said(
                    "lot %(lot)s was not shipped to %(code)s (it received %(lots)s)",
                    lot=data.lot_number,
                    code=self._code,
                    lots=", ".join(self._sent.lot_numbers),
                )
            return self._position.return_problem(data.quantity)
        return ""

    async def _apply(self, event: ProcessEvent) -> EventResult:
        if event.event == "consignee-response":
            response = ConsigneeResponse.model_validate(event.data)
            position = await self._record_response(event.event_id, response, event.sent_by)
            on_hand = position.quantity_on_hand
            message = said(
                "the answer of %(code)s to %(number)s is recorded: on hand %(on_hand)s, "
                "returned %(returned)s, corrected %(corrected)s of %(shipped)s shipped; "
                "the consignee is %(status)s",
                code=self._code,
                number=self._number,
                on_hand=quantity_text(on_hand) if on_hand is not None else "not said",
                returned=quantity_text(position.quantity_returned),
                corrected=quantity_text(position.quantity_corrected),
                shipped=quantity_text(position.shipped_quantity),
                status=self._result.status,
            )
        else:
            received = RecallReturnReceived.model_validate(event.data)
            position = await self._record_return(event.event_id, received, event.sent_by)
            message = said(
                "%(quantity)s of lot %(lot)s from %(code)s received back against %(number)s; "
                "the consignee is %(status)s",
                quantity=quantity_text(received.quantity),
                lot=received.lot_number,
                code=self._code,
                number=self._number,
                status=self._result.status,
            )
        return EventResult(
            process_id=self._pid,
            event=event.event,
            event_id=event.event_id,
            **answered(message),
            data={
                "recall": self._number,
                "consignee": self._code,
                "status": self._result.status,
                "reconciled": "yes" if position.reconciled else "no",
            },
        )

    async def _record_response(
        self, event_id: str, response: ConsigneeResponse, by: str
    ) -> ConsigneePosition:
        assert self._request is not None
        position = await self._refused_as_invalid(
            run_activity(
                "record_consignee_response",
                RecordConsigneeResponseInput(
                    process_id=self._pid,
                    recall_process_id=self._request.recall_process_id,
                    event_id=event_id,
                    response=response,
                    recorded_by=by,
                ),
                ConsigneePosition,
            )
        )
        self._take(position)
        return position

    async def _record_return(
        self, event_id: str, received: RecallReturnReceived, by: str
    ) -> ConsigneePosition:
        assert self._request is not None
        position = await self._refused_as_invalid(
            run_activity(
                "record_recall_return",
                RecordRecallReturnInput(
                    process_id=self._pid,
                    recall_process_id=self._request.recall_process_id,
                    event_id=event_id,
                    received=received,
                    received_by=by,
                ),
                ConsigneePosition,
            )
        )
        self._take(position)
        return position

    @staticmethod
    async def _refused_as_invalid(recording: Awaitable[ConsigneePosition]) -> ConsigneePosition:
        """The recording, its ERP refusal (a concurrent answer made it impossible) as Invalid."""
        try:
            position = await recording
        except ActivityError as err:
            refused = refusal_of(err, "Invalid")
            if refused is None:
                raise
            raise ApplicationError(
                refused.message, *refused.details, type="Invalid", non_retryable=True
            ) from None
        return position

    def _take(self, position: ConsigneePosition) -> None:
        """The consignee's position as the ERP recorded it, and the status it gives."""
        self._position = position
        if position.acknowledged and self._result.responded_at is None:
            self._result.responded_at = workflow.now()
        if position.reconciled:
            self._result.status = "reconciled"
        elif position.acknowledged:
            self._result.status = "responded"

    # ------------------------------------------------------------ the task

    def _escalation_spec(self, step: str, note: str) -> TaskSpec:
        assert self._sent is not None and self._position is not None
        sent, position = self._sent, self._position
        return task_spec(
            step,
            POLICY,
            process_kind=KIND,
            business_key=sent.recall_number,
            about={
                "Recall": sent.recall_number,
                "Consignee": f"{sent.consignee_code} {sent.consignee_name}",
                "Notified": sent.notified_at.isoformat(timespec="minutes"),
                "Reminders": str(self._result.reminders),
                "Shipped": quantity_text(position.shipped_quantity),
                "Lots": ", ".join(sent.lot_numbers),
            },
            context={"Not taken": note} if note else {},
            kind=TaskKind.PERFORM,
            **titled(
                "%(recall_number)s: %(consignee_name)s has not answered",
                limit=None,
                recall_number=sent.recall_number,
                consignee_name=sent.consignee_name,
            ),
            **described(
                "The recall notice went out %(days)s days ago and %(count)s reminders followed; "
                "no answer came. Reach the consignee, make sure it acts on the notice, and key in "
                "what it says.",
                days=ESCALATION.days,
                count=len(REMINDERS),
            ),
            candidates=Candidates(groups=["ra"]),
            fields=[
                FieldSpec(
                    name="what_done", label="What was done", type=FieldType.LONG_TEXT, required=True
                ),
                FieldSpec(
                    name="acknowledged",
                    label="Acknowledged by the consignee",
                    type=FieldType.CHOICE,
                    choices=["yes", "no"],
                    required=True,
                ),
                FieldSpec(name="quantity_on_hand", label="Quantity on hand", type=FieldType.NUMBER),
                FieldSpec(
                    name="quantity_returned", label="Quantity returned", type=FieldType.NUMBER
                ),
                FieldSpec(
                    name="quantity_corrected", label="Quantity corrected", type=FieldType.NUMBER
                ),
                FieldSpec(name="note", label="Note", type=FieldType.LONG_TEXT),
            ],
            outcomes=[OutcomeSpec(name="recorded", label="Answer recorded")],
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    @property
    def _code(self) -> str:
        assert self._request is not None
        return self._request.consignee_code

    @property
    def _number(self) -> str:
        assert self._request is not None
        return self._request.recall_number

    @property
    def _consignee(self) -> str:
        return self._sent.consignee_name if self._sent else self._code

    @property
    def _answered(self) -> bool:
        """The consignee acted: it acknowledged, or goods came back from it."""
        position = self._position
        return position is not None and (
            position.acknowledged or position.quantity_received_back > 0 or position.reconciled
        )

    @property
    def _reconciled(self) -> bool:
        return self._position is not None and self._position.reconciled


def _quantity(value: str) -> Decimal | None:
    """A keyed-in quantity; None when left empty."""
    return Decimal(value.strip()) if value.strip() else None


def _problems(err: Exception) -> str:
    """What pydantic found, `field: problem; …`, each problem translatable
    (`schemas.problem_wording`); a keyed-in number that is none, as Python says it."""
    if isinstance(err, ValidationError):
        return problems_said(err.errors())
    return str(err) or type(err).__name__


def _raise_invalid(problem: str) -> None:
    if problem:
        raise refuse("Invalid", problem, non_retryable=True)
