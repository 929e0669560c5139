"""Nonconformance (21 CFR 820.90 control of nonconforming product; ISO 13485 §8.3).

report → containment at once: every affected lot ON_HOLD in one transaction, so no process can
issue or ship it from that moment → extension offered to QA when the genealogy finds lots made
from the same component lots → investigation (QA) → material review board disposition per lot,
signed: use as is (then QA and engineering both sign; a rejection returns it to the MRB), rework,
return to supplier (SCAR), scrap → each disposition applied to the lot and its stock → CAPA
decision (a CAPA starts as a child that outlives the NC) → closure signed by a QA manager who did
not report it. Once containment is settled (extension included), a shipped lot of the NC — or
anything made from one that was shipped — opens a recall decision, in parallel with the
investigation and the MRB: escalating records the scope a recall (issue #6) starts from. Closure
waits for it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.human_task import (
        Candidates,
        DecisionRule,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskResult,
        TaskSpec,
    )
    from schemas.nonconformance import (
        AppliedDisposition,
        ApplyDispositionInput,
        ContainLotsInput,
        Containment,
        DispositionAction,
        ExtensionCandidates,
        LinkCapaInput,
        LotSummary,
        NcInput,
        NcLotState,
        RecallScope,
        RecordCapaDecisionInput,
        RecordDispositionsInput,
        RecordInvestigationInput,
        RecordRecallDecisionInput,
        RecordReinspectionInput,
        RegisteredNc,
        RegisterNcInput,
        SetNcStatusInput,
    )
    from schemas.production import quantity_text
    from schemas.quality import (
        CapaRequest,
        CapaResult,
        Disposition,
        NonconformanceRequest,
        NonconformanceResult,
    )
    from schemas.shipping import joined_said
    from workflows.human_task import human_task
    from workflows.process_kit import (
        StepPolicy,
        decider,
        finished,
        headline,
        lot_refusal,
        refusal_of,
        register_process,
        register_then,
        run_activity,
        task_spec,
    )
    from workflows.wording import described, reason_wording, said, titled

KIND = "nonconformance"
CAPA_WORKFLOW = "Capa"
CONTEXT_LOTS = 60  # lots a task lists one per line; the rest are counted

POLICY = {
    "extension": StepPolicy(timedelta(days=1), ("qa-manager",)),
    "investigation": StepPolicy(timedelta(days=5), ("qa-manager", "quality-director")),
    "disposition": StepPolicy(timedelta(days=3), ("qa-manager", "quality-director")),
    "use-as-is": StepPolicy(timedelta(days=2), ("qa-manager", "quality-director")),
    "rework": StepPolicy(timedelta(days=5), ("engineering",)),
    "reinspection": StepPolicy(timedelta(days=2), ("qa-manager",)),
    "rework-release": StepPolicy(timedelta(days=1), ("qa-manager", "quality-director")),
    "lot-problem": StepPolicy(timedelta(days=2), ("quality-director",)),
    "recall": StepPolicy(timedelta(days=1), ("quality-director",)),
    "capa": StepPolicy(timedelta(days=2), ("quality-director",)),
    "closure": StepPolicy(timedelta(days=5), ("quality-director",)),
}
CHOICES = [d.value for d in Disposition]
DISPOSITION_LABELS = {
    Disposition.USE_AS_IS: "use as is",
    Disposition.REWORK: "rework",
    Disposition.RETURN_TO_SUPPLIER: "return to supplier",
    Disposition.SCRAP: "scrap",
}


@workflow.defn(name="Nonconformance")
class NonconformanceWorkflow:
    def __init__(self) -> None:
        self._request: NonconformanceRequest | None = None
        self._nc: RegisteredNc | None = None
        self._result = NonconformanceResult(process_id="", number="", status="registering")
        self._lots: dict[str, NcLotState] = {}
        self._status_changes = 0
        self._recall: asyncio.Future[None] | None = None
        self._finished = False
        self._investigation: dict[str, str] = {}

    @workflow.run
    async def run(self, request: NonconformanceRequest) -> NonconformanceResult:
        self._request = request
        self._result = NonconformanceResult(process_id=self._pid, number="", status="registering")
        await register_then(self._register(request), self._proceed, self._cancelled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @workflow.query(name="status")
    def status(self) -> NonconformanceResult:
        return self._result

    # ------------------------------------------------------------ the steps

    async def _proceed(self, nc: RegisteredNc) -> None:
        await self._contain()
        await self._offer_extension()
        self._recall = asyncio.ensure_future(self._recall_review())
        await self._investigate()
        await self._dispose()
        await self._decide_capa()
        await self._recall
        await self._close()

    async def _contain(self) -> None:
        """Every affected lot held at once, in one transaction."""
        assert self._request is not None
        contained = await run_activity(
            "contain_lots",
            ContainLotsInput(
                process_id=self._pid,
                step="contain",
                lot_numbers=self._request.lots,
                role="affected",
                actor=self._reporter,
            ),
            Containment,
        )
        self._keep(contained)
        await self._set_status("containment", reason=_held_text(contained))

    async def _offer_extension(self) -> None:
        """Lots made from the same component lots: QA decides whether they are held too."""
        found = await run_activity(
            "find_extension_lots", NcInput(process_id=self._pid), ExtensionCandidates
        )
        if not found.lots:
            return
        task = await human_task(self._extension_spec(found))
        if task.outcome != "extend":
            return
        extended = await run_activity(
            "contain_lots",
            ContainLotsInput(
                process_id=self._pid,
                step="extend",
                lot_numbers=[lot.lot_number for lot in found.lots],
                role="extended",
                actor=decider(task),
            ),
            Containment,
        )
        self._keep(extended)

    async def _investigate(self) -> None:
        await self._set_status("investigation")
        task = await human_task(self._investigation_spec())
        findings = task.fields.get("findings", "")
        root_cause = task.fields.get("root_cause_summary", "")
        await run_activity(
            "record_investigation",
            RecordInvestigationInput(
                process_id=self._pid,
                findings=findings,
                root_cause_summary=root_cause,
                investigated_by=decider(task),
            ),
        )
        self._investigation = {"Findings": findings, "Investigated by": decider(task)}
        if root_cause:
            self._investigation["Root cause"] = root_cause

    async def _dispose(self) -> None:
        """The MRB disposes of every held lot; the dispositions are then applied, each lot's
        on its own (a rework runs through its own tasks)."""
        held = [lot for lot in self._lots.values() if lot.held]
        if not held:
            return
        await self._set_status("disposition")
        chosen, mrb = await self._mrb_disposition(held)
        await asyncio.gather(
            *(
                self._apply(n, lot, chosen[lot.lot_number], mrb)
                for n, lot in enumerate(held, start=1)
            )
        )

    async def _mrb_disposition(self, held: list[NcLotState]) -> tuple[dict[str, Disposition], str]:
        """Round after round until the dispositions stand: a use as is needs QA's and
        engineering's signatures, a return needs a supplier. Recorded once they stand."""
        note, attempt = "", 0
        while True:
            attempt += 1
            task = await human_task(self._disposition_spec(attempt, held, note))
            chosen = {
                lot.lot_number: Disposition(task.fields[f"lot_{n}"])
                for n, lot in enumerate(held, start=1)
            }
            justification = task.fields.get("justification", "")
            note = self._unreturnable(chosen)
            if note:
                continue
            approvers: list[str] = []
            if Disposition.USE_AS_IS in chosen.values():
                approval = await human_task(
                    self._use_as_is_spec(attempt, chosen, justification, decider(task))
                )
                if approval.outcome != "approve":
                    note = (
                        f"use as is not approved by {decider(approval)}: "
                        f"{approval.fields.get('reason', '')}"
                    )
                    continue
                approvers = [d.decider for d in approval.decisions]
            await run_activity(
                "record_dispositions",
                RecordDispositionsInput(
                    process_id=self._pid,
                    round=attempt,
                    dispositions=chosen,
                    justification=justification,
                    decided_by=decider(task),
                    approved_by=approvers,
                ),
            )
            return chosen, decider(task)

    def _unreturnable(self, chosen: dict[str, Disposition]) -> str:
        """Why a return to supplier cannot be done ('' when every one can): the MRB's form
        cannot see where a lot came from, so the workflow checks before applying."""
        in_house = [
            number
            for number, disposition in chosen.items()
            if disposition is Disposition.RETURN_TO_SUPPLIER
            and self._lots[number].supplier_code is None
        ]
        if not in_house:
            return ""
        return (
            f"lot(s) {', '.join(in_house)} were made in house (no supplier): they cannot be "
            "returned to a supplier; choose another disposition"
        )

    async def _apply(self, n: int, lot: NcLotState, disposition: Disposition, mrb: str) -> None:
        self._result.dispositions[lot.lot_number] = disposition.value
        if disposition is Disposition.REWORK:
            await self._rework(n, lot, mrb)
            return
        action = DispositionAction(disposition.value)
        await self._apply_action(n, lot, action, mrb)

    async def _apply_action(
        self, n: int, lot: NcLotState, action: DispositionAction, actor: str, reason: str = ""
    ) -> AppliedDisposition | None:
        """One disposition action on one lot; a refusal by the database goes to a person."""
        try:
            applied = await run_activity(
                "apply_disposition",
                ApplyDispositionInput(
                    process_id=self._pid,
                    lot_number=lot.lot_number,
                    action=action,
                    actor=actor,
                    reason=reason,
                ),
                AppliedDisposition,
            )
        except ActivityError as err:
            refused = lot_refusal(err)
            if refused is None:
                raise
            await human_task(self._lot_problem_spec(n, lot, action, refused))
            return None
        if applied.scar_number:
            self._result.scars.append(applied.scar_number)
        return applied

    async def _rework(self, n: int, lot: NcLotState, mrb: str) -> None:
        """Rework in its simplest honest form, not a full rework work order: the lot goes back to
        QUARANTINE, production reworks it and records what it did, QC re-inspects it (someone
        other than the reworker); a pass goes to a signed QA release (not by the reworker), a
        fail — or QA's refusal — scraps the lot."""
        if await self._apply_action(n, lot, DispositionAction.REWORK, mrb) is None:
            return
        rework = await human_task(self._rework_spec(n, lot))
        reworker = decider(rework)
        done = rework.fields.get("what_was_done", "")
        inspection = await human_task(self._reinspection_spec(n, lot, done, reworker))
        passed = inspection.outcome == "pass"
        await run_activity(
            "record_reinspection",
            RecordReinspectionInput(
                process_id=self._pid,
                lot_number=lot.lot_number,
                outcome="pass" if passed else "fail",
                inspector=decider(inspection),
                rework=done,
                reworked_by=reworker,
                reason=inspection.fields.get("reason", ""),
                results=inspection.fields.get("results", ""),
            ),
        )
        if not passed:
            why = f"re-inspection after rework failed: {inspection.fields.get('reason', '')}"
            await self._apply_action(n, lot, DispositionAction.SCRAP, decider(inspection), why)
            return
        release = await human_task(self._rework_release_spec(n, lot, done, reworker))
        if release.outcome == "release":
            await self._apply_action(
                n, lot, DispositionAction.RELEASE_AFTER_REWORK, decider(release)
            )
        else:
            why = f"not released after rework: {release.fields.get('reason', '')}"
            await self._apply_action(n, lot, DispositionAction.SCRAP, decider(release), why)

    async def _decide_capa(self) -> None:
        """A QA manager decides whether a CAPA is needed; if so it starts as a child workflow
        that outlives the NC (the NC does not wait for it)."""
        assert self._nc is not None and self._request is not None
        await self._set_status("capa_decision")
        note, attempt = "", 0
        while True:
            attempt += 1
            task = await human_task(self._capa_spec(attempt, note))
            needed = task.outcome == "capa_needed"
            note = await run_activity(
                "record_capa_decision",
                RecordCapaDecisionInput(
                    process_id=self._pid,
                    attempt=attempt,
                    capa_needed=needed,
                    decided_by=decider(task),
                    owner=task.fields.get("capa_owner", ""),
                    problem=task.fields.get("problem", ""),
                    reason=task.fields.get("reason", ""),
                ),
                str,
            )
            if not note:
                break
        if needed:
            await self._start_capa(task)

    async def _start_capa(self, task: TaskResult) -> None:
        assert self._nc is not None and self._request is not None
        capa_id = f"{self._pid}.capa"
        problem = task.fields.get("problem", "").strip() or self._request.description
        await workflow.start_child_workflow(
            CAPA_WORKFLOW,
            CapaRequest(
                process_id=capa_id,
                requester=decider(task),
                title=headline(f"{self._nc.number}: {self._request.title}", 300),
                problem_statement=problem[:5000],
                owner=task.fields["capa_owner"].strip(),
                source="nonconformance",
                nc_process_id=self._pid,
            ),
            id=capa_id,
            result_type=CapaResult,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        await run_activity(
            "link_capa",
            LinkCapaInput(process_id=self._pid, capa_process_id=capa_id, linked_by=decider(task)),
        )
        self._result.capa_process_id = capa_id

    async def _recall_review(self) -> None:
        """When any lot of the NC, or anything made from it, was shipped: QA decides whether
        to escalate to a recall; escalating records the scope the recall starts from."""
        scope = await run_activity(
            "compute_recall_scope", NcInput(process_id=self._pid), RecallScope
        )
        if not scope.shipments:
            return
        task = await human_task(self._recall_spec(scope))
        escalate = task.outcome == "escalate_to_recall"
        await run_activity(
            "record_recall_decision",
            RecordRecallDecisionInput(
                process_id=self._pid,
                escalate=escalate,
                scope=scope,
                decided_by=decider(task),
                reason=task.fields.get("reason", ""),
            ),
        )
        self._result.recall_requested = escalate

    async def _close(self) -> None:
        await self._set_status("closure")
        task = await human_task(self._closure_spec())
        await self._set_status("closed", actor=decider(task), reason=task.fields.get("summary", ""))
        self._finished = True

    async def _cancelled(self, registering: asyncio.Future[RegisteredNc]) -> None:
        """Cancelled: the recall review stops, its tasks close, the NC is recorded as cancelled.
        Lots it held stay ON_HOLD: only a disposition releases them."""
        await finished(registering)  # cancelled while registering: record it once registered
        if self._recall is not None:
            self._recall.cancel()
            await asyncio.gather(self._recall, return_exceptions=True)
        if self._result.number and not self._finished:
            await self._set_status(
                "cancelled",
                reason=said("the nonconformance was cancelled; the lots it held stay ON_HOLD"),
            )

    # ------------------------------------------------------------ task specs

    def _spec(self, step: str, policy: str, **values: Any) -> TaskSpec:
        """A task of this NC: its SLA and escalation chain, and what the NC is."""
        assert self._request is not None and self._nc is not None
        request = self._request
        about = {
            "Nonconformance": self._nc.number,
            "Title": request.title,
            "Source": request.source.value,
            "Severity": request.severity.value,
            "Reported by": self._reporter,
            "Description": request.description,
        }
        if request.part_number:
            about["Part"] = request.part_number
        if self._nc.supplier_code:
            about["Supplier"] = self._nc.supplier_code
        if request.evidence:
            about["Evidence"] = request.evidence
        values["title"] = headline(str(values["title"]), 300)
        return task_spec(
            step,
            POLICY[policy],
            process_kind=KIND,
            business_key=self._nc.number,
            about=about,
            **values,
        )

    def _extension_spec(self, found: ExtensionCandidates) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            "extension",
            "extension",
            kind=TaskKind.REVIEW,
            **titled(
                "Extend containment of %(number)s to %(count)s lot(s) made from the same "
                "component lots?",
                limit=None,
                number=self._nc.number,
                count=len(found.lots),
            ),
            **described(
                "These lots were made from the same component lots as the affected lots (by "
                "genealogy). Extend: the ones in house go ON_HOLD too."
            ),
            candidates=Candidates(groups=["qa"]),
            fields=[
                FieldSpec(name="reason", label="Why it is not needed", type=FieldType.LONG_TEXT)
            ],
            outcomes=[
                OutcomeSpec(name="extend", label="Extend containment to these lots"),
                OutcomeSpec(name="not_needed", label="Not needed", required_fields=["reason"]),
            ],
            context={"Component lots": ", ".join(found.component_lots)} | _lots_context(found.lots),
        )

    def _investigation_spec(self) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            "investigation",
            "investigation",
            kind=TaskKind.PERFORM,
            **titled(
                "Investigate %(number)s: %(request_title)s",
                limit=None,
                number=self._nc.number,
                request_title=self._request_title,
            ),
            candidates=Candidates(groups=["qa"]),
            fields=[
                FieldSpec(
                    name="findings", label="Findings", type=FieldType.LONG_TEXT, required=True
                ),
                FieldSpec(
                    name="root_cause_summary",
                    label="Root cause (summary)",
                    type=FieldType.LONG_TEXT,
                ),
            ],
            outcomes=[OutcomeSpec(name="done", label="Investigation done")],
            context=self._lots_held_context(),
        )

    def _disposition_spec(self, attempt: int, held: list[NcLotState], note: str) -> TaskSpec:
        """One choice per held lot (lot_1, lot_2 …: the context maps each to its lot)."""
        assert self._nc is not None
        fields = [
            FieldSpec(
                name=f"lot_{n}",
                label=said("Lot %(lot)s (%(what)s)", lot=lot.lot_number, what=lot.describe()),
                type=FieldType.CHOICE,
                choices=CHOICES,
                required=True,
            )
            for n, lot in enumerate(held, start=1)
        ]
        fields.append(
            FieldSpec(
                name="justification",
                label="Justification",
                type=FieldType.LONG_TEXT,
                required=True,
            )
        )
        context = {
            f"lot_{n}": f"{lot.lot_number}: {lot.describe()}"
            + (f", supplier {lot.supplier_code}" if lot.supplier_code else ", made in house")
            for n, lot in enumerate(held, start=1)
        }
        return self._spec(
            f"disposition-{attempt}",
            "disposition",
            kind=TaskKind.DISPOSITION,
            **titled(
                "MRB disposition of %(count)s lot(s) of %(number)s",
                limit=None,
                count=len(held),
                number=self._nc.number,
            ),
            **described(
                "Choose a disposition for each lot: use as is (QA and engineering then sign too), "
                "rework, return to supplier (a SCAR is opened), or scrap."
            ),
            candidates=Candidates(groups=["mrb"]),
            fields=fields,
            outcomes=[
                OutcomeSpec(
                    name="disposition",
                    label="Sign the disposition",
                    signature_meaning=SignatureMeaning.APPROVED,
                )
            ],
            context=({"Returned to the MRB": note} if note else {})
            | context
            | self._investigation_context(),
        )

    def _use_as_is_spec(
        self, attempt: int, chosen: dict[str, Disposition], justification: str, mrb: str
    ) -> TaskSpec:
        assert self._nc is not None
        as_is = [n for n, d in chosen.items() if d is Disposition.USE_AS_IS]
        return self._spec(
            f"use-as-is-{attempt}",
            "use-as-is",
            kind=TaskKind.APPROVE,
            **titled(
                "Approve use as is of %(lots)s (%(number)s)",
                limit=None,
                lots=", ".join(as_is),
                number=self._nc.number,
            ),
            **described(
                "The MRB decided to use these lots as they are. QA and engineering both sign; a "
                "rejection returns the disposition to the MRB."
            ),
            candidates=Candidates(groups=["qa", "engineering"]),
            rule=DecisionRule.ALL,
            fields=[FieldSpec(name="reason", label="Why not", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="approve",
                    label="Approve use as is",
                    signature_meaning=SignatureMeaning.APPROVED,
                ),
                OutcomeSpec(name="reject", label="Return to the MRB", required_fields=["reason"]),
            ],
            context={
                "Justification": justification,
                "MRB decision by": mrb,
                **{
                    said("Lot %(lot)s", lot=number): DISPOSITION_LABELS[d]
                    for number, d in chosen.items()
                },
            },
        )

    def _rework_spec(self, n: int, lot: NcLotState) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            f"rework-{n}",
            "rework",
            kind=TaskKind.PERFORM,
            **titled(
                "Rework lot %(lot_number)s under %(number)s",
                limit=None,
                lot_number=lot.lot_number,
                number=self._nc.number,
            ),
            **described(
                "The lot is in QUARANTINE for the rework. Record what was done; QC re-inspects it "
                "next."
            ),
            candidates=Candidates(groups=["production"]),
            fields=[
                FieldSpec(
                    name="what_was_done",
                    label="What was done",
                    type=FieldType.LONG_TEXT,
                    required=True,
                )
            ],
            outcomes=[OutcomeSpec(name="done", label="Rework done")],
            context={"Lot": f"{lot.lot_number}: {lot.describe()}"} | self._investigation_context(),
        )

    def _reinspection_spec(self, n: int, lot: NcLotState, done: str, reworker: str) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            f"reinspect-{n}",
            "reinspection",
            kind=TaskKind.INSPECT,
            **titled(
                "Re-inspect lot %(lot_number)s after rework (%(number)s)",
                limit=None,
                lot_number=lot.lot_number,
                number=self._nc.number,
            ),
            candidates=Candidates(groups=["qc"]),
            excluded_users=[reworker],
            fields=[
                FieldSpec(name="results", label="Results", type=FieldType.LONG_TEXT),
                FieldSpec(name="reason", label="Why it fails", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(name="pass", label="Pass"),
                OutcomeSpec(
                    name="fail", label="Fail (the lot is scrapped)", required_fields=["reason"]
                ),
            ],
            context={"Lot": lot.lot_number, "Rework": done, "Reworked by": reworker},
        )

    def _rework_release_spec(self, n: int, lot: NcLotState, done: str, reworker: str) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            f"rework-release-{n}",
            "rework-release",
            kind=TaskKind.APPROVE,
            **titled(
                "QA release of lot %(lot_number)s after rework (%(number)s)",
                limit=None,
                lot_number=lot.lot_number,
                number=self._nc.number,
            ),
            candidates=Candidates(groups=["qa"]),
            excluded_users=[reworker],
            fields=[FieldSpec(name="reason", label="Why not", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="release", label="Release", signature_meaning=SignatureMeaning.RELEASED
                ),
                OutcomeSpec(
                    name="scrap",
                    label="Do not release (scrap)",
                    signature_meaning=SignatureMeaning.REJECTED,
                    required_fields=["reason"],
                ),
            ],
            context={
                "Lot": lot.lot_number,
                "Rework": done,
                "Reworked by": reworker,
                "Re-inspection": "passed",
            },
        )

    def _lot_problem_spec(
        self, n: int, lot: NcLotState, action: DispositionAction, message: str
    ) -> TaskSpec:
        return self._spec(
            f"lot-problem-{n}-{action.value.replace('_', '-')}",
            "lot-problem",
            kind=TaskKind.PERFORM,
            **titled(
                "Lot %(lot_number)s: %(action)s refused: %(message)s",
                limit=None,
                lot_number=lot.lot_number,
                action=action.value.replace("_", " "),
                message=message,
            ),
            candidates=Candidates(groups=["qa-manager"]),
            fields=[
                FieldSpec(
                    name="action", label="What was done", type=FieldType.LONG_TEXT, required=True
                )
            ],
            outcomes=[OutcomeSpec(name="acknowledged", label="Acknowledged")],
            context={"Lot": lot.lot_number, "Refused": message},
        )

    def _recall_spec(self, scope: RecallScope) -> TaskSpec:
        assert self._nc is not None
        shipped: dict[str, str] = {
            said("Shipped %(n)s", n=n): f"{s.shipment}: lot {s.lot_number} ({s.part_number}) "
            f"{quantity_text(s.quantity)} to {s.consignee_code} {s.consignee_name}"
            + (f", serials {', '.join(s.serials)}" if s.serials else "")
            for n, s in enumerate(scope.shipments[:CONTEXT_LOTS], start=1)
        }
        if len(scope.shipments) > CONTEXT_LOTS:
            shipped["More shipments"] = str(len(scope.shipments) - CONTEXT_LOTS)
        return self._spec(
            "recall-decision",
            "recall",
            kind=TaskKind.REVIEW,
            **titled(
                "%(number)s reached shipped product: escalate to a recall?",
                limit=None,
                number=self._nc.number,
            ),
            **described(
                "Product made from the suspect lots has been shipped. Escalate to a recall "
                "(signed), or say why none is needed."
            ),
            candidates=Candidates(groups=["qa-manager"]),
            fields=[FieldSpec(name="reason", label="Reason", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="escalate_to_recall",
                    label="Escalate to a recall",
                    signature_meaning=SignatureMeaning.APPROVED,
                ),
                OutcomeSpec(name="no_recall", label="No recall", required_fields=["reason"]),
            ],
            context={
                "Suspect lots": ", ".join(scope.suspect_lots),
                "Lots reached": str(len(scope.lots)),
                "Consignees": "; ".join(
                    f"{c.code} {c.name}: {quantity_text(c.quantity)}" for c in scope.consignees
                ),
                "Shipped in all": quantity_text(scope.shipped_quantity),
                "Serials shipped": str(scope.serial_count),
            }
            | shipped,
        )

    def _capa_spec(self, attempt: int, note: str) -> TaskSpec:
        assert self._nc is not None
        return self._spec(
            f"capa-decision-{attempt}",
            "capa",
            kind=TaskKind.REVIEW,
            **titled("CAPA needed for %(number)s?", limit=None, number=self._nc.number),
            candidates=Candidates(groups=["qa-manager"]),
            fields=[
                FieldSpec(name="capa_owner", label="CAPA owner (username)"),
                FieldSpec(name="problem", label="Problem statement", type=FieldType.LONG_TEXT),
                FieldSpec(name="reason", label="Why no CAPA", type=FieldType.LONG_TEXT),
            ],
            outcomes=[
                OutcomeSpec(
                    name="capa_needed", label="CAPA needed", required_fields=["capa_owner"]
                ),
                OutcomeSpec(name="no_capa", label="No CAPA", required_fields=["reason"]),
            ],
            context=({"Refused": note} if note else {})
            | self._investigation_context()
            | self._dispositions_context(),
        )

    def _closure_spec(self) -> TaskSpec:
        assert self._nc is not None
        context = self._dispositions_context()
        if self._result.capa_process_id:
            context["CAPA"] = self._result.capa_process_id
        if self._result.scars:
            context["SCARs"] = ", ".join(self._result.scars)
        context["Recall requested"] = "yes" if self._result.recall_requested else "no"
        return self._spec(
            "closure",
            "closure",
            kind=TaskKind.APPROVE,
            **titled("Close %(number)s", limit=None, number=self._nc.number),
            candidates=Candidates(groups=["qa-manager"]),
            excluded_users=[self._reporter],
            fields=[FieldSpec(name="summary", label="Closing summary", type=FieldType.LONG_TEXT)],
            outcomes=[
                OutcomeSpec(
                    name="close", label="Close the NC", signature_meaning=SignatureMeaning.CLOSED
                )
            ],
            context=context,
        )

    def _lots_held_context(self) -> dict[str, str]:
        return _lots_context(list(self._lots.values()))

    def _investigation_context(self) -> dict[str, str]:
        return dict(self._investigation)

    def _dispositions_context(self) -> dict[str, str]:
        return {
            said("Disposition %(lot)s", lot=number): DISPOSITION_LABELS[Disposition(d)]
            for number, d in self._result.dispositions.items()
        }

    # ------------------------------------------------------------ plumbing

    @property
    def _pid(self) -> str:
        return workflow.info().workflow_id

    @property
    def _reporter(self) -> str:
        assert self._request is not None
        return self._request.reporter or "system"

    @property
    def _request_title(self) -> str:
        assert self._request is not None
        return self._request.title

    def _keep(self, containment: Containment) -> None:
        for lot in containment.lots:
            self._lots[lot.lot_number] = lot
        self._result.held_lots = [n for n, lot in self._lots.items() if lot.held]

    async def _register(self, request: NonconformanceRequest) -> RegisteredNc:
        """The NC report and the process row; unknown lots fail the workflow (NcRefused)."""
        try:
            nc: RegisteredNc = await run_activity(
                "register_nonconformance",
                RegisterNcInput(
                    process_id=self._pid, run_id=workflow.info().run_id, request=request
                ),
                RegisteredNc,
            )
        except ActivityError as err:
            refused = refusal_of(err, "NcRefused")
            if refused is None:
                raise
            raise ApplicationError(
                refused.message, *refused.details, type="NcRefused", non_retryable=True
            ) from None
        self._nc = nc
        self._result.number = nc.number
        await register_process(
            KIND,
            title=headline(f"{nc.number}: {request.title}", 300),
            business_key=nc.number,
            initiator=request.reporter or None,
        )
        self._result.status = "containment"
        return nc

    async def _set_status(self, status: str, *, actor: str = "system", reason: str = "") -> None:
        self._status_changes += 1
        self._result.status = status
        await run_activity(
            "set_nonconformance_status",
            SetNcStatusInput(
                process_id=self._pid,
                seq=self._status_changes,
                status=status,
                actor=actor,
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
        )


def _lots_context(lots: list[LotSummary] | list[NcLotState]) -> dict[str, str]:
    """One line per lot (up to CONTEXT_LOTS), the rest counted."""
    shown: dict[str, str] = {}
    for lot in lots[:CONTEXT_LOTS]:
        line = lot.describe()
        if isinstance(lot, NcLotState):
            line += f" — {lot.role}, {lot.note}"
        shown[said("Lot %(lot)s", lot=lot.lot_number)] = line
    if len(lots) > CONTEXT_LOTS:
        shown["More lots"] = str(len(lots) - CONTEXT_LOTS)
    return shown


def _held_text(containment: Containment) -> str:
    held = [lot.lot_number for lot in containment.lots if lot.held]
    not_held = [f"{lot.lot_number} ({lot.status})" for lot in containment.lots if not lot.held]
    parts = [said("held: %(lots)s", lots=", ".join(held))] if held else []
    if not_held:
        parts.append(said("not held: %(lots)s", lots=", ".join(not_held)))
    return joined_said(parts) or said("no lots named")


# ---------------------------------------------------------------- raised by another process

NC_PATCH = "nonconformance-on-failed-inspection"


async def raise_nonconformance(n: int, request: NonconformanceRequest) -> str:
    """Start an NC from another process's workflow code (a failed inspection): the child
    `<that process id>.nc-<n>`, so it shows on that process's timeline, with ParentClosePolicy
    ABANDON: it outlives the process that raised it, which does not wait for it. Returns its id
    once started."""
    origin = workflow.info().workflow_id
    nc_id = f"{origin}.nc-{n}"
    await workflow.start_child_workflow(
        NonconformanceWorkflow.run,
        request.model_copy(update={"process_id": nc_id, "origin_process_id": origin}),
        id=nc_id,
        parent_close_policy=ParentClosePolicy.ABANDON,
    )
    return nc_id
