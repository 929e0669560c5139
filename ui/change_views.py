"""What the change-control pages show, shaped for the templates: the start form read into the
request body the service takes, readable messages, and old-vs-new rows. No business rules here:
the services in api/change_service.py decide; this only arranges their answers for people."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Message
from erp.master_data import Document, Item, Supplier
from schemas.api import AuditOut, ChangeDetail, ChangeStart
from schemas.change_control import (
    ASL_STATUSES,
    SUPPLIER_STATUSES,
    ActionKind,
    ChangeContent,
    ChangeType,
    ProposedAction,
    Risk,
)
from ui import form_problems
from ui.i18n import N_

ACTION_ROWS = 4
ACTION_FIELDS = ("kind", "target", "part_number", "new_revision", "new_status", "note")

ACTION_KINDS = {
    ActionKind.ITEM_REVISION.value: "Part revision",
    ActionKind.DOCUMENT_VERSION.value: "Document version",
    ActionKind.ASL_STATUS.value: "ASL entry status",  # approved supplier list: supplier × part
    ActionKind.SUPPLIER_STATUS.value: "Supplier status",
}
NEW_STATUSES = list(dict.fromkeys([*ASL_STATUSES, *SUPPLIER_STATUSES]))
CHANGE_TYPES = [t.value for t in ChangeType]
RISKS = [r.value for r in Risk]

# every status a change request passes through, in order
STATUSES = (
    "registered",
    "triage",
    "assessment",
    "ccb",
    "revision",
    "implementation",
    "awaiting_effective",
    "blocked",
    "verification",
    "closure",
    "closed",
    "withdrawn",
    "cancelled",
)
STATUS_LABELS = {
    "ccb": "CCB approval",
    "awaiting_effective": "awaiting effective date",
    "assessment": "impact assessment",
}
IMPACT_CATEGORIES = {
    "open_po": "Open purchase orders",
    "lot_in_stock": "Lots in stock",
    "work_order": "Work orders",
    "where_used": "Where used",
    "document": "Documents",
    "asl": "Approved supplier list",
}

# what the start form calls the fields that validation names
FORM_LABELS = {
    "change_type": "Type",
    "title": "Title",
    "reason": "Reason",
    "risk": "Risk",
    "affected_items": "Affected items",
    "affected_documents": "Affected documents",
    "affected_suppliers": "Affected suppliers",
    "actions": "Actions",
    "requested_effective_on": "Requested effective date",
}
ACTION_LABELS = {
    "kind": "kind",
    "target": "target",
    "part_number": "part number",
    "new_revision": "new revision",
    "new_status": "new status",
    "note": "note",
}


def status_label(status: str | None) -> str:
    if not status:
        return "—"
    return STATUS_LABELS.get(status, status.replace("_", " "))


def status_tone(status: str | None) -> str:
    """The pill's colour class: closed is done, withdrawn or cancelled is bad, blocked warns."""
    if status == "closed":
        return "done"
    if status in ("withdrawn", "cancelled"):
        return "bad"
    if status == "blocked":
        return "warn"
    return ""


# ---------------------------------------------------------------- the start form


def _codes(value: str) -> list[str]:
    """'IS-2000, TB-0150' (commas, semicolons or spaces between) → ['IS-2000', 'TB-0150']."""
    return [c for c in re.split(r"[\s,;]+", value.strip()) if c]


@dataclass
class StartForm:
    """The start form as posted: the body for the service and which row each action came from."""

    body: ChangeStart
    rows: list[int] = field(default_factory=list)  # action index → the row number on the form


def read_start_form(form: Mapping[str, str]) -> StartForm:
    actions: list[dict[str, Any]] = []
    rows: list[int] = []
    for n in range(1, ACTION_ROWS + 1):
        values = {f: form.get(f"action_{n}_{f}", "").strip() for f in ACTION_FIELDS}
        if not any(values.values()):
            continue  # an empty row
        action: dict[str, Any] = {"kind": values["kind"], "target": values["target"]}
        for name in ("part_number", "new_revision", "new_status"):
            if values[name]:
                action[name] = values[name]
        if values["note"]:
            action["note"] = values["note"]
        actions.append(action)
        rows.append(n)
    body = ChangeStart(
        change_type=form.get("change_type", ""),
        title=form.get("title", "").strip(),
        reason=form.get("reason", "").strip(),
        risk=form.get("risk", ""),
        affected_items=_codes(form.get("affected_items", "")),
        affected_documents=_codes(form.get("affected_documents", "")),
        affected_suppliers=_codes(form.get("affected_suppliers", "")),
        actions=actions,
        requested_effective_on=form.get("requested_effective_on", "").strip(),
    )
    return StartForm(body=body, rows=rows)


def form_problem(start: StartForm) -> str:
    """What is wrong with the form, in the form's own words ('' when the request is well formed).
    The service checks the same again, and against the ERP; this only names the fields as the
    form labels them (e.g. 'Action 2, new revision' rather than 'actions.1.new_revision')."""
    try:
        ChangeContent.model_validate(start.body.model_dump(exclude={"external_id"}))
    except ValidationError as err:
        return form_problems.joined([_problem(e, start.rows) for e in err.errors()])
    return ""


def _problem(error: Mapping[str, Any], rows: list[int]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    message = form_problems.said(error)
    if loc == ["actions"] and error.get("type") == "too_short":
        return N_(
            "Actions: fill in at least one action (what the change does when it takes effect)"
        )
    if loc and loc[0] == "actions" and len(loc) > 1 and loc[1].isdigit():
        index = int(loc[1])
        row = rows[index] if index < len(rows) else index + 1
        where = Message("Action %(row)s", row=row)
        if len(loc) > 2 and loc[2] == "kind":
            return form_problems.labelled(where, N_("choose what the action does"))
        if len(loc) > 2:
            field = ACTION_LABELS.get(loc[2], loc[2].replace("_", " "))
            where = Message("Action %(row)s, %(field)s", row=row, field=field)
        return form_problems.labelled(where, message)
    label = FORM_LABELS.get(loc[0], ".".join(loc)) if loc else N_("Form")
    if error.get("type") == "enum":
        message = N_("choose one of the options")
    return form_problems.labelled(label, message)


async def form_choices(session: AsyncSession) -> dict[str, list[tuple[str, str]]]:
    """Suggestions for the target and part-number fields: the catalogue's parts, documents and
    suppliers (code, what it is), so people pick rather than type from memory."""
    parts = await session.execute(
        select(Item.part_number, Item.description)
        .where(Item.status == "effective")
        .order_by(Item.part_number)
        .limit(500)
    )
    docs = await session.execute(
        select(Document.number, Document.title)
        .where(Document.status == "effective")
        .order_by(Document.number)
        .limit(500)
    )
    suppliers = await session.execute(
        select(Supplier.code, Supplier.name).order_by(Supplier.code).limit(500)
    )
    part_list = [(p, f"part · {d}") for p, d in parts.all()]
    return {
        "targets": [
            *part_list,
            *((n, f"document · {t}") for n, t in docs.all()),
            *((c, f"supplier · {n}") for c, n in suppliers.all()),
        ],
        "parts": part_list,
    }


# ---------------------------------------------------------------- the change page


@dataclass
class Row:
    """One attribute, old next to new."""

    label: str
    before: Any
    after: Any
    changed: bool
    before_absent: bool = False  # the record on that side does not carry this attribute
    after_absent: bool = False


@dataclass
class SideBySide:
    action: str
    record: str
    rows: list[Row]
    before_missing: bool
    after_missing: bool


@dataclass
class ImpactGroup:
    category: str
    label: str
    count: int
    lines: list[dict[str, str]]


@dataclass
class RevisionView:
    revision: int
    revised_by: str
    why: str
    created_at: datetime
    previous: int | None
    rows: list[Row]


@dataclass
class ChangeView:
    side_by_side: list[SideBySide]
    impact: list[ImpactGroup]
    impact_total: int
    impact_recorded: bool  # as recorded with the assessments (else computed now)
    revisions: list[RevisionView]
    actions: list[dict[str, str]]
    affected: dict[str, list[str]]
    timeline: list[Event]


def show(value: Any) -> str:
    """A value as a cell shows it."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value)
    return str(value)


def _rows(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Row]:
    old, new = before or {}, after or {}
    labels = list(dict.fromkeys([*old, *new]))
    return [
        Row(
            label=(label[:1].upper() + label[1:]).replace("_", " "),
            before=show(old.get(label)) if before is not None else "",
            after=show(new.get(label)) if after is not None else "",
            changed=before is not None
            and after is not None
            and show(old.get(label)) != show(new.get(label)),
            before_absent=before is not None and label not in old,
            after_absent=after is not None and label not in new,
        )
        for label in labels
    ]


def _describe(action: Mapping[str, Any]) -> str:
    try:
        text = ProposedAction.model_validate(action).describe()
    except ValidationError:
        text = f"{action.get('kind', '?')} {action.get('target', '?')}"
    return text + (f" ({action['note']})" if action.get("note") else "")


def _content_facts(content: Mapping[str, Any]) -> dict[str, str]:
    return {
        "Type": show(content.get("change_type")),
        "Title": show(content.get("title")),
        "Reason": show(content.get("reason")),
        "Risk": show(content.get("risk")),
        "Requested effective date": show(content.get("requested_effective_on")),
        "Affected items": show(content.get("affected_items")),
        "Affected documents": show(content.get("affected_documents")),
        "Affected suppliers": show(content.get("affected_suppliers")),
        "Actions": "\n".join(
            f"{n}. {_describe(a)}" for n, a in enumerate(content.get("actions") or [], 1)
        )
        or "—",
    }


def change_view(change: ChangeDetail) -> ChangeView:
    side_by_side = [
        SideBySide(
            action=s.action,
            record=s.record,
            rows=_rows(s.before, s.after),
            before_missing=s.before is None,
            after_missing=s.after is None,
        )
        for s in change.side_by_side
    ]
    lines: list[dict[str, str]] = list(change.impact.get("lines") or [])
    counts: dict[str, int] = dict(change.impact.get("counts") or {})
    categories = list(IMPACT_CATEGORIES) + sorted(
        {str(line.get("category")) for line in lines} - set(IMPACT_CATEGORIES)
    )
    impact = []
    for category in categories:
        found = [line for line in lines if line.get("category") == category]
        impact.append(
            ImpactGroup(
                category=category,
                label=IMPACT_CATEGORIES.get(category, category.replace("_", " ").capitalize()),
                count=int(counts.get(category, len(found))),
                lines=found,
            )
        )
    revisions: list[RevisionView] = []
    previous: Mapping[str, Any] | None = None
    previous_no: int | None = None
    for r in change.revisions:
        now = _content_facts(r.content)
        then = _content_facts(previous) if previous is not None else None
        revisions.append(
            RevisionView(
                revision=r.revision,
                revised_by=r.revised_by,
                why=r.why,
                created_at=r.created_at,
                previous=previous_no,
                rows=[
                    Row(
                        label=label,
                        before=then[label] if then else "",
                        after=value,
                        changed=then is not None and then[label] != value,
                    )
                    for label, value in now.items()
                ],
            )
        )
        previous, previous_no = r.content, r.revision
    current = change.revisions[-1].content if change.revisions else {}
    return ChangeView(
        side_by_side=side_by_side,
        impact=impact,
        impact_total=sum(g.count for g in impact),
        impact_recorded=any(a.revision == change.revision for a in change.assessments),
        revisions=list(reversed(revisions)),  # the newest first
        actions=[
            {"text": _describe(a), "kind": ACTION_KINDS.get(str(a.get("kind")), "")}
            for a in current.get("actions") or []
        ],
        affected={
            "Items": list(current.get("affected_items") or []),
            "Documents": list(current.get("affected_documents") or []),
            "Suppliers": list(current.get("affected_suppliers") or []),
        },
        timeline=timeline(change.timeline),
    )


# ---------------------------------------------------------------- the timeline

FUNCTION_LABELS = {"qa": "QA", "ra": "RA", "supply_chain": "Supply chain"}


def function_label(function: str | None) -> str:
    name = function or ""
    return FUNCTION_LABELS.get(name, name.replace("_", " ").capitalize())


@dataclass
class Event:
    """One audit row as the change page reads it."""

    recorded_at: datetime
    actor: str
    on_behalf_of: str | None
    what: str
    detail: str
    task_id: str | None
    refused: bool
    signed: bool
    # the wording of the row's reason (after["reason_wording"]) when `detail` is that reason:
    # the page shows it in the reader's language ({{ e|audit_reason }})
    detail_wording: dict[str, Any] | None = None


def timeline(rows: list[AuditOut]) -> list[Event]:
    return [_event(row) for row in rows]


def _event(row: AuditOut) -> Event:
    after: Mapping[str, Any] = row.after or {}
    action, detail, signed = row.action, row.reason, False
    # `what` is a Message: English here, translated where a page shows it (the `message` filter)
    what: str = action.replace("_", " ").replace(".", " ")
    if action == "task.opened":
        what, detail = Message("task opened"), str(after.get("title") or row.reason)
    elif action == "task.decided":
        outcome = str(after.get("decision_outcome") or after.get("outcome") or "")
        what = Message("decided: %(outcome)s", outcome=outcome.replace("_", " "))
        what = what if outcome else Message("decided")
        signed = bool(after.get("signature_id"))
    elif action.startswith("task."):
        what = Message("task %(action)s", action=action.removeprefix("task.").replace("_", " "))
    elif action == "change.requested":
        what = Message("change requested")
    elif action == "change.triaged":
        what = Message("triaged")
        if row.outcome != "refused":
            functions = ", ".join(function_label(f) for f in after.get("required_assessments", []))
            detail = detail or (
                f"{after.get('classification', '?')}; assessed by {functions or '—'}; "
                f"implementer {after.get('implementer') or '—'}"
            )
    elif action == "change.assessed":
        outcome = str(after.get("outcome", "")).replace("_", " ")
        function = function_label(str(after.get("function", "")))
        what = Message("assessed (%(function)s): %(outcome)s", function=function, outcome=outcome)
    elif action == "change.revised":
        what = Message("revised: revision %(revision)s", revision=after.get("revision", "?"))
    elif action == "change.effective":
        what = Message("took effect")
        applied = after.get("applied") or []
        detail = "; ".join(str(a) for a in applied) if applied else detail
    elif action.startswith("change."):
        what = Message("status: %(status)s", status=status_label(action.removeprefix("change.")))
    elif action.startswith("master_data."):
        what = f"{action.removeprefix('master_data.').replace('_', ' ')} {row.entity_id}"
    elif action.startswith("process."):
        what = Message(
            "process %(action)s", action=action.removeprefix("process.").replace("_", " ")
        )
    return Event(
        recorded_at=row.recorded_at,
        actor=row.actor,
        on_behalf_of=row.on_behalf_of,
        what=what,
        detail=detail,
        task_id=row.entity_id if row.entity_type == "task" else None,
        refused=row.outcome == "refused",
        signed=signed,
        detail_wording=(
            after.get("reason_wording")
            if row.reason and detail == row.reason and isinstance(after.get("reason_wording"), dict)
            else None
        ),
    )
