"""Recall: correction or removal of distributed product (21 CFR 7 subpart C, 21 CFR 806).

initiation → scope: a forward trace from the suspect lots, frozen as a snapshot with its hash →
every lot of it still in house ON_HOLD at once → health hazard evaluation (RA) → classification,
depth, public warning, effectiveness level (RA) → strategy approval signed by the quality director
(a rejection returns it to classification) → one RecallNotice child per consignee → effectiveness:
responded and reconciled shares against the level's target, sampled checks (levels B–D) →
termination: requested (RA's task once effective, or anyone allowed asking by update), approved
with a signature only when effective, or with effectiveness waived by a separate signed outcome →
closure signed by a QA manager.

Beside it from initiation on: the Part 806 clock (the report is due 10 working days after
initiation; RA's task is due at the end of that day, reminds before, escalates after, until the
report number is recorded), and a status report to RA every 14 days. The scope can be widened
(update `widen-scope`) until termination is requested: a new frozen version with the difference,
its new lots held, its new consignees notified.

A drill runs the same way but holds nothing (what would be held is recorded), its notices send
nothing (the notice workflow's business, from RecallNoticeRequest.drill), it opens no report task
and writes no status report; it reports time to scope, to hold and to notify.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskResult,
        TaskSpec,
    )
    from schemas.recall import (
        RecallNoticeRequest,
        RecallRequest,
        RecallResult,
        notice_process_id,
    )
    from schemas.recall_activities import (
        TERMINATION_GROUPS,
        WIDEN_GROUPS,
        Effectiveness,
        HoldRecallLotsInput,
        RecallHold,
        RecallInput,
        RecallTimes,
        RecordCheckInput,
        RecordClassificationInput,
        RecordHazardInput,
        RecordReportInput,
        RecordStrategyInput,
        RecordTerminationInput,
        RegisteredRecall,
        RegisterRecallInput,
        ReportClock,
        SampledChecks,
        ScopeRecallInput,
        ScopeVersion,
        SetRecallStatusInput,
        StatusReportInput,
        TerminationRequest,
        TerminationRequested,
        WidenScopeRequest,
        WidenScopeResult,
    )
    from workflows.human_task import human_task
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
    )
    from workflows.wording import answered, described, reason_wording, refuse, said, titled

KIND = "recall"
NOTICE_WORKFLOW = "RecallNotice"
NOTICE_BATCH = 200  # notices started at once: starting is cheap, waiting on each in turn is not
STATUS_REPORT_EVERY = timedelta(days=14)
EFFECTIVENESS_POLL = timedelta(days=1)  # responses reach the notices; the recall looks daily
REPORT_CHAIN = ("qa-manager", "quality-director")

POLICY = {
    "hazard": StepPolicy(timedelta(days=2), ("qa-manager", "quality-director")),
    "classification": StepPolicy(timedelta(days=1), ("qa-manager", "quality-director")),
    "strategy": StepPolicy(timedelta(days=1), ()),
    "check": StepPolicy(timedelta(days=14), ("qa-manager",)),
    "termination-request": StepPolicy(timedelta(days=5), ("qa-manager",)),
    "termination": StepPolicy(timedelta(days=5), ()),
    "closure": StepPolicy(timedelta(days=5), ("quality-director",)),
}


@workflow.defn(name="Recall")
class RecallWorkflow:
    def __init__(self) -> None:
        self._request: RecallRequest | None = None
        self._recall: RegisteredRecall | None = None
        self._result = RecallResult(process_id="", number="", status="registering")
        self._scope: ScopeVersion | None = None
        self._ready = False  # scope 1 frozen and held: widening may start
        self._scope_lock = asyncio.Lock()
        self._notifying = False
        self._notices: dict[str, ChildWorkflowHandle[Any, Any]] = {}
        self._notices_sent: set[str] = set()
        self._in_effectiveness = False
        self._termination_asked: TerminationRequest | None = None
        self._termination_pending = False  # asked or being decided: no more widening
        self._terminated = False
        self._finished = False
        self._changes = 0  # a check recorded, a termination asked: look again
        self._status_seq = 0
        self._background: list[asyncio.Future[None]] = []
        self._classification: dict[str, str] = {}
        self._open_checks: dict[str, tuple[str, asyncio.Future[TaskResult]]] = {}

    @workflow.run
    async def run(self, request: RecallRequest) -> RecallResult:
        self._request = request
        self._result = RecallResult(
            process_id=self._pid, number="", status="registering", drill=request.drill
        )
        await register_then(self._register(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @workflow.query(name="status")
    def status(self) -> RecallResult:
        return self._result

    # ------------------------------------------------------------ the steps

    async def _proceed(self, recall: RegisteredRecall) -> None:
        clock = asyncio.ensure_future(self._regulatory_clock())
        self._background = [clock]
        if not recall.drill:
            self._background.append(asyncio.ensure_future(self._status_reports()))
        await self._freeze_first_scope()
        await self._evaluate_hazard()
        await self._classify_and_approve()
        await self._notify()
        await self._reach_termination()
        await clock  # the Part 806 report is in before the recall closes
        await self._close()

    async def _freeze_first_scope(self) -> None:
        assert self._request is not None and self._recall is not None
        async with self._scope_lock:
            await self._set_status("scoping")
            scope = await run_activity(
                "freeze_recall_scope",
                ScopeRecallInput(
                    process_id=self._pid,
                    version=1,
                    lot_numbers=self._recall.suspect_lots,
                    reason=self._request.reason,
                    actor=self._requester,
                ),
                ScopeVersion,
            )
            self._keep_scope(scope)
            self._result.time_to_scope = self._since_initiation(scope.scoped_at)
            await self._set_status("holding")
            hold = await self._hold(1)
            self._result.time_to_hold = self._since_initiation(hold.held_at)
            self._ready = True

    async def _hold(self, version: int) -> RecallHold:
        return await run_activity(
            "hold_recall_lots",
            HoldRecallLotsInput(process_id=self._pid, version=version),
            RecallHold,
        )

    async def _evaluate_hazard(self) -> None:
        await self._set_status("hazard_evaluation")
        task = await human_task(self._hazard_spec())
        hazard = task.fields.get("hazard", "")
        await run_activity(
            "record_health_hazard",
            RecordHazardInput(process_id=self._pid, hazard=hazard, actor=decider(task)),
        )
        self._classification["Health hazard"] = hazard

    async def _classify_and_approve(self) -> None:
        """Classification, then the quality director's signed approval of the strategy; a
        rejection returns it to classification with the reason."""
        note, attempt = "", 0
        while True:
            attempt += 1
            await self._set_status("classification")
            task = await human_task(self._classification_spec(attempt, note))
            fields = task.fields
            await run_activity(
                "record_classification",
                RecordClassificationInput(
                    process_id=self._pid,
                    round=attempt,
                    classification=fields["classification"],
                    depth=fields["depth"],
                    public_warning=fields["public_warning"] == "yes",
                    effectiveness_level=fields["effectiveness_level"],
                    actor=decider(task),
                ),
            )
            self._classification.update(
                {
                    "Class": fields["classification"],
                    "Depth": fields["depth"],
                    "Public warning": fields["public_warning"],
                    "Effectiveness check level": fields["effectiveness_level"],
                    "Classified by": decider(task),
                }
            )
            await self._set_status("strategy_approval")
            approval = await human_task(self._strategy_spec(attempt))
            approved = approval.outcome == "approve"
            reason = approval.fields.get("reason", "")
            await run_activity(
                "record_strategy_decision",
                RecordStrategyInput(
                    process_id=self._pid,
                    round=attempt,
                    approved=approved,
                    actor=decider(approval),
                    reason=reason,
                ),
            )
            if approved:
                self._classification["Strategy approved by"] = decider(approval)
                return
            note = f"strategy rejected by {decider(approval)}: {reason}"

    async def _notify(self) -> None:
        """One notice child per consignee, started in batches without waiting for them; the
        recall is notified once every notice says it went out (signal `notice-sent`), or, should
        a signal not come, once the ERP shows every consignee notified."""
        await self._set_status("notifying")
        async with self._scope_lock:
            self._notifying = True
            assert self._scope is not None
            await self._start_notices(self._scope.consignees)
        while True:
            try:
                await workflow.wait_condition(
                    lambda: set(self._notices) <= self._notices_sent, timeout=EFFECTIVENESS_POLL
                )
                break
            except TimeoutError:
                measured = await self._measure()
                if measured.notified >= measured.consignees:
                    break
        times = await run_activity(
            "record_recall_notified", RecallInput(process_id=self._pid), RecallTimes
        )
        self._result.time_to_notify = times.time_to_notify

    async def _start_notices(self, codes: list[str]) -> None:
        assert self._recall is not None and self._request is not None
        new = [code for code in codes if code not in self._notices]
        for start in range(0, len(new), NOTICE_BATCH):
            batch = new[start : start + NOTICE_BATCH]
            handles = await asyncio.gather(
                *(
                    workflow.start_child_workflow(
                        NOTICE_WORKFLOW,
                        RecallNoticeRequest(
                            process_id=notice_process_id(self._pid, code),
                            recall_process_id=self._pid,
                            recall_number=self._recall.number,
                            consignee_code=code,
                            drill=self._request.drill,
                        ),
                        id=notice_process_id(self._pid, code),
                        parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    )
                    for code in batch
                )
            )
            self._notices.update(zip(batch, handles, strict=True))

    async def _reach_termination(self) -> None:
        """Sampled checks run beside; termination is asked (RA's task once effective, or the
        update), then approved: only when effective, or with effectiveness waived (signed)."""
        self._in_effectiveness = True
        await self._set_status("effectiveness")
        sampled = await run_activity(
            "sample_effectiveness_checks", RecallInput(process_id=self._pid), SampledChecks
        )
        checks = {code: asyncio.ensure_future(self._check(code)) for code in sampled.consignees}
        self._background.extend(checks.values())
        attempt, note = 0, ""
        while True:
            attempt += 1
            asked_by, why = await self._termination_request(attempt, note)
            self._termination_pending = True
            await self._set_status("termination_approval", actor=asked_by, reason=why)
            note = await self._termination_decision(attempt, asked_by, why)
            if not note:
                break
            self._termination_asked, self._termination_pending = None, False
            await self._set_status("effectiveness", reason=note)
        self._terminated = True
        for step, task in list(self._open_checks.values()):
            await close_task(task, step, said("the recall was terminated"))
        await asyncio.gather(*checks.values(), return_exceptions=True)
        await self._set_status("terminated")

    async def _termination_request(self, attempt: int, note: str) -> tuple[str, str]:
        """Who asks for termination and why: the first to come of RA's task (opened once the
        recall is effective) and the update `request-termination`."""
        while self._termination_asked is None and not (await self._measure()).met:
            await self._next_change()
        if self._termination_asked is None:
            step = f"termination-request-{attempt}"
            task = asyncio.ensure_future(human_task(self._termination_request_spec(step, note)))
            await workflow.wait_condition(
                lambda: task.done() or self._termination_asked is not None
            )
            if task.done():
                result = task.result()
                return decider(result), result.fields.get("summary", "")
            await close_task(task, step, said("termination was asked for by update"))
        assert self._termination_asked is not None
        return self._termination_asked.requested_by, self._termination_asked.reason

    async def _next_change(self) -> None:
        """Until a check is recorded, termination is asked for, or a day has passed."""
        seen = self._changes
        try:
            await workflow.wait_condition(
                lambda: self._changes != seen or self._termination_asked is not None,
                timeout=EFFECTIVENESS_POLL,
            )
        except TimeoutError:
            pass

    async def _termination_decision(self, attempt: int, asked_by: str, why: str) -> str:
        """'' when terminated; else why not (refused: not effective; rejected)."""
        measured = await self._measure()
        task = await human_task(self._termination_spec(attempt, asked_by, why, measured))
        reason = task.fields.get("reason", "")
        outcome = {"approve": "approved", "waive": "waived", "reject": "rejected"}[
            task.outcome or "reject"
        ]
        if outcome == "approved":
            measured = await self._measure()
            if not measured.met:
                outcome = "refused"
                reason = said("effectiveness not met: %(measured)s", measured=measured.describe())
        await run_activity(
            "record_termination",
            RecordTerminationInput(
                process_id=self._pid,
                round=attempt,
                requested_by=asked_by,
                decided_by=decider(task),
                outcome=outcome,
                reason=reason,
            ),
        )
        if outcome in ("approved", "waived"):
            return ""
        if outcome == "refused":
            return said("termination refused (%(by)s): %(reason)s", by=decider(task), reason=reason)
        return said("termination rejected (%(by)s): %(reason)s", by=decider(task), reason=reason)

    async def _check(self, code: str) -> None:
        """A sampled consignee's effectiveness check; a failed check is followed up and done
        again (the recall is not effective meanwhile)."""
        attempt = 0
        while True:
            attempt += 1
            spec = self._check_spec(code, attempt)
            pending = asyncio.ensure_future(human_task(spec))
            self._open_checks[code] = (spec.step, pending)
            task = await pending
            del self._open_checks[code]
            verified = task.outcome == "verified"
            await run_activity(
                "record_effectiveness_check",
                RecordCheckInput(
                    process_id=self._pid,
                    consignee_code=code,
                    round=attempt,
                    verified=verified,
                    note=task.fields.get("note", ""),
                    actor=decider(task),
                ),
            )
            self._changes += 1
            if verified:
                return

    async def _close(self) -> None:
        await self._set_status("closure")
        task = await human_task(self._closure_spec())
        self._stop_background()
        await self._set_status("closed", actor=decider(task), reason=task.fields.get("summary", ""))
        self._finished = True

    # ------------------------------------------------------------ beside the steps

    async def _regulatory_clock(self) -> None:
        """Part 806: RA's task is due at the end of the 10th working day after initiation; it
        reminds before and escalates after, until the report number is recorded. A drill only
        works out the due date."""
        clock = await run_activity(
            "start_report_clock", RecallInput(process_id=self._pid), ReportClock
        )
        if self._drill:
            return
        sla = max(clock.due_at - workflow.now(), timedelta(hours=1))
        task = await human_task(self._report_spec(clock, sla))
        await run_activity(
            "record_recall_report",
            RecordReportInput(
                process_id=self._pid,
                report_number=task.fields.get("report_number", "").strip(),
                actor=decider(task),
            ),
        )

    async def _status_reports(self) -> None:
        seq = 0
        while True:
            await workflow.sleep(STATUS_REPORT_EVERY)
            seq += 1
            await run_activity(
                "write_recall_status_report", StatusReportInput(process_id=self._pid, seq=seq)
            )

    def _stop_background(self) -> None:
        for work in self._background:
            if not work.done():
                work.cancel()

    # ------------------------------------------------------------ updates and signals

    @workflow.update(name="widen-scope")
    async def widen_scope(self, request: WidenScopeRequest) -> WidenScopeResult:
        """A new scope version from more suspect lots: its difference stored, its new lots held,
        its new consignees notified (once notices have started). Unknown lots: Invalid."""
        async with self._scope_lock:
            if self._termination_pending or self._terminated:
                raise refuse("Conflict", _TOO_LATE, non_retryable=True)
            assert self._scope is not None
            version = self._scope.version + 1
            try:
                scope = await run_activity(
                    "freeze_recall_scope",
                    ScopeRecallInput(
                        process_id=self._pid,
                        version=version,
                        lot_numbers=request.lot_numbers,
                        reason=request.reason,
                        actor=request.requested_by,
                    ),
                    ScopeVersion,
                )
            except ActivityError as err:
                refused = refusal_of(err, "Invalid")
                if refused is None:
                    raise
                raise ApplicationError(
                    refused.message, *refused.details, type="Invalid", non_retryable=True
                ) from None
            self._keep_scope(scope)
            hold = await self._hold(version)
            if self._notifying:
                await self._start_notices(scope.consignees_added)
        held = [*hold.held, *hold.already_held]
        counts = {
            "version": version,
            "lots": len(scope.lots_added),
            "consignees": len(scope.consignees_added),
            "held": len(held),
        }
        return WidenScopeResult(
            version=version,
            snapshot_hash=scope.snapshot_hash,
            lots_added=scope.lots_added,
            consignees_added=scope.consignees_added,
            held=held,
            **(
                answered(
                    "scope version %(version)s: %(lots)s lot(s) and %(consignees)s consignee(s) "
                    "added, %(held)s lot(s) held (drill: nothing held)",
                    **counts,
                )
                if self._drill
                else answered(
                    "scope version %(version)s: %(lots)s lot(s) and %(consignees)s consignee(s) "
                    "added, %(held)s lot(s) held",
                    **counts,
                )
            ),
        )

    @widen_scope.validator
    def _validate_widen(self, request: WidenScopeRequest) -> None:
        if not set(request.groups) & set(WIDEN_GROUPS):
            raise refuse(
                "Forbidden",
                "only a QA manager or regulatory affairs may widen a recall's scope",
                non_retryable=True,
            )
        if self._termination_pending or self._terminated or self._finished:
            raise refuse("Conflict", _TOO_LATE, non_retryable=True)
        if not self._ready:
            raise refuse(
                "NotReady",
                "the first scope is still being frozen and held; try again in a moment",
                non_retryable=True,
            )

    @workflow.update(name="request-termination")
    async def request_termination(self, request: TerminationRequest) -> TerminationRequested:
        self._termination_asked = request
        self._termination_pending = True
        self._changes += 1
        return TerminationRequested(
            **answered(
                "termination requested: the quality director approves it (only when the "
                "recall is effective, or with effectiveness waived)"
            )
        )

    @request_termination.validator
    def _validate_termination(self, request: TerminationRequest) -> None:
        if not set(request.groups) & set(TERMINATION_GROUPS):
            raise refuse(
                "Forbidden",
                "only regulatory affairs, a QA manager or the quality director may ask for "
                "termination",
                non_retryable=True,
            )
        if self._terminated or self._finished:
            raise refuse("Conflict", "the recall is already terminated", non_retryable=True)
        if self._termination_pending:
            raise refuse("Conflict", "termination has already been asked for", non_retryable=True)
        if not self._in_effectiveness:
            raise refuse(
                "Conflict",
                "termination can be asked for once the consignees have been notified",
                non_retryable=True,
            )

    @workflow.signal(name="notice-sent")
    def notice_sent(self, consignee_code: str) -> None:
        """A consignee's notice went out (sent by its notice workflow)."""
        self._notices_sent.add(consignee_code)

    # ------------------------------------------------------------ task specs

    def _spec(self, step: str, policy: StepPolicy, **values: Any) -> TaskSpec:
        """A task of this recall: its SLA and escalation chain, and what the recall is."""
        assert self._request is not None and self._recall is not None
        about = {
            "Recall": self._recall.number + (" (drill)" if self._drill else ""),
            "Reason": self._request.reason,
            "Source": self._request.source.value
            + (f" {self._request.source_reference}" if self._request.source_reference else ""),
            "Suspect lots": ", ".join(self._recall.suspect_lots),
        }
        if self._scope is not None:
            about |= _scope_context(self._scope)
        values["title"] = headline(str(values["title"]), 300)
        return task_spec(
            step,
            policy,
            process_kind=KIND,
            business_key=self._recall.number,
            about=about | self._classification,
            **values,
        )

    def _hazard_spec(self) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            "health-hazard",
            POLICY["hazard"],
            kind=TaskKind.REVIEW,
            **titled(
                "Health hazard evaluation for %(number)s", limit=None, number=self._recall.number
            ),
            **described(
                "Evaluate the health hazard the recalled product presents (21 CFR 7.41): the "
                "disease or injury it can cause, who is exposed, how serious and how likely."
            ),
            candidates=Candidates(groups=["ra"]),
            fields=[
                FieldSpec(
                    name="hazard",
                    label="Health hazard evaluation",
                    type=FieldType.LONG_TEXT,
                    required=True,
                )
            ],
            outcomes=[OutcomeSpec(name="evaluated", label="Evaluation done")],
        )

    def _classification_spec(self, attempt: int, note: str) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            f"classification-{attempt}",
            POLICY["classification"],
            kind=TaskKind.REVIEW,
            **titled("Classify %(number)s", limit=None, number=self._recall.number),
            **described(
                "Class I: a reasonable probability of serious adverse health consequences or "
                "death; II: temporary or reversible consequences; III: unlikely to cause harm. "
                "Depth: how far down the distribution chain. Effectiveness check level: A = 100 "
                "%, B, C = 10 %, D = 2 % of the consignees, E = none."
            ),
            candidates=Candidates(groups=["ra"]),
            fields=[
                _choice("classification", "Class", ["I", "II", "III"]),
                _choice("depth", "Depth", ["consumer", "retail", "wholesale"]),
                _choice("public_warning", "Public warning", ["yes", "no"]),
                _choice("effectiveness_level", "Effectiveness check level", list("ABCDE")),
            ],
            outcomes=[OutcomeSpec(name="classified", label="Submit for approval")],
            context={"Returned": note} if note else {},
        )

    def _strategy_spec(self, attempt: int) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            f"strategy-{attempt}",
            POLICY["strategy"],
            kind=TaskKind.APPROVE,
            **titled(
                "Approve the recall strategy of %(number)s", limit=None, number=self._recall.number
            ),
            **described("Approving sends the recall notices to every consignee."),
            candidates=Candidates(groups=["quality-director"]),
            fields=[FieldSpec(name="reason", label="Why not", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="approve",
                    label="Approve the strategy",
                    signature_meaning=SignatureMeaning.APPROVED,
                ),
                OutcomeSpec(
                    name="reject",
                    label="Return to classification",
                    required_fields=["reason"],
                ),
            ],
        )

    def _report_spec(self, clock: ReportClock, sla: timedelta) -> TaskSpec:
        assert self._recall is not None
        due = clock.report_due_on.isoformat()
        return self._spec(
            "report-806",
            StepPolicy(sla, REPORT_CHAIN),
            kind=TaskKind.PERFORM,
            **titled(
                "Submit the correction/removal report for %(number)s (due %(due)s)",
                limit=None,
                number=self._recall.number,
                due=due,
            ),
            **described(
                "21 CFR 806.10: report the correction or removal to FDA within 10 working days of "
                "its initiation (%(country)s working days). Record the report number once "
                "submitted.",
                country=clock.country,
            ),
            candidates=Candidates(groups=["ra"]),
            reminder_before=min(sla / 2, timedelta(days=3)),
            fields=[FieldSpec(name="report_number", label="Report number", required=True)],
            outcomes=[OutcomeSpec(name="submitted", label="Report submitted")],
            context={"Report due on": due},
        )

    def _check_spec(self, code: str, attempt: int) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            f"check-{code.lower()}" + (f"-{attempt}" if attempt > 1 else ""),
            POLICY["check"],
            kind=TaskKind.VERIFY,
            **titled(
                "Effectiveness check: consignee %(code)s (%(number)s)",
                limit=None,
                code=code,
                number=self._recall.number,
            ),
            **described(
                "Contact the consignee: did it receive the notice, and did it act on it (product "
                "found, quarantined, returned or corrected)?"
            ),
            candidates=Candidates(groups=["ra"]),
            fields=[FieldSpec(name="note", label="What the consignee said or did")],
            outcomes=[
                OutcomeSpec(name="verified", label="Verified"),
                OutcomeSpec(name="failed", label="Not effective", required_fields=["note"]),
            ],
            context={"Consignee": code, "Check": str(attempt)},
        )

    def _termination_request_spec(self, step: str, note: str) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            step,
            POLICY["termination-request"],
            kind=TaskKind.PERFORM,
            **titled(
                "%(number)s is effective: request its termination",
                limit=None,
                number=self._recall.number,
            ),
            candidates=Candidates(groups=["ra"]),
            fields=[FieldSpec(name="summary", label="Summary", type=FieldType.LONG_TEXT)],
            outcomes=[OutcomeSpec(name="request", label="Request termination")],
            context={"Last request": note} if note else {},
        )

    def _termination_spec(
        self, attempt: int, asked_by: str, why: str, measured: Effectiveness
    ) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            f"termination-{attempt}",
            POLICY["termination"],
            kind=TaskKind.APPROVE,
            **titled(
                "Approve the termination of %(number)s", limit=None, number=self._recall.number
            ),
            **described(
                "Approve only when the recall is effective; otherwise waive the effectiveness "
                "requirement (signed, with the reason) or reject."
            ),
            candidates=Candidates(groups=["quality-director"]),
            fields=[FieldSpec(name="reason", label="Reason", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="approve",
                    label="Approve termination",
                    signature_meaning=SignatureMeaning.APPROVED,
                ),
                OutcomeSpec(
                    name="waive",
                    label="Waive effectiveness and approve termination",
                    signature_meaning=SignatureMeaning.APPROVED,
                    required_fields=["reason"],
                ),
                OutcomeSpec(name="reject", label="Reject", required_fields=["reason"]),
            ],
            context={
                "Termination asked by": asked_by,
                "Why": why,
                "Effectiveness": ("met: " if measured.met else "NOT met: ") + measured.describe(),
            },
        )

    def _closure_spec(self) -> TaskSpec:
        assert self._recall is not None
        return self._spec(
            "closure",
            POLICY["closure"],
            kind=TaskKind.APPROVE,
            **titled("Close %(number)s", limit=None, number=self._recall.number),
            candidates=Candidates(groups=["qa-manager"]),
            fields=[FieldSpec(name="summary", label="Closing summary", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="close",
                    label="Close the recall",
                    signature_meaning=SignatureMeaning.CLOSED,
                )
            ],
        )

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    @property
    def _drill(self) -> bool:
        return self._request is not None and self._request.drill

    @property
    def _requester(self) -> str:
        assert self._request is not None
        return self._request.requester or "system"

    def _since_initiation(self, moment: Any) -> float:
        assert self._recall is not None
        return float((moment - self._recall.initiated_at).total_seconds())

    def _keep_scope(self, scope: ScopeVersion) -> None:
        self._scope = scope
        self._result.scope_version = scope.version
        self._result.scope_hash = scope.snapshot_hash
        self._result.consignees = len(scope.consignees)

    async def _measure(self) -> Effectiveness:
        return await run_activity(
            "measure_effectiveness", RecallInput(process_id=self._pid), Effectiveness
        )

    async def _register(self, request: RecallRequest) -> RegisteredRecall:
        """The recall row and the process row; unknown lots fail the workflow (RecallRefused)."""
        try:
            recall = await run_activity(
                "register_recall",
                RegisterRecallInput(
                    process_id=self._pid, run_id=workflow.info().run_id, request=request
                ),
                RegisteredRecall,
            )
        except ActivityError as err:
            refused = refusal_of(err, "RecallRefused")
            if refused is None:
                raise
            raise ApplicationError(
                refused.message, *refused.details, type="RecallRefused", non_retryable=True
            ) from None
        self._recall = recall
        self._result.number = recall.number
        await register_process(
            KIND,
            title=headline(f"{recall.number}: {request.reason}", 300),
            business_key=recall.number,
            initiator=request.requester or None,
        )
        return recall

    async def _set_status(self, status: str, *, actor: str = "system", reason: str = "") -> None:
        self._status_seq += 1
        self._result.status = status
        await run_activity(
            "set_recall_status",
            SetRecallStatusInput(
                process_id=self._pid,
                seq=self._status_seq,
                status=status,
                actor=actor,
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
        )

    async def _cancelled(self, registering: asyncio.Future[RegisteredRecall]) -> None:
        """Cancelled: the clock and reports stop, open tasks and notices are cancelled with the
        recall (children), the recall is recorded as cancelled. What it held stays ON_HOLD."""
        await finished(registering)
        self._stop_background()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._result.number and not self._finished:
            await self._set_status(
                "cancelled", reason=said("the recall was cancelled; the lots it held stay ON_HOLD")
            )


_TOO_LATE = said("termination has been asked for: the scope can no longer be widened")


def _choice(name: str, label: str, choices: list[str]) -> FieldSpec:
    return FieldSpec(name=name, label=label, type=FieldType.CHOICE, choices=choices, required=True)


def _scope_context(scope: ScopeVersion) -> dict[str, str]:
    return {
        "Scope": f"version {scope.version}: {scope.lots} lot(s), {scope.finished_lots} finished, "
        f"{len(scope.consignees)} consignee(s), {scope.serials} serial(s) shipped",
        "Scope hash": scope.snapshot_hash,
    }
