"""Change control (21 CFR 820.70(b), 820.40; ISO 13485 §7.3.9).

request → QA triage → impact assessments in parallel → CCB approval by every required function
(a rejection returns it to the requester; revisions are counted and kept) → implementation tasks →
the change takes effect at its effective date (durable timer) in one audited activity →
verification by someone other than the implementer → closure with a QA signature.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.change_control import (
        FUNCTIONS,
        ApplyChangeInput,
        ApplyChangeResult,
        ChangeContent,
        ChangeRequestInput,
        ChangeRequestResult,
        ComputeImpactInput,
        ImpactList,
        RecordAssessmentInput,
        RecordTriageInput,
        RegisterChangeInput,
        RegisterChangeResult,
        ReviseChangeInput,
        SetChangeStatusInput,
        WithdrawRequest,
    )
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
    from workflows.human_task import human_task, is_cancellation
    from workflows.process_kit import (
        StepPolicy,
        decider,
        finished,
        refusal_of,
        register_process,
        run_activity,
        task_spec,
    )
    from workflows.wording import reason_wording, refuse, said, spoken, titled

KIND = "change-control"
YES_NO = ["yes", "no"]
FUNCTION_LABELS = {
    "engineering": "Engineering",
    "qa": "QA",
    "ra": "Regulatory (RA)",
    "production": "Production",
    "supply_chain": "Supply chain",
}


# Every step has an SLA and an escalation chain (groups added at each due time).
POLICY = {
    "triage": StepPolicy(timedelta(days=2), ("qa-manager", "quality-director")),
    "assessment": StepPolicy(timedelta(days=5), ("qa-manager", "quality-director")),
    "ccb": StepPolicy(timedelta(days=5), ("quality-director",)),
    "revision": StepPolicy(timedelta(days=10), ("qa-manager",)),
    "implementation": StepPolicy(timedelta(days=10), ("qa-manager", "quality-director")),
    "verification": StepPolicy(timedelta(days=5), ("qa-manager", "quality-director")),
    "closure": StepPolicy(timedelta(days=3), ("quality-director",)),
}


@dataclass
class Triage:
    classification: str
    functions: list[str]
    implementer: str


@workflow.defn(name="ChangeControl")
class ChangeControlWorkflow:
    def __init__(self) -> None:
        self._request: ChangeRequestInput | None = None
        self._content: ChangeContent | None = None
        self._number = ""
        self._revision = 1
        self._approved = False
        self._review: asyncio.Future[Triage | None] | None = None
        self._withdrawal: WithdrawRequest | None = None
        self._withdrawal_recorded = False
        self._status = "registered"
        self._status_changes = 0
        self._triages = 0  # triage decisions recorded (accepted ones)
        self._triage_tasks = 0  # triage tasks opened: each needs a step name of its own

    @workflow.run
    async def run(self, request: ChangeRequestInput) -> ChangeRequestResult:
        self._request, self._content = request, request.content
        # withdrawn while registering: finish registering, so the withdrawal can be recorded
        registering = asyncio.ensure_future(self._register(request))
        try:
            await asyncio.shield(registering)
            self._review = asyncio.ensure_future(self._review_until_approved())
            triage = await self._review
        except BaseException as err:
            if not is_cancellation(err):
                raise
            await finished(registering)  # withdrawn while registering: record it once registered
            withdrawal = self._withdrawal
            why = (
                said("withdrawn by %(by)s: %(reason)s", by=withdrawal.by, reason=withdrawal.reason)
                if withdrawal
                else said("withdrawn before approval")
            )
            await self._set_status("withdrawn", why)
            self._withdrawal_recorded = True
            if withdrawal is None:
                raise
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._result()  # a withdrawal ends the process; it is not a failure
        if triage is None:
            await self._set_status("withdrawn", said("withdrawn by the requester during revision"))
            return self._result()
        try:
            await self._implement_and_verify(triage)
        except BaseException as err:
            if is_cancellation(err):
                await self._set_status(
                    "cancelled", said("cancelled after approval by an administrator")
                )
            raise
        await self._close(triage)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    @workflow.update(name="withdraw")
    async def withdraw(self, request: WithdrawRequest) -> ChangeRequestResult:
        """Withdraw before approval. Decided here, not from a read model that may lag."""
        self._withdrawal = request
        assert self._review is not None
        self._review.cancel()
        if workflow.patched("withdrawal-answered-when-recorded"):
            # answer once the withdrawal is in the ERP, so whoever asked sees it there
            await workflow.wait_condition(lambda: self._withdrawal_recorded)
        else:  # runs that withdrew before this patch answered as soon as the step began
            await workflow.wait_condition(lambda: self._status == "withdrawn")
        return self._result()

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        if self._approved:
            raise refuse(
                "Conflict",
                "change %(number)s is approved; it can no longer be withdrawn — raise a new "
                "change to reverse it",
                number=self._number,
            )
        if self._withdrawal is not None:
            raise refuse(
                "Conflict", "change %(number)s is already being withdrawn", number=self._number
            )
        if self._review is None:
            raise refuse("NotReady", "the change is still being registered")

    @workflow.query(name="status")
    def status(self) -> ChangeRequestResult:
        return self._result()

    def _result(self) -> ChangeRequestResult:
        assert self._request is not None
        return ChangeRequestResult(
            process_id=self._request.process_id,
            number=self._number,
            status=self._status,
            revisions=self._revision,
        )

    # ------------------------------------------------------------ review loop

    async def _review_until_approved(self) -> Triage | None:
        while True:
            triage = await self._triage()
            if triage is None:
                if not await self._revise("returned by QA triage"):
                    return None
                continue
            impact = await self._impact()
            await self._set_status("assessment")
            await self._assess(triage, impact)
            await self._set_status("ccb")
            ccb = await human_task(self._ccb_spec(triage, impact))
            if ccb.outcome == "approve":
                self._approved = True
                return triage
            why = ccb.fields["reason"] if "reason" in ccb.fields else said("rejected by the CCB")
            if not await self._revise(why):
                return None

    async def _triage(self) -> Triage | None:
        await self._set_status("triage")
        note = ""
        while True:
            self._triage_tasks += 1
            result = await human_task(self._triage_spec(note))
            if result.outcome == "return":
                return None
            functions = [f for f in FUNCTIONS if result.fields.get(f"assess_{f}") == "yes"] or [
                "qa"
            ]
            triage = Triage(
                result.fields["classification"], functions, result.fields["implementer"]
            )
            self._triages += 1
            problem = await run_activity(
                "record_triage",
                RecordTriageInput(
                    process_id=self._pid,
                    attempt=self._triages,
                    revision=self._revision,
                    classification=triage.classification,
                    required_assessments=functions,
                    implementer=triage.implementer,
                    triaged_by=decider(result),
                ),
                str,
            )
            if not problem:
                return triage
            note = problem  # e.g. an unknown implementer: triage again, saying why

    async def _impact(self) -> ImpactList:
        return await run_activity(
            "compute_change_impact",
            ComputeImpactInput(process_id=self._pid, revision=self._revision),
            ImpactList,
        )

    async def _assess(self, triage: Triage, impact: ImpactList) -> None:
        specs = [self._assessment_spec(f, impact) for f in triage.functions]
        results = await asyncio.gather(*(human_task(s) for s in specs))
        for function, result in zip(triage.functions, results, strict=True):
            await run_activity(
                "record_change_assessment",
                RecordAssessmentInput(
                    process_id=self._pid,
                    revision=self._revision,
                    function=function,
                    outcome=result.outcome or "",
                    assessment=result.fields.get("assessment", ""),
                    assessed_by=decider(result),
                    impact=impact,
                ),
            )

    async def _revise(self, why: str) -> bool:
        """The requester revises (a new, kept revision) or withdraws."""
        assert self._request is not None and self._content is not None
        await self._set_status("revision", why)
        result = await human_task(self._revision_spec(why))
        if result.outcome == "withdraw":
            return False
        content = self._content.model_copy(
            update={
                "title": result.fields.get("title") or self._content.title,
                "reason": result.fields.get("reason") or self._content.reason,
            }
        )
        if result.fields.get("requested_effective_on"):  # a date the task's validator checked
            content = content.model_copy(
                update={
                    "requested_effective_on": date.fromisoformat(
                        result.fields["requested_effective_on"]
                    )
                }
            )
        self._revision += 1
        self._content = ChangeContent.model_validate(content.model_dump())
        await run_activity(
            "revise_change",
            ReviseChangeInput(
                process_id=self._pid,
                revision=self._revision,
                content=self._content,
                revised_by=decider(result),
                why=result.fields.get("what_changed", ""),
            ),
        )
        return True

    # ------------------------------------------------------------ after approval

    async def _implement_and_verify(self, triage: Triage) -> None:
        round_no = 1
        while True:
            await self._set_status("implementation")
            await asyncio.gather(
                *(human_task(s) for s in self._implementation_specs(triage, round_no))
            )
            if round_no == 1:
                await self._take_effect()
            await self._set_status("verification")
            verified = await human_task(self._verification_spec(triage, round_no))
            if verified.outcome == "verified":
                return
            round_no += 1

    async def _take_effect(self) -> None:
        assert self._content is not None
        effective_at = datetime.combine(self._content.requested_effective_on, time(0), UTC)
        wait = effective_at - workflow.now()
        if wait > timedelta(0):
            await self._set_status(
                "awaiting_effective", said("effective %(day)s", day=f"{effective_at:%Y-%m-%d}")
            )
            await workflow.sleep(wait)
        attempt = 0
        while True:
            try:
                await run_activity(
                    "apply_change",
                    ApplyChangeInput(process_id=self._pid, revision=self._revision),
                    ApplyChangeResult,
                )
                break
            except ActivityError as err:
                refused = refusal_of(err, "ApplyRefused")
                if refused is None:
                    raise
                attempt += 1
                problem = spoken(refused)  # its English as before; the task page translates it
                await self._set_status("blocked", problem)
                await human_task(self._resolve_spec(problem, attempt))
        self._status = "effective"

    async def _close(self, triage: Triage) -> None:
        await self._set_status("closure")
        await human_task(self._closure_spec(triage))
        await self._set_status("closed", said("closed with QA signature"))

    # ------------------------------------------------------------ task specs

    def _spec(
        self, step: str, policy: str, *, context: dict[str, str] | None = None, **fields: Any
    ) -> TaskSpec:
        """A task of this change: its SLA and escalation chain, and what the change is about."""
        assert self._request is not None and self._content is not None
        about = {
            "Change": f"{self._number} (revision {self._revision})",
            "Type": self._content.change_type.value,
            "Risk": self._content.risk.value,
            "Requested by": self._request.requester,
            "Effective": self._content.requested_effective_on.isoformat(),
            "Actions": "; ".join(a.describe() for a in self._content.actions),
        }
        return task_spec(
            step,
            POLICY[policy],
            process_kind=KIND,
            business_key=self._number,
            about=about,
            context=context,
            **(
                {"initiator": self._request.requester, "description": self._content.reason} | fields
            ),
        )

    def _triage_spec(self, note: str) -> TaskSpec:
        assert self._content is not None
        fields = [
            FieldSpec(
                name="classification",
                label="Classification",
                type=FieldType.CHOICE,
                choices=["minor", "major"],
            ),
            *[
                FieldSpec(
                    name=f"assess_{f}",
                    label=said("%(function)s assessment required", function=FUNCTION_LABELS[f]),
                    type=FieldType.CHOICE,
                    choices=YES_NO,
                )
                for f in FUNCTIONS
            ],
            FieldSpec(name="implementer", label="Implementer (username)"),
            FieldSpec(name="reason", label="Why it is returned", type=FieldType.LONG_TEXT),
        ]
        return self._spec(
            f"triage-{self._triage_tasks}",
            "triage",
            kind=TaskKind.REVIEW,
            **titled(
                "Triage %(number)s: %(title)s",
                limit=None,
                number=self._number,
                title=self._content.title,
            ),
            candidates=Candidates(groups=["qa"]),
            fields=fields,
            outcomes=[
                OutcomeSpec(
                    name="accept",
                    label="Accept for assessment",
                    required_fields=[
                        "classification",
                        *[f"assess_{f}" for f in FUNCTIONS],
                        "implementer",
                    ],
                ),
                OutcomeSpec(
                    name="return", label="Return to the requester", required_fields=["reason"]
                ),
            ],
            context={"Triage note": note} if note else {},
        )

    def _assessment_spec(self, function: str, impact: ImpactList) -> TaskSpec:
        assert self._content is not None
        return self._spec(
            f"assess-{function.replace('_', '-')}-r{self._revision}",
            "assessment",
            kind=TaskKind.REVIEW,
            **titled(
                "Assess impact (%(function)s) of %(number)s: %(title)s",
                limit=None,
                function=function.replace("_", " "),
                number=self._number,
                title=self._content.title,
            ),
            candidates=Candidates(groups=[FUNCTIONS[function]]),
            fields=[
                FieldSpec(
                    name="assessment", label="Assessment", type=FieldType.LONG_TEXT, required=True
                )
            ],
            outcomes=[
                OutcomeSpec(name="acceptable", label="Acceptable"),
                OutcomeSpec(name="not_acceptable", label="Not acceptable"),
            ],
            context={
                "Impact": impact.summary(),
                **{
                    said(
                        "%(category)s %(n)s", category=line.category.replace("_", " "), n=n + 1
                    ): f"{line.reference} — {line.detail}"
                    for n, line in enumerate(impact.lines[:40])
                },
            },
        )

    def _ccb_spec(self, triage: Triage, impact: ImpactList) -> TaskSpec:
        assert self._content is not None
        groups = sorted(
            {FUNCTIONS[f] for f in triage.functions}
            | ({"qa-manager"} if triage.classification == "major" else set())
        )
        return self._spec(
            f"ccb-r{self._revision}",
            "ccb",
            kind=TaskKind.APPROVE,
            **titled(
                "CCB approval of %(number)s: %(title)s",
                limit=None,
                number=self._number,
                title=self._content.title,
            ),
            candidates=Candidates(groups=groups),
            rule=DecisionRule.ALL,
            fields=[
                FieldSpec(name="reason", label="Reason for rejecting", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(
                    name="approve", label="Approve", signature_meaning=SignatureMeaning.APPROVED
                ),
                OutcomeSpec(
                    name="reject",
                    label="Reject (return for revision)",
                    signature_meaning=SignatureMeaning.REJECTED,
                    required_fields=["reason"],
                ),
            ],
            context={
                "Classification": triage.classification,
                "Impact": impact.summary(),
                "Approvers": ", ".join(groups),
            },
        )

    def _revision_spec(self, why: str) -> TaskSpec:
        assert self._request is not None and self._content is not None
        return self._spec(
            f"revise-r{self._revision}",
            "revision",
            kind=TaskKind.PERFORM,
            **titled(
                "Revise %(number)s: %(title)s",
                limit=None,
                number=self._number,
                title=self._content.title,
            ),
            initiator=None,
            candidates=Candidates(users=[self._request.requester]),
            fields=[
                FieldSpec(name="what_changed", label="What you changed", type=FieldType.LONG_TEXT),
                FieldSpec(name="title", label="New title (blank: unchanged)"),
                FieldSpec(
                    name="reason", label="New reason (blank: unchanged)", type=FieldType.LONG_TEXT
                ),
                FieldSpec(
                    name="requested_effective_on",
                    label="New effective date (blank: unchanged)",
                    type=FieldType.DATE,
                ),
            ],
            outcomes=[
                OutcomeSpec(name="resubmit", label="Resubmit", required_fields=["what_changed"]),
                OutcomeSpec(name="withdraw", label="Withdraw the request"),
            ],
            context={"Returned because": why},
        )

    def _implementation_specs(self, triage: Triage, round_no: int) -> list[TaskSpec]:
        assert self._content is not None
        return [
            self._spec(
                f"implement-{n + 1}-round{round_no}",
                "implementation",
                kind=TaskKind.PERFORM,
                **titled(
                    "Implement %(number)s: %(action)s",
                    limit=None,
                    number=self._number,
                    action=action.describe(),
                ),
                initiator=None,
                candidates=Candidates(users=[triage.implementer]),
                fields=[
                    FieldSpec(
                        name="evidence",
                        label="Evidence (records, document numbers)",
                        type=FieldType.LONG_TEXT,
                        required=True,
                    )
                ],
                outcomes=[OutcomeSpec(name="done", label="Done")],
            )
            for n, action in enumerate(self._content.actions)
        ]

    def _verification_spec(self, triage: Triage, round_no: int) -> TaskSpec:
        assert self._content is not None
        return self._spec(
            f"verify-round{round_no}",
            "verification",
            kind=TaskKind.VERIFY,
            **titled(
                "Verify %(number)s: %(title)s",
                limit=None,
                number=self._number,
                title=self._content.title,
            ),
            initiator=None,
            candidates=Candidates(groups=["qa"]),
            excluded_users=[triage.implementer],
            fields=[
                FieldSpec(name="reason", label="What is not effective", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(
                    name="verified",
                    label="Verified effective",
                    signature_meaning=SignatureMeaning.VERIFIED,
                ),
                OutcomeSpec(
                    name="not_effective",
                    label="Not effective (implement again)",
                    required_fields=["reason"],
                ),
            ],
            context={"Implementer": triage.implementer},
        )

    def _resolve_spec(self, problem: str, attempt: int) -> TaskSpec:
        assert self._content is not None
        return self._spec(
            f"resolve-{attempt}",
            "implementation",
            kind=TaskKind.PERFORM,
            **titled("Resolve: %(number)s could not take effect", limit=None, number=self._number),
            initiator=None,
            candidates=Candidates(groups=["qa-manager"]),
            fields=[
                FieldSpec(
                    name="resolution",
                    label="What was done",
                    type=FieldType.LONG_TEXT,
                    required=True,
                )
            ],
            outcomes=[OutcomeSpec(name="retry", label="Apply the change again")],
            context={"Problem": problem},
        )

    def _closure_spec(self, triage: Triage) -> TaskSpec:
        assert self._content is not None
        return self._spec(
            "closure",
            "closure",
            kind=TaskKind.APPROVE,
            **titled(
                "Close %(number)s: %(title)s",
                limit=None,
                number=self._number,
                title=self._content.title,
            ),
            initiator=None,
            candidates=Candidates(groups=["qa-manager"]),
            excluded_users=[triage.implementer],
            outcomes=[
                OutcomeSpec(
                    name="close",
                    label="Close the change",
                    signature_meaning=SignatureMeaning.CLOSED,
                )
            ],
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    async def _register(self, request: ChangeRequestInput) -> None:
        registered = await run_activity(
            "register_change",
            RegisterChangeInput(
                process_id=self._pid,
                run_id=workflow.info().run_id,
                requester=request.requester,
                content=request.content,
            ),
            RegisterChangeResult,
        )
        self._number = registered.number
        await register_process(
            KIND,
            title=f"{registered.number}: {request.content.title}",
            business_key=registered.number,
            initiator=request.requester,
        )

    async def _set_status(self, status: str, reason: str = "") -> None:
        self._status = status
        self._status_changes += 1
        await run_activity(
            "set_change_status",
            SetChangeStatusInput(
                process_id=self._pid,
                seq=self._status_changes,
                status=status,
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
        )
