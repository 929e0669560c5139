"""Stored values as a person reads them: a status, a kind, a risk or a step name kept in the
database as an identifier (`root_cause`, `ON_HOLD`, `approve`) shown in the page's language.

Each kind of value has a context (`"nc status"`, `"task kind"`, …) and a table: stored value →
English label (what the English pages have always shown). The Chinese text is the msgctxt entry
of `ui/locales/zh_Hans/messages.po` (`msgctxt "nc status"` / `msgid "root cause"`), so one English
word that reads two ways in two places ("closure" the NC step, "closure" the recall step) can be
translated per place. Templates write `{{ nc.status|stored("nc status") }}`;
`tests/ui/test_translations.py` checks every entry of `VALUE_LABELS` has its translation.

A value not in its table (a new status a workflow writes before this table knows it) reads as it
is stored with `_` as a space, translated when the catalog has that text without a context."""

from __future__ import annotations

from schemas.dashboard import PROCESS_KINDS
from schemas.human_task import SignatureMeaning
from schemas.quality import Disposition, Severity
from ui import i18n
from ui.audit_actions import AUDIT_ACTION_LABELS


def _as_shown(*values: str) -> dict[str, str]:
    """The label of each value as the English pages show it: `root_cause` → `root cause`."""
    return {value: value.replace("_", " ") for value in values}


def _as_stored(*values: str) -> dict[str, str]:
    """Values the English pages show exactly as stored (`ON_HOLD`, `approve`, `dhr-review`)."""
    return {value: value for value in values}


# context → {stored value → English label}
VALUE_LABELS: dict[str, dict[str, str]] = {
    "lot status": _as_stored(
        "QUARANTINE",
        "RELEASED",
        "ON_HOLD",
        "REJECTED",
        "CONSUMED",
        "SHIPPED",
        "RECALLED",
        "EXPIRED",
    ),
    "nc status": _as_shown(
        "registering",
        "open",
        "containment",
        "investigation",
        "disposition",
        "capa_decision",
        "closure",
        "closed",
        "cancelled",
    ),
    "capa status": _as_shown(
        "registering",
        "root_cause",
        "planning",
        "plan_approval",
        "actions",
        "reopened",
        "effectiveness_wait",
        "effectiveness_check",
        "closure",
        "closed",
        "cancelled",
    ),
    "action status": _as_shown(
        "planned", "in_progress", "waiting_change", "done", "completed", "cancelled", "superseded"
    ),
    "action kind": _as_stored("corrective", "preventive"),
    "effectiveness": _as_shown("effective", "not_effective"),
    "scar status": _as_stored("open", "closed", "cancelled"),
    "recall status": _as_shown(
        "registering",
        "scoping",
        "holding",
        "hazard_evaluation",
        "classification",
        "strategy_approval",
        "notifying",
        "effectiveness",
        "termination_approval",
        "terminated",
        "closure",
        "closed",
        "cancelled",
    ),
    "consignee status": _as_shown(
        "pending", "sending", "notified", "responded", "escalated", "reconciled"
    ),
    "recall lot role": _as_stored("suspect", "affected"),
    # an NC lot (`nc_lot.role`), as the NC page shows it (quality_macros.html)
    "nc lot role": {"affected": "affected", "extended": "extended by genealogy"},
    "risk": _as_stored("low", "medium", "high"),
    "task kind": _as_stored("approve", "review", "inspect", "disposition", "perform", "verify"),
    "process kind": _as_stored(*PROCESS_KINDS),
    "process status": _as_stored(
        "starting", "registering", "running", "completed", "cancelled", "failed"
    ),
    "supplier status": _as_stored("active", "conditional", "disqualified"),
    "approval status": _as_stored("approved", "conditional", "pending", "disqualified"),
    "work order status": _as_shown("planned", "released", "in_progress", "completed", "cancelled"),
    "order status": _as_shown(
        "received", "purchasing", "production", "shipping", "blocked", "delivered", "cancelled"
    ),
    "purchase order status": _as_shown(
        "draft",
        "approved",
        "issued",
        "confirmed",
        "partially_received",
        "received",
        "rejected",
        "closed",
        "cancelled",
    ),
    "shipment status": _as_shown("planned", "shipped", "delivered", "cancelled"),
    "inspection kind": _as_shown("incoming", "in_process", "final"),
    "audit source": _as_stored("api", "ui", "worker", "cli"),
    "serial status": _as_shown("in_stock", "shipped", "consumed", "scrapped", "recalled"),
    "movement kind": _as_stored("receipt", "output", "issue", "ship", "scrap", "return", "adjust"),
    "assessment": _as_shown("acceptable", "not_acceptable"),
    "step": _as_stored(
        "started",
        "starting",
        "approval",
        "contain",
        "extend",
        "extension",
        "investigation",
        "disposition",
        "recall-decision",
        "closure",
        "dhr-review",
        "final-inspection",
        "qa-release",
        "health-hazard",
        "classification",
        "triage",
        "assessment",
        "ccb",
        "implementation",
        "verification",
        "revision",
        "termination",
        "escalation",
        "escalated",
        "notified",
        "reconciled",
        "delivery-overdue",
    ),
    # the audit trail's recorded action (`task.decided`): ui/audit_actions.py
    "audit action": AUDIT_ACTION_LABELS,
    # an audit row's outcome (erp.models.AuditEntry.outcome: every writer records one of these)
    "audit outcome": _as_stored("ok", "refused"),
    # a nonconformance's severity and a lot's disposition, labelled as the quality pages show
    # them (ui/quality_views.py SEVERITY_LABELS, DISPOSITION_LABELS)
    "nc severity": {
        Severity.MINOR.value: "Minor",
        Severity.MAJOR.value: "Major",
        Severity.CRITICAL.value: "Critical",
    },
    "nc disposition": {
        Disposition.USE_AS_IS.value: "Use as is",
        Disposition.REWORK.value: "Rework",
        Disposition.RETURN_TO_SUPPLIER.value: "Return to supplier",
        Disposition.SCRAP.value: "Scrap",
    },
    # what an e-signature means (21 CFR Part 11 §11.50), as recorded on the signature
    "signature meaning": _as_stored(*(meaning.value for meaning in SignatureMeaning)),
}


def english(context: str, value: object) -> str:
    """The English label of a stored value (as it is, `_` read as a space, when the table does
    not know it)."""
    text = "" if value is None else str(value)
    return VALUE_LABELS.get(context, {}).get(text, text.replace("_", " "))


def stored(context: str, value: object, locale: str | None = None) -> str:
    """A stored value in the locale: its context's translation, else the label's translation
    without a context (as it is, or capitalised as a workflow's outcome label reads: `reject` →
    `Reject`), else the English label."""
    label = english(context, value)
    if not label:
        return ""
    table = i18n.catalog(i18n.supported(locale))
    return (
        table.get(i18n.keyed(context, label))
        or table.get(label)
        or table.get(label[:1].upper() + label[1:])
        or label
    )
