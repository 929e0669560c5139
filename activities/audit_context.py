"""Where an activity's audit row comes from: the workflow, its run and the activity."""

from __future__ import annotations

from typing import Any

from temporalio import activity


def activity_origin() -> dict[str, Any]:
    """The audit fields that say which workflow run and activity wrote a row."""
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "source": "worker",
    }
