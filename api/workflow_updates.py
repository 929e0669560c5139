"""Sending an update to a process's workflow from the API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

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
