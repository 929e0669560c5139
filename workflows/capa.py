"""Corrective and preventive action (21 CFR 820.100; ISO 13485 §8.5.2, §8.5.3).

problem statement → root-cause analysis by the owner (method and findings) → action plan (one
corrective or preventive action per line, each with its owner and due date; a bad line or an
unknown owner sends it back) → plan approval by a QA manager, signed (a rejection sends it back
with the reason) → the actions side by side, each a timed task for its owner that escalates when
its due date passes; an action carried by a change request waits until that change is closed →
a durable wait set in the plan (e.g. 90 days) → effectiveness check by QA, never by someone who
implemented the round or owns the CAPA → closed with a QA signature; or, not effective, reopened
with a new plan round (the root cause redone when the owner says it no longer holds).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.capa import (
        CHANGE_ABANDONED,
        CHANGE_DONE,
        RCA_METHODS,
        ActionPlanCheck,
        ChangeLookupInput,
        ChangeState,
        CompleteActionInput,
        LinkActionChangeInput,
        RecordActionPlanInput,
        RecordEffectivenessInput,
        RecordRootCauseInput,
        RegisterCapaInput,
        RegisterCapaResult,
        SetCapaStatusInput,
        describe_action,
    )
    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskSpec,
    )
    from schemas.quality import (
        ACTION_PLAN_HELP,
        CapaRequest,
        CapaResult,
        PlannedAction,
        parse_action_plan,
    )
    from workflows.human_task import human_task
    from workflows.process_kit import (
        StepPolicy,
        decider,
        finished,
        refusal_of,
        register_process,
        register_then,
        run_activity,
        task_spec,
    )
    from workflows.wording import described, reason_wording, said, titled

KIND = "capa"
ESCALATION = ("qa-manager", "quality-director")
POLICY = {
    "root-cause": StepPolicy(timedelta(days=14), ESCALATION),
    "plan": StepPolicy(timedelta(days=14), ESCALATION),
    "plan-approval": StepPolicy(timedelta(days=5), ("quality-director",)),
    "effectiveness": StepPolicy(timedelta(days=10), ESCALATION),
    "reopened": StepPolicy(timedelta(days=5), ESCALATION),
    "closure": StepPolicy(timedelta(days=5), ("quality-director",)),
}
# an action's task is due at the end of its due date (UTC), reminded before, escalated after
ACTION_ESCALATION = ("qa-manager", "quality-director")
ACTION_MIN_SLA = timedelta(hours=1)
ACTION_REMINDER = timedelta(days=2)
# how often a CAPA looks whether the change request carrying an action is closed
CHANGE_POLL = timedelta(hours=6)
MAX_WAIT_DAYS = 730


@dataclass(frozen=True)
class Plan:
    """An approved plan round: its actions, the wait before the effectiveness check, the author."""

    round: int
    actions: list[PlannedAction]
    wait_days: int
    author: str


@workflow.defn(name="Capa")
class CapaWorkflow:
    def __init__(self) -> None:
        self._request: CapaRequest | None = None
        self._number = ""
        self._nc_number: str | None = None
        self._status = "registering"
        self._status_changes = 0
        self._ended = False  # closed or cancelled, and recorded
        self._round = 0
        self._root_causes = 0  # root-cause tasks opened
        self._root_cause = ""  # method: findings, once recorded

    @workflow.run
    async def run(self, request: CapaRequest) -> CapaResult:
        self._request = request
        await register_then(self._register(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    @workflow.query(name="status")
    def status(self) -> CapaResult:
        return self._result()

    def _result(self) -> CapaResult:
        return CapaResult(
            process_id=self._pid, number=self._number, status=self._status, plan_rounds=self._round
        )

    async def _proceed(self, registered: RegisterCapaResult) -> None:
        await self._analyse_root_cause()
        failure = ""
        while True:
            self._round += 1
            plan = await self._plan(failure)
            implementers = await asyncio.gather(
                *(self._carry_out(plan, seq, a) for seq, a in enumerate(plan.actions, start=1))
            )
            failure = await self._check_effectiveness(plan, set().union(*implementers))
            if not failure:
                break
            await self._set_status("reopened", failure)
            if await self._root_cause_to_redo(failure):
                await self._analyse_root_cause(failure)
        await self._close()

    async def _cancelled(self, registering: asyncio.Future[RegisterCapaResult]) -> None:
        await finished(registering)  # cancelled while registering: record it once registered
        if self._number and not self._ended:
            await self._set_status("cancelled", said("the CAPA was cancelled"))
            self._ended = True

    # ------------------------------------------------------------ the steps

    async def _analyse_root_cause(self, failure: str = "") -> None:
        assert self._request is not None
        await self._set_status(
            "root_cause", said("root-cause analysis by %(owner)s", owner=self._request.owner)
        )
        self._root_causes += 1
        task = await human_task(self._root_cause_spec(failure))
        method, findings = task.fields["method"], task.fields["findings"].strip()
        await run_activity(
            "record_root_cause",
            RecordRootCauseInput(
                process_id=self._pid,
                attempt=self._root_causes,
                method=method,
                findings=findings,
                recorded_by=decider(task),
            ),
        )
        self._root_cause = f"{method}: {findings}"

    async def _plan(self, failure: str) -> Plan:
        """The owner writes the round's plan until it is sound and a QA manager approves it."""
        assert self._request is not None
        await self._set_status(
            "planning", said("plan round %(round)s", round=self._round), plan_round=self._round
        )
        reopened = {"Not effective": failure} if failure else {}
        notes = dict(reopened)
        attempt = 0
        while True:
            attempt += 1
            task = await human_task(self._plan_spec(attempt, notes))
            author, text = decider(task), task.fields["actions"]
            actions, problems = parse_action_plan(text, today=workflow.now().date())
            wait_days, wait_problem = _wait_days(
                task.fields.get("effectiveness_wait_days", ""),
                self._request.effectiveness_wait_days,
            )
            problems += [wait_problem] if wait_problem else []
            if not problems:
                check = await run_activity(
                    "record_action_plan",
                    RecordActionPlanInput(
                        process_id=self._pid,
                        plan_round=self._round,
                        attempt=attempt,
                        actions=actions,
                        effectiveness_wait_days=wait_days,
                        planned_by=author,
                    ),
                    ActionPlanCheck,
                )
                problems = check.problems
            notes = reopened | {"Your last plan": text}
            if problems:
                notes["Problems"] = "; ".join(problems)
                continue
            plan = Plan(self._round, actions, wait_days, author)
            await self._set_status(
                "plan_approval",
                said("plan round %(round)s by %(author)s", round=self._round, author=author),
            )
            approval = await human_task(self._approval_spec(plan, attempt))
            approver = decider(approval)
            if approval.outcome == "approve":
                await self._set_status(
                    "actions",
                    said(
                        "plan round %(round)s approved by %(approver)s",
                        round=self._round,
                        approver=approver,
                    ),
                    actor=approver,
                )
                return plan
            reason = approval.fields.get("reason", "")
            notes["Rejected"] = f"by {approver}: {reason}"
            await self._set_status(
                "planning",
                said("plan rejected by %(approver)s: %(reason)s", approver=approver, reason=reason),
                approver,
            )

    async def _carry_out(self, plan: Plan, seq: int, action: PlannedAction) -> set[str]:
        """One action done by its owner (or through its change request); who implemented it."""
        if action.change:
            return await self._carry_out_by_change(plan, seq, action)
        task = await human_task(self._action_spec(plan, seq, action, 1, ""))
        by = decider(task)
        await self._complete(plan, seq, task.fields["evidence"].strip(), by)
        return {by}

    async def _carry_out_by_change(self, plan: Plan, seq: int, action: PlannedAction) -> set[str]:
        """The owner names the change request that carries the action; the CAPA waits until it
        is closed. An unknown, withdrawn or cancelled change: the owner is asked again."""
        note, attempt = "", 0
        while True:
            attempt += 1
            task = await human_task(self._action_spec(plan, seq, action, attempt, note))
            by, reference = decider(task), task.fields["change_request"].strip()
            change = await self._change(reference)
            if not change.found:
                note = (
                    f"there is no change request {reference!r}: name its CR number "
                    "(CR-YYYY-NNNN) or its change process id"
                )
                continue
            if change.status not in CHANGE_ABANDONED:
                await run_activity(
                    "link_capa_action_change",
                    LinkActionChangeInput(
                        process_id=self._pid,
                        plan_round=plan.round,
                        seq=seq,
                        attempt=attempt,
                        change_process_id=change.process_id,
                        change_number=change.number,
                        named_by=by,
                    ),
                )
                change = await self._until_change_ends(change)
                if change.status == CHANGE_DONE:
                    evidence = f"change {change.number} ({change.title}) closed"
                    await self._complete(plan, seq, evidence, by)
                    return {by, change.implementer} - {""}
            note = (
                f"change {change.number} was {change.status or 'removed'} before it was closed: "
                "name the change request that carries this action now"
            )

    async def _until_change_ends(self, change: ChangeState) -> ChangeState:
        """Look at the change every CHANGE_POLL (a durable timer) until it is closed, withdrawn
        or cancelled."""
        while change.found and change.status != CHANGE_DONE:
            if change.status in CHANGE_ABANDONED:
                break
            await workflow.sleep(CHANGE_POLL)
            change = await self._change(change.process_id)
        return change

    async def _change(self, reference: str) -> ChangeState:
        return await run_activity(
            "check_change_request", ChangeLookupInput(reference=reference), ChangeState
        )

    async def _complete(self, plan: Plan, seq: int, evidence: str, by: str) -> None:
        await run_activity(
            "complete_capa_action",
            CompleteActionInput(
                process_id=self._pid,
                plan_round=plan.round,
                seq=seq,
                evidence=evidence,
                completed_by=by,
            ),
        )

    async def _check_effectiveness(self, plan: Plan, implementers: set[str]) -> str:
        """Wait as the plan says, then QA checks; '' when effective, else why it is not."""
        assert self._request is not None
        wait = timedelta(days=plan.wait_days)
        due = (workflow.now() + wait).date()
        await self._set_status(
            "effectiveness_wait",
            said(
                "every action of plan round %(round)s done; effectiveness check due %(due)s",
                round=plan.round,
                due=due.isoformat(),
            ),
            effectiveness_due_on=due,
        )
        await workflow.sleep(wait)
        await self._set_status("effectiveness_check")
        task = await human_task(self._effectiveness_spec(plan, due, implementers))
        verifier = decider(task)
        effective = task.outcome == "effective"
        reason = "" if effective else task.fields.get("reason", "").strip()
        await run_activity(
            "record_capa_effectiveness",
            RecordEffectivenessInput(
                process_id=self._pid,
                plan_round=plan.round,
                verifier=verifier,
                outcome="effective" if effective else "not_effective",
                evidence=task.fields["evidence"].strip(),
                reason=reason,
            ),
        )
        if effective:
            return ""
        return said(
            "plan round %(round)s not effective (%(verifier)s): %(reason)s",
            round=plan.round,
            verifier=verifier,
            reason=reason,
        )

    async def _root_cause_to_redo(self, failure: str) -> bool:
        task = await human_task(self._reopened_spec(failure))
        return task.outcome == "redo"

    async def _close(self) -> None:
        await self._set_status("closure")
        task = await human_task(self._closure_spec())
        by = decider(task)
        await self._set_status("closed", said("closed with QA signature by %(by)s", by=by), by)
        self._ended = True

    # ------------------------------------------------------------ task specs

    def _spec(
        self,
        step: str,
        policy: StepPolicy,
        *,
        context: dict[str, str] | None = None,
        **fields: Any,
    ) -> TaskSpec:
        """A task of this CAPA: its SLA and escalation chain, and what the CAPA is about."""
        assert self._request is not None
        request = self._request
        about = {
            "CAPA": self._number,
            "Problem": request.problem_statement,
            "Owner": request.owner,
            "Source": request.source,
        }
        if self._nc_number:
            about["Nonconformance"] = self._nc_number
        if self._root_cause:
            about["Root cause"] = self._root_cause
        return task_spec(
            step,
            policy,
            process_kind=KIND,
            business_key=self._number,
            about=about,
            context=context,
            **fields,
        )

    def _owner(self) -> Candidates:
        assert self._request is not None
        return Candidates(users=[self._request.owner])

    def _root_cause_spec(self, failure: str) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            f"root-cause-{self._root_causes}",
            POLICY["root-cause"],
            kind=TaskKind.PERFORM,
            **titled(
                "Root-cause analysis of %(number)s: %(title)s",
                number=self._number,
                title=self._request.title,
            ),
            **described("Find the root cause of the problem and record how you found it."),
            candidates=self._owner(),
            fields=[
                FieldSpec(
                    name="method",
                    label="Method",
                    type=FieldType.CHOICE,
                    choices=list(RCA_METHODS),
                    required=True,
                ),
                FieldSpec(
                    name="findings",
                    label="Findings (the root cause and the evidence for it)",
                    type=FieldType.LONG_TEXT,
                    required=True,
                ),
            ],
            outcomes=[OutcomeSpec(name="recorded", label="Record the root cause")],
            context={"Not effective": failure} if failure else {},
        )

    def _plan_spec(self, attempt: int, notes: dict[str, str]) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            _attempt(f"plan-r{self._round}", attempt),
            POLICY["plan"],
            kind=TaskKind.PERFORM,
            **titled(
                "Action plan (round %(round)s) for %(number)s: %(title)s",
                round=self._round,
                number=self._number,
                title=self._request.title,
            ),
            description=ACTION_PLAN_HELP,
            candidates=self._owner(),
            fields=[
                FieldSpec(
                    name="actions",
                    label="Actions, one per line: kind | what | owner | YYYY-MM-DD [| change]",
                    type=FieldType.LONG_TEXT,
                    required=True,
                ),
                FieldSpec(
                    name="effectiveness_wait_days",
                    label=said(
                        "Days to wait before the effectiveness check (blank: %(days)s)",
                        days=self._request.effectiveness_wait_days,
                    ),
                    type=FieldType.NUMBER,
                ),
            ],
            outcomes=[OutcomeSpec(name="submit", label="Submit the plan for approval")],
            context=notes,
        )

    def _approval_spec(self, plan: Plan, attempt: int) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            _attempt(f"plan-approval-r{plan.round}", attempt),
            POLICY["plan-approval"],
            kind=TaskKind.APPROVE,
            **titled(
                "Approve the action plan (round %(round)s) of %(number)s: %(title)s",
                round=plan.round,
                number=self._number,
                title=self._request.title,
            ),
            candidates=Candidates(groups=["qa-manager"]),
            excluded_users=[plan.author],  # nobody approves the plan they wrote
            fields=[FieldSpec(name="reason", label="Why it is rejected", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="approve", label="Approve", signature_meaning=SignatureMeaning.APPROVED
                ),
                OutcomeSpec(
                    name="reject", label="Reject (back to the owner)", required_fields=["reason"]
                ),
            ],
            context=_plan_context(plan) | {"Planned by": plan.author},
        )

    def _action_spec(
        self, plan: Plan, seq: int, action: PlannedAction, attempt: int, note: str
    ) -> TaskSpec:
        due_at = datetime.combine(action.due_on + timedelta(days=1), time(0), UTC)
        sla = max(due_at - workflow.now(), ACTION_MIN_SLA)
        if action.change:
            field = FieldSpec(
                name="change_request",
                label="Change request that carries it (CR number or change process id)",
                required=True,
            )
            description = said(
                "This action is done through a change request. Raise it (or find it) and name "
                "it here; the CAPA waits until the change is closed."
            )
        else:
            field = FieldSpec(
                name="evidence",
                label="Evidence (what was done; records, document numbers)",
                type=FieldType.LONG_TEXT,
                required=True,
            )
            description = said("Do the action and record the evidence.")
        return self._spec(
            _attempt(f"action-{seq}-r{plan.round}", attempt),
            StepPolicy(sla, ACTION_ESCALATION),
            kind=TaskKind.PERFORM,
            **titled(
                "%(description)s (%(number)s, action %(seq)s)",
                description=action.description,
                number=self._number,
                seq=seq,
            ),
            description=description,
            candidates=Candidates(users=[action.owner]),
            reminder_before=min(sla / 4, ACTION_REMINDER),
            fields=[field],
            outcomes=[OutcomeSpec(name="done", label="Done")],
            context={
                "Action": said(
                    "%(seq)s of plan round %(round)s: %(action)s",
                    seq=seq,
                    round=plan.round,
                    action=describe_action(action),
                ),
                **({"Asked again because": note} if note else {}),
            },
        )

    def _effectiveness_spec(self, plan: Plan, due: date, implementers: set[str]) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            f"effectiveness-r{plan.round}",
            POLICY["effectiveness"],
            kind=TaskKind.VERIFY,
            **titled(
                "Effectiveness check of %(number)s: %(title)s",
                number=self._number,
                title=self._request.title,
            ),
            **described(
                "Check that the problem has not come back since the actions were done. Whoever "
                "implemented an action of this round, and the CAPA's owner, may not check."
            ),
            candidates=Candidates(groups=["qa"]),
            excluded_users=sorted(implementers | {self._request.owner}),
            fields=[
                FieldSpec(
                    name="evidence",
                    label="Evidence (data looked at, results)",
                    type=FieldType.LONG_TEXT,
                    required=True,
                ),
                FieldSpec(name="reason", label="Why it is not effective", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(
                    name="effective",
                    label="Effective",
                    signature_meaning=SignatureMeaning.VERIFIED,
                ),
                OutcomeSpec(
                    name="not_effective",
                    label="Not effective (reopen with a new plan)",
                    required_fields=["reason"],
                ),
            ],
            context=_plan_context(plan)
            | {"Check due": due.isoformat(), "Implemented by": ", ".join(sorted(implementers))},
        )

    def _reopened_spec(self, failure: str) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            f"root-cause-holds-r{self._round}",
            POLICY["reopened"],
            kind=TaskKind.REVIEW,
            **titled("%(number)s reopened: does the root cause still hold?", number=self._number),
            **described(
                "The effectiveness check failed. Either the root cause holds and a new plan round "
                "follows, or the root-cause analysis is done again first."
            ),
            candidates=self._owner(),
            outcomes=[
                OutcomeSpec(name="holds", label="The root cause holds: plan again"),
                OutcomeSpec(name="redo", label="Redo the root-cause analysis"),
            ],
            context={"Not effective": failure},
        )

    def _closure_spec(self) -> TaskSpec:
        assert self._request is not None
        return self._spec(
            "closure",
            POLICY["closure"],
            kind=TaskKind.APPROVE,
            **titled("Close %(number)s: %(title)s", number=self._number, title=self._request.title),
            candidates=Candidates(groups=["qa-manager"]),
            excluded_users=[self._request.owner],
            outcomes=[
                OutcomeSpec(
                    name="close", label="Close the CAPA", signature_meaning=SignatureMeaning.CLOSED
                )
            ],
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    async def _register(self, request: CapaRequest) -> RegisterCapaResult:
        try:
            registered: RegisterCapaResult = await run_activity(
                "register_capa",
                RegisterCapaInput(
                    process_id=self._pid, run_id=workflow.info().run_id, request=request
                ),
                RegisterCapaResult,
            )
        except ActivityError as err:
            refused = refusal_of(err, "CapaRefused")
            if refused is None:
                raise
            self._status = "refused"
            raise ApplicationError(
                refused.message, *refused.details, type="CapaRefused", non_retryable=True
            ) from None
        self._number, self._nc_number = registered.number, registered.nc_number
        await register_process(
            KIND,
            title=f"{registered.number}: {request.title}",
            business_key=registered.number,
            initiator=request.requester or None,
        )
        return registered

    async def _set_status(
        self,
        status: str,
        reason: str = "",
        actor: str = "system",
        *,
        plan_round: int | None = None,
        effectiveness_due_on: date | None = None,
    ) -> None:
        self._status = status
        self._status_changes += 1
        await run_activity(
            "set_capa_status",
            SetCapaStatusInput(
                process_id=self._pid,
                seq=self._status_changes,
                status=status,
                reason=reason,
                reason_wording=reason_wording(reason),
                actor=actor,
                plan_round=plan_round,
                effectiveness_due_on=effectiveness_due_on,
            ),
        )


def _attempt(step: str, attempt: int) -> str:
    """A step's name for its n-th task: the first keeps the plain name."""
    return step if attempt == 1 else f"{step}-{attempt}"


def _plan_context(plan: Plan) -> dict[str, str]:
    lines = {
        said("Action %(n)s", n=n): describe_action(a) for n, a in enumerate(plan.actions, start=1)
    }
    return lines | {"Effectiveness check after": said("%(days)s days", days=plan.wait_days)}


def _wait_days(value: str, default: int) -> tuple[int, str]:
    """The days a plan waits before the effectiveness check, or the problem with what was typed."""
    value = value.strip()
    if not value:
        return default, ""
    try:
        days = float(value)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days != int(days) or not 1 <= days <= MAX_WAIT_DAYS:
        return default, f"the wait before the effectiveness check must be 1 to {MAX_WAIT_DAYS} days"
    return int(days), ""
