"""The human task: one mechanism every process uses for a step people decide.

A process calls `await human_task(spec)`. That starts a `HumanTask` child workflow (id:
`<process id>.<step>`) which opens the inbox row, waits for decisions on a durable timer, reminds
before the due time, escalates up the chain at each due time, and records each decision — sent as a
Temporal update — through an audited activity. Escalation never decides on anyone's behalf.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    CancelledError,
    ChildWorkflowError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.activities import (
        CancelTaskInput,
        EscalateTaskInput,
        OpenTaskInput,
        OpenTaskResult,
        RecordDecisionInput,
        RecordDecisionResult,
        RemindTaskInput,
    )
    from schemas.human_task import (
        Candidates,
        DecisionRecord,
        DecisionRequest,
        DecisionResult,
        DecisionRule,
        FieldSpec,
        FieldType,
        TaskResult,
        TaskSpec,
        TaskState,
        TaskStatus,
    )
    from workflows.wording import Said, answered, refuse, said, said_again, wording

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
DECISION_LOCAL_ACTIVITY = "decision-recorded-by-local-activity"


@dataclass(frozen=True)
class Refusal:
    """Why a decision is refused; `kind` tells the API which HTTP status fits."""

    kind: str  # Conflict (409) | Invalid (422) | Forbidden (403) | NotReady (retry, then 409)
    message: str


@dataclass
class Tally:
    """The effect of one accepted decision on the task."""

    counted_for: str | None
    status: TaskStatus
    final_outcome: str | None
    next_stage: int | None = None


def refusal(
    spec: TaskSpec,
    status: TaskStatus,
    stage: int,
    level: int,
    decisions: list[DecisionRecord],
    request: DecisionRequest,
) -> Refusal | None:
    """Why this decision may not be taken now, or None. Deterministic: used by the validator."""
    if status is not TaskStatus.OPEN:
        return Refusal(
            "Conflict",
            Said(
                "the task is already %(status)s; no further decision is taken", status=status.value
            ),
        )
    outcome = spec.outcome(request.outcome)
    if outcome is None:
        allowed = ", ".join(o.name for o in spec.outcomes)
        return Refusal(
            "Invalid",
            Said(
                "outcome '%(outcome)s' is not allowed here; choose one of: %(allowed)s",
                outcome=request.outcome,
                allowed=allowed,
            ),
        )
    required = {f.name for f in spec.fields if f.required} | set(outcome.required_fields)
    missing = sorted(n for n in required if not request.fields.get(n, "").strip())
    if missing:
        return Refusal(
            "Invalid",
            Said(
                "required field(s) missing for '%(outcome)s': %(missing)s",
                outcome=outcome.name,
                missing=", ".join(missing),
            ),
        )
    malformed = _malformed_fields(spec, request.fields)
    if malformed:
        return Refusal("Invalid", malformed)
    people = {request.decider} | ({request.on_behalf_of} if request.on_behalf_of else set())
    if spec.initiator and spec.initiator in people:
        return Refusal(
            "Forbidden", "segregation of duties: the initiator of a request may not decide it"
        )
    if people & set(spec.excluded_users):
        return Refusal(
            "Forbidden",
            "segregation of duties: you took part in this work and may not decide this step",
        )
    if any(d.decider in people or (d.on_behalf_of and d.on_behalf_of in people) for d in decisions):
        return Refusal("Conflict", "you have already decided this task")
    candidates = spec.stage_candidates(stage)
    groups = set(candidates.groups) | set(spec.escalation_chain[: level - 1])
    if not (people & set(candidates.users)) and not (set(request.qualifying_groups) & groups):
        return Refusal(
            "Forbidden", "you are not a candidate for this task (nor standing in for one)"
        )
    if outcome.signature_meaning is not None and request.signature is None:
        return Refusal(
            "Invalid",
            Said(
                "'%(outcome)s' is a signing decision: re-enter your password to sign",
                outcome=outcome.name,
            ),
        )
    return None


def _malformed_fields(spec: TaskSpec, values: dict[str, str]) -> str | None:
    """A value that does not fit its field's type, or a field the task does not have."""
    known = {f.name: f for f in spec.fields}
    for name, value in values.items():
        field = known.get(name)
        if field is None:
            return Said("'%(name)s' is not a field of this task", name=name)
        value = value.strip()
        if not value:
            continue
        if field.type is FieldType.CHOICE and value not in field.choices:
            return Said(
                "%(label)s: choose one of %(choices)s",
                label=_label(field),
                choices=", ".join(field.choices),
            )
        if field.type is FieldType.NUMBER and not _is_number(value):
            return Said("%(label)s: '%(value)s' is not a number", label=_label(field), value=value)
        if field.type is FieldType.DATE and not _is_date(value):
            return Said(
                "%(label)s: '%(value)s' is not a date like 2026-12-31",
                label=_label(field),
                value=value,
            )
    return None


def _label(field: FieldSpec) -> str:
    """A field's label in a problem: a label composed with values as a `Said` again (from its
    `label_wording`), so the problem reads in the reader's language with it."""
    return said_again(field.label_wording, field.label) if field.label_wording else field.label


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def tally(
    spec: TaskSpec, stage: int, decisions: list[DecisionRecord], request: DecisionRequest
) -> Tally:
    """Apply one accepted decision: does the task close, move a stage, or wait for more?"""
    agreeing = spec.agreeing_outcome
    if request.outcome != agreeing:
        # any dissenting outcome (reject, return...) decides the task at once, whatever the rule
        return Tally(None, TaskStatus.COMPLETED, request.outcome)
    agreed = [d for d in decisions if d.outcome == agreeing]
    if spec.rule is DecisionRule.ANY:
        return Tally(None, TaskStatus.COMPLETED, agreeing)
    if spec.rule is DecisionRule.K_OF_N:
        if len(agreed) + 1 >= spec.k:
            return Tally(None, TaskStatus.COMPLETED, agreeing)
        return Tally(None, TaskStatus.OPEN, None)
    if spec.rule is DecisionRule.SEQUENTIAL:
        if stage >= len(spec.stages):
            return Tally(f"stage:{stage}", TaskStatus.COMPLETED, agreeing)
        return Tally(f"stage:{stage}", TaskStatus.OPEN, None, next_stage=stage + 1)
    # ALL: every named user, and one member of each candidate group
    filled = {d.counted_for for d in agreed}
    people = {request.decider} | ({request.on_behalf_of} if request.on_behalf_of else set())
    slot = next((f"user:{u}" for u in spec.candidates.users if u in people), None)
    if slot is None:
        slot = next(
            (
                f"group:{g}"
                for g in spec.candidates.groups
                if g in request.qualifying_groups and f"group:{g}" not in filled
            ),
            None,
        )
    required = {f"user:{u}" for u in spec.candidates.users} | {
        f"group:{g}" for g in spec.candidates.groups
    }
    if required <= filled | ({slot} if slot else set()):
        return Tally(slot, TaskStatus.COMPLETED, agreeing)
    return Tally(slot, TaskStatus.OPEN, None)


@workflow.defn(name="HumanTask")
class HumanTaskWorkflow:
    def __init__(self) -> None:
        self._spec: TaskSpec | None = None
        self._task_id: int | None = None
        self._status = TaskStatus.OPEN
        self._outcome: str | None = None
        self._final_fields: dict[str, str] = {}
        self._stage = 1
        self._level = 1
        self._due_at: datetime | None = None
        self._decisions: list[DecisionRecord] = []
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, spec: TaskSpec) -> TaskResult:
        self._spec = spec
        self._due_at = workflow.now() + spec.sla
        # A cancellation while the row is being written must not leave it open: the write runs
        # shielded, and the cancellation waits for it before closing the row.
        opening = asyncio.ensure_future(
            workflow.execute_activity(
                "open_task",
                OpenTaskInput(
                    workflow_id=workflow.info().workflow_id,
                    run_id=workflow.info().run_id,
                    spec=spec,
                    due_at=self._due_at,
                ),
                result_type=OpenTaskResult,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        )
        try:
            opened: OpenTaskResult = await asyncio.shield(opening)
            self._task_id = opened.task_id
            await self._wait_with_escalation(spec)
        except BaseException as err:
            if not is_cancellation(err):
                raise
            self._status = TaskStatus.CANCELLED
            if not opening.done():
                await opening
            await workflow.execute_activity(
                "cancel_task",
                CancelTaskInput(
                    task_id=self._task_id,
                    workflow_id=workflow.info().workflow_id,
                    reason=said("the process was cancelled"),
                    reason_wording=wording(said("the process was cancelled")),
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return TaskResult(
            task_id=opened.task_id,
            status=self._status,
            outcome=self._outcome,
            fields=self._final_fields,
            decisions=self._decisions,
            escalation_level=self._level,
        )

    async def _wait_with_escalation(self, spec: TaskSpec) -> None:
        reminded_level = 0
        while True:
            assert self._due_at is not None
            remind_at = (
                self._due_at - spec.reminder_before
                if spec.reminder_before and reminded_level < self._level
                else None
            )
            wake_at = remind_at if remind_at and remind_at > workflow.now() else self._due_at
            timeout = wake_at - workflow.now()
            if await self._closed_within(timeout if timeout > timedelta(0) else None):
                return
            if remind_at is not None and wake_at == remind_at:
                reminded_level = self._level
                await self._remind()
                continue
            if self._level > len(spec.escalation_chain):
                await self._escalate(None)  # the chain is exhausted: overdue, stays with them
                await workflow.wait_condition(lambda: self._status is not TaskStatus.OPEN)
                return
            await self._escalate(spec.escalation_chain[self._level - 1])

    async def _closed_within(self, timeout: timedelta | None) -> bool:
        if timeout is None:
            return self._status is not TaskStatus.OPEN
        try:
            await workflow.wait_condition(
                lambda: self._status is not TaskStatus.OPEN, timeout=timeout
            )
            return True
        except TimeoutError:
            return False

    async def _remind(self) -> None:
        assert self._task_id is not None and self._due_at is not None
        await workflow.execute_activity(
            "remind_task",
            RemindTaskInput(
                task_id=self._task_id,
                workflow_id=workflow.info().workflow_id,
                level=self._level,
                due_at=self._due_at,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    async def _escalate(self, group: str | None) -> None:
        """Raise the level and add the chain's next group; None: chain exhausted, mark overdue."""
        assert self._task_id is not None and self._spec is not None
        if group is not None:
            self._level += 1
            self._due_at = workflow.now() + self._spec.sla
        await workflow.execute_activity(
            "escalate_task",
            EscalateTaskInput(
                task_id=self._task_id,
                workflow_id=workflow.info().workflow_id,
                new_level=self._level,
                added_group=group,
                due_at=self._due_at if group is not None else None,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    @workflow.update(name="decide")
    async def decide(self, request: DecisionRequest) -> DecisionResult:
        assert self._spec is not None
        async with self._lock:  # two decisions at once: the second sees the first's effect
            _raise_if_refused(self._refusal(request))
            spec = self._spec
            effect = tally(spec, self._stage, self._decisions, request)
            seq = len(self._decisions) + 1
            next_candidates: Candidates | None = None
            if effect.next_stage is not None:
                next_candidates = spec.stage_candidates(effect.next_stage)
            assert self._task_id is not None
            record = RecordDecisionInput(
                task_id=self._task_id,
                workflow_id=workflow.info().workflow_id,
                run_id=workflow.info().run_id,
                seq=seq,
                request=request,
                counted_for=effect.counted_for,
                stage=self._stage,
                task_status=effect.status,
                final_outcome=effect.final_outcome,
                next_stage=effect.next_stage,
                next_candidates=next_candidates,
            )
            # A person waits on this update: the write runs as a local activity, in this worker
            # within this workflow task, sparing an activity task's two round trips through the
            # server (the decide benchmark: ~30 ms of ~65). It is idempotent (one row per task
            # and seq), so a retry after a crash is as safe as before. Runs whose decisions were
            # recorded as (remote) activities replay as such.
            execute = (
                workflow.execute_local_activity
                if workflow.patched(DECISION_LOCAL_ACTIVITY)
                else workflow.execute_activity
            )
            recorded: RecordDecisionResult = await execute(
                "record_decision",
                record,
                result_type=RecordDecisionResult,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            self._decisions.append(
                DecisionRecord(
                    seq=seq,
                    decider=request.decider,
                    on_behalf_of=request.on_behalf_of,
                    outcome=request.outcome,
                    counted_for=effect.counted_for,
                    stage=self._stage,
                    decided_at=recorded.decided_at,
                )
            )
            if effect.next_stage is not None:
                self._stage = effect.next_stage
            if effect.status is not TaskStatus.OPEN:
                self._final_fields = dict(request.fields)
                self._outcome = effect.final_outcome
                self._status = effect.status
            return DecisionResult(
                task_id=self._task_id,
                outcome=request.outcome,
                task_status=self._status,
                final_outcome=self._outcome,
                decisions_so_far=len(self._decisions),
                **_decision_message(self._status, self._outcome, spec, self._stage),
            )

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        _raise_if_refused(self._refusal(request))

    def _refusal(self, request: DecisionRequest) -> Refusal | None:
        if self._spec is None or self._task_id is None:
            return Refusal("NotReady", "the task is still being opened; try again in a moment")
        if request.task_id != self._task_id:
            return Refusal("Invalid", "this decision names another task")
        return refusal(self._spec, self._status, self._stage, self._level, self._decisions, request)

    @workflow.query(name="state")
    def state(self) -> TaskState:
        return TaskState(
            task_id=self._task_id,
            status=self._status,
            level=self._level,
            stage=self._stage,
            due_at=self._due_at,
            decisions=self._decisions,
        )


def _raise_if_refused(why: Refusal | None) -> None:
    if why is not None:
        raise refuse(why.kind, why.message, non_retryable=True)


def _decision_message(
    status: TaskStatus, outcome: str | None, spec: TaskSpec, stage: int
) -> dict[str, Any]:
    """The message fields of a decision's answer (`answered`: English text, template, values)."""
    if status is TaskStatus.COMPLETED:
        return answered("Decision recorded. The task is completed: %(outcome)s.", outcome=outcome)
    if spec.rule is DecisionRule.SEQUENTIAL:
        return answered(
            "Decision recorded. The task moves to stage %(stage)s of %(stages)s.",
            stage=stage,
            stages=len(spec.stages),
        )
    return answered("Decision recorded. The task waits for further decisions.")


def task_workflow_id(process_id: str, step: str) -> str:
    return f"{process_id}.{step}"


async def human_task(spec: TaskSpec) -> TaskResult:
    """Run one human step as a child workflow and return its result (from workflow code only)."""
    return await workflow.execute_child_workflow(
        HumanTaskWorkflow.run,
        spec,
        id=task_workflow_id(workflow.info().workflow_id, spec.step),
        parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
    )


def is_cancellation(err: BaseException) -> bool:
    """True for the process's own cancellation, however it reaches the awaiting code."""
    if isinstance(err, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(err, ChildWorkflowError | ActivityError) and isinstance(
        err.cause, CancelledError
    )
