"""Where an activity's audit row comes from: the workflow, its run and the activity."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from erp.audit import AuditRecord, append_audit
from erp.lots import noted_lot_reasons
from workflows.wording import reason_wording, wording


def activity_origin() -> dict[str, Any]:
    """The audit fields that say which workflow run and activity wrote a row."""
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "source": "worker",
    }


def with_reason_wording(after: dict[str, Any] | None, reason: str) -> dict[str, Any] | None:
    """An audit row's `after` with the reason's wording under "reason_wording" when the reason
    is a `said(…)`; as it is for a plain reason (a person's own words, an older input)."""
    spoken = reason_wording(reason)
    return after if spoken is None else {**(after or {}), "reason_wording": spoken}


def with_lot_reasons(session: AsyncSession, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit row's `after` with the wording of each lot status reason that is a `said(…)`
    noted in this transaction (`erp.lots.note_lot_reason`) under "lot_reasons" (lot number →
    `{"reason": English, "reason_wording": …}`), which the lot page reads for the lot's status
    history and hold reason (`ui.reason_text`); as it is when none was noted."""
    noted = noted_lot_reasons(session)
    if not noted:
        return after
    lots = {n: {"reason": str(r), "reason_wording": wording(r)} for n, r in noted.items()}
    return {**(after or {}), "lot_reasons": lots}


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
    `fields` are the rest of the AuditRecord (reason, outcome, before, after). A reason that is
    a `said(…)` keeps its wording in the row's after["reason_wording"] (the English `reason` as
    it is), so the pages show it in the reader's language (`ui.i18n.audit_reason`); a lot status
    reason noted in the transaction goes under after["lot_reasons"] (`with_lot_reasons`)."""
    fields["after"] = with_lot_reasons(
        session, with_reason_wording(fields.get("after"), fields.get("reason") or "")
    )
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
