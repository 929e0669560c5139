"""A lot's status reasons in the reader's language.

The lot history (`lot_status_change`) is written by a database trigger from `lot.status_reason`
and has no room for a wording; so an activity that changes a lot's status with a `said(…)`
reason stores its wording in the transaction's audit row, `after["lot_reasons"]` (lot number →
`{"reason": English, "reason_wording": …}`, `activities.audit_context.with_lot_reasons`). The lot
page reads those rows once (`lot_reasons`) and shows each history reason and the hold reason
through `{{ h.reason|lot_reason(lot_reasons) }}`, which is `ui.i18n.audit_reason` over that
wording: the reader's language when the wording gives back exactly the recorded English, the
reason as recorded otherwise (an older row, a person's own words, a trigger's "all issued …").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.models import AuditEntry
from ui import i18n

Wordings = dict[str, dict[str, Any]]  # English reason → its wording


async def lot_reasons(
    session: AsyncSession, lot_number: str, process_ids: Iterable[str | None]
) -> Wordings:
    """The wordings of this lot's status reasons, from the audit rows of the processes that
    changed its status (`lot_status_change.process_id`, the lot's `status_process_id`: the
    workflow id of the activity that wrote the row) and the lot's own rows."""
    ids = sorted({pid for pid in process_ids if pid})
    of_lot = and_(AuditEntry.entity_type == "lot", AuditEntry.entity_id == lot_number)
    rows = await session.scalars(
        select(AuditEntry.after)
        .where(
            or_(AuditEntry.workflow_id.in_(ids), of_lot) if ids else of_lot,
            AuditEntry.after["lot_reasons"].has_key(lot_number),
        )
        .order_by(AuditEntry.id)
    )
    found: Wordings = {}
    for after in rows:
        noted = (after or {}).get("lot_reasons", {}).get(lot_number)
        if (
            isinstance(noted, dict)
            and isinstance(noted.get("reason"), str)
            and isinstance(noted.get("reason_wording"), dict)
        ):
            found[noted["reason"]] = noted["reason_wording"]
    return found


def lot_reason(reason: str | None, wordings: Wordings | None, *, locale: str | None = None) -> str:
    """A lot's status or hold reason in the locale (`ui.i18n.audit_reason` over its wording)."""
    english = reason or ""
    spoken = (wordings or {}).get(english)
    return i18n.audit_reason(locale, english, {"reason_wording": spoken} if spoken else None)
