"""Sending an update to a process's workflow from the API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.errors import Message

# A workflow refuses with `NotReady` in the instant before it knows what the update is about
# (a task's row id, a change's registration); wait that out before passing the refusal on.
NOT_READY_RETRIES = 25
NOT_READY_PAUSE = 0.2


async def update_when_ready(
    handle: WorkflowHandle[Any, Any], name: str, arg: object, *, result_type: type | None = None
) -> Any:
    """Execute the update, retrying while the workflow answers NotReady; the last answer stands."""
    for _ in range(NOT_READY_RETRIES):
        try:
            return await handle.execute_update(
                name, arg, id=f"{name}-{uuid.uuid4()}", result_type=result_type
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.type == "NotReady"):
                raise
            await asyncio.sleep(NOT_READY_PAUSE)
    return await handle.execute_update(
        name, arg, id=f"{name}-{uuid.uuid4()}", result_type=result_type
    )


def refusal_message(refusal: BaseException | str | None, default: str = "refused") -> Message:
    """What a workflow's refusal says, as a `Message` the reader's language can be chosen for:
    an `ApplicationError` carries its English template and values as its first detail
    (`workflows.wording.refused`), a `workflows.wording.Said` carries them itself; anything
    older or else is its English text as it is (a constant refusal is still looked up)."""
    if isinstance(refusal, ApplicationError):
        details = refusal.details[0] if refusal.details else None
        if isinstance(details, dict) and isinstance(details.get("template"), str):
            try:
                return _worded(details)
            except (KeyError, TypeError, ValueError):  # a template and values that do not fit
                pass
        return Message(refusal.message or default)
    template = getattr(refusal, "template", None)
    if isinstance(refusal, str) and isinstance(template, str):
        return Message(template, **getattr(refusal, "values", {}))
    return Message(str(refusal) if refusal else default)


def _worded(details: dict[str, Any]) -> Message:
    """The `Message` of `workflows.wording.wording(...)`: a value with its own wording ("inner",
    a problem inside the text) becomes a `Message` too, so it is translated with the text."""
    values = dict(details.get("values") or {})
    for name, inner in (details.get("inner") or {}).items():
        if isinstance(inner, dict) and isinstance(inner.get("template"), str):
            values[name] = _worded(inner)
    return Message(details["template"], **values)
