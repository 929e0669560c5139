"""A lot's status reasons in the reader's language.

The lot history (`lot_status_change`) is written by a database trigger from `lot.status_reason`
and has no room for a wording; so an activity that changes a lot's status with a `said(…)`
reason stores its wording in the transaction's audit row, `after["lot_reasons"]` (lot number →
`{"reason": English, "reason_wording": …}`, `activities.audit_context.with_lot_reasons`). The lot
page reads those rows once (`lot_reasons`) and shows each history reason and the hold reason
through `{{ h.reason|lot_reason(lot_reasons) }}`, which is `ui.i18n.audit_reason` over that
wording: the reader's language when the wording gives back exactly the recorded English, the
reason as recorded otherwise (an older row, a person's own words). The reasons the database
trigger itself writes (migration 0003's inventory_movement_check: "all issued (WO-0001)") carry no
wording anywhere: `trigger_wording` recognises exactly those templates (`TRIGGER_REASONS`, an
anchored pattern per text, its values captured) and words them the same way.
A page or report that shows many lots (the dashboard's lots on hold, a work order's finished
lots, the DHR) reads them for all its lots in one query (`reasons_of_lots`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, and_, or_, select, union
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Lot
from erp.models import AuditEntry
from erp.supply import LotStatusChange
from ui import i18n
from ui.i18n import N_

Wordings = dict[str, dict[str, Any]]  # English reason → its wording

# The lot reasons the trigger inventory_movement_check (migration 0003) writes into
# lot.status_reason when an issue or a shipment takes a lot's last quantity
# ('all ' || verb || ' (' || reference || ')'): the pattern of each text and our template of it,
# the captured parts its values, so the template's English is the trigger's text itself.
TRIGGER_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"all issued \((?P<reference>.*)\)"), N_("all issued (%(reference)s)")),
    (re.compile(r"all shipped \((?P<reference>.*)\)"), N_("all shipped (%(reference)s)")),
)


def trigger_wording(reason: str) -> dict[str, Any] | None:
    """The wording of a reason the database trigger wrote (`{"template", "values"}`) when it is
    exactly one of `TRIGGER_REASONS`; None for any other text."""
    for pattern, template in TRIGGER_REASONS:
        match = pattern.fullmatch(reason)
        if match is not None and template % match.groupdict() == reason:
            return {"template": template, "values": match.groupdict()}
    return None


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


async def reasons_of_lots(
    session: AsyncSession, lot_numbers: Iterable[str | None]
) -> dict[str, Wordings]:
    """The wordings of the status reasons of several lots (lot number → `Wordings`), in one
    query: the audit rows of every process that changed one of their statuses (their history's
    `process_id`s and the lots' `status_process_id`) and the lots' own rows, that note a reason
    of one of them. A lot without a noted reason is missing (its reasons read as recorded)."""
    numbers = sorted({n for n in lot_numbers if n})
    if not numbers:
        return {}
    lot_ids = select(Lot.id).where(Lot.lot_number.in_(numbers))
    processes = union(
        select(LotStatusChange.process_id).where(
            LotStatusChange.lot_id.in_(lot_ids), LotStatusChange.process_id.is_not(None)
        ),
        select(Lot.status_process_id).where(
            Lot.lot_number.in_(numbers), Lot.status_process_id.is_not(None)
        ),
    )
    of_lots = and_(AuditEntry.entity_type == "lot", AuditEntry.entity_id.in_(numbers))
    rows = await session.scalars(
        select(AuditEntry.after)
        .where(
            or_(AuditEntry.workflow_id.in_(processes), of_lots),
            AuditEntry.after["lot_reasons"].has_any(array(numbers, type_=Text)),
        )
        .order_by(AuditEntry.id)
    )
    wanted = set(numbers)
    found: dict[str, Wordings] = {}
    for after in rows:
        for number, noted in ((after or {}).get("lot_reasons") or {}).items():
            if (
                number in wanted
                and isinstance(noted, dict)
                and isinstance(noted.get("reason"), str)
                and isinstance(noted.get("reason_wording"), dict)
            ):
                found.setdefault(number, {})[noted["reason"]] = noted["reason_wording"]
    return found


def lot_reason(reason: str | None, wordings: Wordings | None, *, locale: str | None = None) -> str:
    """A lot's status or hold reason in the locale (`ui.i18n.audit_reason` over its wording: the
    one noted in the audit rows, else the trigger's own, `trigger_wording`)."""
    english = reason or ""
    spoken = (wordings or {}).get(english) or trigger_wording(english)
    return i18n.audit_reason(locale, english, {"reason_wording": spoken} if spoken else None)


def lot_reason_cell(
    reason: str | None, wordings: Wordings | None, *, locale: str | None = None
) -> str:
    """A lot's status reason as a report prints it (`erp.report_audit.reason_cell`): as recorded,
    and for a reader whose language has its wording the translation with the recorded English
    beside it in parentheses, so an auditor still reads what the history holds."""
    english = reason or ""
    shown = lot_reason(english, wordings, locale=locale)
    return f"{shown} ({english})" if english and shown != english else english
