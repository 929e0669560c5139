"""The audit trail report: every audit row of a record, a process or a period, oldest first,
with the result of verifying the whole hash chain (and the e-signatures) when it was produced.

Each row prints its action as recorded (`task.decided`, the column "Action", what a filter or a
pivot in a spreadsheet works on) and, in the next column ("Action label"), the action's label
in the reader's language (`ui.audit_actions`: 任务已决定; English: what the timelines show,
`decided`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from erp.audit import verify_chain
from erp.models import AuditEntry
from erp.queries import audit_query, process_timeline
from erp.reports import Report, Section, Translate, label, plain, recorded, row, text_of
from erp.signatures import verify_signatures
from ui.i18n import audit_reason

MAX_ROWS = 5000


class TooManyRows(ValueError):
    """The selection holds more rows than one report prints (`limit`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the selection holds more than {limit} audit rows")
        self.limit = limit


@dataclass(frozen=True)
class AuditSelection:
    """Which rows: a record (entity type and/or id), a process (with its tasks), a period."""

    entity_type: str | None = None
    entity_id: str | None = None
    process_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def subject(self) -> str:
        parts = [
            "/".join(p for p in (self.entity_type, self.entity_id) if p),
            self.process_id or "",
            _period(self.since, self.until),
        ]
        return " ".join(p for p in parts if p)

    def describe(self, _: Translate) -> list[tuple[str, str]]:
        facts = []
        if self.entity_type:
            facts.append((_("Record type"), self.entity_type))
        if self.entity_id:
            facts.append((_("Record"), self.entity_id))
        if self.process_id:
            facts.append((_("Process (with its tasks)"), self.process_id))
        facts.append((_("From (UTC, inclusive)"), text_of(self.since) or _("the first row")))
        facts.append((_("Until (UTC, exclusive)"), text_of(self.until) or _("the last row")))
        return facts


def _period(since: datetime | None, until: datetime | None) -> str:
    if not since and not until:
        return ""
    start = since.strftime("%Y-%m-%d") if since else ""
    end = until.strftime("%Y-%m-%d") if until else ""
    return f"{start}..{end}"


def reason_cell(locale: str | None, reason: str | None, after: object) -> str:
    """An audit row's reason as the report prints it: as recorded, and for a reader whose
    language has its wording (`after["reason_wording"]`, `ui.i18n.audit_reason`) the
    translation with the recorded English beside it in parentheses, as `erp.reports.recorded`
    prints a stored value, so an auditor still reads what the row holds."""
    english = reason or ""
    shown = audit_reason(locale, english, after if isinstance(after, dict) else None)
    return f"{shown} ({english})" if english and shown != english else english


async def _rows(session: AsyncSession, selection: AuditSelection) -> list[AuditEntry]:
    if selection.process_id:
        rows = await process_timeline(session, selection.process_id)
        return [
            r
            for r in rows
            if (not selection.since or r.recorded_at >= selection.since)
            and (not selection.until or r.recorded_at < selection.until)
            and (not selection.entity_type or r.entity_type == selection.entity_type)
            and (not selection.entity_id or r.entity_id == selection.entity_id)
        ]
    query = audit_query(
        entity_type=selection.entity_type,
        entity_id=selection.entity_id,
        since=selection.since,
        until=selection.until,
    )
    found = await session.scalars(query.order_by(None).order_by(AuditEntry.id).limit(MAX_ROWS + 1))
    return list(found)


async def audit_trail_report(
    session: AsyncSession, selection: AuditSelection, _: Translate, locale: str | None = None
) -> Report:
    """The rows selected and the verification of the chain they belong to. The chain is
    verified first, so the rows printed were read after it. `locale` is the reader's, for the
    reasons a workflow recorded with their wording (`reason_cell`)."""
    _ = plain(_)
    chain = await verify_chain(session)
    signatures = await verify_signatures(session)
    rows = await _rows(session, selection)
    if len(rows) > MAX_ROWS:
        raise TooManyRows(MAX_ROWS)
    verification = Section(
        _("Verification of the audit trail"),
        facts=[
            (_("Hash chain"), _("intact") if chain.ok else _("BROKEN")),
            (_("Rows verified"), str(chain.rows_checked)),
            (_("Head of the chain (SHA-256)"), chain.head_hash if chain.ok else ""),
            (_("Sealed head (row)"), text_of(chain.sealed_id)),
            (
                _("Keyed with LOTLINE_AUDIT_KEY"),
                _("yes") if chain.keyed else _("no: the development key (proves nothing)"),
            ),
            (_("First row that does not fit"), text_of(chain.first_broken_id)),
            (_("Problem"), chain.problem),
            (_("E-signatures checked"), str(signatures.checked)),
            (
                _("E-signatures that no longer fit"),
                "; ".join(str(p) for p in signatures.problems) or _("none"),
            ),
        ],
    )
    broken = chain.first_broken_id
    entries = Section(
        _("Audit rows"),
        columns=[
            _("Row"),
            _("When (UTC)"),
            _("Who"),
            _("Action"),
            _("Action label"),
            _("Record"),
            _("Outcome"),
            _("Why"),
            _("Before"),
            _("After"),
            _("Where from"),
            _("Row hash (SHA-256)"),
        ],
        rows=[
            row(
                e.id,
                e.recorded_at,
                _("%(actor)s for %(whom)s", actor=e.actor, whom=e.on_behalf_of)
                if e.on_behalf_of
                else e.actor,
                e.action,
                label(_, "audit action", e.action),
                f"{e.entity_type} {e.entity_id}",
                _(
                    "%(outcome)s (after the break)",
                    outcome=recorded(_, "audit outcome", e.outcome),
                )
                if broken and e.id >= broken
                else recorded(_, "audit outcome", e.outcome),
                reason_cell(locale, e.reason, e.after),
                e.before,
                e.after,
                " ".join(p for p in (e.source, e.workflow_id or "", e.activity or "") if p),
                e.row_hash,
            )
            for e in rows
        ],
        widths=[0.5, 1.1, 0.9, 1.2, 1.1, 1.3, 0.6, 1.4, 1.5, 1.5, 1.3, 1.5],
        empty=_("No audit row matches the selection."),
    )
    return Report(
        kind="audit-trail",
        title=_("Audit trail"),
        subject=selection.subject or _("whole trail"),
        sections=[
            Section(_("Selection"), facts=[*selection.describe(_), (_("Rows"), str(len(rows)))]),
            verification,
            entries,
        ],
        wide=True,
    )
