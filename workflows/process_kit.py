"""What every process workflow does the same way, written once.

Activities with one timeout and retry policy; the process's own row in the read model (register,
move a step, end); a human task's spec from its step's SLA and escalation chain; who decided a
task; a business refusal inside an activity failure; a task closed because the process no longer
needs it; a registration that a cancellation does not interrupt; the try-again-or-cancel decision.

Deterministic, no I/O of its own: call it from workflow code only, imported through the sandbox
(`workflow.unsafe.imports_passed_through()`) like workflows.human_task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.activities import CancelTaskInput, RegisterProcessInput, UpdateProcessInput
    from schemas.human_task import FieldSpec, FieldType, OutcomeSpec, TaskResult, TaskSpec
    from schemas.production import LotPick
    from workflows.human_task import is_cancellation, task_workflow_id
    from workflows.wording import Said, reason_wording, said, spoken, wording

ACTIVITY_TIMEOUT = timedelta(seconds=60)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
T = TypeVar("T")


@dataclass(frozen=True)
class StepPolicy:
    """How long people have for a step, and the groups added at each due time."""

    sla: timedelta
    escalation_chain: tuple[str, ...]


# ------------------------------------------------------------ activities and the process row


@overload
async def run_activity(name: str, arg: object, result_type: type[T]) -> T: ...
@overload
async def run_activity(name: str, arg: object, result_type: None = None) -> Any: ...
async def run_activity(name: str, arg: object, result_type: type | None = None) -> Any:
    """One activity of this process, by its name, with the common timeout and retry policy."""
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=ACTIVITY_RETRY,
    )


async def register_process(
    kind: str,
    *,
    title: str,
    business_key: str,
    initiator: str | None,
    title_template: str | None = None,
    title_values: dict[str, Any] | None = None,
) -> None:
    """This process's row in the `process` table (a repeat changes nothing). A title with words
    of ours is `**titled("%(number)s to %(consignee)s", limit=None, …)`, so the pages can show
    it in the reader's language."""
    info = workflow.info()
    await run_activity(
        "register_process",
        RegisterProcessInput(
            process_id=info.workflow_id,
            run_id=info.run_id,
            kind=kind,
            title=title,
            business_key=business_key,
            initiator=initiator,
            title_template=title_template,
            title_values=title_values,
        ),
    )


async def update_process(
    step: str, *, status: str = "running", outcome: str | None = None, reason: str = ""
) -> None:
    """Move this process's row to a step; a status other than running ends it. A reason with
    words of ours is a `said(…)` (or a refusal's `spoken(…)`): its wording goes along, so the
    timeline shows it in the reader's language; a plain text is shown as recorded."""
    await run_activity(
        "update_process",
        UpdateProcessInput(
            process_id=workflow.info().workflow_id,
            step=step,
            status=status,
            outcome=outcome,
            reason=reason,
            reason_wording=reason_wording(reason),
        ),
    )


async def register_then(
    registration: Coroutine[Any, Any, T],
    proceed: Callable[[T], Awaitable[object]],
    cancelled: Callable[[asyncio.Future[T]], Awaitable[object]],
) -> None:
    """Register, then proceed with what the registration answered. A cancellation does not
    interrupt the registration (it runs shielded): `cancelled` gets it, perhaps still running,
    waits for it (`finished`) and records the cancellation; then the cancellation goes on."""
    registering = asyncio.ensure_future(registration)
    try:
        await proceed(await asyncio.shield(registering))
    except BaseException as err:
        if not is_cancellation(err):
            raise
        await cancelled(registering)
        raise


async def finished(work: asyncio.Future[Any]) -> None:
    """Wait for shielded work still in flight (a registration) before recording a cancellation."""
    if not work.done():
        await work


# ------------------------------------------------------------ human tasks


def task_spec(
    step: str,
    policy: StepPolicy,
    *,
    process_kind: str,
    business_key: str,
    about: dict[str, str],
    context: dict[str, str] | None = None,
    **fields: object,
) -> TaskSpec:
    """A task of this process: the step's SLA (reminder at a quarter of it) and escalation chain,
    what the process is about and what this task adds to it; `fields` are the rest of the spec."""
    context_values = about | (context or {})
    values: dict[str, object] = {
        "step": step,
        "process_kind": process_kind,
        "process_id": workflow.info().workflow_id,
        "business_key": business_key,
        "sla": policy.sla,
        "reminder_before": policy.sla / 4,
        "escalation_chain": list(policy.escalation_chain),
        "context": context_values,
    }
    quoted = context_wordings(context_values)
    if quoted:
        values["context_wording"] = quoted
    return TaskSpec.model_validate(values | fields)


def context_wordings(context: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The wordings of a task's context values that are texts of ours (a `Said`: a quoted
    refusal, `describe_action`'s action, a shipment line), by key, for the page
    (`TaskSpec.context_wording`, `ui.i18n.context_text`); other values are shown as recorded."""
    return {k: wording(v) for k, v in context.items() if isinstance(v, Said)}


def again_or_cancel(
    again: str, again_label: str, cancel_label: str, *, reason_label: str = "Why it is cancelled"
) -> dict[str, Any]:
    """The fields and outcomes of a task where a person tries again or cancels, saying why."""
    return {
        "fields": [FieldSpec(name="reason", label=reason_label, type=FieldType.LONG_TEXT)],
        "outcomes": [
            OutcomeSpec(name=again, label=again_label),
            OutcomeSpec(name="cancel", label=cancel_label, required_fields=["reason"]),
        ],
    }


def cancellation(task: TaskResult, why: str) -> str | None:
    """'cancelled by <who>: <their reason, else why>' when the person cancelled at a task made by
    `again_or_cancel`; None when they chose to try again."""
    if task.outcome != "cancel":
        return None
    reason = task.fields.get("reason") or why  # the person's own words, else ours (a `Said`)
    return said("cancelled by %(who)s: %(why)s", who=decider(task), why=reason)


def decider(result: TaskResult) -> str:
    """Who took the task's last decision ('system' when nobody did)."""
    return result.decisions[-1].decider if result.decisions else "system"


def headline(text: str, limit: int = 200) -> str:
    """A task title short enough for the inbox and its notices; the task's context has it all."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def picks_context(picks: list[LotPick]) -> dict[str, str]:
    """The lots picked, one context line each, as a task shows them."""
    return {
        said("Pick %(n)s (%(part)s)", n=n, part=p.part_number): p.describe()
        for n, p in enumerate(picks[:60], start=1)
    }


async def close_task(task: asyncio.Future[TaskResult], step: str, reason: str) -> None:
    """Close a human task of this process that is no longer needed: its row is cancelled with the
    reason, then its workflow. A task already decided is left as it is."""
    if not task.done():
        await run_activity(
            "cancel_task",
            CancelTaskInput(
                task_id=None,
                workflow_id=task_workflow_id(workflow.info().workflow_id, step),
                reason=reason,
                reason_wording=reason_wording(reason),
            ),
        )
        task.cancel()
    try:
        await task
    except BaseException as err:
        if not is_cancellation(err):
            raise


# ------------------------------------------------------------ refusals


def refusal_of(err: ActivityError, kind: str) -> ApplicationError | None:
    """The business refusal (ApplicationError of this type) an activity failed with, or None."""
    cause = err.cause
    return cause if isinstance(cause, ApplicationError) and cause.type == kind else None


def lot_refusal(err: ActivityError) -> str | None:
    """The reason the database refused a lot change inside an activity, or None."""
    refused = refusal_of(err, "LotRefused")
    return spoken(refused) if refused is not None else None
