"""The general approval request: route one decision to approvers, with SLA and escalation.

It is the smallest real process on the human task, and the one the demo starts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.activities import RegisterProcessInput, UpdateProcessInput
    from schemas.approval import ApprovalRequestInput, ApprovalRequestResult
    from schemas.human_task import (
        Candidates,
        FieldSpec,
        FieldType,
        OutcomeSpec,
        SignatureMeaning,
        TaskKind,
        TaskSpec,
    )
    from workflows.human_task import human_task, is_cancellation
    from workflows.wording import reason_wording, said

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
KIND = "approval"


def approval_task_spec(request: ApprovalRequestInput) -> TaskSpec:
    sign = request.signs
    return TaskSpec(
        step="approval",
        kind=TaskKind.APPROVE,
        title=request.title,
        description=request.description,
        process_kind=KIND,
        process_id=request.process_id,
        business_key=request.process_id,
        initiator=request.initiator,
        candidates=Candidates(groups=request.approver_groups, users=request.approver_users),
        rule=request.rule,
        k=request.k,
        outcomes=[
            OutcomeSpec(
                name="approve",
                label="Approve",
                signature_meaning=SignatureMeaning.APPROVED if sign else None,
            ),
            OutcomeSpec(
                name="reject",
                label="Reject",
                signature_meaning=SignatureMeaning.REJECTED if sign else None,
                required_fields=["reason"],
            ),
        ],
        fields=[FieldSpec(name="reason", label="Reason for rejecting", type=FieldType.LONG_TEXT)],
        sla=timedelta(hours=request.sla_hours),
        reminder_before=(
            timedelta(hours=request.reminder_hours)
            if request.reminder_hours and request.reminder_hours < request.sla_hours
            else None
        ),
        escalation_chain=request.escalation_chain,
        context={"Requested by": request.initiator, **request.context},
    )


@workflow.defn(name="ApprovalRequest")
class ApprovalRequestWorkflow:
    @workflow.run
    async def run(self, request: ApprovalRequestInput) -> ApprovalRequestResult:
        info = workflow.info()
        # withdrawn while registering: finish registering, so the withdrawal can be recorded
        registering = asyncio.ensure_future(
            workflow.execute_activity(
                "register_process",
                RegisterProcessInput(
                    process_id=info.workflow_id,
                    run_id=info.run_id,
                    kind=KIND,
                    title=request.title,
                    business_key=request.process_id,
                    initiator=request.initiator,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        )
        try:
            await asyncio.shield(registering)
            await self._step("approval")
            result = await human_task(approval_task_spec(request))
        except BaseException as err:
            if not is_cancellation(err):
                raise
            if not registering.done():
                await registering
            await self._step(
                "withdrawn", status="cancelled", reason=said("withdrawn by the requester")
            )
            raise
        await self._step("closed", status="completed", outcome=result.outcome)
        return ApprovalRequestResult(
            process_id=info.workflow_id, status="completed", outcome=result.outcome, task=result
        )

    async def _step(
        self, step: str, *, status: str = "running", outcome: str | None = None, reason: str = ""
    ) -> None:
        await workflow.execute_activity(
            "update_process",
            UpdateProcessInput(
                process_id=workflow.info().workflow_id,
                step=step,
                status=status,
                outcome=outcome,
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
