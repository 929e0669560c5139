"""Where an activity's audit row comes from: the workflow, its run and the activity."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from erp.audit import AuditRecord, append_audit


def activity_origin() -> dict[str, Any]:
    """The audit fields that say which workflow run and activity wrote a row."""
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "source": "worker",
    }


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    key: str,
    **fields: Any,
) -> None:
    """This activity's audit row, in the session's transaction, under its idempotency key;
    `fields` are the rest of the AuditRecord (reason, outcome, before, after)."""
    await append_audit(
        session,
        AuditRecord(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            idempotency_key=key,
            **fields,
            **activity_origin(),
        ),
    )
